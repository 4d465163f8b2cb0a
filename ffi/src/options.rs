//! [`ShaOptions`] (`sha_options` in C): how `sha_open` configures a store. C callers fill it
//! with `sha_options_init` (the defaults erlmcp runs), set `region` and change what they
//! need; the `size` field that `sha_options_init` sets catches a struct that was never
//! initialised or comes from a different header.

use std::ffi::c_char;
use std::time::Duration;

use session_ha::{FsyncPolicy, KeyRing, RecoveryMode, StoreConfig};

use crate::args::{self, Out};
use crate::guard::{call, Failure, Outcome};
use crate::status::ShaStatus;

/// `fsync` value: fsync every batch before it counts as durable.
pub const SHA_FSYNC_ALWAYS: u32 = 0;
/// `fsync` value: fsync at most every `fsync_every_ms` milliseconds.
pub const SHA_FSYNC_EVERY_MS: u32 = 1;
/// `fsync` value: leave write-back to the OS (a power cut loses what it had not written).
pub const SHA_FSYNC_NEVER: u32 = 2;
/// `recovery` value: refuse to open a directory damaged beyond every fallback.
pub const SHA_RECOVERY_STRICT: u32 = 0;
/// `recovery` value: move a damaged directory aside and start empty, to be refilled by peers.
pub const SHA_RECOVERY_REBUILD_FROM_PEERS: u32 = 1;

/// Options for `sha_open` (`sha_options` in C).
#[repr(C)]
#[derive(Debug)]
pub struct ShaOptions {
    /// `sizeof(sha_options)`, set by `sha_options_init`.
    pub size: u32,
    /// `SHA_FSYNC_ALWAYS`, `SHA_FSYNC_EVERY_MS` or `SHA_FSYNC_NEVER`.
    pub fsync: u32,
    /// Milliseconds between fsyncs under `SHA_FSYNC_EVERY_MS`.
    pub fsync_every_ms: u32,
    /// `SHA_RECOVERY_STRICT` or `SHA_RECOVERY_REBUILD_FROM_PEERS`.
    pub recovery: u32,
    /// Region name, NUL-terminated UTF-8 (required; must match the directory's).
    pub region: *const c_char,
    /// Milliseconds between automatic incremental snapshots; 0: only on `sha_snapshot`.
    pub snapshot_interval_ms: u64,
    /// Milliseconds between maintenance runs (expiry, resends, collection); 0: only on
    /// `sha_tick`.
    pub tick_interval_ms: u64,
    /// WAL segment size in bytes.
    pub segment_size: u64,
    /// An `auth_key_file` (NUL-terminated path: one or two secrets, one per line, the first
    /// signing): every replication message is then authenticated. Null: messages carry no
    /// MAC and none may.
    pub auth_key_file: *const c_char,
    /// Frames with stamps more than this many ms ahead of this store's clock are held back
    /// (`SHA_ERR_CLOCK_AHEAD`); 0 turns the bound off.
    pub max_clock_skew_ms: u64,
    /// Encryption at rest: path of the key file, NUL-terminated UTF-8 (one key per line as 64
    /// hex digits, the first the current key, the others older keys still read); null (the
    /// default): no encryption.
    pub encryption_key_file: *const c_char,
}

fn millis(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn duration(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Fills `*opts` with the defaults (fsync every 10 ms, a snapshot every 60 s, maintenance
/// every 200 ms, 64 MiB WAL segments, strict recovery, clocks bounded to 60 s ahead) and a
/// null `region` and `auth_key_file`.
///
/// # Safety
/// `opts` must be null or valid for one write of a `sha_options`.
#[no_mangle]
pub unsafe extern "C" fn sha_options_init(opts: *mut ShaOptions) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { Out::new(opts, "opts") }?;
        let d = StoreConfig::new("");
        let (fsync, fsync_every_ms) = match d.fsync {
            FsyncPolicy::Always => (SHA_FSYNC_ALWAYS, 0),
            FsyncPolicy::EveryMillis(ms) => (SHA_FSYNC_EVERY_MS, ms),
            FsyncPolicy::Never => (SHA_FSYNC_NEVER, 0),
        };
        out.set(ShaOptions {
            size: std::mem::size_of::<ShaOptions>() as u32,
            fsync,
            fsync_every_ms,
            recovery: SHA_RECOVERY_STRICT,
            region: std::ptr::null(),
            snapshot_interval_ms: millis(d.snapshot_interval),
            tick_interval_ms: millis(d.tick_interval),
            segment_size: d.segment_size,
            auth_key_file: std::ptr::null(),
            max_clock_skew_ms: d.replica.max_clock_skew_ms,
            encryption_key_file: std::ptr::null(),
        });
        Ok(())
    })
}

impl ShaOptions {
    /// The store configuration these options describe.
    ///
    /// # Safety
    /// `self.region`, `self.auth_key_file` and `self.encryption_key_file` must be null or
    /// NUL-terminated strings.
    pub(crate) unsafe fn to_config(&self) -> Outcome<StoreConfig> {
        if self.size as usize != std::mem::size_of::<ShaOptions>() {
            return Err(Failure::invalid(format!(
                "options.size is {}, expected {}: initialise options with sha_options_init",
                self.size,
                std::mem::size_of::<ShaOptions>()
            )));
        }
        // SAFETY: as the caller guarantees.
        let region = unsafe { args::text(self.region, "options.region") }?;
        if region.is_empty() {
            return Err(Failure::invalid("options.region is empty"));
        }
        let mut config = StoreConfig::new(region);
        config.fsync = match self.fsync {
            SHA_FSYNC_ALWAYS => FsyncPolicy::Always,
            SHA_FSYNC_EVERY_MS if self.fsync_every_ms > 0 => {
                FsyncPolicy::EveryMillis(self.fsync_every_ms)
            }
            SHA_FSYNC_EVERY_MS => return Err(Failure::invalid("options.fsync_every_ms is 0")),
            SHA_FSYNC_NEVER => FsyncPolicy::Never,
            other => return Err(Failure::invalid(format!("options.fsync is {other}"))),
        };
        config.recovery = match self.recovery {
            SHA_RECOVERY_STRICT => RecoveryMode::Strict,
            SHA_RECOVERY_REBUILD_FROM_PEERS => RecoveryMode::RebuildFromPeers,
            other => return Err(Failure::invalid(format!("options.recovery is {other}"))),
        };
        config.snapshot_interval = duration(self.snapshot_interval_ms);
        config.tick_interval = duration(self.tick_interval_ms);
        config.segment_size = self.segment_size;
        config.replica.max_clock_skew_ms = self.max_clock_skew_ms;
        if !self.auth_key_file.is_null() {
            // SAFETY: as the caller guarantees.
            let path = unsafe { args::text(self.auth_key_file, "options.auth_key_file") }?;
            config.replica.frame_keys = Some(session_ha::FrameKeys::from_file(
                std::path::Path::new(path),
            )?);
        }
        if !self.encryption_key_file.is_null() {
            // SAFETY: as the caller guarantees.
            let path =
                unsafe { args::path(self.encryption_key_file, "options.encryption_key_file") }?;
            config.encryption = Some(KeyRing::from_file(path)?);
        }
        Ok(config)
    }
}
