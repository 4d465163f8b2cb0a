//! Opening and closing, status, maintenance, snapshots, verification and backups. Anything
//! that touches the disk or may wait for the snapshot lock runs on a dirty I/O scheduler.

use rustler::{Binary, Encoder, Env, NifResult, ResourceArc, Term};
use session_ha::fs::OsFs;
use session_ha::store::verify_dir as verify_store_dir;
use session_ha::{Error, Store};

use crate::atoms;
use crate::convert::{self, to_path, unit_result};
use crate::handle::{self, Handle};
use crate::options;
use crate::reports;

/// `{ok, Handle, RecoveryReport}`: opens (recovering) or creates the store in `Dir`.
#[rustler::nif(schedule = "DirtyIo")]
fn open<'a>(env: Env<'a>, dir: Binary<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let config = match options::decode(opts)? {
        Ok(config) => config,
        Err(e) => return Ok(convert::error(env, &e)),
    };
    let (store, report) = match Store::open(to_path(&dir), config) {
        Ok(opened) => opened,
        Err(e) => return Ok(convert::error(env, &e)),
    };
    let dir = store.dir().to_path_buf();
    let handle = match Handle::new(store) {
        Ok(h) => h,
        Err(source) => {
            // The store was moved into the failed notifier and dropped (closed) with it.
            let e = Error::Io {
                op: "start the durability notifier for",
                path: dir,
                source,
            };
            return Ok(convert::error(env, &e));
        }
    };
    let report = reports::recovery(env, &report)?;
    Ok((atoms::ok(), ResourceArc::new(handle), report).encode(env))
}

/// Closes the store: flushes the log, stops its threads, releases the directory, answers
/// every `await_durable` waiter. A second close returns `{error, closed}`.
#[rustler::nif(schedule = "DirtyIo")]
fn close(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    Ok(match h.close() {
        Some(result) => unit_result(env, result),
        None => convert::closed(env),
    })
}

#[rustler::nif]
fn info(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with(env, &h, |s| reports::info(env, s))
}

/// Dirty I/O although it does no I/O: it reads the snapshot state under the lock that a
/// running snapshot, verify or backup holds for their whole duration.
#[rustler::nif(schedule = "DirtyIo")]
fn status(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| reports::status(env, &s.status()))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn tick(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| Ok(unit_result(env, s.tick())))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn expire_due(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| match s.expire_due() {
        Ok(n) => Ok((atoms::ok(), n).encode(env)),
        Err(e) => Ok(convert::error(env, &e)),
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn snapshot(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| match s.snapshot() {
        Ok(r) => Ok((atoms::ok(), reports::snapshot(env, &r)?).encode(env)),
        Err(e) => Ok(convert::error(env, &e)),
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn compact(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| match s.compact() {
        Ok(r) => Ok((atoms::ok(), reports::snapshot(env, &r)?).encode(env)),
        Err(e) => Ok(convert::error(env, &e)),
    })
}

/// `{ok, Report}` when every checksum verifies, `{error, {corrupt, Report}}` otherwise.
#[rustler::nif(schedule = "DirtyIo")]
fn verify(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| match s.verify() {
        Ok(r) => reports::verify(env, &r),
        Err(e) => Ok(convert::error(env, &e)),
    })
}

/// Writes a self-verifying backup of the open store to `File` (which must not exist).
#[rustler::nif(schedule = "DirtyIo")]
fn backup<'a>(env: Env<'a>, h: ResourceArc<Handle>, file: Binary<'a>) -> NifResult<Term<'a>> {
    let file = to_path(&file);
    handle::with_dirty(env, &h, |s| match s.backup(&file) {
        Ok(r) => Ok((atoms::ok(), reports::backup(env, &r)?).encode(env)),
        Err(e) => Ok(convert::error(env, &e)),
    })
}

/// [`verify`] for a directory no handle has open (or one that is open: it reads only).
#[rustler::nif(schedule = "DirtyIo")]
fn verify_dir<'a>(env: Env<'a>, dir: Binary<'a>) -> NifResult<Term<'a>> {
    match verify_store_dir(&OsFs, &to_path(&dir)) {
        Ok(r) => reports::verify(env, &r),
        Err(e) => Ok(convert::error(env, &e)),
    }
}
