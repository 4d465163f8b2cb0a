//! [`ReplicaStatus`]: the truth about one replica in one call: what it holds, what each peer
//! acknowledged, how many ops each peer lacks and how old the oldest one is, tombstones not
//! yet stable, and anything that blocks replication or collection.

use crate::causal::{Gap, VersionVector};
use crate::clock::ReplicaId;
use crate::digest::Digest;

/// One peer, as this replica sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's id.
    pub id: ReplicaId,
    /// Its region name.
    pub name: String,
    /// What it acknowledged holding (a given-up origin at the seq it is held up to).
    pub acked: VersionVector,
    /// Ops this replica holds that the peer has not acknowledged.
    pub pending_ops: u64,
    /// Age in ms of the oldest op the peer has not acknowledged (0 when none).
    pub lag_ms: u64,
    /// False when the oldest unacknowledged op already left the op log, so `lag_ms` is a
    /// lower bound (the age of the newest op that left).
    pub lag_exact: bool,
    /// Ops the peer holds (as of its last frame) that this replica lacks.
    pub behind_ops: u64,
    /// When this replica last heard from the peer (Unix ms).
    pub last_heard_ms: Option<u64>,
    /// Frames sent and not yet acknowledged.
    pub in_flight: u64,
    /// Whether the peer needs (or is receiving) a full state transfer.
    pub state_transfer: bool,
    /// How far the newest stamp of its latest frame was ahead of this replica's wall clock,
    /// in ms (frames more than `max_clock_skew_ms` ahead are held back).
    pub clock_ahead_ms: u64,
    /// Which replicas this peer reported as removed.
    pub reports_removed: Vec<ReplicaId>,
}

/// A replica retired from membership (by an operator, or as this region's own earlier
/// incarnation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredStatus {
    /// Its id.
    pub id: ReplicaId,
    /// Its region name, when known.
    pub name: Option<String>,
    /// Members that have not yet reported the retirement: until each has, it still holds up
    /// tombstone collection with its last acknowledgement.
    pub unconfirmed_by: Vec<ReplicaId>,
    /// Once its history is given up (`causal::GIVEN_UP`), the seq it is held up to: its
    /// changes above it, which no member held, count as removed everywhere (a backup or
    /// disk of the retired region that still holds some brings none of them back).
    pub given_up_at: Option<u64>,
}

/// One replica's state, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// This replica's id.
    pub id: ReplicaId,
    /// Its region name.
    pub name: String,
    /// Physical time of the reading (Unix ms).
    pub now_ms: u64,
    /// What it holds in memory (a given-up origin at the seq it is held up to, see
    /// [`RetiredStatus::given_up_at`]).
    pub vv: VersionVector,
    /// What it holds durably: all a crash now would keep, and all it acknowledges (I1).
    pub durable_vv: VersionVector,
    /// Sessions held, ended ones (tombstones) included.
    pub sessions: usize,
    /// Sessions with live content (not ended).
    pub live_sessions: usize,
    /// Root of the digest tree.
    pub digest_root: Digest,
    /// Ops in the in-memory op log, and their bytes.
    pub log_ops: usize,
    /// Bytes in the op log.
    pub log_bytes: usize,
    /// Tombstone-making ops not yet collected.
    pub tombstones_pending: usize,
    /// The stable frontier: tombstones at or below it have been collected.
    pub stable: VersionVector,
    /// Ops missing below ops held.
    pub gaps: Vec<Gap>,
    /// Largest amount a peer's clock was seen ahead of ours, in ms.
    pub clock_skew_ms: u64,
    /// Peers.
    pub peers: Vec<PeerStatus>,
    /// Replicas removed from membership.
    pub removed: Vec<ReplicaId>,
    /// The same, with who has yet to confirm each removal.
    pub retired: Vec<RetiredStatus>,
    /// Replicas that hold up tombstone collection: members (or retired replicas whose
    /// retirement is unconfirmed) whose acknowledgement does not cover the oldest pending
    /// tombstone of some origin, and origins that are neither members nor retired.
    pub collection_blocked_by: Vec<ReplicaId>,
    /// The member that reported this replica as removed, if one did: its peers refuse its
    /// frames; it must come back as a new incarnation.
    pub removed_by: Option<ReplicaId>,
    /// Whether messages are authenticated (frame keys are configured).
    pub authenticated: bool,
    /// Ids of the accepted frame keys, the signing one first.
    pub frame_key_ids: Vec<u32>,
    /// Messages refused at the trust boundary, per claimed sender.
    pub refused: Vec<(ReplicaId, super::RefusalCounts)>,
    /// Refusals of messages that named no sender, or senders past the counting limit.
    pub refused_other: super::RefusalCounts,
    /// By how much this replica's wall clock runs ahead of what its clock issues (a jump
    /// ahead held back), in ms; 0 when the wall clock is followed.
    pub clock_jump_ms: u64,
    /// Sessions this replica ended because their deadline passed (since it was opened).
    pub expired_total: u64,
    /// Origins seen in ops that are neither members nor removed: they block collection until
    /// they become peers or are removed.
    pub unknown_origins: Vec<ReplicaId>,
    /// Why reads and writes are refused until this replica has caught up, if they are.
    pub fence: Option<super::FenceReason>,
    /// This run's boot number.
    pub boot: u64,
}

