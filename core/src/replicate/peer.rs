//! What a replica knows about one peer: what it acknowledged, what was sent since, frames in
//! flight, contact times and state transfers in either direction.

use std::collections::{BTreeMap, BTreeSet};

use crate::causal::{Gap, VersionVector};
use crate::clock::ReplicaId;
use crate::crdt::{SessionId, SessionState};

/// An outgoing state transfer in progress.
#[derive(Debug, Clone)]
pub(crate) struct OutTransfer {
    pub(crate) id: u64,
    pub(crate) next_index: u32,
    /// Sessions after this one are still to be scanned (`None`: from the start).
    pub(crate) cursor: Option<SessionId>,
    /// Whether every session was scanned once.
    pub(crate) scanned: bool,
    /// Sessions that changed after they were sent: they go again before the last chunk.
    pub(crate) resend: BTreeSet<SessionId>,
}

impl OutTransfer {
    /// Whether `session` was already passed by the scan (a change to it must be re-sent).
    pub(crate) fn passed(&self, session: &SessionId) -> bool {
        self.scanned || self.cursor.as_ref().is_some_and(|c| session <= c)
    }
}

/// An incoming state transfer in progress: chunks are staged until the last one arrives.
#[derive(Debug, Clone)]
pub(crate) struct InTransfer {
    pub(crate) id: u64,
    pub(crate) next_index: u32,
    pub(crate) broken: bool,
    /// The latest copy of every session received so far.
    pub(crate) staged: BTreeMap<SessionId, SessionState>,
}

/// Replication state for one peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) name: String,
    /// What the peer acknowledged holding.
    pub(crate) acked: VersionVector,
    /// What we sent since the last rewind (a high watermark per origin).
    pub(crate) sent: VersionVector,
    /// What the peer said it holds in its last frame to us.
    pub(crate) theirs: VersionVector,
    pub(crate) frames_sent: u64,
    pub(crate) frames_acked: u64,
    pub(crate) last_heard_ms: Option<u64>,
    pub(crate) last_progress_ms: u64,
    /// Replicas this peer reported as removed.
    pub(crate) removed_view: Vec<ReplicaId>,
    /// Origins its latest ack reported gaps of: it holds some of their changes out of order,
    /// which its vector does not show.
    pub(crate) gapped: BTreeSet<ReplicaId>,
    /// Its latest ack's gaps of retired origins (with the last run of each, see
    /// [`Replica::holding_gaps`](super::Replica)): what it holds of them beyond its vector.
    pub(crate) retired_gaps: Vec<Gap>,
    pub(crate) transfer: Option<OutTransfer>,
    pub(crate) transfers_started: u64,
    pub(crate) incoming: Option<InTransfer>,
    /// Highest frame number received from this peer, of frames addressed to this replica.
    pub(crate) frames_received: u64,
    /// The same for frames addressed to an earlier incarnation of this replica (sent before
    /// the peer learned its new id): a separate numbering, so neither looks like a replay of
    /// the other.
    pub(crate) frames_received_elsewhere: u64,
    /// The peer's boot, as its latest message said (0: not heard from yet).
    pub(crate) boot: u64,
    /// How far the newest stamp of its latest frame was ahead of our wall clock, in ms.
    pub(crate) clock_ahead_ms: u64,
    /// The vector of its latest ack addressed to this replica's current id and boot since
    /// the fence went up, whether it was catching up itself or not.
    pub(crate) acked_this_run: Option<VersionVector>,
    /// The vector of its first such ack while it was not catching up itself: holding all of
    /// it lifts the fence (a fixed target, reached even while it keeps writing).
    pub(crate) catch_up_target: Option<VersionVector>,
}

/// How a message's boot compares with the last one heard from its sender.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Boot {
    /// The same run (or the first message heard).
    Current,
    /// The sender restarted since its last message.
    Restarted,
    /// From an earlier run of the sender, delivered late: its vector is stale.
    Stale,
}

impl Peer {
    pub(crate) fn new(name: String, now_ms: u64) -> Peer {
        Peer {
            name,
            acked: VersionVector::new(),
            sent: VersionVector::new(),
            theirs: VersionVector::new(),
            frames_sent: 0,
            frames_acked: 0,
            last_heard_ms: None,
            last_progress_ms: now_ms,
            removed_view: Vec::new(),
            gapped: BTreeSet::new(),
            retired_gaps: Vec::new(),
            transfer: None,
            transfers_started: 0,
            incoming: None,
            frames_received: 0,
            frames_received_elsewhere: 0,
            boot: 0,
            clock_ahead_ms: 0,
            acked_this_run: None,
            catch_up_target: None,
        }
    }

    /// Takes the boot a message from this peer carries. After a restart nothing the peer
    /// acknowledged before counts (it may have lost what it acknowledged, I2): its vector
    /// now is `vv`, everything in flight to it is forgotten, transfers start over.
    pub(crate) fn observe_boot(&mut self, boot: u64, vv: &VersionVector, now_ms: u64) -> Boot {
        if boot < self.boot {
            return Boot::Stale;
        }
        if boot == self.boot || self.boot == 0 {
            self.boot = boot;
            return Boot::Current;
        }
        self.boot = boot;
        self.acked = vv.clone();
        self.sent = vv.clone();
        self.theirs = vv.clone();
        self.frames_acked = self.frames_sent;
        self.frames_received = 0;
        self.frames_received_elsewhere = 0;
        self.transfer = None;
        self.incoming = None;
        self.acked_this_run = None;
        // What the old boot reported (removals, holdings beyond its vector) is its next
        // ack's to say again: a give-up waits for it.
        self.removed_view.clear();
        self.gapped.clear();
        self.retired_gaps.clear();
        self.catch_up_target = None;
        self.last_progress_ms = now_ms;
        Boot::Restarted
    }

    /// Frames sent and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> u64 {
        self.frames_sent.saturating_sub(self.frames_acked)
    }

    /// Forgets what was sent and not acknowledged, so it is sent again.
    pub(crate) fn rewind(&mut self, now_ms: u64) {
        self.sent = self.acked.clone();
        self.frames_acked = self.frames_sent;
        self.transfer = None;
        self.last_progress_ms = now_ms;
    }

    /// Records an acknowledgement of `vv`; returns whether it covered anything new.
    pub(crate) fn acknowledge(&mut self, vv: &VersionVector, now_ms: u64) -> bool {
        let progressed = !self.acked.dominates(vv);
        self.acked.merge(vv);
        self.sent.merge(vv);
        self.last_heard_ms = Some(now_ms);
        if progressed {
            self.last_progress_ms = now_ms;
        }
        progressed
    }
}
