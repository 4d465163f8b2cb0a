//! Reports and status as Erlang maps with atom keys. Durations are integer microseconds
//! (`elapsed_us`), times are Unix milliseconds, paths and messages are binaries, absent
//! values are `undefined`.

use rustler::{Encoder, Env, NifResult, Term};
use session_ha::replicate::FenceReason;
use session_ha::store::{
    BackupReport, FileCheck, OpenStatus, RecoveryReport, SnapshotReport, StoreStatus, VerifyReport,
};
use session_ha::{wal, PeerStatus, Store};

use crate::atoms as a;
use crate::convert::{self, bin, ids, map, opt, opt_str, path, paths, strings, vv};

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `info/1`.
pub(crate) fn info<'a>(env: Env<'a>, s: &Store) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::id(), s.id().0.encode(env)),
            (a::region(), bin(env, s.region().as_bytes())),
            (a::incarnation(), s.incarnation().encode(env)),
            (a::dir(), path(env, s.dir())),
        ],
    )
}

/// The report of `open/2`.
pub(crate) fn recovery<'a>(env: Env<'a>, r: &RecoveryReport) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::region(), bin(env, r.region.as_bytes())),
            (a::incarnation(), r.incarnation.encode(env)),
            (a::created(), r.created.encode(env)),
            (a::manifest_generation(), r.manifest_generation.encode(env)),
            (a::snapshots(), strings(env, &r.snapshots)),
            (a::sessions(), r.sessions.encode(env)),
            (a::covers_seq(), r.covers_seq.encode(env)),
            (a::wal(), wal_recovery(env, &r.wal)?),
            (a::fallbacks(), strings(env, &r.fallbacks)),
            (
                a::quarantined(),
                match &r.quarantined {
                    Some(p) => path(env, p),
                    None => a::undefined().encode(env),
                },
            ),
            (a::boot(), r.boot.encode(env)),
            (a::clean_shutdown(), r.clean_shutdown.encode(env)),
            (a::log_end_recorded(), r.log_end_recorded.encode(env)),
            (a::lost(), lost(env, r.lost)),
            (
                a::reincarnated_from(),
                opt(env, r.reincarnated_from.map(|i| i.0)),
            ),
            (a::fence(), fence(env, r.fence)),
            (a::elapsed_us(), micros(r.elapsed).encode(env)),
        ],
    )
}

/// `{First, Last}` of the records lost, or `undefined`.
fn lost(env: Env<'_>, lost: Option<(u64, u64)>) -> Term<'_> {
    match lost {
        Some(range) => range.encode(env),
        None => a::undefined().encode(env),
    }
}

/// Why reads and writes are refused (a sentence), or `undefined`.
fn fence(env: Env<'_>, f: Option<FenceReason>) -> Term<'_> {
    match f {
        Some(f) => bin(env, f.to_string().as_bytes()),
        None => a::undefined().encode(env),
    }
}

fn wal_recovery<'a>(env: Env<'a>, w: &wal::RecoveryReport) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::segments_read(), w.segments_read.encode(env)),
            (a::records(), w.records.encode(env)),
            (a::records_replayed(), w.records_replayed.encode(env)),
            (a::first_seq(), opt(env, w.first_seq)),
            (a::last_seq(), opt(env, w.last_seq)),
            (a::next_seq(), w.next_seq.encode(env)),
            (a::bytes_truncated(), w.bytes_truncated.encode(env)),
            (a::broken_files(), paths(env, &w.broken_files)),
            (a::temp_files_removed(), paths(env, &w.temp_files_removed)),
            (a::elapsed_us(), micros(w.elapsed).encode(env)),
        ],
    )
}

