//! [`ShaStatus`]: what every C entry point returns. `SHA_OK` is zero; a few codes belong to
//! the C boundary itself (a null pointer, a buffer too small, a handle that is not open, a
//! caught panic); the rest mirror [`session_ha::Error::kind`] one to one, named
//! `SHA_ERR_` + the kind in capitals, so a C program can match the same reasons an Erlang or
//! Rust caller matches.

use std::ffi::{c_char, CStr};

use session_ha::Error;

/// Status code of every call (`sha_status` in C). Values are part of the ABI: never
/// renumber, only append.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ShaStatus {
    /// Success.
    Ok = 0,
    /// A required pointer was null (or a data pointer was null with a non-zero length).
    ErrNull = 1,
    /// A caller-provided buffer is too small; the needed size was reported.
    ErrBufferTooSmall = 2,
    /// The session, field or counter asked for does not exist.
    ErrNotFound = 3,
    /// A panic was caught inside the library; the call did not complete.
    ErrPanic = 4,
    /// The handle was never returned by `sha_open`.
    ErrInvalidHandle = 5,
    /// An error this build has no dedicated code for (see the last error message).
    ErrUnknown = 6,
    /// `invalid_session_id`: a session id is empty or too long.
    ErrInvalidSessionId = 16,
    /// `invalid_key`: a key is empty or too long.
    ErrInvalidKey = 17,
    /// `too_large`: a value is larger than the limit.
    ErrTooLarge = 18,
    /// `too_many_fields`: the session would hold more entries than allowed.
    ErrTooManyFields = 19,
    /// `session_too_large`: the session would hold more bytes than allowed.
    ErrSessionTooLarge = 20,
    /// `ended`: the session was ended or has expired.
    ErrEnded = 21,
    /// `counter_overflow`: a counter would leave the range of `int64_t`.
    ErrCounterOverflow = 22,
    /// `invalid_ttl`: a TTL of zero or one that does not fit the clock.
    ErrInvalidTtl = 23,
    /// `bad_frame`: a replication message was rejected; the store is unchanged.
    ErrBadFrame = 24,
    /// `removed_replica`: the sender was removed from membership.
    ErrRemovedReplica = 25,
    /// `own_frame`: a message carries this replica's own id.
    ErrOwnFrame = 26,
    /// `unknown_peer`: a peer id this store does not know.
    ErrUnknownPeer = 27,
    /// `io`: an I/O call failed.
    ErrIo = 28,
    /// `no_space`: the disk is full; writes are refused until reopened.
    ErrNoSpace = 29,
    /// `corrupt`: bytes on disk failed verification.
    ErrCorrupt = 30,
    /// `data_loss`: acknowledged data is gone for good.
    ErrDataLoss = 31,
    /// `poisoned`: an earlier write or fsync failed; reopen the store.
    ErrPoisoned = 32,
    /// `locked`: the directory is open elsewhere (in this process or another).
    ErrLocked = 33,
    /// `closed`: the handle was closed (or is being closed by another thread).
    ErrClosed = 34,
    /// `invalid_argument`: an argument or option is outside what the call accepts.
    ErrInvalidArgument = 35,
    /// `catching_up`: the store may hold state older than its peers have collected (a
    /// restored backup, a lost end of log) and refuses reads and writes until it caught up.
    ErrCatchingUp = 36,
    /// `busy`: the store's lock could not be had within the calling thread's budget.
    ErrBusy = 37,
    /// `unauthenticated`: a message's MAC is missing, unexpected, under an unknown key, or
    /// wrong; nothing changed.
    ErrUnauthenticated = 38,
    /// `not_a_member`: a message from a replica that is not a member; nothing changed.
    ErrNotAMember = 39,
    /// `replayed_frame`: a frame whose number was already taken; nothing changed.
    ErrReplayedFrame = 40,
    /// `clock_ahead`: a frame with stamps too far ahead of this store's clock, held back.
    ErrClockAhead = 41,
    /// `auth_key`: a frame key or `auth_key_file` that cannot be used.
    ErrAuthKey = 42,
    /// `missing_key`: a file is encrypted under a key that is not configured (no key file,
    /// or one without that key); nothing was changed. The last error names the key id.
    ErrMissingKey = 43,
    /// `tampered`: encrypted bytes pass their checksums but fail authentication: altered on
    /// purpose; never served, nothing was changed.
    ErrTampered = 44,
    /// `bad_key_file`: the key file cannot be read or is not one (the last error names the
    /// file and the line, never its content).
    ErrBadKeyFile = 45,
}

