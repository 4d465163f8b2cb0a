//! The write-ahead log: an append-only, checksummed sequence of opaque records, made durable
//! by one background writer with group commit. It owns the `wal-*.log` files of its directory
//! (and the `*.broken` files it sets aside); what a record body means is the caller's business.
//!
//! ```text
//!  <dir>/LOCK                                   held while a Wal is open (see fs::OsFs)
//!  <dir>/wal-00000000000000000001.log           segment: records 1 ..
//!  <dir>/wal-00000000000000004711.log           segment: records 4711 .. (the active one)
//!  <dir>/wal-<first>.log.tmp                    a segment being created; removed on open
//!  <dir>/wal-<first>.log.<offset>[-<n>].broken  a torn tail cut off by recovery, kept
//!
//!  segment  = header ‖ record*
//!  header   (24 bytes, little endian; 56 when encrypted)
//!    0  magic      4  "SHWL"
//!    4  version    2  1
//!    6  flags      2  0; bit 0: encrypted
//!    8  salt       4  random per segment
//!   12  first_seq  8  sequence number of the first record (= the number in the file name)
//!   20  crc        4  crc32 of bytes 0..20
//!   24  (encrypted) cipher block, 32 bytes: key id 8, key salt 16, reserved 4, crc32 of 0..52
//!  record   (20 + len bytes)
//!    0  len        4  body length, <= max_record_size (+ 16 when encrypted)
//!    4  seq        8  sequence number
//!   12  head_crc   4  crc32 seeded with salt, of bytes 0..12
//!   16  body     len  opaque; encrypted: AES-256-GCM ciphertext ‖ tag, nonce = seq
//!  16+len body_crc 4  crc32 seeded with salt, of seq ‖ body (the ciphertext when encrypted)
//! ```
//!
//! Sequence numbers start at 1 and are contiguous within and across segments. Seeding both
//! checksums with the segment's salt means zeroed space and stale bytes from another segment
//! never validate. On open, recovery ([`Wal::open`]) checks every checksum: a torn tail of the
//! last segment is cut off (and kept in a `.broken` file), anything else that does not verify
//! is [`Error::Corrupt`]. [`verify()`] does the same checks without
//! changing anything.
//!
//! Encryption ([`WalConfig::encryption`]) is optional: a record that verifies but whose tag
//! fails is [`Error::Tampered`] and an encrypted segment without its key is
//! [`Error::MissingKey`]; either stops open before anything on disk is touched (never taken
//! for a torn tail).
//!
//! Files by role: `segment` (names, header), `record` (record codec), `scan` (walking a
//! segment's bytes), `recovery` (open), `aside` (what recovery sets aside or removes),
//! `shared` (queue and watermarks), `writer` (the background thread), `log` (the [`Wal`]
//! handle), `verify`.

mod aside;
mod log;
mod record;
mod recovery;
mod scan;
mod segment;
mod shared;
mod verify;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

pub use log::Wal;
pub use record::{RECORD_OVERHEAD, RECORD_SIZE_LIMIT};
pub use segment::{
    ENCRYPTED_SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
};
pub(crate) use verify::read_records;
pub use verify::{verify, verify_with_keys, Problem, ProblemKind, SegmentSummary, VerifyReport};

/// When the WAL makes appended records durable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FsyncPolicy {
    /// Every batch is written and fdatasync'd before its records count as durable.
    Always,
    /// Batches are written at once; a record is durable when a sync has covered it. A
    /// caller waiting for a record ([`Wal::wait_durable`]) starts a sync at once, shared by
    /// every record written before it starts (group commit: writers arriving during it
    /// share the next one); records nobody waits for are synced within this many
    /// milliseconds. A crash loses at most that window of unwaited records.
    EveryMillis(u32),
    /// Batches are written to the OS and count as durable at once; the WAL syncs only when
    /// rolling to a new segment, on [`Wal::sync`] and on [`Wal::close`]. A power cut loses
    /// whatever the OS had not written back.
    Never,
}

/// Who writes and syncs the log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriterMode {
    /// A background thread with group commit (the default).
    Thread,
    /// No thread: records are written in the caller's thread when someone waits for them,
    /// syncs or calls [`Wal::pump`]. Deterministic, for simulations; `EveryMillis` then
    /// syncs only when asked, since the caller owns time.
    Inline,
}