/// `status/1`.
pub(crate) fn status<'a>(env: Env<'a>, s: &StoreStatus) -> NifResult<Term<'a>> {
    let r = &s.replica;
    let gaps: Vec<Term<'a>> = r
        .gaps
        .iter()
        .map(|g| {
            map(
                env,
                &[
                    (a::origin(), g.origin.0.encode(env)),
                    (a::from(), g.from.encode(env)),
                    (a::to(), g.to.encode(env)),
                ],
            )
        })
        .collect::<NifResult<_>>()?;
    let peers: Vec<Term<'a>> = r
        .peers
        .iter()
        .map(|p| peer(env, p))
        .collect::<NifResult<_>>()?;
    let w = &s.wal;
    let wal = map(
        env,
        &[
            (a::last_seq(), w.last_seq.encode(env)),
            (a::durable_seq(), w.durable_seq.encode(env)),
            (a::segments(), w.segments.encode(env)),
            (a::bytes(), w.bytes.encode(env)),
            (a::failure(), opt_str(env, w.failure.as_deref())),
        ],
    )?;
    let n = &s.snapshot;
    let snapshot = map(
        env,
        &[
            (a::generation(), n.generation.encode(env)),
            (a::covers_seq(), n.covers_seq.encode(env)),
            (a::base(), opt_str(env, n.base.as_deref())),
            (a::deltas(), n.deltas.encode(env)),
            (a::bytes(), n.bytes.encode(env)),
            (a::last_ok_ms(), opt(env, n.last_ok_ms)),
            (a::last_error(), opt_str(env, n.last_error.as_deref())),
        ],
    )?;
    map(
        env,
        &[
            (a::id(), r.id.0.encode(env)),
            (a::region(), bin(env, r.name.as_bytes())),
            (a::incarnation(), s.incarnation.encode(env)),
            (a::dir(), path(env, &s.dir)),
            (a::now_ms(), r.now_ms.encode(env)),
            (a::vv(), vv(env, &r.vv)?),
            (a::durable_vv(), vv(env, &r.durable_vv)?),
            (a::boot(), r.boot.encode(env)),
            (a::fence(), fence(env, r.fence)),
            (a::tainted(), opt_str(env, s.tainted.as_deref())),
            (a::open(), open_status(env, &s.open)?),
            (a::sessions(), r.sessions.encode(env)),
            (a::live_sessions(), r.live_sessions.encode(env)),
            (a::digest_root(), convert::digest(env, r.digest_root.0)),
            (a::log_ops(), r.log_ops.encode(env)),
            (a::log_bytes(), r.log_bytes.encode(env)),
            (a::tombstones_pending(), r.tombstones_pending.encode(env)),
            (a::stable(), vv(env, &r.stable)?),
            (a::gaps(), gaps.encode(env)),
            (a::clock_skew_ms(), r.clock_skew_ms.encode(env)),
            (a::removed(), ids(env, &r.removed)),
            (a::unknown_origins(), ids(env, &r.unknown_origins)),
            (a::expired_total(), r.expired_total.encode(env)),
            (a::peers(), peers.encode(env)),
            (a::wal(), wal),
            (a::snapshot(), snapshot),
            (a::trust(), crate::trust::status(env, r)?),
        ],
    )
}

fn open_status<'a>(env: Env<'a>, o: &OpenStatus) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::boot(), o.boot.encode(env)),
            (a::clean_shutdown(), o.clean_shutdown.encode(env)),
            (a::bytes_cut(), o.bytes_cut.encode(env)),
            (a::lost(), lost(env, o.lost)),
            (
                a::reincarnated_from(),
                opt(env, o.reincarnated_from.map(|i| i.0)),
            ),
            (
                a::quarantined(),
                match &o.quarantined {
                    Some(p) => path(env, p),
                    None => a::undefined().encode(env),
                },
            ),
        ],
    )
}

fn peer<'a>(env: Env<'a>, p: &PeerStatus) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::id(), p.id.0.encode(env)),
            (a::region(), bin(env, p.name.as_bytes())),
            (a::acked(), vv(env, &p.acked)?),
            (a::pending_ops(), p.pending_ops.encode(env)),
            (a::lag_ms(), p.lag_ms.encode(env)),
            (a::lag_exact(), p.lag_exact.encode(env)),
            (a::behind_ops(), p.behind_ops.encode(env)),
            (a::last_heard_ms(), opt(env, p.last_heard_ms)),
            (a::in_flight(), p.in_flight.encode(env)),
            (a::state_transfer(), p.state_transfer.encode(env)),
            (a::clock_ahead_ms(), p.clock_ahead_ms.encode(env)),
            (a::reports_removed(), ids(env, &p.reports_removed)),
        ],
    )
}