/// Every code with its C name, in value order.
pub(crate) const CODES: &[(ShaStatus, &CStr)] = &[
    (ShaStatus::Ok, c"SHA_OK"),
    (ShaStatus::ErrNull, c"SHA_ERR_NULL"),
    (ShaStatus::ErrBufferTooSmall, c"SHA_ERR_BUFFER_TOO_SMALL"),
    (ShaStatus::ErrNotFound, c"SHA_ERR_NOT_FOUND"),
    (ShaStatus::ErrPanic, c"SHA_ERR_PANIC"),
    (ShaStatus::ErrInvalidHandle, c"SHA_ERR_INVALID_HANDLE"),
    (ShaStatus::ErrUnknown, c"SHA_ERR_UNKNOWN"),
    (
        ShaStatus::ErrInvalidSessionId,
        c"SHA_ERR_INVALID_SESSION_ID",
    ),
    (ShaStatus::ErrInvalidKey, c"SHA_ERR_INVALID_KEY"),
    (ShaStatus::ErrTooLarge, c"SHA_ERR_TOO_LARGE"),
    (ShaStatus::ErrTooManyFields, c"SHA_ERR_TOO_MANY_FIELDS"),
    (ShaStatus::ErrSessionTooLarge, c"SHA_ERR_SESSION_TOO_LARGE"),
    (ShaStatus::ErrEnded, c"SHA_ERR_ENDED"),
    (ShaStatus::ErrCounterOverflow, c"SHA_ERR_COUNTER_OVERFLOW"),
    (ShaStatus::ErrInvalidTtl, c"SHA_ERR_INVALID_TTL"),
    (ShaStatus::ErrBadFrame, c"SHA_ERR_BAD_FRAME"),
    (ShaStatus::ErrRemovedReplica, c"SHA_ERR_REMOVED_REPLICA"),
    (ShaStatus::ErrOwnFrame, c"SHA_ERR_OWN_FRAME"),
    (ShaStatus::ErrUnknownPeer, c"SHA_ERR_UNKNOWN_PEER"),
    (ShaStatus::ErrIo, c"SHA_ERR_IO"),
    (ShaStatus::ErrNoSpace, c"SHA_ERR_NO_SPACE"),
    (ShaStatus::ErrCorrupt, c"SHA_ERR_CORRUPT"),
    (ShaStatus::ErrDataLoss, c"SHA_ERR_DATA_LOSS"),
    (ShaStatus::ErrPoisoned, c"SHA_ERR_POISONED"),
    (ShaStatus::ErrLocked, c"SHA_ERR_LOCKED"),
    (ShaStatus::ErrClosed, c"SHA_ERR_CLOSED"),
    (ShaStatus::ErrInvalidArgument, c"SHA_ERR_INVALID_ARGUMENT"),
    (ShaStatus::ErrCatchingUp, c"SHA_ERR_CATCHING_UP"),
    (ShaStatus::ErrBusy, c"SHA_ERR_BUSY"),
    (ShaStatus::ErrUnauthenticated, c"SHA_ERR_UNAUTHENTICATED"),
    (ShaStatus::ErrNotAMember, c"SHA_ERR_NOT_A_MEMBER"),
    (ShaStatus::ErrReplayedFrame, c"SHA_ERR_REPLAYED_FRAME"),
    (ShaStatus::ErrClockAhead, c"SHA_ERR_CLOCK_AHEAD"),
    (ShaStatus::ErrAuthKey, c"SHA_ERR_AUTH_KEY"),
    (ShaStatus::ErrMissingKey, c"SHA_ERR_MISSING_KEY"),
    (ShaStatus::ErrTampered, c"SHA_ERR_TAMPERED"),
    (ShaStatus::ErrBadKeyFile, c"SHA_ERR_BAD_KEY_FILE"),
];

