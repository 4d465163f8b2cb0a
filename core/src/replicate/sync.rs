//! The replication protocol of a [`Replica`], transport-agnostic: produce the next frame for
//! a peer, apply a frame from a peer (returning the ack and the changes to persist), take an
//! ack. Frames carry, for every origin, the ops the peer has not acknowledged (forwarding),
//! only up to our own contiguous vector; a peer below the op log's floor gets a state
//! transfer in chunks instead. A receiver applies each origin's ops in order: an op that
//! arrives ahead of a gap waits (its ack names the gap, so the sender sends it again), which
//! keeps every effect a replica holds covered by its version vector.

use super::change::Change;
use super::fence::FenceReason;
use super::message::{Ack, Frame, FrameBody, Message};
use super::peer::{Boot, Peer};
use super::replica::Replica;
use super::transfer::ChunkOutcome;
use crate::causal::{Gap, GIVEN_UP};
use crate::clock::ReplicaId;
use crate::crdt::{causal_merge, OpKind, SessionId, SessionState};
use crate::error::{Error, Result};

/// What applying a frame did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The ack to send back to the frame's sender.
    pub ack: Ack,
    /// Changes made, in order, to make durable (before the ack is sent).
    pub changes: Vec<Change>,
    /// Ops applied.
    pub applied: usize,
    /// Ops already held (duplicates), ignored.
    pub duplicates: usize,
}

/// What receiving an encoded message did.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Encoded reply to send back (an ack), if any.
    pub reply: Option<Vec<u8>>,
    /// Changes made, in order, to make durable (before the reply is sent).
    pub changes: Vec<Change>,
}

impl Replica {
    /// Registers `id` (region `name`) as a peer. Registering a known peer is harmless.
    ///
    /// # Errors
    /// [`Error::OwnFrame`] for this replica's own id, [`Error::RemovedReplica`] for a removed one.
    pub fn add_peer(&mut self, id: ReplicaId, name: &str) -> Result<()> {
        self.add_member(id, name).map(drop)
    }

    /// [`Replica::add_peer`], returning the changes to log when `id` is a new member
    /// (membership is durable: a restarted replica still waits for a member that is down).
    /// The first member of a replica that crashed with no member on record raises its
    /// catch-up fence too: the crash may have taken the membership records with the end of
    /// the log, and its state may be older than what the cluster collected (I4).
    ///
    /// # Errors
    /// As [`Replica::add_peer`].
    pub fn add_member(&mut self, id: ReplicaId, name: &str) -> Result<Vec<Change>> {
        self.check_sender(id)?;
        let now = self.now_ms();
        self.names.insert(id, name.to_string());
        if self.peers.contains_key(&id) {
            return Ok(Vec::new());
        }
        self.peers.insert(id, Peer::new(name.to_string(), now));
        let mut changes = vec![Change::Member {
            id,
            name: name.to_string(),
        }];
        if std::mem::take(&mut self.fence_at_first_member) && self.fence.is_none() {
            changes.push(self.raise_fence(FenceReason::LostTail));
        }
        Ok(changes)
    }

    /// The peer entry of a message's sender (admitted as a member before).
    fn sender_entry(&mut self, id: ReplicaId, name: &str) -> Result<&mut Peer> {
        self.names.insert(id, name.to_string());
        self.peers.get_mut(&id).ok_or(Error::NotAMember(id))
    }

    /// The peers, with their region names.
    pub fn peers(&self) -> Vec<(ReplicaId, String)> {
        self.peers
            .iter()
            .map(|(id, p)| (*id, p.name.clone()))
            .collect()
    }

    pub(crate) fn check_sender(&self, id: ReplicaId) -> Result<()> {
        if id == self.id {
            return Err(Error::OwnFrame);
        }
        if self.removed.contains_key(&id) {
            return Err(Error::RemovedReplica(id));
        }
        Ok(())
    }

    /// Forgets what was sent to `peer` and not acknowledged, so it is sent again (call when
    /// the transport reconnects).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`].
    pub fn rewind(&mut self, peer: ReplicaId) -> Result<()> {
        let now = self.now_ms();
        self.peers
            .get_mut(&peer)
            .ok_or(Error::UnknownPeer(peer))?
            .rewind(now);
        Ok(())
    }