/// `snapshot/1` and `compact/1`.
pub(crate) fn snapshot<'a>(env: Env<'a>, r: &SnapshotReport) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::generation(), r.generation.encode(env)),
            (a::file(), opt_str(env, r.file.as_deref())),
            (a::base(), r.base.encode(env)),
            (a::sessions(), r.sessions.encode(env)),
            (a::gone(), r.gone.encode(env)),
            (a::bytes(), r.bytes.encode(env)),
            (a::covers_seq(), r.covers_seq.encode(env)),
            (a::files_removed(), r.files_removed.encode(env)),
            (
                a::wal_segments_removed(),
                r.wal_segments_removed.encode(env),
            ),
            (a::elapsed_us(), micros(r.elapsed).encode(env)),
        ],
    )
}

/// `backup/2`.
pub(crate) fn backup<'a>(env: Env<'a>, r: &BackupReport) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::file(), path(env, &r.file)),
            (a::sessions(), r.sessions.encode(env)),
            (a::bytes(), r.bytes.encode(env)),
            (a::vv(), vv(env, &r.vv)?),
            (a::elapsed_us(), micros(r.elapsed).encode(env)),
        ],
    )
}

/// `verify/1` and `verify_dir/1`: `{ok, Report}` when intact, else
/// `{error, {corrupt, Report}}`.
pub(crate) fn verify<'a>(env: Env<'a>, r: &VerifyReport) -> NifResult<Term<'a>> {
    let w = &r.wal;
    let segments: Vec<Term<'a>> = w
        .segments
        .iter()
        .map(|s| {
            map(
                env,
                &[
                    (a::file(), path(env, &s.path)),
                    (a::first_seq(), s.first_seq.encode(env)),
                    (a::records(), s.records.encode(env)),
                    (a::bytes(), s.bytes.encode(env)),
                ],
            )
        })
        .collect::<NifResult<_>>()?;
    let wal_problems: Vec<String> = w
        .problems
        .iter()
        .map(|p| format!("{} at offset {}: {:?}", p.file.display(), p.offset, p.what))
        .collect();
    let wal = map(
        env,
        &[
            (a::segments(), segments.encode(env)),
            (a::records(), w.records.encode(env)),
            (a::first_seq(), opt(env, w.first_seq)),
            (a::last_seq(), opt(env, w.last_seq)),
            (a::problems(), strings(env, &wal_problems)),
            (a::broken_files(), paths(env, &w.broken_files)),
            (a::temp_files(), paths(env, &w.temp_files)),
        ],
    )?;
    let report = map(
        env,
        &[
            (a::intact(), r.is_intact().encode(env)),
            (a::generation(), opt(env, r.generation)),
            (a::manifests(), files(env, &r.manifests)?),
            (a::snapshots(), files(env, &r.snapshots)?),
            (a::orphans(), paths(env, &r.orphans)),
            (a::wal(), wal),
            (a::problems(), strings(env, &r.problems)),
            (a::warnings(), strings(env, &r.warnings)),
        ],
    )?;
    Ok(if r.is_intact() {
        (a::ok(), report).encode(env)
    } else {
        (a::error(), (a::corrupt(), report)).encode(env)
    })
}

fn files<'a>(env: Env<'a>, checks: &[FileCheck]) -> NifResult<Term<'a>> {
    let terms: Vec<Term<'a>> = checks
        .iter()
        .map(|c| {
            map(
                env,
                &[
                    (a::file(), path(env, &c.file)),
                    (a::bytes(), c.bytes.encode(env)),
                    (a::entries(), c.entries.encode(env)),
                    (a::error(), opt_str(env, c.error.as_deref())),
                ],
            )
        })
        .collect::<NifResult<_>>()?;
    Ok(terms.encode(env))
}
