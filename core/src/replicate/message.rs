//! What replicas send each other: [`Frame`]s (ops, state-transfer chunks, repairs),
//! [`Ack`]s and [`Hello`]s, each as a [`Message`] in the envelope of [`crate::codec`] (with a
//! MAC between replicas that have frame keys, see [`crate::auth`]).
//!
//! Decoding is two steps: [`Message::decode`] checks the envelope and the bincode structure
//! (never panics, never allocates by an unchecked length), then validates every id, key and
//! value against the [`Limits`]; only a fully valid message reaches the replica.

use serde::{Deserialize, Serialize};

use crate::auth::FrameKeys;
use crate::causal::{Dot, Gap, VersionVector, GIVEN_UP};
use crate::clock::ReplicaId;
use crate::codec;
use crate::crdt::{Op, OpKind, SessionId, SessionState};
use crate::error::DecodeError;
use crate::limits::Limits;

/// Longest region name carried in a frame.
pub const MAX_NAME: usize = 255;

/// Highest sequence number a message may carry. No replica makes 2^62 changes, so a larger
/// one is corruption; refusing it keeps `seq + 1` from overflowing anywhere. A vector entry
/// may also be a given-up mark, [`crate::causal::GIVEN_UP`] plus a sequence number.
pub const MAX_SEQ: u64 = crate::causal::GIVEN_UP - 1;

/// What a frame carries.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FrameBody {
    /// Ops the receiver lacks, per origin in seq order (an empty list is a heartbeat).
    Ops(Vec<Op>),
    /// One chunk of a full state transfer, for a receiver that fell behind the op log; the
    /// receiver stages chunks and merges them when the last one arrives.
    State {
        /// Transfer id (per sender and receiver).
        transfer: u64,
        /// Chunk index, from 0.
        index: u32,
        /// Whether this is the final chunk.
        last: bool,
        /// The sender's vector when it made this chunk. The last chunk's is what the whole
        /// transfer hands over: once every chunk arrived in order, the receiver holds
        /// everything it covers and nothing more (see the module `transfer`).
        covers: VersionVector,
        /// Full states of a range of sessions.
        sessions: Vec<(SessionId, SessionState)>,
    },
    /// The sender's full states of sessions a digest comparison found different (`None`:
    /// it does not hold that session), as of the frame's vector.
    Repair(Vec<(SessionId, Option<SessionState>)>),
}

/// A batch of replication data from one replica to another.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Frame {
    /// Sending replica.
    pub sender: ReplicaId,
    /// Its region name.
    pub sender_name: String,
    /// The sender's boot (one per run of its store): a higher boot means it restarted.
    pub boot: u64,
    /// The replica the frame is for.
    pub to: ReplicaId,
    /// The receiver's boot as the sender last heard it (0: never heard from it).
    pub to_boot: u64,
    /// Per (sender, receiver) frame counter, from 1.
    pub frame_no: u64,
    /// An op frame: what the sender holds durably (an implicit acknowledgement). A frame
    /// carrying state: the causal context of that state (the store makes it durable before
    /// the frame leaves).
    pub vv: VersionVector,
    /// Replicas the sender removed from membership.
    pub removed: Vec<ReplicaId>,
    /// The payload.
    pub body: FrameBody,
}

/// The receiver's answer to a frame: what it now holds.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Ack {
    /// Acknowledging replica.
    pub from: ReplicaId,
    /// Its region name.
    pub from_name: String,
    /// Its boot.
    pub boot: u64,
    /// The replica the ack is for.
    pub to: ReplicaId,
    /// The receiver's boot as the acker last heard it.
    pub to_boot: u64,
    /// Its version vector after applying the frame (durable before the ack leaves).
    pub vv: VersionVector,
    /// Highest frame number it received from the frame's sender.
    pub frame_no: u64,
    /// Runs of ops it lacks below ops it holds (to be sent again); for a retired origin held
    /// out of order, also the run from past the highest seq held to [`MAX_SEQ`], so that
    /// members can tell they hold the same of it (see `give_up.rs`). Sorted by origin and
    /// seq.
    pub gaps: Vec<Gap>,
    /// Replicas it removed from membership.
    pub removed: Vec<ReplicaId>,
    /// [`Ack::TRANSFER_BROKEN`] and [`Ack::CATCHING_UP`]; no other bit is valid. One byte on
    /// the wire, where version 2 acks of earlier builds had a `transfer_broken` bool (0 or
    /// 1), so both decode alike.
    pub flags: u8,
}