    /// Whether `peer` needs ops this replica's log no longer holds: below an origin's
    /// floor, or (should the log ever lack an op its vector covers) at a hole.
    pub(crate) fn needs_transfer(&self, peer: &Peer) -> bool {
        self.ctx.vv().iter().any(|(origin, top)| {
            // Given up here: a peer that holds more of it than is held here, or some of it
            // out of order, holds given-up changes, which only a transfer takes away; any
            // other peer gets the ops up to the seq held and gives it up itself.
            let top = match self.ctx.vv().given_up(origin) {
                Some(held) => {
                    let theirs = peer.acked.get(origin);
                    if theirs < GIVEN_UP && (theirs > held || peer.gapped.contains(&origin)) {
                        return true;
                    }
                    held
                }
                None => top,
            };
            let from = peer
                .acked
                .get(origin)
                .max(peer.sent.get(origin))
                .saturating_add(1);
            from <= top
                && (from <= self.log.floor(origin)
                    || self.log.from(origin, from).next().map(|(op, _)| op.dot.seq) != Some(from))
        })
    }

    /// The next frame for `peer`: ops it lacks (from any origin) up to the frame budget, or
    /// the next state-transfer chunk; `None` when there is nothing to send or the window of
    /// unacknowledged frames is full.
    ///
    /// # Errors
    /// [`Error::UnknownPeer`].
    pub fn frame_for(&mut self, peer_id: ReplicaId) -> Result<Option<Frame>> {
        let peer = self
            .peers
            .get(&peer_id)
            .ok_or(Error::UnknownPeer(peer_id))?;
        if peer.in_flight() >= self.config.window {
            return Ok(None);
        }
        if peer.transfer.is_some() || self.needs_transfer(peer) {
            let body = self.next_state_chunk(peer_id);
            return Ok(Some(self.make_frame(peer_id, body)));
        }
        let budget = self.config.frame_budget;
        let mut ops = Vec::new();
        let mut size = 0;
        let mut sent = Vec::new();
        // Only what is durable here is shipped (I1): a crash can never take back an op a
        // peer holds, whatever its origin.
        'origins: for (origin, top) in self.durable_vv().iter() {
            // A given-up origin's ops go up to the seq held, never above (given up).
            let top = top.checked_sub(GIVEN_UP).unwrap_or(top);
            let from = peer
                .acked
                .get(origin)
                .max(peer.sent.get(origin))
                .saturating_add(1);
            for (op, op_size) in self.log.from(origin, from) {
                if op.dot.seq > top {
                    break;
                }
                if size + op_size > budget && !ops.is_empty() {
                    break 'origins;
                }
                size += op_size;
                ops.push(op.clone());
                sent.push((origin, op.dot.seq));
            }
        }
        if ops.is_empty() {
            return Ok(None);
        }
        if let Some(p) = self.peers.get_mut(&peer_id) {
            for (origin, seq) in sent {
                p.sent.raise(origin, seq);
            }
        }
        Ok(Some(self.make_frame(peer_id, FrameBody::Ops(ops))))
    }

    /// An empty frame for `peer`: it carries this replica's vector (an implicit ack) and its
    /// removed members, and asks for an ack. Transports send one when idle, so that
    /// acknowledgements, lag figures and removals keep flowing without writes.
    ///
    /// # Errors
    /// [`Error::UnknownPeer`].
    pub fn heartbeat(&mut self, peer_id: ReplicaId) -> Result<Frame> {
        if !self.peers.contains_key(&peer_id) {
            return Err(Error::UnknownPeer(peer_id));
        }
        Ok(self.make_frame(peer_id, FrameBody::Ops(Vec::new())))
    }

    /// Frames carrying this replica's full state of each of `ids` (or that it does not hold
    /// it) for `peer`, each within the frame budget: the repair of sessions a digest
    /// comparison found different. A fenced replica sends none: its state may be older
    /// than what the cluster collected, and a repair is merged as the sender's truth.
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::CatchingUp`].
    pub fn repair_frames(&mut self, peer_id: ReplicaId, ids: &[SessionId]) -> Result<Vec<Frame>> {
        if !self.peers.contains_key(&peer_id) {
            return Err(Error::UnknownPeer(peer_id));
        }
        self.check_unfenced()?;
        let budget = self.config.frame_budget;
        let mut frames = Vec::new();
        let mut batch = Vec::new();
        let mut size = 0;
        for id in ids {
            let state = self.sessions.get(id).cloned();
            let s = id.0.len() + state.as_ref().map_or(8, SessionState::approx_size);
            if size + s > budget && !batch.is_empty() {
                let body = FrameBody::Repair(std::mem::take(&mut batch));
                frames.push(self.make_frame(peer_id, body));
                size = 0;
            }
            size += s;
            batch.push((id.clone(), state));
        }
        if !batch.is_empty() {
            frames.push(self.make_frame(peer_id, FrameBody::Repair(batch)));
        }
        Ok(frames)
    }

    fn make_frame(&mut self, peer_id: ReplicaId, body: FrameBody) -> Frame {
        let (frame_no, to_boot) = match self.peers.get_mut(&peer_id) {
            Some(p) => {
                p.frames_sent += 1;
                (p.frames_sent, p.boot)
            }
            None => (1, 0),
        };
        // An op frame acknowledges what is durable here (I1); a frame carrying state names
        // the context that state reflects, which the store makes durable before it leaves.
        let vv = match body {
            FrameBody::Ops(_) => self.durable_vv().clone(),
            FrameBody::State { .. } | FrameBody::Repair(_) => self.ctx.vv().clone(),
        };
        Frame {
            sender: self.id,
            sender_name: self.name.clone(),
            boot: self.boot,
            to: peer_id,
            to_boot,
            frame_no,
            vv,
            removed: self.removed.keys().copied().collect(),
            body,
        }
    }

    /// Applies a frame from a member (see the module `trust` for what it must pass).
    ///
    /// # Errors
    /// [`Error::OwnFrame`], [`Error::RemovedReplica`], [`Error::NotAMember`],
    /// [`Error::ReplayedFrame`], [`Error::ClockAhead`]; the replica is then unchanged but
    /// for the refusal counts.
    pub fn apply_frame(&mut self, frame: Frame) -> Result<Applied> {
        self.admit_frame(&frame)?;
        let now = self.now_ms();
        let mut changes = Vec::new();
        self.adopt_removals(frame.sender, &frame.removed, &mut changes);
        if let Some(ts) = frame.body.newest_stamp() {
            // Within the bound (admitted above): later local writes order after it.
            self.clock.observe(ts);
        }
        let addressed_here = frame.to == self.id;
        let peer = self.sender_entry(frame.sender, &frame.sender_name)?;
        let boot = peer.observe_boot(frame.boot, &frame.vv, now);
        if boot != Boot::Stale {
            let received = if addressed_here {
                &mut peer.frames_received
            } else {
                &mut peer.frames_received_elsewhere
            };
            *received = (*received).max(frame.frame_no);
            peer.theirs.merge(&frame.vv);
            peer.acknowledge(&frame.vv, now);
        }
        let (mut applied, mut duplicates, mut transfer_broken) = (0, 0, false);
        let mut missing = Vec::new();
        match frame.body {
            FrameBody::Ops(ops) => {
                for op in ops {
                    if self.ctx.contains(op.dot) {
                        duplicates += 1;
                        continue;
                    }
                    // Ops apply in their origin's order. An op applied ahead of a gap would
                    // be held as an effect without a covered dot: if its origin died before
                    // the gap filled, no survivor could pass it on and only this one would
                    // keep it. Leave it, and have the sender send again from the gap.
                    let next = self.ctx.vv().get(op.dot.replica) + 1;
                    if op.dot.seq != next {
                        if !missing.iter().any(|g: &Gap| g.origin == op.dot.replica) {
                            missing.push(Gap {
                                origin: op.dot.replica,
                                from: next,
                                to: op.dot.seq - 1,
                            });
                        }
                        continue;
                    }
                    self.end_if_expired(&op.session, &mut changes);
                    self.apply_op(&op);
                    changes.push(Change::Op(op));
                    applied += 1;
                }
            }
            FrameBody::State {
                transfer,
                index,
                last,
                covers,
                sessions,
            } if addressed_here && boot != Boot::Stale => {
                let chunk = (transfer, index, last);
                let outcome =
                    self.take_state_chunk(frame.sender, chunk, covers, sessions, &mut changes);
                transfer_broken = matches!(outcome, ChunkOutcome::Broken);
            }
            // A chunk of a transfer to an old id of this replica, or from an earlier run of
            // the sender: transfers are numbered per peer and per run, so its number may be
            // that of the one running now, and staging it there would make the sessions of
            // the chunk it stands in for look forgotten by the sender. Left alone; the
            // transfer it belonged to was for a replica that is no more.
            FrameBody::State { .. } => {}
            // A repair is the sender's state of some sessions at `frame.vv`: merged causally,
            // so a stale copy never brings back what either side has collected (I4).
            FrameBody::Repair(sessions) => {
                for (session, state) in sessions {
                    self.end_if_expired(&session, &mut changes);
                    self.merge_causally(&session, state.as_ref(), &frame.vv, &mut changes);
                }
            }
        }
        if boot != Boot::Stale {
            self.note_retired_held(frame.sender, &frame.vv);
            self.log_retired_held(&mut changes);
            self.check_history(frame.sender, &frame.vv, &[], &mut changes);
        }
        // No fence lifts on a frame: a frame does not say whether its sender is catching up
        // itself. The acks of members do (see `on_ack`).
        let mut ack = self.make_ack(frame.sender, transfer_broken);
        if !addressed_here {
            ack.frame_no = self
                .peers
                .get(&frame.sender)
                .map_or(0, |p| p.frames_received_elsewhere);
        }
        // Ops skipped ahead of a gap: an origin already reported keeps its runs.
        for g in missing {
            if !ack.gaps.iter().any(|x| x.origin == g.origin) {
                ack.gaps.push(g);
            }
        }
        ack.gaps.sort_by_key(|g| (g.origin, g.from));
        Ok(Applied {
            ack,
            changes,
            applied,
            duplicates,
        })
    }

    /// Merges a peer's state of `session` (`None`: it does not hold it) with the peer's
    /// context `theirs` (see `crdt::causal_merge`); logs the result when it changed anything.
    pub(crate) fn merge_causally(
        &mut self,
        session: &SessionId,
        state: Option<&SessionState>,
        theirs: &crate::causal::VersionVector,
        changes: &mut Vec<Change>,
    ) {
        let here = self.sessions.get(session);
        let ctx = &self.ctx;
        // Given up on either side: above the higher of the two marks.
        let given_up = |d: crate::causal::Dot| {
            let h = ctx.vv().given_up(d.replica).max(theirs.given_up(d.replica));
            h.is_some_and(|h| d.seq > h)
        };
        let merged = causal_merge(here, state, |d| ctx.contains(d), theirs, given_up);
        if merged.as_ref() != here {
            self.set_session(session, merged.clone());
            changes.push(Change::Replace {
                session: session.clone(),
                state: merged,
            });
        }
    }

    /// A session whose deadline passed here is ended (by a local op) before anything from a
    /// peer touches it: an expired session never comes back, even if a longer touch arrives.
    /// A fenced replica makes no op (see [`Replica::expire_due`]).
    pub(crate) fn end_if_expired(&mut self, session: &SessionId, changes: &mut Vec<Change>) {
        if self.fence.is_some() {
            return;
        }
        // The clock is read only for a session that has a deadline.
        let expired = self.sessions.get(session).is_some_and(|s| {
            !s.is_ended() && s.expires_at.is_some() && s.is_expired(self.clock.physical_ms())
        });
        if expired {
            let op = self.commit_local(session.clone(), OpKind::End);
            changes.push(Change::Op(op));
            self.expired_total += 1;
        }
    }

    /// The flags of this replica's acks (see [`Ack::flags`]).
    fn ack_flags(&self, transfer_broken: bool) -> u8 {
        let mut flags = 0;
        if transfer_broken {
            flags |= Ack::TRANSFER_BROKEN;
        }
        if self.fence.is_some() {
            flags |= Ack::CATCHING_UP;
        }
        flags
    }

    fn make_ack(&self, to: ReplicaId, transfer_broken: bool) -> Ack {
        let peer = self.peers.get(&to);
        Ack {
            from: self.id,
            from_name: self.name.clone(),
            boot: self.boot,
            to,
            to_boot: peer.map_or(0, |p| p.boot),
            vv: self.ctx.vv().clone(),
            frame_no: peer.map_or(0, |p| p.frames_received),
            gaps: self.ack_gaps(),
            removed: self.removed.keys().copied().collect(),
            flags: self.ack_flags(transfer_broken),
        }
    }

    /// Takes an ack from a member.
    ///
    /// # Errors
    /// [`Error::OwnFrame`], [`Error::RemovedReplica`], [`Error::NotAMember`]; the replica is
    /// then unchanged but for the refusal counts.
    pub fn on_ack(&mut self, ack: &Ack) -> Result<Vec<Change>> {
        self.admit_ack(ack)?;
        let now = self.now_ms();
        let mut changes = Vec::new();
        self.adopt_removals(ack.from, &ack.removed, &mut changes);
        let retired_gaps: Vec<Gap> = ack
            .gaps
            .iter()
            .filter(|g| self.removed.contains_key(&g.origin))
            .copied()
            .collect();
        let peer = self.sender_entry(ack.from, &ack.from_name)?;
        if peer.observe_boot(ack.boot, &ack.vv, now) == Boot::Stale {
            return Ok(changes);
        }
        peer.acknowledge(&ack.vv, now);
        peer.frames_acked = peer.frames_acked.max(ack.frame_no.min(peer.frames_sent));
        if ack.frame_no >= peer.frames_sent && !peer.acked.dominates(&peer.sent) {
            // The peer got our latest frame but lacks some of what we sent before it: those
            // frames were lost (or, on a reordering transport, are late; a second copy is
            // harmless). Nothing counts as in flight any more, so no timeout would resend
            // them: send them again now.
            peer.sent = peer.acked.clone();
            peer.transfer = None;
        }
        peer.removed_view = ack.removed.clone();
        peer.gapped = ack.gaps.iter().map(|g| g.origin).collect();
        peer.retired_gaps = retired_gaps;
        for gap in &ack.gaps {
            // Ops lost in flight: send them again from the start of the gap.
            peer.sent.lower_to(gap.origin, gap.from - 1);
        }
        if ack.transfer_broken() {
            peer.transfer = None;
            peer.sent = peer.acked.clone();
        }
        self.note_retired_held(ack.from, &ack.vv);
        self.note_retired_runs(ack.from, &ack.vv, &ack.gaps);
        self.log_retired_held(&mut changes);
        self.check_history(ack.from, &ack.vv, &ack.gaps, &mut changes);
        if ack.to == self.id && ack.to_boot == self.boot && self.fence.is_some() {
            if let Some(p) = self.peers.get_mut(&ack.from) {
                p.acked_this_run = Some(ack.vv.clone());
                if !ack.catching_up() && p.catch_up_target.is_none() {
                    p.catch_up_target = Some(ack.vv.clone());
                }
            }
            self.maybe_lift_fence(&mut changes);
        }
        Ok(changes)
    }

    /// Decodes an encoded message from a peer (authenticated under the frame keys, if
    /// any) and applies it; the reply is signed the same way.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`], [`Error::Frame`] for bytes that do not decode or validate
    /// (and for a hello: open it with [`Replica::open_hello`]), and the errors of
    /// [`Replica::apply_frame`] and [`Replica::on_ack`]; the replica is then unchanged but
    /// for the refusal counts.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received> {
        match self.decode_message(bytes)? {
            Message::Frame(frame) => {
                let applied = self.apply_frame(frame)?;
                Ok(Received {
                    reply: Some(self.encode(&Message::Ack(applied.ack))),
                    changes: applied.changes,
                })
            }
            Message::Ack(ack) => Ok(Received {
                reply: None,
                changes: self.on_ack(&ack)?,
            }),
            Message::Hello(h) => {
                let err = Error::Frame(crate::error::DecodeError::Malformed(
                    "a hello is opened with open_hello".into(),
                ));
                self.count_refusal(Some(h.sender), &err);
                Err(err)
            }
        }
    }
}
