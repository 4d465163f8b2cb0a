//! Incremental snapshots, off the write path: under the state lock only the dirty-session
//! set is swapped and the cut taken (WAL position, causal context, clock); the sessions are
//! then copied in batches of [`BATCH`] under short read locks and streamed to a delta
//! snapshot, or to a new base when the compaction policy says the chain is due. The log is
//! synced (whatever its policy) before the file is finished, so every write the copies hold
//! is durable in the log too. Then the manifest is installed, and only then are files
//! deleted that neither the new nor the previous manifest generation needs (the previous one
//! stays whole, as recovery's fallback).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::layout;
use super::Inner;
use crate::crdt::SessionId;
use crate::error::Result;
use crate::snapshot::{
    install_manifest, Header, Manifest, SnapEntry, SnapKind, SnapRef, SnapshotMeta, SnapshotWriter,
};

/// Sessions copied per read-lock acquisition.
pub(crate) const BATCH: usize = 16;

/// The snapshot side of a store: the installed manifests and what the last attempt did.
#[derive(Debug)]
pub(crate) struct SnapState {
    pub(crate) manifest: Manifest,
    pub(crate) previous: Option<Manifest>,
    pub(crate) base_since: Instant,
    pub(crate) last_ok_ms: Option<u64>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_due: Instant,
}

/// What one snapshot did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotReport {
    /// Manifest generation installed (unchanged when there was nothing to write).
    pub generation: u64,
    /// Snapshot file written, if any.
    pub file: Option<String>,
    /// Whether it was a new base (compaction) rather than a delta.
    pub base: bool,
    /// Session states written.
    pub sessions: u64,
    /// Collected sessions recorded as gone.
    pub gone: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// WAL records up to this are now covered.
    pub covers_seq: u64,
    /// Old snapshot files deleted.
    pub files_removed: usize,
    /// WAL segments deleted.
    pub wal_segments_removed: usize,
    /// Time taken.
    pub elapsed: Duration,
}

impl Inner {
    /// The replica's state beyond sessions, for a snapshot or backup cut now.
    pub(crate) fn meta_of(&self, replica: &crate::replicate::Replica) -> SnapshotMeta {
        SnapshotMeta {
            region: self.config.region.clone(),
            incarnation: self.incarnation,
            context: replica.context().clone(),
            clock: replica.clock_last(),
            removed: replica.removed_members(),
            created_ms: replica.now_ms(),
            members: replica.peers(),
            fence: replica.fence(),
            retired_held: replica.retired_held().clone(),
            retired_runs: replica.retired_runs().to_vec(),
        }
    }

    fn base_due(&self, s: &SnapState) -> bool {
        let p = &self.config.compaction;
        let Some(base) = &s.manifest.base else {
            return true;
        };
        s.manifest.deltas.len() >= p.max_chain
            || s.manifest.delta_bytes().saturating_mul(100)
                > base.bytes.saturating_mul(p.max_delta_percent)
            || s.base_since.elapsed() >= p.max_base_age
    }

    /// Takes a snapshot now (a delta, or a base when due or `force_base`).
    pub(crate) fn snapshot_now(&self, force_base: bool) -> Result<SnapshotReport> {
        let started = Instant::now();
        let mut snap = self.snap.lock();
        let base = force_base || self.base_due(&snap);
        let (dirty, cut, meta) = {
            let mut st = self.state.write();
            let dirty = st.replica.take_dirty();
            (dirty, self.wal.last_seq(), self.meta_of(&st.replica))
        };
        if !base && dirty.is_empty() && cut == snap.manifest.covers_seq() {
            return Ok(SnapshotReport {
                generation: snap.manifest.generation,
                covers_seq: cut,
                ..Default::default()
            });
        }
        let result = self.write_and_install(&mut snap, base, &dirty, cut, meta, started);
        match &result {
            Ok(_) => {
                snap.last_ok_ms = Some(self.state.read().replica.now_ms());
                snap.last_error = None;
            }
            Err(e) => {
                self.state.write().replica.mark_dirty(dirty);
                snap.last_error = Some(e.to_string());
            }
        }
        result
    }