impl Ack {
    /// A state-transfer chunk arrived out of order: the transfer must restart.
    pub const TRANSFER_BROKEN: u8 = 1;
    /// The acker is fenced, catching up itself: its vector may lack ends the cluster
    /// collected, so no replica lifts its own fence by catching up with it.
    pub const CATCHING_UP: u8 = 2;

    /// Whether the transfer must restart.
    pub fn transfer_broken(&self) -> bool {
        self.flags & Ack::TRANSFER_BROKEN != 0
    }

    /// Whether the acker is catching up.
    pub fn catching_up(&self) -> bool {
        self.flags & Ack::CATCHING_UP != 0
    }
}

/// A replica introducing itself to the node it runs on's peers: who it is, in which run, on
/// which transport node. Authenticated like every message, so only a holder of the cluster
/// key can make a node a member; the transport node it names (not the one a message claims
/// to come from) is where frames for it go.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The replica.
    pub sender: ReplicaId,
    /// Its region name.
    pub sender_name: String,
    /// Its boot.
    pub boot: u64,
    /// The transport node it runs on (an Erlang node name, for the Erlang server).
    pub node: String,
}

/// A frame, an ack or a hello, as sent on the wire.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Replication data.
    Frame(Frame),
    /// An acknowledgement.
    Ack(Ack),
    /// An introduction.
    Hello(Hello),
}

impl Message {
    /// Encodes into a sealed envelope without a MAC (for replicas without frame keys).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(None)
    }

    /// Encodes into a sealed envelope, signed with the current key of `keys` if given.
    pub fn encode_with(&self, keys: Option<&FrameKeys>) -> Vec<u8> {
        let signer = keys.map(|k| (k.current(), self.sender().0));
        codec::seal_with(&codec::to_bytes(self), signer)
    }

    /// The replica the message comes from.
    pub fn sender(&self) -> ReplicaId {
        match self {
            Message::Frame(f) => f.sender,
            Message::Ack(a) => a.from,
            Message::Hello(h) => h.sender,
        }
    }

    /// Decodes and validates a sealed envelope that carries no MAC.
    ///
    /// # Errors
    /// A [`DecodeError`] for a damaged envelope, malformed content, or content over `limits`.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, DecodeError> {
        Message::decode_with(bytes, limits, None)
    }

    /// Decodes and validates a sealed envelope: with `keys`, it must carry a MAC under one
    /// of them, naming the sender the content names; without, it must carry none. Nothing
    /// is decompressed or parsed before the MAC is checked.
    ///
    /// # Errors
    /// As [`Message::decode`], and [`DecodeError::Unauthenticated`].
    pub fn decode_with(
        bytes: &[u8],
        limits: &Limits,
        keys: Option<&FrameKeys>,
    ) -> Result<Message, DecodeError> {
        let raw = codec::open_with(bytes, limits.max_frame, keys)?;
        let mut msg: Message = codec::from_bytes(&raw)?;
        msg.validate(limits)?;
        if let Some(claimed) = codec::claimed_sender(bytes) {
            if claimed != msg.sender().0 {
                return Err(bad("the MAC names another sender than the content"));
            }
        }
        Ok(msg)
    }

    fn validate(&mut self, limits: &Limits) -> Result<(), DecodeError> {
        match self {
            Message::Hello(h) => {
                check_name(&h.sender_name)?;
                check_name(&h.node)
            }
            Message::Frame(f) => {
                check_name(&f.sender_name)?;
                f.vv.normalize();
                check_vv(&f.vv)?;
                if f.frame_no == 0 {
                    return Err(bad("frame number 0"));
                }
                match &f.body {
                    FrameBody::Ops(ops) => ops.iter().try_for_each(|op| check_op(op, limits)),
                    FrameBody::State {
                        sessions, covers, ..
                    } => {
                        check_vv(covers)?;
                        sessions
                            .iter()
                            .try_for_each(|(id, st)| check_state(id, st, limits))
                    }
                    FrameBody::Repair(sessions) => {
                        sessions.iter().try_for_each(|(id, st)| match st {
                            Some(st) => check_state(id, st, limits),
                            None => check_len("session id", id.0.len(), 1, limits.max_session_id),
                        })
                    }
                }
            }
            Message::Ack(a) => {
                check_name(&a.from_name)?;
                a.vv.normalize();
                check_vv(&a.vv)?;
                if a.flags & !(Ack::TRANSFER_BROKEN | Ack::CATCHING_UP) != 0 {
                    return Err(bad("unknown ack flags"));
                }
                for g in &a.gaps {
                    if g.from == 0 || g.from > g.to {
                        return Err(bad("empty gap"));
                    }
                    check_seq(g.to)?;
                }
                Ok(())
            }
        }
    }
}

