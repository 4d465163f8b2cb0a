//! [`Replica`]: one region's in-memory session store, and its local API (writes and reads).
//!
//! A replica never does I/O. Every change returns the [`Op`] (or [`Change`]s) the caller must
//! make durable and ship; frames for peers are produced and applied in `sync.rs`, collection
//! and expiry run in `maintenance.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::change::Change;
use super::config::ReplicaConfig;
use super::durability::Durability;
use super::fence::FenceReason;
use super::gc::{Stability, TombstoneIndex};
use super::oplog::OpLog;
use super::peer::Peer;
use super::sessions::SessionMap;
use crate::causal::{add_run, CausalContext, Dot, SeqRun, VersionVector};
use crate::clock::{Hlc, ReplicaId, TimeSource, Timestamp};
use crate::crdt::{Merge, Op, SessionId, SessionRef, SessionState, SessionView};
use crate::digest::{self, session_digest, DigestTree};

/// One region's replica of the session store.
pub struct Replica {
    pub(crate) id: ReplicaId,
    pub(crate) name: String,
    pub(crate) config: ReplicaConfig,
    pub(crate) clock: Hlc,
    pub(crate) sessions: SessionMap,
    pub(crate) ctx: CausalContext,
    pub(crate) log: OpLog,
    pub(crate) peers: BTreeMap<ReplicaId, Peer>,
    /// Removed replicas, with their last acknowledged vector while removal is unconfirmed.
    pub(crate) removed: BTreeMap<ReplicaId, Option<VersionVector>>,
    pub(crate) digest: DigestTree,
    pub(crate) tombstones: TombstoneIndex,
    pub(crate) stability: Stability,
    pub(crate) expiry: BTreeSet<(u64, SessionId)>,
    pub(crate) dirty: HashSet<SessionId, Xxh3DefaultBuilder>,
    pub(crate) names: HashMap<ReplicaId, String>,
    /// What of the vector is durable (fed by the store).
    pub(crate) durability: Durability,
    /// Set while reads and writes are refused until this replica has caught up.
    pub(crate) fence: Option<FenceReason>,
    /// Set by an open after a crash that found no member on record (the membership records
    /// may have been lost with the log): the first member added raises the fence then.
    pub(crate) fence_at_first_member: bool,
    /// This run of the store (increases at every open; 0 for a replica without a store).
    pub(crate) boot: u64,
    /// Sessions this replica ended because their deadline passed.
    pub(crate) expired_total: u64,
    /// Digests of sessions restored from snapshots, waiting for `finish_restore`.
    pub(crate) restored_digests: Vec<(SessionId, crate::digest::Digest)>,
    /// Stable ends kept until their retention passes: `(due ms, session)`.
    pub(crate) retained_ends: std::collections::VecDeque<(u64, SessionId)>,
    /// Messages refused at the trust boundary, per claimed sender.
    pub(crate) refusals: super::trust::Refusals,
    /// The member that last reported this replica as removed, if one did.
    pub(crate) removed_by: Option<ReplicaId>,
    /// Per retired origin, the highest seq another member was reported to hold of it (a
    /// mark counting as the seq it is held up to): no mark is set below that. Durable:
    /// logged as [`Change::RetiredHeld`] and kept in snapshots.
    pub(crate) retired_held: VersionVector,
    /// What of `retired_held` is logged already.
    pub(crate) retired_held_logged: VersionVector,
    /// Per retired origin, the runs of seqs another member was reported to hold out of
    /// order (sorted, merged): no mark is set over a seq of them this replica lacks.
    /// Durable: logged as [`Change::RetiredRuns`] and kept in snapshots.
    pub(crate) retired_runs: Vec<SeqRun>,
    /// What of `retired_runs` is logged already.
    pub(crate) retired_runs_logged: Vec<SeqRun>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("vv", self.ctx.vv())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl Replica {
    /// A new, empty replica of `region` (incarnation `incarnation`, see [`ReplicaId`]) reading
    /// physical time from `time`.
    pub fn new(
        region: &str,
        incarnation: u32,
        config: ReplicaConfig,
        time: Arc<dyn TimeSource>,
    ) -> Replica {
        let id = ReplicaId::from_region(region, incarnation);
        let log = OpLog::new(config.log_max_ops, config.log_max_bytes);
        let bound = config.max_clock_skew_ms;
        Replica {
            id,
            name: region.to_string(),
            config,
            clock: Hlc::new(time).with_bound(bound),
            sessions: SessionMap::default(),
            ctx: CausalContext::new(),
            log,
            peers: BTreeMap::new(),
            removed: BTreeMap::new(),
            digest: DigestTree::new(),
            tombstones: TombstoneIndex::default(),
            stability: Stability::default(),
            expiry: BTreeSet::new(),
            dirty: HashSet::default(),
            names: HashMap::new(),
            durability: Durability::default(),
            fence: None,
            fence_at_first_member: false,
            boot: 0,
            expired_total: 0,
            retained_ends: std::collections::VecDeque::new(),
            restored_digests: Vec::new(),
            refusals: Default::default(),
            removed_by: None,
            retired_held: VersionVector::new(),
            retired_held_logged: VersionVector::new(),
            retired_runs: Vec::new(),
            retired_runs_logged: Vec::new(),
        }
    }

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// This replica's region name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    /// What this replica holds; a given-up origin carries its mark
    /// ([`crate::causal::GIVEN_UP`]), [`VersionVector::held`] reads it as the seq held.
    pub fn version_vector(&self) -> &VersionVector {
        self.ctx.vv()
    }

    /// Physical time now (Unix ms), from this replica's time source.
    pub fn now_ms(&self) -> u64 {
        self.clock.physical_ms()
    }

    /// The highest clock reading issued or seen (persist it to restore the clock).
    pub fn clock_last(&self) -> Timestamp {
        self.clock.last()
    }

    // ----- applying changes ----------------------------------------------------------------

    /// Applies an op not seen before and maintains every index. Returns false for a
    /// duplicate.
    pub(crate) fn apply_op(&mut self, op: &Op) -> bool {
        let origin = op.dot.replica;
        let before = self.ctx.vv().get(origin);
        if !self.ctx.insert(op.dot) {
            return false;
        }
        let top = self.ctx.vv().get(origin);
        if top > before {
            self.durability.raised(origin, top);
        }
        self.clock.observe(op.ts);
        let state = self.sessions.entry_or_default(&op.session);
        let before = state.expires_at;
        let had_content = state.has_content();
        let seed = digest::seed_of(&op.session);
        let terms_before = digest::entry_terms(seed, state, op);
        state.apply(op);
        // The digest moves by the op's terms while the session keeps content; it is
        // recomputed when the session gains or loses all of it (absent hashes as zero).
        let delta = match (had_content && state.has_content(), terms_before) {
            (true, Some(old)) => {
                digest::entry_terms(seed, state, op).map(|new| new.wrapping_sub(old))
            }
            _ => None,
        };
        if state.is_void() {
            // An op that left nothing (a remove that observed no add) makes no session.
            self.sessions.remove(&op.session);
        }
        self.tombstones.record(op);
        self.log.push(op);
        self.after_change(&op.session, before, delta.map(|d| (seed, d)));
        true
    }

    /// Merges a full session state in and maintains every index.
    pub(crate) fn merge_state(&mut self, session: &SessionId, incoming: &SessionState) {
        let state = self.sessions.entry_or_default(session);
        let before = state.expires_at;
        state.merge(incoming);
        self.tombstones.record_state(session, incoming);
        self.after_change(session, before, None);
    }

    /// Maintains the expiry index, the digest tree and the dirty set after `session` changed.
    /// `delta` is `(seed, change of the entry terms)` when the change was one op on a live
    /// session (the digest is then adjusted by it), `None` to recompute from scratch.
    pub(crate) fn after_change(
        &mut self,
        session: &SessionId,
        expiry_before: Option<u64>,
        delta: Option<(u64, u128)>,
    ) {
        self.index_session(session, expiry_before, delta);
        if !self.dirty.contains(session) {
            self.dirty.insert(session.clone());
        }
        self.note_transfer_change(session);
    }

    /// The expiry index and the digest tree part of [`Replica::after_change`] (all a session
    /// loaded from a snapshot needs: it is not a change to write again).
    pub(crate) fn index_session(
        &mut self,
        session: &SessionId,
        expiry_before: Option<u64>,
        delta: Option<(u64, u128)>,
    ) {
        let Some(state) = self.sessions.get(session) else {
            return;
        };
        let after = if state.is_ended() {
            None
        } else {
            state.expires_at
        };
        if after != expiry_before {
            if let Some(d) = expiry_before {
                self.expiry.remove(&(d, session.clone()));
            }
            if let Some(d) = after {
                self.expiry.insert((d, session.clone()));
            }
        }
        match delta {
            Some((seed, d)) => self.digest.adjust(session, |old| {
                let old = if old == 0 {
                    digest::base_term(seed)
                } else {
                    old
                };
                old.wrapping_add(d)
            }),
            None => self.digest.update(session, session_digest(session, state)),
        }
    }

    // ----- reads ----------------------------------------------------------------------------

    /// The session as a reader sees it; `None` when absent, ended or expired.
    pub fn get(&self, session: &[u8]) -> Option<SessionView> {
        self.get_ref(session).map(|s| s.to_view())
    }

    /// [`Replica::get`] borrowed in place: the same content, read without a copy.
    pub fn get_ref(&self, session: &[u8]) -> Option<SessionRef<'_>> {
        self.sessions
            .get(session)
            .filter(|s| s.is_live_at(|| self.now_ms()))
            .map(SessionRef)
    }

