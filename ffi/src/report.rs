//! The JSON documents the C ABI returns: a session view, a store's status, a verify report
//! and a snapshot report. Conventions: byte strings (session ids, keys, values, elements) are
//! base64; replica ids are 16 lowercase hex digits (as in error messages), the same 64-bit
//! number `sha_id` and `sha_add_peer` use; digests are 32 hex digits; version vectors are
//! objects from replica id to sequence number; times are Unix ms; absent values are null.

use session_ha::store::{FileCheck, SnapshotReport, VerifyReport};
use session_ha::{ReplicaId, SessionView, StoreStatus, VersionVector};

use crate::json::{base64, Json};

fn id(j: &mut Json, id: ReplicaId) {
    j.str(&id.to_string());
}

fn vv(j: &mut Json, vv: &VersionVector) {
    j.begin_object();
    for (r, seq) in vv.iter() {
        j.key(&r.to_string()).u64(seq);
    }
    j.end_object();
}

fn ids(j: &mut Json, list: &[ReplicaId]) {
    j.begin_array();
    for r in list {
        id(j, *r);
    }
    j.end_array();
}

fn refusals(j: &mut Json, c: &session_ha::replicate::RefusalCounts) {
    j.begin_object();
    j.key("unauthenticated").u64(c.unauthenticated);
    j.key("not_member").u64(c.not_member);
    j.key("removed").u64(c.removed);
    j.key("replayed").u64(c.replayed);
    j.key("clock_ahead").u64(c.clock_ahead);
    j.key("malformed").u64(c.malformed);
    j.end_object();
}

/// The `"trust"` object of the status (see `sha_replication_status`).
fn trust(j: &mut Json, r: &session_ha::ReplicaStatus) {
    j.key("trust").begin_object();
    j.key("authenticated").bool(r.authenticated);
    j.key("frame_key_ids").begin_array();
    for k in &r.frame_key_ids {
        j.str(&format!("{k:08x}"));
    }
    j.end_array();
    j.key("refused").begin_object();
    for (sender, c) in &r.refused {
        j.key(&sender.to_string());
        refusals(j, c);
    }
    j.end_object();
    j.key("refused_other");
    refusals(j, &r.refused_other);
    j.key("retired").begin_array();
    for x in &r.retired {
        j.begin_object().key("id");
        id(j, x.id);
        j.key("region").opt_str(x.name.as_deref());
        j.key("unconfirmed_by");
        ids(j, &x.unconfirmed_by);
        j.key("given_up_at");
        match x.given_up_at {
            Some(seq) => j.u64(seq),
            None => j.null(),
        };
        j.end_object();
    }
    j.end_array();
    j.key("collection_blocked_by");
    ids(j, &r.collection_blocked_by);
    j.key("removed_by");
    match r.removed_by {
        Some(by) => id(j, by),
        None => {
            j.opt_str(None);
        }
    }
    j.key("clock_jump_ms").u64(r.clock_jump_ms);
    j.end_object();
}

fn count(n: usize) -> u64 {
    n as u64
}

/// A session as a reader sees it.
pub(crate) fn session(v: &SessionView) -> String {
    let mut j = Json::new();
    j.begin_object();
    j.key("fields").begin_object();
    for (k, val) in v.fields.iter() {
        j.key(&base64(k)).bytes(val);
    }
    j.end_object();
    j.key("counters").begin_object();
    for (k, n) in v.counters.iter() {
        j.key(&base64(k)).i64(*n);
    }
    j.end_object();
    j.key("sets").begin_object();
    for (k, elems) in v.sets.iter() {
        j.key(&base64(k)).begin_array();
        for e in elems {
            j.bytes(e);
        }
        j.end_array();
    }
    j.end_object();
    j.key("expires_at_ms").opt_u64(v.expires_at_ms);
    j.end_object();
    j.finish()
}

