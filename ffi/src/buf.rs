//! Output buffers, both kinds: [`copy_out`] fills a caller-provided buffer and reports the
//! size it needs; [`ShaBuf`] (`sha_buf` in C) carries bytes the library allocated, which the
//! caller gives back with `sha_buf_free`.
//!
//! Every allocation handed out is recorded (address and true length) until it is freed, so
//! `sha_buf_free` frees with the length it allocated whatever the caller did to `len`, and
//! refuses a pointer it did not hand out or already took back instead of corrupting the heap.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::args::Out;
use crate::guard::{call, Failure, Outcome};
use crate::status::ShaStatus;

/// Bytes allocated by the library (`sha_buf` in C). `ptr` is null when `len` is 0. Text
/// results (JSON) are followed by a NUL byte that `len` does not count.
#[repr(C)]
#[derive(Debug)]
pub struct ShaBuf {
    /// The bytes; null when empty.
    pub ptr: *mut u8,
    /// How many.
    pub len: usize,
}

impl ShaBuf {
    const EMPTY: ShaBuf = ShaBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
    };
}

/// Live allocations: address -> allocated length.
static LIVE: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

fn live() -> MutexGuard<'static, BTreeMap<usize, usize>> {
    // Inserts and removes cannot leave the map half-changed: a poisoned lock is still sound.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks a `sha_buf *` output argument and empties it, so that the caller may free it
/// whatever the call returns.
///
/// # Safety
/// `ptr` must be null or valid for one write of a `ShaBuf` for the call.
pub(crate) unsafe fn buf_out(ptr: *mut ShaBuf, arg: &str) -> Outcome<Out<ShaBuf>> {
    // SAFETY: as the caller guarantees.
    let out = unsafe { Out::new(ptr, arg) }?;
    out.set(ShaBuf::EMPTY);
    Ok(out)
}

fn hand_out(out: &Out<ShaBuf>, data: Vec<u8>, len: usize) {
    if data.is_empty() {
        out.set(ShaBuf::EMPTY);
        return;
    }
    let alloc_len = data.len();
    let ptr = Box::into_raw(data.into_boxed_slice()).cast::<u8>();
    live().insert(ptr as usize, alloc_len);
    out.set(ShaBuf { ptr, len });
}

/// Hands `data` to the caller.
pub(crate) fn give_bytes(out: &Out<ShaBuf>, data: Vec<u8>) {
    let len = data.len();
    hand_out(out, data, len);
}

/// Hands `text` to the caller, NUL-terminated (`len` excludes the NUL).
pub(crate) fn give_text(out: &Out<ShaBuf>, text: String) {
    let len = text.len();
    let mut data = text.into_bytes();
    data.push(0);
    hand_out(out, data, len);
}

/// Frees a buffer the library returned and empties `*buf` (`ptr` null, `len` 0), so a
/// second call on the same `sha_buf` is a harmless `SHA_OK`. An empty `sha_buf` (null
/// `ptr`) is `SHA_OK` too.
///
/// Returns `SHA_ERR_NULL` for a null `buf`, `SHA_ERR_INVALID_ARGUMENT` for a `ptr` this
/// library did not return or already freed (through a copy of the `sha_buf`); nothing is
/// freed then.
///
/// # Safety
/// `buf` must be null or point to a readable and writable `sha_buf`.
#[no_mangle]
pub unsafe extern "C" fn sha_buf_free(buf: *mut ShaBuf) -> ShaStatus {
    call(|| {
        if buf.is_null() {
            return Err(Failure::null("buf"));
        }
        // SAFETY: non-null, and the caller guarantees it points to a readable `sha_buf`.
        let ptr = unsafe { (*buf).ptr };
        if ptr.is_null() {
            return Ok(());
        }
        let alloc_len = live().remove(&(ptr as usize)).ok_or_else(|| {
            Failure::invalid(format!(
                "sha_buf_free: {ptr:p} was not returned by this library or was already freed"
            ))
        })?;
        // SAFETY: `ptr` was produced by `Box::into_raw` of a boxed slice of `alloc_len`
        // bytes in `hand_out` and was still live (we just removed it from the table, so no
        // other call can free it again).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, alloc_len)) });
        // SAFETY: as above, `buf` is valid for writes.
        unsafe { buf.write(ShaBuf::EMPTY) };
        Ok(())
    })
}

