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
use super::gc::{Stability, TombstoneIndex};
use super::oplog::OpLog;
use super::peer::Peer;
use crate::causal::{CausalContext, Dot, VersionVector};
use crate::clock::{Hlc, ReplicaId, TimeSource, Timestamp};
use crate::crdt::{FieldWrite, Merge, Op, OpKind, SessionId, SessionState, SessionView};
use crate::digest::{self, session_digest, DigestTree};
use crate::error::{Error, Result};

/// One region's replica of the session store.
pub struct Replica {
    pub(crate) id: ReplicaId,
    pub(crate) name: String,
    pub(crate) config: ReplicaConfig,
    pub(crate) clock: Hlc,
    pub(crate) sessions: BTreeMap<SessionId, SessionState>,
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
    /// Whether own ops wait for durability before being shipped, and up to where they are.
    pub(crate) hold_own: bool,
    pub(crate) own_durable: u64,
    /// Sessions this replica ended because their deadline passed.
    pub(crate) expired_total: u64,
    /// Digests of sessions restored from snapshots, waiting for `finish_restore`.
    pub(crate) restored_digests: Vec<(SessionId, crate::digest::Digest)>,
    /// Stable ends kept until their retention passes: `(due ms, session)`.
    pub(crate) retained_ends: std::collections::VecDeque<(u64, SessionId)>,
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
        Replica {
            id,
            name: region.to_string(),
            config,
            clock: Hlc::new(time),
            sessions: BTreeMap::new(),
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
            hold_own: false,
            own_durable: 0,
            expired_total: 0,
            retained_ends: std::collections::VecDeque::new(),
            restored_digests: Vec::new(),
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

    /// What this replica holds.
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

    // ----- local writes -------------------------------------------------------------------

    /// Sets one field of a session (creating the session if needed).
    ///
    /// # Errors
    /// Limits ([`Error::InvalidSessionId`], [`Error::InvalidKey`], [`Error::ValueTooLarge`],
    /// [`Error::TooManyFields`], [`Error::SessionTooLarge`]) or [`Error::SessionEnded`].
    pub fn put(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<Op> {
        self.write_fields(
            session.into(),
            vec![FieldWrite {
                key: key.into(),
                value: Some(value.into()),
            }],
        )
    }

    /// Sets several fields of a session in one change.
    ///
    /// # Errors
    /// As [`Replica::put`].
    pub fn put_fields(
        &mut self,
        session: impl Into<SessionId>,
        fields: Vec<(Bytes, Bytes)>,
    ) -> Result<Op> {
        let writes = fields
            .into_iter()
            .map(|(key, v)| FieldWrite {
                key,
                value: Some(v),
            })
            .collect();
        self.write_fields(session.into(), writes)
    }

    /// Deletes one field of a session.
    ///
    /// # Errors
    /// As [`Replica::put`].
    pub fn delete_field(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
    ) -> Result<Op> {
        self.write_fields(
            session.into(),
            vec![FieldWrite {
                key: key.into(),
                value: None,
            }],
        )
    }

    fn write_fields(&mut self, session: SessionId, mut writes: Vec<FieldWrite>) -> Result<Op> {
        let limits = self.config.limits;
        limits.check_session_id(session.as_bytes())?;
        for w in &writes {
            limits.check_key(&w.key)?;
            if let Some(v) = &w.value {
                limits.check_value(v)?;
            }
        }
        if writes.is_empty() {
            return Err(Error::InvalidArgument(
                "a put needs at least one field".into(),
            ));
        }
        if writes.len() > 1 {
            // Last write of a key wins within one call; the op holds each key once, in order.
            let by_key: BTreeMap<Bytes, Option<Bytes>> =
                writes.into_iter().map(|w| (w.key, w.value)).collect();
            writes = by_key
                .into_iter()
                .map(|(key, value)| FieldWrite { key, value })
                .collect();
        }
        let state = self.writable(&session)?;
        let (mut grow_entries, mut grow_bytes) = (0isize, 0isize);
        for w in &writes {
            if let Some(old) = state
                .and_then(|s| s.fields.get(&w.key))
                .and_then(|r| r.value.as_ref())
            {
                grow_entries -= 1;
                grow_bytes -= (w.key.len() + old.len()) as isize;
            }
            if let Some(v) = &w.value {
                grow_entries += 1;
                grow_bytes += (w.key.len() + v.len()) as isize;
            }
        }
        // The session can only exceed a limit if it grows (a session over a limit, built by
        // merges from peers with other limits, may still shrink).
        if grow_entries > 0 || grow_bytes > 0 {
            let (entries, bytes) = state.map_or((0, 0), SessionState::live_size);
            self.check_size(
                entries.saturating_add_signed(grow_entries),
                bytes.saturating_add_signed(grow_bytes),
            )?;
        }
        Ok(self.commit_local(session, OpKind::Put(writes)))
    }

    /// Adds `delta` to a counter of a session.
    ///
    /// # Errors
    /// Limits, [`Error::SessionEnded`], or [`Error::CounterOverflow`].
    pub fn counter_add(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        delta: i64,
    ) -> Result<Op> {
        let (session, key) = (session.into(), key.into());
        self.config.limits.check_session_id(session.as_bytes())?;
        self.config.limits.check_key(&key)?;
        let state = self.writable(&session)?;
        let counter = state.and_then(|s| s.counters.get(&key));
        let value = counter.map_or(0, |c| c.value());
        value.checked_add(delta).ok_or(Error::CounterOverflow)?;
        let (mut p, mut n) = counter.map_or((0, 0), |c| c.totals(self.id));
        if delta >= 0 {
            p = p
                .checked_add(delta.unsigned_abs())
                .ok_or(Error::CounterOverflow)?;
        } else {
            n = n
                .checked_add(delta.unsigned_abs())
                .ok_or(Error::CounterOverflow)?;
        }
        if counter.is_none() {
            let (entries, bytes) = state.map_or((0, 0), SessionState::live_size);
            self.check_size(entries + 1, bytes + key.len() + 8)?;
        }
        Ok(self.commit_local(session, OpKind::Counter { key, p, n }))
    }

    /// Adds an element to a set of a session.
    ///
    /// # Errors
    /// Limits or [`Error::SessionEnded`].
    pub fn set_add(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<Op> {
        let (session, key, elem) = (session.into(), key.into(), elem.into());
        self.config.limits.check_session_id(session.as_bytes())?;
        self.config.limits.check_key(&key)?;
        self.config.limits.check_value(&elem)?;
        let state = self.writable(&session)?;
        let set = state.and_then(|s| s.sets.get(&key));
        if !set.is_some_and(|s| s.contains(&elem)) {
            let (entries, bytes) = state.map_or((0, 0), SessionState::live_size);
            let key_bytes = if set.is_some_and(|s| !s.entries.is_empty()) {
                0
            } else {
                key.len()
            };
            self.check_size(entries + 1, bytes + key_bytes + elem.len())?;
        }
        Ok(self.commit_local(session, OpKind::SetAdd { key, elem }))
    }

    /// Removes an element from a set of a session (the adds this replica has seen).
    ///
    /// # Errors
    /// Limits or [`Error::SessionEnded`].
    pub fn set_remove(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<Op> {
        let (session, key, elem) = (session.into(), key.into(), elem.into());
        self.config.limits.check_session_id(session.as_bytes())?;
        self.config.limits.check_key(&key)?;
        self.config.limits.check_value(&elem)?;
        let state = self.writable(&session)?;
        let dots = state
            .and_then(|s| s.sets.get(&key))
            .map(|s| s.dots_of(&elem))
            .unwrap_or_default();
        Ok(self.commit_local(session, OpKind::SetRemove { key, elem, dots }))
    }

    /// Extends a session's life to `ttl_ms` from now (the longest deadline any replica set
    /// wins). After the deadline the session reads as absent everywhere and never comes back.
    ///
    /// # Errors
    /// [`Error::InvalidTtl`] for 0 or a deadline past the clock's range, limits, or
    /// [`Error::SessionEnded`].
    pub fn touch(&mut self, session: impl Into<SessionId>, ttl_ms: u64) -> Result<Op> {
        let session = session.into();
        self.config.limits.check_session_id(session.as_bytes())?;
        let deadline = self
            .now_ms()
            .checked_add(ttl_ms)
            .filter(|d| ttl_ms > 0 && *d < 1 << 48);
        let deadline_ms = deadline.ok_or(Error::InvalidTtl(ttl_ms))?;
        self.writable(&session)?;
        Ok(self.commit_local(session, OpKind::Touch { deadline_ms }))
    }

    /// Ends (deletes) a session for good: it reads as absent everywhere, and no late,
    /// duplicated or reordered change brings it back. Ending an ended session is harmless.
    ///
    /// # Errors
    /// [`Error::InvalidSessionId`].
    pub fn end(&mut self, session: impl Into<SessionId>) -> Result<Op> {
        let session = session.into();
        self.config.limits.check_session_id(session.as_bytes())?;
        Ok(self.commit_local(session, OpKind::End))
    }

    /// The session's state if a local write may change it (`None`: it does not exist yet).
    fn writable(&self, session: &SessionId) -> Result<Option<&SessionState>> {
        match self.sessions.get(session) {
            Some(s) if !s.is_live_at(|| self.now_ms()) => Err(Error::SessionEnded),
            other => Ok(other),
        }
    }

    fn check_size(&self, entries: usize, bytes: usize) -> Result<()> {
        let l = &self.config.limits;
        if entries > l.max_fields {
            return Err(Error::TooManyFields {
                count: entries,
                max: l.max_fields,
            });
        }
        if bytes > l.max_session_bytes {
            return Err(Error::SessionTooLarge {
                bytes,
                max: l.max_session_bytes,
            });
        }
        Ok(())
    }

    /// Makes a local op with the next dot and applies it.
    pub(crate) fn commit_local(&mut self, session: SessionId, kind: OpKind) -> Op {
        let seq = self.ctx.vv().get(self.id) + 1;
        let op = Op {
            dot: Dot {
                replica: self.id,
                seq,
            },
            ts: self.clock.tick(),
            session,
            kind,
        };
        self.apply_op(&op);
        op
    }

    /// Applies an op not seen before and maintains every index. Returns false for a
    /// duplicate.
    pub(crate) fn apply_op(&mut self, op: &Op) -> bool {
        if !self.ctx.insert(op.dot) {
            return false;
        }
        self.clock.observe(op.ts);
        let state = self.sessions.entry(op.session.clone()).or_default();
        let before = state.expires_at;
        let was_ended = state.is_ended();
        let seed = digest::seed_of(&op.session);
        let terms_before = digest::entry_terms(seed, state, op);
        state.apply(op);
        let delta = match (was_ended || state.is_ended(), terms_before) {
            (false, Some(old)) => {
                digest::entry_terms(seed, state, op).map(|new| new.wrapping_sub(old))
            }
            _ => None,
        };
        self.tombstones.record(op);
        self.log.push(op);
        self.after_change(&op.session, before, delta.map(|d| (seed, d)));
        true
    }

    /// Merges a full session state in and maintains every index.
    pub(crate) fn merge_state(&mut self, session: &SessionId, incoming: &SessionState) {
        let state = self.sessions.entry(session.clone()).or_default();
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
        self.sessions
            .get(session)
            .filter(|s| s.is_live_at(|| self.now_ms()))
            .map(SessionState::view)
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
            .range::<SessionId, _>((lower, Bound::Unbounded))
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
        }
    }

    /// Everything `vv` covers is held now (a state transfer completed).
    pub(crate) fn adopt(&mut self, vv: &VersionVector) {
        self.ctx.adopt(vv);
        let ts = self.clock.last();
        self.log.raise_floor(vv, ts);
    }
}
