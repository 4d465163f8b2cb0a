//! The trust boundary of a [`Replica`]: what a message must pass before it changes anything.
//!
//! In order: its MAC under the cluster's frame keys (`auth`), its sender's membership (only
//! a hello or [`Replica::add_peer`] makes a member, never a frame), for a frame a number above
//! the last one taken from its sender's run (no replays), and stamps no further ahead of this
//! replica's wall clock than `max_clock_skew_ms` (one far-future stamp would otherwise drag
//! every clock of the cluster with it and freeze last-writer-wins). A message that fails is
//! refused with a typed error, changes nothing but the refusal counts, and is counted against
//! the sender it claims (see [`RefusalCounts`]). A vector may give up only an origin retired
//! here or by the sender, never this replica (`causal::GIVEN_UP`): a mark on a live origin
//! would count all its later writes as seen, and drop them.

use std::collections::BTreeMap;

use super::message::{Ack, Frame, FrameBody, Hello, Message};
use super::replica::Replica;
use crate::auth::FrameKeys;
use crate::causal::VersionVector;
use crate::clock::{ReplicaId, Timestamp};
use crate::codec;
use crate::crdt::SessionState;
use crate::error::{DecodeError, Error, Result};

/// Senders counted one by one; refusals from further ones are counted together.
pub const MAX_COUNTED_SENDERS: usize = 64;

/// How many messages claiming one sender were refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    /// Failed authentication (no MAC, an unknown key, a wrong tag).
    pub unauthenticated: u64,
    /// From a replica that is not a member.
    pub not_member: u64,
    /// From a replica removed from membership.
    pub removed: u64,
    /// Replayed (or reordered) frames.
    pub replayed: u64,
    /// Held back: stamps too far ahead of this replica's clock.
    pub clock_ahead: u64,
    /// Damaged, malformed, over a limit, or carrying this replica's own id.
    pub malformed: u64,
}

impl RefusalCounts {
    fn count(&mut self, err: &Error) {
        match err {
            Error::Unauthenticated { .. } => self.unauthenticated += 1,
            Error::NotAMember(_) => self.not_member += 1,
            Error::RemovedReplica(_) => self.removed += 1,
            Error::ReplayedFrame { .. } => self.replayed += 1,
            Error::ClockAhead { .. } => self.clock_ahead += 1,
            _ => self.malformed += 1,
        }
    }

    /// All refusals counted here.
    pub fn total(&self) -> u64 {
        self.unauthenticated
            + self.not_member
            + self.removed
            + self.replayed
            + self.clock_ahead
            + self.malformed
    }
}

/// Refusal counts per claimed sender (at most [`MAX_COUNTED_SENDERS`], then together).
#[derive(Debug, Clone, Default)]
pub(crate) struct Refusals {
    pub(crate) by_sender: BTreeMap<ReplicaId, RefusalCounts>,
    /// Refusals of messages that name no sender, or from senders past the limit.
    pub(crate) other: RefusalCounts,
}

impl Refusals {
    pub(crate) fn count(&mut self, sender: Option<ReplicaId>, err: &Error) {
        let slot = match sender {
            Some(id)
                if self.by_sender.contains_key(&id)
                    || self.by_sender.len() < MAX_COUNTED_SENDERS =>
            {
                self.by_sender.entry(id).or_default()
            }
            _ => &mut self.other,
        };
        slot.count(err);
    }
}

impl FrameBody {
    /// The newest stamp the body carries (ops' stamps; in states, field and end stamps).
    pub fn newest_stamp(&self) -> Option<Timestamp> {
        fn of_state(st: &SessionState) -> Option<Timestamp> {
            let fields = st.fields.values().map(|r| r.stamp.ts);
            fields.chain(st.ended.map(|e| e.ts)).max()
        }
        match self {
            FrameBody::Ops(ops) => ops.iter().map(|op| op.ts).max(),
            FrameBody::State { sessions, .. } => {
                sessions.iter().filter_map(|(_, s)| of_state(s)).max()
            }
            FrameBody::Repair(sessions) => sessions
                .iter()
                .filter_map(|(_, s)| s.as_ref().and_then(of_state))
                .max(),
        }
    }
}

impl Replica {
    /// Replaces the frame keys (a key rotation, see [`crate::auth`]); `None` turns
    /// authentication off.
    pub fn set_frame_keys(&mut self, keys: Option<FrameKeys>) {
        self.config.frame_keys = keys;
    }

    /// Encodes `msg` for the wire, signed when this replica has frame keys.
    pub fn encode(&self, msg: &Message) -> Vec<u8> {
        msg.encode_with(self.config.frame_keys.as_ref())
    }

    /// This replica's hello, for the peers of transport node `node` (see [`Hello`]).
    pub fn hello(&self, node: &str) -> Vec<u8> {
        self.encode(&Message::Hello(Hello {
            sender: self.id,
            sender_name: self.name.clone(),
            boot: self.boot,
            node: node.to_string(),
        }))
    }

