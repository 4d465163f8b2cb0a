//! Full state transfer, for a peer that needs ops the op log no longer holds.
//!
//! A transfer hands over exactly the sender's state at one version vector, all at once:
//! - the sender scans its sessions in id order, a few per chunk; a session that changes
//!   after the scan passed it (or appears behind the scan) is sent again; the last chunk
//!   goes out once the scan is done and nothing is left to send again, and its `covers` is
//!   the sender's vector at that moment, which every state sent reflects, and no more;
//! - the receiver stages the chunks (the latest copy of each session) and, only when the last
//!   chunk arrives in order, merges them causally with `covers` (so neither side's collected
//!   tombstones come back, and a session the sender no longer holds is dropped here) and
//!   adopts `covers`. A chunk out of order breaks the transfer: the staged copies are dropped
//!   and the ack asks the sender to start again. Transfers are numbered per peer entry and
//!   per run of the sender, so only chunks addressed to this replica's current id, from the
//!   sender's current run, are staged: a chunk of a transfer to an old id (or from an earlier
//!   run) may carry the number of the one running now.
//!
//! So a receiver never holds an effect its vector does not name, even when the sender dies
//! in the middle of a transfer; ops that reach it later are recognised as held. The cost:
//! a receiver stages up to a full copy of the sender's sessions while a transfer runs.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::change::Change;
use super::message::FrameBody;
use super::peer::{InTransfer, OutTransfer};
use super::replica::Replica;
use crate::causal::VersionVector;
use crate::clock::ReplicaId;
use crate::crdt::{SessionId, SessionState};

/// What a state chunk did at the receiver.
pub(crate) enum ChunkOutcome {
    /// Staged; more chunks to come.
    Staged,
    /// The transfer completed: staged states merged and the vector adopted.
    Completed,
    /// Out of order or stale: the transfer must start again.
    Broken,
}

impl Replica {
    /// The next chunk of the transfer to `peer_id` (starting one if none is running).
    pub(crate) fn next_state_chunk(&mut self, peer_id: ReplicaId) -> FrameBody {
        let covers = self.ctx.vv().clone();
        let budget = self.config.frame_budget;
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return FrameBody::Ops(Vec::new());
        };
        let mut t = match peer.transfer.take() {
            Some(t) => t,
            None => {
                peer.transfers_started += 1;
                OutTransfer {
                    id: peer.transfers_started,
                    next_index: 0,
                    cursor: None,
                    scanned: false,
                    resend: Default::default(),
                }
            }
        };
        let mut sessions = Vec::new();
        let mut size = 0;
        let mut full = |id: &SessionId, st: &SessionState, sessions: &mut Vec<_>| {
            let s = st.approx_size() + id.0.len();
            if size + s > budget && !sessions.is_empty() {
                return true;
            }
            size += s;
            sessions.push((id.clone(), st.clone()));
            false
        };
        if !t.scanned {
            let range = match &t.cursor {
                Some(c) => self.sessions.range_from(Bound::Excluded(c)),
                None => self.sessions.range_from(Bound::Unbounded),
            };
            t.scanned = true;
            for (id, st) in range {
                if full(id, st, &mut sessions) {
                    t.scanned = false;
                    break;
                }
                t.cursor = Some(id.clone());
            }
        }
        if t.scanned {
            while let Some(id) = t.resend.first() {
                // A session collected since it was sent aborts the transfer (see
                // `abort_transfers_past`), so every id here is still held.
                if let Some(st) = self.sessions.get(id) {
                    if full(id, st, &mut sessions) {
                        break;
                    }
                }
                t.resend.pop_first();
            }
        }
        let last = t.scanned && t.resend.is_empty();
        let body = FrameBody::State {
            transfer: t.id,
            index: t.next_index,
            last,
            covers: covers.clone(),
            sessions,
        };
        if last {
            peer.sent.merge(&covers);
        } else {
            t.next_index += 1;
            peer.transfer = Some(t);
        }
        body
    }

    /// Notes that `session` changed: running transfers that already sent it send it again.
    pub(crate) fn note_transfer_change(&mut self, session: &SessionId) {
        for peer in self.peers.values_mut() {
            if let Some(t) = peer.transfer.as_mut() {
                if t.passed(session) {
                    t.resend.insert(session.clone());
                }
            }
        }
    }

    /// `session` was forgotten (its end was collected): a running transfer that already sent
    /// it cannot take that copy back, so it starts again.
    pub(crate) fn abort_transfers_past(&mut self, session: &SessionId) {
        for peer in self.peers.values_mut() {
            if peer.transfer.as_ref().is_some_and(|t| t.passed(session)) {
                peer.transfer = None;
            }
        }
    }

    /// Takes chunk `index` of transfer `id` from `sender`, carrying `sessions`; on the last
    /// chunk, merges everything staged causally with `covers` (the sender's context) and
    /// adopts `covers`.
    pub(crate) fn take_state_chunk(
        &mut self,
        sender: ReplicaId,
        (id, index, last): (u64, u32, bool),
        covers: VersionVector,
        sessions: Vec<(SessionId, SessionState)>,
        changes: &mut Vec<Change>,
    ) -> ChunkOutcome {
        let Some(peer) = self.peers.get_mut(&sender) else {
            return ChunkOutcome::Broken;
        };
        let mut t = match peer.incoming.take() {
            Some(t) if t.id == id => t,
            _ => InTransfer {
                id,
                next_index: 0,
                broken: false,
                staged: BTreeMap::new(),
            },
        };
        if t.broken || t.next_index != index {
            t.broken = true;
            t.staged.clear();
            peer.incoming = Some(t);
            return ChunkOutcome::Broken;
        }
        t.next_index += 1;
        t.staged.extend(sessions);
        if !last {
            peer.incoming = Some(t);
            return ChunkOutcome::Staged;
        }
        // A transfer is the sender's whole state at `covers`: a session held here that it did
        // not send, whose every entry it has seen, was ended and collected there (I4). The
        // merges come before the adoption: what counts as "seen here" is what this replica
        // held before the transfer.
        let gone: Vec<SessionId> = self
            .sessions
            .keys()
            .filter(|k| !t.staged.contains_key(*k))
            .cloned()
            .collect();
        for session in gone {
            self.merge_causally(&session, None, &covers, changes);
        }
        for (session, state) in t.staged {
            self.end_if_expired(&session, changes);
            self.merge_causally(&session, Some(&state), &covers, changes);
        }
        self.adopt(&covers);
        changes.push(Change::Adopt(covers));
        ChunkOutcome::Completed
    }
}