/// A store's status: the replica, its peers, the log and the snapshots.
pub(crate) fn status(s: &StoreStatus) -> String {
    let r = &s.replica;
    let mut j = Json::new();
    j.begin_object();
    j.key("dir").str(&s.dir.display().to_string());
    j.key("incarnation").u64(u64::from(s.incarnation));
    j.key("replica").begin_object();
    j.key("id");
    id(&mut j, r.id);
    j.key("name").str(&r.name);
    j.key("now_ms").u64(r.now_ms);
    j.key("vv");
    vv(&mut j, &r.vv);
    j.key("durable_vv");
    vv(&mut j, &r.durable_vv);
    j.key("boot").u64(r.boot);
    j.key("fence")
        .opt_str(r.fence.map(|f| f.to_string()).as_deref());
    j.key("sessions").u64(count(r.sessions));
    j.key("live_sessions").u64(count(r.live_sessions));
    j.key("digest_root").str(&r.digest_root.to_string());
    j.key("log_ops").u64(count(r.log_ops));
    j.key("log_bytes").u64(count(r.log_bytes));
    j.key("tombstones_pending").u64(count(r.tombstones_pending));
    j.key("stable");
    vv(&mut j, &r.stable);
    j.key("gaps").begin_array();
    for g in &r.gaps {
        j.begin_object().key("origin");
        id(&mut j, g.origin);
        j.key("from").u64(g.from).key("to").u64(g.to).end_object();
    }
    j.end_array();
    j.key("clock_skew_ms").u64(r.clock_skew_ms);
    j.key("peers").begin_array();
    for p in &r.peers {
        j.begin_object().key("id");
        id(&mut j, p.id);
        j.key("name").str(&p.name);
        j.key("acked");
        vv(&mut j, &p.acked);
        j.key("pending_ops").u64(p.pending_ops);
        j.key("lag_ms").u64(p.lag_ms);
        j.key("lag_exact").bool(p.lag_exact);
        j.key("behind_ops").u64(p.behind_ops);
        j.key("last_heard_ms").opt_u64(p.last_heard_ms);
        j.key("in_flight").u64(p.in_flight);
        j.key("state_transfer").bool(p.state_transfer);
        j.key("clock_ahead_ms").u64(p.clock_ahead_ms);
        j.key("reports_removed");
        ids(&mut j, &p.reports_removed);
        j.end_object();
    }
    j.end_array();
    j.key("removed");
    ids(&mut j, &r.removed);
    j.key("expired_total").u64(r.expired_total);
    j.key("unknown_origins");
    ids(&mut j, &r.unknown_origins);
    trust(&mut j, r);
    j.end_object();
    let w = &s.wal;
    j.key("wal").begin_object();
    j.key("last_seq").u64(w.last_seq);
    j.key("durable_seq").u64(w.durable_seq);
    j.key("segments").u64(count(w.segments));
    j.key("bytes").u64(w.bytes);
    j.key("failure").opt_str(w.failure.as_deref());
    j.end_object();
    let n = &s.snapshot;
    j.key("snapshot").begin_object();
    j.key("generation").u64(n.generation);
    j.key("covers_seq").u64(n.covers_seq);
    j.key("base").opt_str(n.base.as_deref());
    j.key("deltas").u64(count(n.deltas));
    j.key("bytes").u64(n.bytes);
    j.key("last_ok_ms").opt_u64(n.last_ok_ms);
    j.key("last_error").opt_str(n.last_error.as_deref());
    j.end_object();
    let o = &s.open;
    j.key("open").begin_object();
    j.key("boot").u64(o.boot);
    j.key("clean_shutdown").bool(o.clean_shutdown);
    j.key("bytes_cut").u64(o.bytes_cut);
    j.key("lost").begin_array();
    if let Some((first, last)) = o.lost {
        j.u64(first).u64(last);
    }
    j.end_array();
    j.key("reincarnated_from");
    match o.reincarnated_from {
        Some(old) => id(&mut j, old),
        None => {
            j.null();
        }
    }
    j.end_object();
    j.key("tainted").opt_str(s.tainted.as_deref());
    j.end_object();
    j.finish()
}

fn file_checks(j: &mut Json, checks: &[FileCheck]) {
    j.begin_array();
    for c in checks {
        j.begin_object();
        j.key("file").str(&c.file.display().to_string());
        j.key("bytes").u64(c.bytes);
        j.key("entries").u64(c.entries);
        j.key("error").opt_str(c.error.as_deref());
        j.key("key_id")
            .opt_str(c.key_id.map(|k| k.to_string()).as_deref());
        j.key("checksums_only").bool(c.checksums_only);
        j.end_object();
    }
    j.end_array();
}

fn paths<'a>(j: &mut Json, list: impl IntoIterator<Item = &'a std::path::PathBuf>) {
    j.strs(list.into_iter().map(|p| p.display().to_string()));
}

/// What `sha_verify` found.
pub(crate) fn verify(v: &VerifyReport) -> String {
    let mut j = Json::new();
    j.begin_object();
    j.key("intact").bool(v.is_intact());
    j.key("generation").opt_u64(v.generation);
    j.key("manifests");
    file_checks(&mut j, &v.manifests);
    j.key("snapshots");
    file_checks(&mut j, &v.snapshots);
    j.key("orphans");
    paths(&mut j, &v.orphans);
    j.key("wal").begin_object();
    j.key("segments").u64(count(v.wal.segments.len()));
    j.key("records").u64(v.wal.records);
    j.key("first_seq").opt_u64(v.wal.first_seq);
    j.key("last_seq").opt_u64(v.wal.last_seq);
    j.key("broken_files");
    paths(&mut j, &v.wal.broken_files);
    j.key("temp_files");
    paths(&mut j, &v.wal.temp_files);
    j.end_object();
    j.key("problems").strs(&v.problems);
    j.key("warnings").strs(&v.warnings);
    j.end_object();
    j.finish()
}

/// What `sha_snapshot` wrote.
pub(crate) fn snapshot(r: &SnapshotReport) -> String {
    let mut j = Json::new();
    j.begin_object();
    j.key("generation").u64(r.generation);
    j.key("file").opt_str(r.file.as_deref());
    j.key("base").bool(r.base);
    j.key("sessions").u64(r.sessions);
    j.key("gone").u64(r.gone);
    j.key("bytes").u64(r.bytes);
    j.key("covers_seq").u64(r.covers_seq);
    j.key("files_removed").u64(count(r.files_removed));
    j.key("wal_segments_removed")
        .u64(count(r.wal_segments_removed));
    j.key("elapsed_ms")
        .u64(u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX));
    j.end_object();
    j.finish()
}