    /// Opens a peer's hello: authenticated and valid, from a replica that is neither this
    /// one nor removed. Making it a member is the caller's decision ([`Replica::add_peer`]),
    /// once the node it names is one it wants.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`], [`Error::Frame`] (also for a message that is not a
    /// hello), [`Error::OwnFrame`], [`Error::RemovedReplica`]; each is counted.
    pub fn open_hello(&mut self, bytes: &[u8]) -> Result<Hello> {
        let hello = match self.decode_message(bytes)? {
            Message::Hello(h) => h,
            other => {
                let err = Error::Frame(DecodeError::Malformed("not a hello".into()));
                self.refusals.count(Some(other.sender()), &err);
                return Err(err);
            }
        };
        if let Err(e) = self.check_sender(hello.sender) {
            self.refusals.count(Some(hello.sender), &e);
            return Err(e);
        }
        Ok(hello)
    }

    /// Decodes a message under this replica's frame keys and limits, counting a refusal.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a failed MAC check, [`Error::Frame`] for the rest.
    pub(crate) fn decode_message(&mut self, bytes: &[u8]) -> Result<Message> {
        decode(bytes, &self.config).map_err(|(sender, e)| {
            self.refusals.count(sender, &e);
            e
        })
    }

    /// Counts a refusal found outside the replica (the store decodes without its lock).
    pub(crate) fn count_refusal(&mut self, sender: Option<ReplicaId>, err: &Error) {
        self.refusals.count(sender, err);
    }

    /// Whether `frame` may change anything here: a member's, not replayed, with stamps
    /// within the clock bound. Records how far ahead the sender's clock runs.
    ///
    /// # Errors
    /// [`Error::OwnFrame`], [`Error::RemovedReplica`], [`Error::NotAMember`],
    /// [`Error::ReplayedFrame`], [`Error::ClockAhead`]; nothing changed but the counts.
    pub(crate) fn admit_frame(&mut self, frame: &Frame) -> Result<()> {
        let verdict = self.judge_frame(frame);
        if let Err(e) = &verdict {
            self.refusals.count(Some(frame.sender), e);
        }
        verdict
    }

    fn judge_frame(&mut self, frame: &Frame) -> Result<()> {
        self.check_member(frame.sender)?;
        let now = self.clock.physical_ms();
        let bound = self.config.max_clock_skew_ms;
        let ahead = frame
            .body
            .newest_stamp()
            .map_or(0, |ts| ts.millis().saturating_sub(now));
        let Some(peer) = self.peers.get_mut(&frame.sender) else {
            return Err(Error::NotAMember(frame.sender));
        };
        let received = if frame.to == self.id {
            peer.frames_received
        } else {
            peer.frames_received_elsewhere
        };
        let last = (peer.boot, received);
        if (frame.boot, frame.frame_no) <= last {
            return Err(Error::ReplayedFrame {
                sender: frame.sender,
                frame: (frame.boot, frame.frame_no),
                last,
            });
        }
        peer.clock_ahead_ms = ahead;
        if ahead > bound {
            return Err(Error::ClockAhead {
                sender: frame.sender,
                ahead_ms: ahead,
                max_ms: bound,
            });
        }
        self.check_marks(&frame.vv, &frame.removed)?;
        if let FrameBody::State { covers, .. } = &frame.body {
            self.check_marks(covers, &frame.removed)?;
        }
        Ok(())
    }

    /// Whether `ack` may change anything here: a member's.
    ///
    /// # Errors
    /// [`Error::OwnFrame`], [`Error::RemovedReplica`], [`Error::NotAMember`].
    pub(crate) fn admit_ack(&mut self, ack: &Ack) -> Result<()> {
        let verdict = self
            .check_member(ack.from)
            .and_then(|()| self.check_marks(&ack.vv, &ack.removed));
        if let Err(e) = &verdict {
            self.refusals.count(Some(ack.from), e);
        }
        verdict
    }

    /// Every given-up mark in `vv` names an origin retired here or in `removed` (the
    /// sender's list, adopted with the message), and none names this replica.
    fn check_marks(&self, vv: &VersionVector, removed: &[ReplicaId]) -> Result<()> {
        let bad = vv.iter().map(|(o, _)| o).find(|&o| {
            vv.given_up(o).is_some()
                && (o == self.id || !(self.removed.contains_key(&o) || removed.contains(&o)))
        });
        match bad {
            Some(o) => Err(Error::Frame(DecodeError::Malformed(format!(
                "a vector gives up {o}, which is not retired"
            )))),
            None => Ok(()),
        }
    }

    fn check_member(&self, id: ReplicaId) -> Result<()> {
        self.check_sender(id)?;
        if !self.peers.contains_key(&id) {
            return Err(Error::NotAMember(id));
        }
        Ok(())
    }
}

/// Decodes a message under `config`'s keys and limits; a refusal comes with the sender the
/// message claims, for counting.
pub(crate) fn decode(
    bytes: &[u8],
    config: &super::ReplicaConfig,
) -> std::result::Result<Message, (Option<ReplicaId>, Error)> {
    Message::decode_with(bytes, &config.limits, config.frame_keys.as_ref()).map_err(|e| {
        let sender = codec::claimed_sender(bytes).map(ReplicaId);
        let err = match e {
            DecodeError::Unauthenticated(why) => Error::Unauthenticated { sender, why },
            other => Error::Frame(other),
        };
        (sender, err)
    })
}