/// What opening a log does with damage that is not a torn tail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WalRecovery {
    /// Refuse to open: [`Error::Corrupt`] naming the file and offset (the default).
    Strict,
    /// Keep every record before the first damage, set the rest aside (`.broken` files, never
    /// deleted) and open; [`RecoveryReport::damage_cut`] says what went aside. For a replica
    /// whose peers can refill what it lost.
    KeepPrefix,
}

/// How a [`Wal`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// When appended records become durable.
    pub fsync: FsyncPolicy,
    /// A new segment is started when a record would take the active one past this many
    /// bytes (a segment holds at least one record, so one large record may exceed it).
    pub segment_size: u64,
    /// The largest record body accepted by [`Wal::append`] and by recovery.
    pub max_record_size: u32,
    /// Appends block while this many bytes of bodies wait for the writer (back-pressure).
    pub queue_limit_bytes: usize,
    /// Who writes the log.
    pub writer: WriterMode,
    /// What open does with damage.
    pub recovery: WalRecovery,
    /// Encrypt record bodies under this ring's current key, and read segments encrypted
    /// under any of its keys (`None`, the default: plain segments are written, and an
    /// encrypted segment whose records must be read is [`Error::MissingKey`]). With it,
    /// every open starts a new segment (see `segment`).
    pub encryption: Option<crate::crypto::KeyRing>,
}

impl Default for WalConfig {
    fn default() -> WalConfig {
        WalConfig {
            fsync: FsyncPolicy::Always,
            segment_size: 64 << 20,
            max_record_size: 16 << 20,
            queue_limit_bytes: 64 << 20,
            writer: WriterMode::Thread,
            recovery: WalRecovery::Strict,
            encryption: None,
        }
    }
}

impl WalConfig {
    /// The default configuration with the given fsync policy.
    pub fn with_fsync(fsync: FsyncPolicy) -> WalConfig {
        WalConfig {
            fsync,
            ..WalConfig::default()
        }
    }

    /// Checks the limits.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `max_record_size` is 0 or over [`RECORD_SIZE_LIMIT`],
    /// `segment_size` cannot hold a header and one byte of record, or `queue_limit_bytes` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.max_record_size == 0 || self.max_record_size > RECORD_SIZE_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "max_record_size {} must be in 1..={RECORD_SIZE_LIMIT}",
                self.max_record_size
            )));
        }
        let min_segment = (SEGMENT_HEADER_LEN + RECORD_OVERHEAD + 1) as u64;
        if self.segment_size < min_segment {
            return Err(Error::InvalidArgument(format!(
                "segment_size {} is below the minimum {min_segment}",
                self.segment_size
            )));
        }
        if self.queue_limit_bytes == 0 {
            return Err(Error::InvalidArgument("queue_limit_bytes is 0".into()));
        }
        Ok(())
    }
}

/// One segment file, as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The file.
    pub path: PathBuf,
    /// Sequence number of its first record.
    pub first_seq: u64,
    /// Its length in bytes (header included).
    pub bytes: u64,
}

/// Damage that ended the records a [`WalRecovery::KeepPrefix`] open kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamageCut {
    /// The damage (file, offset, what).
    pub error: String,
    /// Records up to this sequence number were kept.
    pub kept_through: u64,
    /// Segment files renamed aside (the damaged segment's tail is in `broken_files`).
    pub segments_set_aside: Vec<PathBuf>,
    /// Bytes in them.
    pub bytes_set_aside: u64,
}

/// What [`Wal::open`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files read and verified.
    pub segments_read: usize,
    /// Valid records found.
    pub records: u64,
    /// Records passed to the callback (those after `replay_after`).
    pub records_replayed: u64,
    /// Sequence number of the first record found.
    pub first_seq: Option<u64>,
    /// Sequence number of the last record found.
    pub last_seq: Option<u64>,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    /// Segments not read because a snapshot covers every record in them.
    pub segments_skipped: usize,
    /// Damaged stretches skipped because a snapshot covers every record in them.
    pub covered_damage: u64,
    /// Bytes cut off the end of the last segment (a torn write).
    pub bytes_truncated: u64,
    /// Where the cut-off bytes were kept.
    pub broken_files: Vec<PathBuf>,
    /// Half-created segment files that were removed.
    pub temp_files_removed: Vec<PathBuf>,
    /// Under [`WalRecovery::KeepPrefix`]: the damage that ended what was kept, if any.
    pub damage_cut: Option<DamageCut>,
    /// How long recovery took.
    pub elapsed: Duration,
}
