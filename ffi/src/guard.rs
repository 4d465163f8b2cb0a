//! The wrapper every entry point runs its body in: [`call`] catches panics (none may unwind
//! into C), turns a [`Failure`] into its status code, and records the failure's message as
//! this thread's last error, which `sha_last_error` copies out.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use session_ha::Error;

use crate::buf::copy_out;
use crate::status::ShaStatus;

/// Why a call failed: its code and a message for the caller.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: ShaStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: ShaStatus, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(arg: &str) -> Failure {
        Failure::new(ShaStatus::ErrNull, format!("argument `{arg}` is null"))
    }

    pub(crate) fn invalid(why: impl Into<String>) -> Failure {
        Failure::new(ShaStatus::ErrInvalidArgument, why)
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Failure {
        Failure::new(ShaStatus::ErrNotFound, what)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(ShaStatus::of(&e), e.to_string())
    }
}

/// `Result` of an entry point's body.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    // A thread being torn down has no last error to keep; nothing to report then.
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = message);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("panic inside session-ha: {what}")
}

/// Runs an entry point's body: no panic escapes, a failure becomes its code and this
/// thread's last error. Success leaves the last error as it was.
pub(crate) fn call(body: impl FnOnce() -> Outcome) -> ShaStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ShaStatus::Ok,
        Ok(Err(failure)) => {
            set_last_error(failure.message);
            failure.code
        }
        Err(payload) => {
            set_last_error(panic_message(payload.as_ref()));
            ShaStatus::ErrPanic
        }
    }
}

/// Copies this thread's last error message, NUL-terminated, into `buf` (`cap` bytes).
/// `*needed` receives the message's size including the terminating NUL. The message is the
/// one of the most recent call on this thread that did not return `SHA_OK` (empty before
/// any); successful calls do not clear it, and this call never changes it.
///
/// Returns `SHA_ERR_BUFFER_TOO_SMALL` (and writes nothing) when `cap < *needed`; `buf`
/// may be null when `cap` is 0, to ask for the size.
///
/// # Safety
/// `buf` must be null or valid for `cap` bytes of writes; `needed` must be null or valid
/// for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_last_error(
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> ShaStatus {
    let message = LAST_ERROR
        .try_with(|l| l.borrow().clone())
        .unwrap_or_default();
    let mut bytes = message.into_bytes();
    bytes.push(0);
    // Not through `call`: a failure here must not overwrite the message being read.
    let copied = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller guarantees `buf` and `needed` as documented above.
        unsafe { copy_out(&bytes, buf.cast(), cap, needed) }
    }));
    match copied {
        Ok(Ok(())) => ShaStatus::Ok,
        Ok(Err(f)) => f.code,
        Err(_) => ShaStatus::ErrPanic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        LAST_ERROR.with(|l| l.borrow().clone())
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message_and_does_not_unwind() {
        let rc = call(|| panic!("boom {}", 42));
        assert_eq!(rc, ShaStatus::ErrPanic);
        assert_eq!(last_error(), "panic inside session-ha: boom 42");
        let rc = call(|| std::panic::panic_any(7_u8));
        assert_eq!(rc, ShaStatus::ErrPanic);
        assert!(last_error().contains("(no message)"));
    }

    #[test]
    fn a_failure_sets_the_last_error_and_success_keeps_it() {
        let rc = call(|| Err(Error::SessionEnded.into()));
        assert_eq!(rc, ShaStatus::ErrEnded);
        assert_eq!(last_error(), "session has ended or expired");
        assert_eq!(call(|| Ok(())), ShaStatus::Ok);
        assert_eq!(last_error(), "session has ended or expired");
    }

    #[test]
    fn last_error_reports_the_needed_size_and_copies_with_a_nul() {
        let _ = call(|| Err(Failure::null("key")));
        let mut needed = 0usize;
        // SAFETY: a null buffer with capacity 0 and a valid `needed`.
        let rc = unsafe { sha_last_error(std::ptr::null_mut(), 0, &mut needed) };
        assert_eq!(rc, ShaStatus::ErrBufferTooSmall);
        assert_eq!(needed, "argument `key` is null".len() + 1);
        let mut buf = vec![0 as c_char; needed];
        // SAFETY: `buf` holds `needed` bytes.
        let rc = unsafe { sha_last_error(buf.as_mut_ptr(), buf.len(), &mut needed) };
        assert_eq!(rc, ShaStatus::Ok);
        // SAFETY: sha_last_error wrote a NUL-terminated string into `buf`.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(s.to_str().unwrap(), "argument `key` is null");
        // Reading it did not change it, even when the read itself failed.
        // SAFETY: `needed` is null, which the function reports rather than writes through.
        let rc = unsafe { sha_last_error(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) };
        assert_eq!(rc, ShaStatus::ErrNull);
        assert_eq!(last_error(), "argument `key` is null");
    }
}
