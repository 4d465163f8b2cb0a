//! The options map of `open/2`, decoded into a [`StoreConfig`]. Unknown keys and values of
//! the wrong type are `badarg`; values the core itself checks (a segment size below the
//! minimum) come back from `Store::open` as `{error, {invalid_argument, _}}`, a frame key file
//! it cannot use as `{error, {auth_key, _}}`, and a key file (`encryption_key_file`) that
//! cannot be read or is not one as `{error, {bad_key_file, _}}`. `frame_keys` is
//! `undefined`, `{file, Path}` or `{secrets, [Secret]}` (see `trust.rs`);
//! `max_clock_skew_ms` a positive integer.

use std::time::Duration;

use rustler::{Atom, Binary, Error as NifError, MapIterator, NifResult, Term};
use session_ha::{FsyncPolicy, KeyRing, RecoveryMode, StoreConfig, WriteMode};

use crate::atoms;
use crate::convert;

/// Decodes `Opts`. Writes are always [`WriteMode::Queued`]: a NIF must not block a
/// scheduler on an fsync; callers wait with `await_durable`. The outer error is `badarg`
/// (a malformed map); the inner one a frame key or encryption key file that does not load.
pub(crate) fn decode(opts: Term<'_>) -> NifResult<session_ha::Result<StoreConfig>> {
    let iter = MapIterator::new(opts).ok_or(NifError::BadArg)?;
    let mut region: Option<String> = None;
    let mut fsync = FsyncPolicy::EveryMillis(10);
    let mut snapshot: Option<Duration> = Some(Duration::from_secs(60));
    let mut tick: Option<Duration> = Some(Duration::from_millis(200));
    let mut segment_size: Option<u64> = None;
    let mut recovery = RecoveryMode::Strict;
    let mut frame_keys = None;
    let mut max_skew: Option<u64> = None;
    let mut key_file: Option<std::path::PathBuf> = None;
    for (key, value) in iter {
        let key: Atom = key.decode()?;
        if key == atoms::region() {
            let b: Binary = value.decode()?;
            region = Some(convert::to_str(&b)?.to_string());
        } else if key == atoms::fsync() {
            fsync = decode_fsync(value)?;
        } else if key == atoms::snapshot_interval_ms() {
            snapshot = interval(value)?;
        } else if key == atoms::tick_interval_ms() {
            tick = interval(value)?;
        } else if key == atoms::segment_size() {
            segment_size = Some(positive(value)?);
        } else if key == atoms::encryption_key_file() {
            let b: Binary = value.decode()?;
            if b.is_empty() {
                return Err(NifError::BadArg);
            }
            key_file = Some(convert::to_path(&b));
        } else if key == atoms::recovery() {
            let mode: Atom = value.decode()?;
            recovery = if mode == atoms::strict() {
                RecoveryMode::Strict
            } else if mode == atoms::rebuild_from_peers() {
                RecoveryMode::RebuildFromPeers
            } else {
                return Err(NifError::BadArg);
            };
        } else if key == atoms::frame_keys() {
            frame_keys = Some(crate::trust::keys(value)?);
        } else if key == atoms::max_clock_skew_ms() {
            max_skew = Some(positive(value)?);
        } else {
            return Err(NifError::BadArg);
        }
    }
    let region = region.ok_or(NifError::BadArg)?;
    let mut config = StoreConfig::new(&region);
    config.fsync = fsync;
    config.write_mode = WriteMode::Queued;
    config.snapshot_interval = snapshot;
    config.tick_interval = tick;
    if let Some(s) = segment_size {
        config.segment_size = s;
    }
    config.recovery = recovery;
    if let Some(ms) = max_skew {
        config.replica.max_clock_skew_ms = ms;
    }
    match frame_keys.unwrap_or(Ok(None)) {
        Ok(keys) => config.replica.frame_keys = keys,
        Err(e) => return Ok(Err(e)),
    }
    if let Some(path) = key_file {
        match KeyRing::from_file(&path) {
            Ok(ring) => config.encryption = Some(ring),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(config))
}

/// `always | never | {every_ms, pos_integer()}`.
fn decode_fsync(value: Term<'_>) -> NifResult<FsyncPolicy> {
    if let Ok(a) = value.decode::<Atom>() {
        if a == atoms::always() {
            return Ok(FsyncPolicy::Always);
        }
        if a == atoms::never() {
            return Ok(FsyncPolicy::Never);
        }
        return Err(NifError::BadArg);
    }
    let (tag, ms): (Atom, u32) = value.decode()?;
    if tag != atoms::every_ms() || ms == 0 {
        return Err(NifError::BadArg);
    }
    Ok(FsyncPolicy::EveryMillis(ms))
}

/// `1..=4294967295 | infinity` milliseconds; `infinity` turns the timer off. The bound
/// (about 49 days) keeps `Instant + interval` from overflowing in the store's timers.
fn interval(value: Term<'_>) -> NifResult<Option<Duration>> {
    if let Ok(a) = value.decode::<Atom>() {
        return if a == atoms::infinity() {
            Ok(None)
        } else {
            Err(NifError::BadArg)
        };
    }
    match value.decode::<u32>()? {
        0 => Err(NifError::BadArg),
        ms => Ok(Some(Duration::from_millis(u64::from(ms)))),
    }
}

fn positive(value: Term<'_>) -> NifResult<u64> {
    match value.decode::<u64>()? {
        0 => Err(NifError::BadArg),
        n => Ok(n),
    }
}
