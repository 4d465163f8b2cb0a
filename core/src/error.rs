//! The crate's one error type.
//!
//! Every fallible public function returns [`Result`]. Variants are structured so that callers
//! (the NIF, the C ABI, an operator's script) can match on them and report the numbers that
//! matter; `Display` gives a sentence an operator can act on.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::clock::ReplicaId;
use crate::crypto::KeyId;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why bytes that claimed to be one of our formats (a frame, a WAL record, a snapshot chunk,
/// a manifest) could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the format needs at this point.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        have: u64,
    },
    /// The magic bytes are not ours.
    BadMagic {
        /// The bytes found where the magic belongs.
        found: [u8; 4],
    },
    /// A format version this build does not read.
    UnsupportedVersion {
        /// Version found.
        found: u16,
        /// Highest version this build reads.
        supported: u16,
    },
    /// A declared length is over its limit; nothing was allocated for it.
    TooLarge {
        /// Declared length.
        len: u64,
        /// Limit.
        max: u64,
    },
    /// A checksum does not match the bytes it covers.
    ChecksumMismatch {
        /// Checksum stored in the data.
        expected: u32,
        /// Checksum computed over the bytes.
        actual: u32,
    },
    /// The compressed payload does not decompress to its declared size.
    Decompress(String),
    /// The bytes are well framed but their content is not valid.
    Malformed(String),
    /// The message's MAC is missing, unexpected, under an unknown key, or wrong.
    Unauthenticated(AuthFailure),
}

/// Why a replication message failed authentication (see `auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Frame keys are configured here and the message carries no MAC.
    Missing,
    /// The message carries a MAC and no frame key is configured here.
    Unexpected,
    /// The MAC is under a key this replica does not accept (its id).
    UnknownKey(u32),
    /// The MAC does not match the message under the key it names (forged or altered).
    BadTag(u32),
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Missing => write!(f, "no MAC, and frame keys are configured here"),
            AuthFailure::Unexpected => write!(f, "a MAC, and no frame key is configured here"),
            AuthFailure::UnknownKey(id) => write!(f, "MAC under key {id:08x}, not accepted here"),
            AuthFailure::BadTag(id) => write!(f, "MAC under key {id:08x} does not match"),
        }
    }
}