    fn write_and_install(
        &self,
        snap: &mut SnapState,
        base: bool,
        dirty: &HashSet<SessionId, xxhash_rust::xxh3::Xxh3DefaultBuilder>,
        cut: u64,
        meta: SnapshotMeta,
        started: Instant,
    ) -> Result<SnapshotReport> {
        let generation = snap.manifest.generation + 1;
        let kind = if base {
            SnapKind::Base
        } else {
            SnapKind::Delta
        };
        let name = layout::snap_name(generation, kind);
        let dir = layout::snap_dir(&self.dir);
        let header = Header {
            version: crate::snapshot::VERSION,
            kind,
            generation,
            covers_seq: cut,
        };
        let keys = self.config.encryption.as_ref();
        let mut w = SnapshotWriter::create_with_keys(self.fs.clone(), &dir, &name, header, keys)?;
        let mut report = SnapshotReport {
            generation,
            base,
            covers_seq: cut,
            ..Default::default()
        };
        if base {
            let mut cursor: Option<SessionId> = None;
            loop {
                let batch = self
                    .state
                    .read()
                    .replica
                    .sessions_after(cursor.as_ref(), BATCH);
                let Some((last, _)) = batch.last() else { break };
                cursor = Some(last.clone());
                for (id, state) in batch {
                    w.push(&SnapEntry::Session(id, state))?;
                    report.sessions += 1;
                }
            }
        } else {
            let mut ids: Vec<&SessionId> = dirty.iter().collect();
            ids.sort();
            for chunk in ids.chunks(BATCH) {
                let states: Vec<Option<crate::crdt::SessionState>> = {
                    let st = self.state.read();
                    chunk
                        .iter()
                        .map(|id| st.replica.session_state(id.as_bytes()).cloned())
                        .collect()
                };
                for (id, state) in chunk.iter().zip(states) {
                    match state {
                        Some(s) => {
                            w.push(&SnapEntry::Session((*id).clone(), s))?;
                            report.sessions += 1;
                        }
                        None => {
                            w.push(&SnapEntry::Gone((*id).clone()))?;
                            report.gone += 1;
                        }
                    }
                }
            }
        }
        let created_ms = meta.created_ms;
        let fence = meta.fence;
        let members_empty = meta.members.is_empty();
        w.push(&SnapEntry::Meta(meta))?;
        // The sessions were copied after the cut, so they can hold writes made since, whose
        // dots are not in the context of the cut. Those writes must be durable in the log
        // before this snapshot can be: else a power cut keeps them only here, outside the
        // restored context, and their dots are handed out again. A failed log (a write may
        // then be applied in memory without a record) fails the snapshot.
        self.wal.sync()?;
        let written = w.finish()?;
        report.bytes = written.bytes;
        report.file = Some(written.name.clone());
        let snap_ref = SnapRef {
            file: written.name,
            kind,
            generation,
            covers_seq: cut,
            bytes: written.bytes,
        };
        let mut next = snap.manifest.clone();
        next.generation = generation;
        next.wal_from = cut + 1;
        next.created_ms = created_ms;
        next.fallback = Some(snap.manifest.current());
        next.log_end = next.log_end.max(self.wal.durable_seq());
        next.fence = fence;
        // Also repairs an install `add_peer` could not make.
        next.clustered |= !members_empty;
        if base {
            next.base = Some(snap_ref);
            next.deltas.clear();
        } else {
            next.deltas.push(snap_ref);
        }
        install_manifest(self.fs.as_ref(), &self.dir, &next)?;
        let previous = std::mem::replace(&mut snap.manifest, next);
        if base {
            snap.base_since = Instant::now();
        }
        snap.previous = Some(previous);
        let (files, segments) = self.remove_superseded(snap)?;
        report.files_removed = files;
        report.wal_segments_removed = segments;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Deletes snapshot files and WAL segments that neither the live chain nor its fallback
    /// (the previous generation's live chain) needs.
    fn remove_superseded(&self, snap: &SnapState) -> Result<(usize, usize)> {
        let keep: HashSet<&str> = snap.manifest.files().map(|r| r.file.as_str()).collect();
        let dir = layout::snap_dir(&self.dir);
        let mut removed = 0;
        for name in self.fs.list_dir(&dir)? {
            if name.starts_with("snap-") && !keep.contains(name.as_str()) {
                self.fs.remove_file(&dir.join(&name))?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.fs.sync_dir(&dir)?;
        }
        let segments = self
            .wal
            .remove_segments_before(snap.manifest.oldest_wal_needed())?;
        Ok((removed, segments))
    }
}