    /// One field's value; `None` when the field or the session is absent, ended or expired.
    pub fn get_field(&self, session: &[u8], key: &[u8]) -> Option<Bytes> {
        let s = self
            .sessions
            .get(session)
            .filter(|s| s.is_live_at(|| self.now_ms()))?;
        s.fields.get(key)?.value.clone()
    }

    /// Whether a reader sees the session.
    pub fn contains(&self, session: &[u8]) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.is_live_at(|| self.now_ms()))
    }

    /// Ids of the sessions a reader sees, in order.
    pub fn session_ids(&self) -> Vec<SessionId> {
        let now = self.now_ms();
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_live(now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The full replicated state of a session (tombstones included), if held.
    pub fn session_state(&self, session: &[u8]) -> Option<&SessionState> {
        self.sessions.get(session)
    }

    /// Every session held (ended ones included), in order: for snapshots and inspection.
    pub fn sessions(&self) -> impl Iterator<Item = (&SessionId, &SessionState)> {
        self.sessions.iter()
    }

    /// The dots of the tombstone-making ops whose tombstones wait for collection, in order
    /// (the status counts them in `tombstones_pending`, with the ends kept for retention).
    pub fn tombstone_dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.tombstones.dots()
    }

    /// The digest tree.
    pub fn digests(&self) -> &DigestTree {
        &self.digest
    }

    /// Full states of the given sessions (those held), for a repair.
    pub fn export_sessions(&self, ids: &[SessionId]) -> Vec<(SessionId, SessionState)> {
        ids.iter()
            .filter_map(|id| self.sessions.get(id).map(|s| (id.clone(), s.clone())))
            .collect()
    }

    /// Takes the set of sessions changed since the last call (for incremental snapshots).
    pub fn take_dirty(&mut self) -> HashSet<SessionId, Xxh3DefaultBuilder> {
        std::mem::take(&mut self.dirty)
    }

    /// Marks sessions changed again (a snapshot that took them failed).
    pub fn mark_dirty(&mut self, ids: impl IntoIterator<Item = SessionId>) {
        self.dirty.extend(ids);
    }

    /// Up to `limit` sessions (ended ones included) after `cursor` in id order, cloned: lets a
    /// snapshot walk the whole store in short steps without holding a lock for long.
    pub fn sessions_after(
        &self,
        cursor: Option<&SessionId>,
        limit: usize,
    ) -> Vec<(SessionId, SessionState)> {
        use std::ops::Bound;
        let lower = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        self.sessions
            .range_from(lower)
            .take(limit)
            .map(|(id, st)| (id.clone(), st.clone()))
            .collect()
    }

    /// Replays a change made durable earlier (recovery): same state as when it was made,
    /// nothing new emitted.
    pub fn replay(&mut self, change: &Change) {
        match change {
            Change::Op(op) => {
                self.apply_op(op);
            }
            Change::Merge { session, state } => self.merge_state(session, state),
            Change::Adopt(vv) => self.adopt(vv),
            Change::Removed(id) => self.mark_removed(*id),
            Change::Replace { session, state } => self.set_session(session, state.clone()),
            Change::Member { id, name } => {
                // A member removed later in the log stays removed.
                let _ = self.add_peer(*id, name);
            }
            Change::Fence(reason) => self.fence = Some(*reason),
            Change::Unfence => self.fence = None,
            Change::RetiredHeld(vv) => {
                self.retired_held.merge(vv);
                self.retired_held_logged.merge(vv);
            }
            Change::RetiredRuns(runs) => {
                for &run in runs {
                    add_run(&mut self.retired_runs, run);
                    add_run(&mut self.retired_runs_logged, run);
                }
            }
        }
    }

    /// Sets a session's state to exactly `state` (`None`: forgets it) and maintains every
    /// index: a causal merge's result, or its replay.
    pub(crate) fn set_session(&mut self, session: &SessionId, state: Option<SessionState>) {
        let before =
            self.sessions
                .get(session)
                .and_then(|s| if s.is_ended() { None } else { s.expires_at });
        match state {
            Some(state) => {
                self.see_dots_of(&state);
                self.tombstones.record_state(session, &state);
                self.sessions.insert(session.clone(), state);
                self.after_change(session, before, None);
            }
            None => {
                if self.sessions.remove(session).is_some() {
                    if let Some(d) = before {
                        self.expiry.remove(&(d, session.clone()));
                    }
                    self.digest.update(session, crate::digest::Digest(0));
                    self.dirty.insert(session.clone());
                    self.abort_transfers_past(session);
                }
            }
        }
    }

    /// Records every dot `state` holds as seen. A merged copy (repair or state transfer)
    /// may hold effects of ops that never came here, and an effect whose dot the context
    /// does not cover is one whose later removal here nobody can tell from "never heard of
    /// it": once the session is collected here, any old copy of it would come back (I4).
    /// The op log holds none of those ops, so its floor rises past them and a peer that
    /// lacks them gets a state transfer. Dots of this replica's own id are left to the
    /// history-regression check (a peer holding more of our history than we do).
    fn see_dots_of(&mut self, state: &SessionState) {
        let ts = self.clock.last();
        for dot in state.dots() {
            if dot.replica == self.id || self.ctx.contains(dot) {
                continue;
            }
            let before = self.ctx.vv().get(dot.replica);
            self.ctx.insert(dot);
            let top = self.ctx.vv().get(dot.replica);
            if top > before {
                self.durability.raised(dot.replica, top);
            }
            self.log.raise_floor_to(dot.replica, dot.seq, ts);
        }
    }

    /// Records as seen every dot a held session has that the context lacks (see
    /// [`Replica::see_dots_of`]); returns a `Replace` of each such session, for the log, so
    /// that replaying it does the same. Every open (and the dry run) calls it: a snapshot's
    /// sessions may hold effects of records that are gone.
    pub(crate) fn see_held_dots(&mut self) -> Vec<Change> {
        let (id, ctx) = (self.id, &self.ctx);
        let uncovered: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, st)| st.dots().any(|d| d.replica != id && !ctx.contains(d)))
            .map(|(sid, _)| sid.clone())
            .collect();
        let mut changes = Vec::with_capacity(uncovered.len());
        for sid in uncovered {
            let Some(state) = self.sessions.get(&sid).cloned() else {
                continue;
            };
            self.see_dots_of(&state);
            changes.push(Change::Replace {
                session: sid,
                state: Some(state),
            });
        }
        changes
    }

    // ----- durability ------------------------------------------------------------------------

    /// From now on only changes the store reports durable count as durable (see
    /// `durability.rs`): everything held now is durable, up to WAL record `lsn`.
    pub fn track_durability(&mut self, lsn: u64) {
        let held = self.ctx.vv().clone();
        self.durability.start(&held, lsn);
    }

    /// The changes made since the last call are in WAL record `lsn`.
    pub fn note_logged(&mut self, lsn: u64) {
        self.durability.logged(lsn);
    }

    /// The WAL is durable up to record `lsn`.
    pub fn note_durable(&mut self, lsn: u64) {
        self.durability.durable_through(lsn);
    }

    /// What this replica holds durably (everything it holds, when no store tracks it).
    pub fn durable_vv(&self) -> &VersionVector {
        self.durability.vector().unwrap_or(self.ctx.vv())
    }

    /// The last WAL record holding changes of this replica (0 without a store).
    pub fn logged_lsn(&self) -> u64 {
        self.durability.logged_lsn()
    }

    /// Whether changes were applied that no WAL record holds yet.
    pub fn has_unlogged_changes(&self) -> bool {
        self.durability.has_unlogged()
    }

    /// This run's boot number (see [`Replica::set_boot`]).
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Sets the boot number the store recorded for this run; messages carry it, so peers
    /// learn of a restart and stop trusting what this replica acknowledged before it.
    pub fn set_boot(&mut self, boot: u64) {
        self.boot = boot;
    }

    /// Everything `vv` covers is held now (a state transfer completed).
    pub(crate) fn adopt(&mut self, vv: &VersionVector) {
        let before = self.ctx.vv().clone();
        self.ctx.adopt(vv);
        for (origin, top) in self.ctx.vv().iter() {
            if top > before.get(origin) {
                self.durability.raised(origin, top);
            }
        }
        // A given-up mark leaves the op log alone: its ops up to the seq held still go to
        // peers that lack them (and that give the origin up themselves once they hold them).
        let ts = self.clock.last();
        let floor: VersionVector = vv
            .iter()
            .filter(|(o, _)| vv.given_up(*o).is_none())
            .collect();
        self.log.raise_floor(&floor, ts);
    }
}