fn bad(why: &str) -> DecodeError {
    DecodeError::Malformed(why.to_string())
}

fn check_seq(seq: u64) -> Result<(), DecodeError> {
    if seq > MAX_SEQ {
        return Err(DecodeError::Malformed(format!(
            "sequence number {seq} out of range"
        )));
    }
    Ok(())
}

fn check_dot(dot: &Dot) -> Result<(), DecodeError> {
    if dot.seq == 0 {
        return Err(bad("dot with seq 0"));
    }
    check_seq(dot.seq)
}

/// A vector entry is a sequence number or a given-up mark with one.
fn check_vv(vv: &VersionVector) -> Result<(), DecodeError> {
    vv.iter()
        .try_for_each(|(_, seq)| check_seq(seq.checked_sub(GIVEN_UP).unwrap_or(seq)))
}

fn check_name(name: &str) -> Result<(), DecodeError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(bad("region or node name must be 1..=255 bytes"));
    }
    Ok(())
}

fn check_len(what: &str, len: usize, min: usize, max: usize) -> Result<(), DecodeError> {
    if len < min || len > max {
        return Err(DecodeError::Malformed(format!(
            "{what} of {len} bytes (allowed {min}..={max})"
        )));
    }
    Ok(())
}

fn check_op(op: &Op, l: &Limits) -> Result<(), DecodeError> {
    check_len("session id", op.session.0.len(), 1, l.max_session_id)?;
    check_dot(&op.dot)?;
    match &op.kind {
        OpKind::Put(writes) => {
            if writes.is_empty() || writes.len() > l.max_fields {
                return Err(bad("put with no fields or too many"));
            }
            for w in writes {
                check_len("key", w.key.len(), 1, l.max_key)?;
                check_len(
                    "value",
                    w.value.as_ref().map_or(0, |v| v.len()),
                    0,
                    l.max_value,
                )?;
            }
        }
        OpKind::Counter { key, .. } => check_len("key", key.len(), 1, l.max_key)?,
        OpKind::SetAdd { key, elem } => {
            check_len("key", key.len(), 1, l.max_key)?;
            check_len("element", elem.len(), 0, l.max_value)?;
        }
        OpKind::SetRemove { key, elem, dots } => {
            check_len("key", key.len(), 1, l.max_key)?;
            check_len("element", elem.len(), 0, l.max_value)?;
            dots.iter().try_for_each(check_dot)?;
        }
        OpKind::Touch { .. } | OpKind::End => {}
    }
    Ok(())
}

fn check_state(id: &SessionId, st: &SessionState, l: &Limits) -> Result<(), DecodeError> {
    check_len("session id", id.0.len(), 1, l.max_session_id)?;
    if let Some(end) = &st.ended {
        check_dot(&end.dot)?;
    }
    if let Some(touch) = &st.touched_by {
        check_dot(touch)?;
    }
    for (k, r) in &st.fields {
        check_len("key", k.len(), 1, l.max_key)?;
        check_dot(&r.stamp.dot)?;
        check_len(
            "value",
            r.value.as_ref().map_or(0, |v| v.len()),
            0,
            l.max_value,
        )?;
    }
    for (k, c) in &st.counters {
        check_len("key", k.len(), 1, l.max_key)?;
        c.dots().try_for_each(|d| check_dot(&d))?;
    }
    for (k, s) in &st.sets {
        check_len("key", k.len(), 1, l.max_key)?;
        for e in s.entries.keys() {
            check_len("element", e.len(), 0, l.max_value)?;
        }
        if s.entries.values().any(|d| d.is_empty()) {
            return Err(bad("set element without an add"));
        }
        s.entries.values().flatten().try_for_each(check_dot)?;
        s.removed
            .iter()
            .try_for_each(|(add, by)| check_dot(add).and_then(|()| check_dot(by)))?;
    }
    Ok(())
}