/// Copies `data` into a caller buffer of `cap` bytes and stores `data.len()` in `*needed`.
/// `SHA_ERR_BUFFER_TOO_SMALL` (nothing copied) when it does not fit; `buf` may be null when
/// `cap` is 0 (a size query).
///
/// # Safety
/// `buf` must be null or valid for `cap` bytes of writes; `needed` null or valid for one
/// write.
pub(crate) unsafe fn copy_out(
    data: &[u8],
    buf: *mut u8,
    cap: usize,
    needed: *mut usize,
) -> Outcome {
    // SAFETY: as the caller guarantees.
    let needed = unsafe { Out::new(needed, "needed") }?;
    if buf.is_null() && cap > 0 {
        return Err(Failure::null("buf"));
    }
    needed.set(data.len());
    if data.len() > cap {
        return Err(Failure::new(
            ShaStatus::ErrBufferTooSmall,
            format!(
                "the result needs {} bytes, the buffer holds {cap}",
                data.len()
            ),
        ));
    }
    if !data.is_empty() {
        // SAFETY: `buf` is non-null here (data is non-empty, so cap > 0) and valid for `cap`
        // >= data.len() bytes of writes; Rust-owned `data` cannot overlap the caller's buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_buffer_is_emptied_and_a_copy_of_it_is_refused() {
        let mut raw = ShaBuf::EMPTY;
        // SAFETY: `raw` is a valid ShaBuf.
        let out = unsafe { buf_out(&mut raw, "out") }.unwrap();
        give_text(&out, "{}".to_string());
        assert_eq!(raw.len, 2);
        // SAFETY: `ptr` points to len + 1 bytes handed out above.
        assert_eq!(unsafe { std::slice::from_raw_parts(raw.ptr, 3) }, b"{}\0");
        let mut copy = ShaBuf {
            ptr: raw.ptr,
            len: 999,
        };
        // SAFETY: both are valid ShaBufs; the copy's pointer is checked against the table.
        unsafe {
            assert_eq!(sha_buf_free(&mut raw), ShaStatus::Ok);
            assert!(raw.ptr.is_null() && raw.len == 0);
            assert_eq!(sha_buf_free(&mut raw), ShaStatus::Ok);
            assert_eq!(sha_buf_free(&mut copy), ShaStatus::ErrInvalidArgument);
            assert_eq!(sha_buf_free(std::ptr::null_mut()), ShaStatus::ErrNull);
        }
    }

    #[test]
    fn copy_out_reports_the_size_it_needs() {
        let mut small = [0u8; 2];
        let mut needed = 0;
        // SAFETY: `small` holds 2 bytes; `needed` is valid.
        let r = unsafe { copy_out(b"abc", small.as_mut_ptr(), 2, &mut needed) };
        assert!(matches!(
            r,
            Err(Failure {
                code: ShaStatus::ErrBufferTooSmall,
                ..
            })
        ));
        assert_eq!((needed, small), (3, [0, 0]));
        // SAFETY: a null buffer with capacity 0 is a size query.
        let r = unsafe { copy_out(b"", std::ptr::null_mut(), 0, &mut needed) };
        assert!(r.is_ok());
        assert_eq!(needed, 0);
        // SAFETY: null with a capacity is refused before any write.
        let r = unsafe { copy_out(b"a", std::ptr::null_mut(), 4, &mut needed) };
        assert!(matches!(
            r,
            Err(Failure {
                code: ShaStatus::ErrNull,
                ..
            })
        ));
    }
}