impl AuthFailure {
    /// A short stable name (the Erlang atom).
    pub fn kind(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_mac",
            AuthFailure::Unexpected => "unexpected_mac",
            AuthFailure::UnknownKey(_) => "unknown_key",
            AuthFailure::BadTag(_) => "bad_mac",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, have } => {
                write!(f, "truncated: needed {needed} bytes, have {have}")
            }
            DecodeError::BadMagic { found } => write!(f, "bad magic {found:02x?}"),
            DecodeError::UnsupportedVersion { found, supported } => {
                write!(
                    f,
                    "format version {found} is not supported (this build reads up to {supported})"
                )
            }
            DecodeError::TooLarge { len, max } => {
                write!(f, "declared length {len} exceeds the limit {max}")
            }
            DecodeError::ChecksumMismatch { expected, actual } => {
                write!(
                    f,
                    "checksum mismatch: stored {expected:#010x}, computed {actual:#010x}"
                )
            }
            DecodeError::Decompress(why) => write!(f, "decompression failed: {why}"),
            DecodeError::Malformed(why) => write!(f, "malformed content: {why}"),
            DecodeError::Unauthenticated(why) => write!(f, "not authenticated: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Everything that can go wrong in session-ha.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A session id is empty or longer than the limit.
    InvalidSessionId {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A field, counter or set key is empty or longer than the limit.
    InvalidKey {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A value (field value or set element) is larger than the limit.
    ValueTooLarge {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The write would give the session more fields, counters and sets than allowed.
    TooManyFields {
        /// Entries the session would have.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// The write would make the session's live state larger than allowed.
    SessionTooLarge {
        /// Bytes the session would hold.
        bytes: usize,
        /// Limit.
        max: usize,
    },
    /// The session was ended (deleted) or has expired; it never comes back.
    SessionEnded,
    /// A counter would leave the range of `i64`.
    CounterOverflow,
    /// A TTL of zero, or one whose deadline does not fit the clock.
    InvalidTtl(u64),
    /// A replication frame or ack was rejected; the replica is unchanged.
    Frame(DecodeError),
    /// A frame came from a replica that was removed from membership for good.
    RemovedReplica(ReplicaId),
    /// A frame claims to come from this replica itself (two regions with one name?).
    OwnFrame,
    /// A peer that this replica does not know.
    UnknownPeer(ReplicaId),
    /// A message failed authentication (see `auth`); nothing changed.
    Unauthenticated {
        /// The sender it claims to come from, if it names one.
        sender: Option<ReplicaId>,
        /// What failed.
        why: AuthFailure,
    },
    /// A message from a replica that is not a member: members join only by an operator's
    /// configuration (a hello, [`crate::Replica::add_peer`]); nothing changed.
    NotAMember(ReplicaId),
    /// A frame whose number is not above the last one taken from its sender's run (a
    /// replay, or a transport that reordered it); nothing changed.
    ReplayedFrame {
        /// The sender.
        sender: ReplicaId,
        /// The frame's (sender boot, number).
        frame: (u64, u64),
        /// The last (boot, number) taken from it.
        last: (u64, u64),
    },
    /// A frame carries a clock reading too far ahead of this replica's clock: it is held
    /// back (not applied, not acknowledged, so its sender sends it again) until the clocks
    /// agree within the bound.
    ClockAhead {
        /// The sender.
        sender: ReplicaId,
        /// By how much its newest stamp is ahead of this replica's clock, in ms.
        ahead_ms: u64,
        /// The bound (`max_clock_skew_ms`).
        max_ms: u64,
    },
    /// A frame key or `auth_key_file` that cannot be used.
    AuthKey(String),
    /// An I/O call failed.
    Io {
        /// What was being done ("fdatasync wal segment", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The disk is full. Nothing acknowledged was lost; writes are refused until space is
    /// freed and the store is reopened.
    NoSpace {
        /// The file being written.
        path: PathBuf,
    },
    /// Bytes on disk failed verification. They are never served.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged record, chunk or header.
        offset: u64,
        /// What is wrong with it.
        source: DecodeError,
    },
    /// Acknowledged data is gone for good (every fallback was tried); says exactly what.
    DataLoss(String),
    /// An earlier write or fsync failed, so the log may not hold what it was given; every
    /// write is refused until the store is reopened (an fsync is never retried).
    Poisoned(String),
    /// Another process (or another open in this one) holds the directory's lock.
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The store was closed.
    Closed,
    /// This thread may wait only so long for the store's lock (see
    /// [`crate::store::set_thread_lock_budget`]) and it was held longer: nothing was done;
    /// retry on a thread that may wait.
    Busy,
    /// The replica may hold state older than what its peers have already collected, or
    /// lacks part of its own history: reads and writes are refused until it has caught up
    /// with a member (or an operator lifts the fence).
    CatchingUp(crate::replicate::FenceReason),
    /// An argument or a configuration value is outside what the call accepts (a segment
    /// size below the minimum, waiting for a sequence number that was never handed out, ...).
    InvalidArgument(String),
    /// A file is encrypted under a key that is not configured (no key file was given, or the
    /// key file lacks that key). Nothing was read from it, and nothing was changed on disk:
    /// configure the key file that holds the key and retry. Not damage.
    MissingKey {
        /// The encrypted file.
        path: PathBuf,
        /// The key it was written under.
        key_id: KeyId,
        /// The ids of the keys that are configured (empty: none).
        configured: Vec<KeyId>,
    },
    /// Encrypted bytes whose checksums verify failed authentication under the key their file
    /// names: they were changed deliberately (the checksum recomputed), since damage would
    /// fail the checksum. Never served, never taken for a torn write, nothing changed on disk.
    Tampered {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record or chunk.
        offset: u64,
        /// The key the file names.
        key_id: KeyId,
    },
    /// A key file that cannot be read or does not hold keys (the reason never shows its
    /// content).
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidSessionId { len, max } => {
                write!(f, "session id of {len} bytes (must be 1..={max})")
            }
            Error::InvalidKey { len, max } => write!(f, "key of {len} bytes (must be 1..={max})"),
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max}")
            }
            Error::TooManyFields { count, max } => {
                write!(f, "session would hold {count} entries, limit is {max}")
            }
            Error::SessionTooLarge { bytes, max } => {
                write!(f, "session would hold {bytes} bytes, limit is {max}")
            }
            Error::SessionEnded => write!(f, "session has ended or expired"),
            Error::CounterOverflow => write!(f, "counter would overflow i64"),
            Error::InvalidTtl(ttl) => write!(f, "invalid ttl {ttl} ms"),
            Error::Frame(e) => write!(f, "rejected frame: {e}"),
            Error::RemovedReplica(id) => write!(f, "replica {id} was removed from membership"),
            Error::OwnFrame => write!(f, "frame carries this replica's own id"),
            Error::UnknownPeer(id) => write!(f, "unknown peer {id}"),
            Error::Unauthenticated { sender, why } => match sender {
                Some(id) => write!(f, "message claiming to be from {id} refused: {why}"),
                None => write!(f, "message refused: {why}"),
            },
            Error::NotAMember(id) => write!(
                f,
                "message from {id}, which is not a member, refused (members join by a hello)"
            ),
            Error::ReplayedFrame {
                sender,
                frame,
                last,
            } => write!(
                f,
                "frame {frame:?} (boot, number) from {sender} refused: already at {last:?}"
            ),
            Error::ClockAhead {
                sender,
                ahead_ms,
                max_ms,
            } => write!(
                f,
                "frame from {sender} held back: its clock is {ahead_ms} ms ahead of ours \
                 (bound {max_ms} ms)"
            ),
            Error::AuthKey(why) => write!(f, "frame key: {why}"),
            Error::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            Error::NoSpace { path } => write!(
                f,
                "no space left writing {}; acknowledged data is intact, writes are refused",
                path.display()
            ),
            Error::Corrupt {
                path,
                offset,
                source,
            } => {
                write!(
                    f,
                    "corrupt data in {} at offset {offset}: {source}",
                    path.display()
                )
            }
            Error::DataLoss(what) => write!(f, "data lost: {what}"),
            Error::Poisoned(why) => {
                write!(f, "write-ahead log is poisoned ({why}); reopen the store")
            }
            Error::Locked { dir } => {
                write!(f, "{} is locked by another open store", dir.display())
            }
            Error::Closed => write!(f, "store is closed"),
            Error::Busy => write!(
                f,
                "store is busy; nothing was done, retry where waiting is allowed"
            ),
            Error::CatchingUp(why) => write!(
                f,
                "catching up with peers ({why}); reads and writes are refused until it has"
            ),
            Error::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Error::MissingKey {
                path,
                key_id,
                configured,
            } => {
                write!(
                    f,
                    "{} is encrypted under key {key_id}, which is not configured (",
                    path.display()
                )?;
                if configured.is_empty() {
                    write!(f, "no encryption key file is configured")?;
                } else {
                    let ids: Vec<String> = configured.iter().map(ToString::to_string).collect();
                    write!(f, "the key file holds {}", ids.join(", "))?;
                }
                write!(f, "); nothing was changed")
            }
            Error::Tampered {
                path,
                offset,
                key_id,
            } => write!(
                f,
                "{} at offset {offset}: checksums verify but authentication under key {key_id} \
                 fails: the bytes were altered, not damaged; never served, nothing was changed",
                path.display()
            ),
            Error::BadKeyFile { path, reason } => {
                write!(f, "key file {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Frame(e) | Error::Corrupt { source: e, .. } => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// A short stable name for the variant, used as the Erlang atom and the C status name.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidSessionId { .. } => "invalid_session_id",
            Error::InvalidKey { .. } => "invalid_key",
            Error::ValueTooLarge { .. } => "too_large",
            Error::TooManyFields { .. } => "too_many_fields",
            Error::SessionTooLarge { .. } => "session_too_large",
            Error::SessionEnded => "ended",
            Error::CounterOverflow => "counter_overflow",
            Error::InvalidTtl(_) => "invalid_ttl",
            Error::Frame(_) => "bad_frame",
            Error::RemovedReplica(_) => "removed_replica",
            Error::OwnFrame => "own_frame",
            Error::UnknownPeer(_) => "unknown_peer",
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::NotAMember(_) => "not_a_member",
            Error::ReplayedFrame { .. } => "replayed_frame",
            Error::ClockAhead { .. } => "clock_ahead",
            Error::AuthKey(_) => "auth_key",
            Error::Io { .. } => "io",
            Error::NoSpace { .. } => "no_space",
            Error::Corrupt { .. } => "corrupt",
            Error::DataLoss(_) => "data_loss",
            Error::Poisoned(_) => "poisoned",
            Error::Locked { .. } => "locked",
            Error::Closed => "closed",
            Error::Busy => "busy",
            Error::CatchingUp(_) => "catching_up",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::MissingKey { .. } => "missing_key",
            Error::Tampered { .. } => "tampered",
            Error::BadKeyFile { .. } => "bad_key_file",
        }
    }
}
