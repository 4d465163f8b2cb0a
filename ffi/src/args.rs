//! Reading C arguments: every pointer is checked before use. A `(pointer, length)` pair may
//! be null only when the length is zero (an empty byte string); strings must be
//! NUL-terminated UTF-8; an output pointer must be non-null.

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::ptr::NonNull;

use crate::guard::{Failure, Outcome};

/// Borrows `len` bytes at `ptr` for the duration of the call.
///
/// # Safety
/// `ptr` must be null or valid for `len` bytes of reads, not written during the call.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, arg: &str) -> Outcome<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Failure::null(arg));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!("length of `{arg}` is {len}")));
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes that stay unchanged
    // for the call; `len` fits an allocation (checked above).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows a NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string, not written during the call.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, arg: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(arg));
    }
    // SAFETY: non-null and NUL-terminated, as the caller guarantees.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map_err(|_| Failure::invalid(format!("`{arg}` is not UTF-8")))
}

/// Borrows a NUL-terminated path (any bytes on Unix, UTF-8 elsewhere).
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn path<'a>(ptr: *const c_char, arg: &str) -> Outcome<&'a Path> {
    if ptr.is_null() {
        return Err(Failure::null(arg));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: non-null and NUL-terminated, as the caller guarantees.
        let s = unsafe { CStr::from_ptr(ptr) };
        Ok(Path::new(std::ffi::OsStr::from_bytes(s.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as the caller guarantees (see `text`).
        unsafe { text(ptr, arg) }.map(Path::new)
    }
}

/// An output argument, checked non-null.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks an output pointer.
    ///
    /// # Safety
    /// `ptr` must be null or valid and aligned for one write of `T` for the whole call.
    pub(crate) unsafe fn new(ptr: *mut T, arg: &str) -> Outcome<Out<T>> {
        NonNull::new(ptr).map(Out).ok_or_else(|| Failure::null(arg))
    }

    /// Stores `value` (the old content, possibly uninitialised, is not read or dropped).
    pub(crate) fn set(&self, value: T) {
        // SAFETY: `Out::new`'s caller guaranteed the pointer valid and aligned for writes
        // for the call, and it is non-null.
        unsafe { self.0.as_ptr().write(value) }
    }
}