impl super::Replica {
    /// Everything an operator needs about this replica, in one call.
    pub fn status(&self) -> ReplicaStatus {
        let now = self.now_ms();
        let vv = self.ctx.vv();
        let peers = self
            .peers
            .iter()
            .map(|(id, p)| {
                let pending_ops = vv.count_ahead_of(&p.acked);
                let (mut oldest, mut exact) = (None::<u64>, true);
                for (origin, top) in vv.iter() {
                    let next = p.acked.get(origin).saturating_add(1);
                    if next > top {
                        continue;
                    }
                    let dot = crate::causal::Dot {
                        replica: origin,
                        seq: next,
                    };
                    let ts = match self.log.get(dot) {
                        Some(op) => Some(op.ts.millis()),
                        None => {
                            exact = false;
                            self.log.floor_ts(origin).map(|t| t.millis())
                        }
                    };
                    if let Some(ts) = ts {
                        oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
                    }
                }
                PeerStatus {
                    id: *id,
                    name: p.name.clone(),
                    acked: p.acked.held(),
                    pending_ops,
                    lag_ms: oldest.map_or(0, |ts| now.saturating_sub(ts)),
                    lag_exact: exact,
                    behind_ops: p.theirs.count_ahead_of(vv),
                    last_heard_ms: p.last_heard_ms,
                    in_flight: p.in_flight(),
                    state_transfer: p.transfer.is_some() || self.needs_transfer(p),
                    clock_ahead_ms: p.clock_ahead_ms,
                    reports_removed: p.removed_view.clone(),
                }
            })
            .collect();
        ReplicaStatus {
            id: self.id,
            name: self.name.clone(),
            now_ms: now,
            vv: vv.held(),
            durable_vv: self.durable_vv().held(),
            sessions: self.sessions.len(),
            live_sessions: self.digest.len(),
            digest_root: self.digest.root(),
            log_ops: self.log.len(),
            log_bytes: self.log.bytes(),
            tombstones_pending: self.tombstones.len() + self.retained_ends.len(),
            stable: self.stability.frontier().clone(),
            gaps: self.ctx.gaps(),
            clock_skew_ms: self.clock.max_skew_ms(),
            peers,
            removed: self.removed.keys().copied().collect(),
            retired: self.retired_status(),
            collection_blocked_by: self.collection_blockers(),
            removed_by: self.removed_by,
            authenticated: self.config.frame_keys.is_some(),
            frame_key_ids: self
                .config
                .frame_keys
                .as_ref()
                .map_or(Vec::new(), |k| k.ids()),
            refused: self
                .refusals
                .by_sender
                .iter()
                .map(|(id, c)| (*id, *c))
                .collect(),
            refused_other: self.refusals.other,
            clock_jump_ms: self.clock.jump_ms(),
            expired_total: self.expired_total,
            unknown_origins: self.unknown_origins(),
            fence: self.fence,
            boot: self.boot,
        }
    }
}

impl super::Replica {
    fn retired_status(&self) -> Vec<RetiredStatus> {
        self.removed
            .iter()
            .map(|(id, last)| RetiredStatus {
                id: *id,
                name: self.names.get(id).cloned(),
                unconfirmed_by: match last {
                    None => Vec::new(),
                    Some(_) => self
                        .peers
                        .iter()
                        .filter(|(_, p)| !p.removed_view.contains(id))
                        .map(|(pid, _)| *pid)
                        .collect(),
                },
                given_up_at: self.ctx.vv().given_up(*id),
            })
            .collect()
    }

    fn collection_blockers(&self) -> Vec<ReplicaId> {
        let oldest = self.tombstones.oldest_per_origin();
        let lags = |acked: &VersionVector| oldest.iter().any(|d| acked.get(d.replica) < d.seq);
        let mut out: Vec<ReplicaId> = self
            .peers
            .iter()
            .filter(|(_, p)| lags(&p.acked))
            .map(|(id, _)| *id)
            .chain(
                self.removed
                    .iter()
                    .filter_map(|(id, last)| last.as_ref().filter(|v| lags(v)).map(|_| *id)),
            )
            .collect();
        if !oldest.is_empty() {
            out.extend(self.unknown_origins());
        }
        out.sort();
        out.dedup();
        out
    }
}