impl ShaStatus {
    /// The code for a core error, by its stable [`Error::kind`].
    pub(crate) fn of(e: &Error) -> ShaStatus {
        match e.kind() {
            "invalid_session_id" => ShaStatus::ErrInvalidSessionId,
            "invalid_key" => ShaStatus::ErrInvalidKey,
            "too_large" => ShaStatus::ErrTooLarge,
            "too_many_fields" => ShaStatus::ErrTooManyFields,
            "session_too_large" => ShaStatus::ErrSessionTooLarge,
            "ended" => ShaStatus::ErrEnded,
            "counter_overflow" => ShaStatus::ErrCounterOverflow,
            "invalid_ttl" => ShaStatus::ErrInvalidTtl,
            "bad_frame" => ShaStatus::ErrBadFrame,
            "removed_replica" => ShaStatus::ErrRemovedReplica,
            "own_frame" => ShaStatus::ErrOwnFrame,
            "unknown_peer" => ShaStatus::ErrUnknownPeer,
            "io" => ShaStatus::ErrIo,
            "no_space" => ShaStatus::ErrNoSpace,
            "corrupt" => ShaStatus::ErrCorrupt,
            "data_loss" => ShaStatus::ErrDataLoss,
            "poisoned" => ShaStatus::ErrPoisoned,
            "locked" => ShaStatus::ErrLocked,
            "closed" => ShaStatus::ErrClosed,
            "invalid_argument" => ShaStatus::ErrInvalidArgument,
            "catching_up" => ShaStatus::ErrCatchingUp,
            "busy" => ShaStatus::ErrBusy,
            "unauthenticated" => ShaStatus::ErrUnauthenticated,
            "not_a_member" => ShaStatus::ErrNotAMember,
            "replayed_frame" => ShaStatus::ErrReplayedFrame,
            "clock_ahead" => ShaStatus::ErrClockAhead,
            "auth_key" => ShaStatus::ErrAuthKey,
            "missing_key" => ShaStatus::ErrMissingKey,
            "tampered" => ShaStatus::ErrTampered,
            "bad_key_file" => ShaStatus::ErrBadKeyFile,
            _ => ShaStatus::ErrUnknown,
        }
    }

    /// The C name of a code value, if it is one.
    pub(crate) fn name_of(code: i32) -> Option<&'static CStr> {
        CODES
            .iter()
            .find(|(s, _)| *s as i32 == code)
            .map(|(_, name)| *name)
    }
}

/// The name of a status code (`"SHA_ERR_LOCKED"`), or `"SHA_ERR_UNKNOWN"` for a value that
/// is not one. The string is static: never free it.
#[no_mangle]
pub extern "C" fn sha_status_name(code: i32) -> *const c_char {
    ShaStatus::name_of(code)
        .unwrap_or(c"SHA_ERR_UNKNOWN")
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use session_ha::{DecodeError, ReplicaId};

    use super::*;

    /// One of every core error variant.
    fn every_error() -> Vec<Error> {
        let id = ReplicaId(7);
        let io = || std::io::Error::other("x");
        vec![
            Error::InvalidSessionId { len: 0, max: 1 },
            Error::InvalidKey { len: 0, max: 1 },
            Error::ValueTooLarge { len: 2, max: 1 },
            Error::TooManyFields { count: 2, max: 1 },
            Error::SessionTooLarge { bytes: 2, max: 1 },
            Error::SessionEnded,
            Error::CounterOverflow,
            Error::InvalidTtl(0),
            Error::Frame(DecodeError::Malformed("x".into())),
            Error::RemovedReplica(id),
            Error::OwnFrame,
            Error::UnknownPeer(id),
            Error::Io {
                op: "read",
                path: PathBuf::from("/x"),
                source: io(),
            },
            Error::NoSpace {
                path: PathBuf::from("/x"),
            },
            Error::Corrupt {
                path: PathBuf::from("/x"),
                offset: 0,
                source: DecodeError::Malformed("x".into()),
            },
            Error::DataLoss("x".into()),
            Error::Poisoned("x".into()),
            Error::Locked {
                dir: PathBuf::from("/x"),
            },
            Error::Closed,
            Error::InvalidArgument("x".into()),
            Error::MissingKey {
                path: PathBuf::from("/x"),
                key_id: session_ha::KeyId([1; 8]),
                configured: Vec::new(),
            },
            Error::Tampered {
                path: PathBuf::from("/x"),
                offset: 0,
                key_id: session_ha::KeyId([1; 8]),
            },
            Error::BadKeyFile {
                path: PathBuf::from("/x"),
                reason: "x".into(),
            },
        ]
    }

    #[test]
    fn every_core_error_kind_has_its_own_code_named_after_it() {
        let errors = every_error();
        let mut seen = Vec::new();
        for e in &errors {
            let code = ShaStatus::of(e);
            let name = ShaStatus::name_of(code as i32).unwrap().to_str().unwrap();
            assert_eq!(name, format!("SHA_ERR_{}", e.kind().to_uppercase()));
            assert!(!seen.contains(&code), "{name} used twice");
            seen.push(code);
        }
        assert_eq!(seen.len(), errors.len());
    }

    #[test]
    fn codes_are_listed_once_in_value_order_and_unknown_values_have_a_name() {
        let values: Vec<i32> = CODES.iter().map(|(s, _)| *s as i32).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(values, sorted);
        assert_eq!(values[0], 0);
        // SAFETY: sha_status_name returns a pointer to a static NUL-terminated string.
        let unknown = unsafe { CStr::from_ptr(sha_status_name(9999)) };
        assert_eq!(unknown, c"SHA_ERR_UNKNOWN");
    }
}
