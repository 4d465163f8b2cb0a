//! Session reads and writes: fields, counters, sets, expiry and ending a session. Session
//! ids, keys, values and set elements are opaque byte strings, passed as `(pointer,
//! length)`; writes return once their log record is durable.

use session_ha::Store;

use crate::args::{self, Out};
use crate::buf::{buf_out, copy_out, give_text, ShaBuf};
use crate::guard::{call, Failure, Outcome};
use crate::handle::{store, ShaStore};
use crate::report;
use crate::status::ShaStatus;

/// Borrows a `(pointer, length)` argument.
macro_rules! arg {
    ($ptr:ident, $len:ident) => {
        // SAFETY: every entry point's contract requires each `(ptr, len)` pair to be null or
        // valid for `len` bytes of reads for the call.
        unsafe { args::bytes($ptr, $len, stringify!($ptr)) }?
    };
}

/// Runs a write against the store behind `h`.
fn write(h: *mut ShaStore, f: impl FnOnce(&Store) -> Outcome<u64>) -> ShaStatus {
    call(|| {
        f(&*store(h)?)?;
        Ok(())
    })
}

/// Sets field `key` of `session` to `value` (any bytes, empty allowed), creating the session
/// if needed.
///
/// # Safety
/// `session`, `key` and `value` must each be null with length 0 or valid for their length.
#[no_mangle]
pub unsafe extern "C" fn sha_put(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> ShaStatus {
    write(store, |s| {
        let (session, key, value) = (
            arg!(session, session_len),
            arg!(key, key_len),
            arg!(value, value_len),
        );
        Ok(s.put(session, key.to_vec(), value.to_vec())?)
    })
}

/// Copies the value of field `key` of `session` into `buf` (`cap` bytes); `*needed` gets
/// the value's length. `SHA_ERR_NOT_FOUND` when the session or field is absent (or the
/// session ended or expired); `SHA_ERR_BUFFER_TOO_SMALL` (nothing copied, `*needed` set)
/// when it does not fit. `buf` may be null when `cap` is 0, to ask for the length.
///
/// # Safety
/// `session` and `key` as for `sha_put`; `buf` null or valid for `cap` bytes of writes;
/// `needed` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_get_field(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    needed: *mut usize,
) -> ShaStatus {
    call(|| {
        let s = self::store(store)?;
        let (session, key) = (arg!(session, session_len), arg!(key, key_len));
        if needed.is_null() {
            return Err(Failure::null("needed"));
        }
        let value = s
            .get_field(session, key)?
            .ok_or_else(|| Failure::not_found("no such session or field"))?;
        // SAFETY: as the caller guarantees for `buf`, `cap` and `needed`.
        unsafe { copy_out(&value, buf, cap, needed) }
    })
}

/// Deletes field `key` of `session`.
///
/// # Safety
/// As `sha_put`.
#[no_mangle]
pub unsafe extern "C" fn sha_delete(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
) -> ShaStatus {
    write(store, |s| {
        let (session, key) = (arg!(session, session_len), arg!(key, key_len));
        Ok(s.delete_field(session, key.to_vec())?)
    })
}

/// Ends `session` for good: it reads as absent everywhere once replicated, and no later or
/// late-arriving write brings it back (`SHA_ERR_ENDED`).
///
/// # Safety
/// As `sha_put`.
#[no_mangle]
pub unsafe extern "C" fn sha_end(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
) -> ShaStatus {
    write(store, |s| Ok(s.end(arg!(session, session_len))?))
}

/// Extends `session`'s life to at least `ttl_ms` milliseconds from now; after its deadline it
/// reads as absent and never comes back. `SHA_ERR_INVALID_TTL` for 0.
///
/// # Safety
/// As `sha_put`.
#[no_mangle]
pub unsafe extern "C" fn sha_touch(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    ttl_ms: u64,
) -> ShaStatus {
    write(store, |s| Ok(s.touch(arg!(session, session_len), ttl_ms)?))
}

/// Adds `delta` (negative to subtract) to counter `key` of `session`.
///
/// # Safety
/// As `sha_put`.
#[no_mangle]
pub unsafe extern "C" fn sha_counter_add(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    delta: i64,
) -> ShaStatus {
    write(store, |s| {
        let (session, key) = (arg!(session, session_len), arg!(key, key_len));
        Ok(s.counter_add(session, key.to_vec(), delta)?)
    })
}

/// Reads counter `key` of `session` into `*value`. `SHA_ERR_NOT_FOUND` when the session is
/// absent (or ended or expired) or has no such counter.
///
/// # Safety
/// `session` and `key` as for `sha_put`; `value` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_counter_get(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    value: *mut i64,
) -> ShaStatus {
    call(|| {
        let s = self::store(store)?;
        let (session, key) = (arg!(session, session_len), arg!(key, key_len));
        // SAFETY: as the caller guarantees.
        let out = unsafe { Out::new(value, "value") }?;
        let v = s
            .read(|r| {
                let state = r
                    .session_state(session)
                    .filter(|st| st.is_live(r.now_ms()))?;
                state.counters.get(key).map(|c| c.value())
            })
            .ok_or_else(|| Failure::not_found("no such session or counter"))?;
        out.set(v);
        Ok(())
    })
}

/// Adds `elem` to set `key` of `session` (add wins over a concurrent remove).
///
/// # Safety
/// As `sha_put`, for `elem` too.
#[no_mangle]
pub unsafe extern "C" fn sha_set_add(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    elem: *const u8,
    elem_len: usize,
) -> ShaStatus {
    write(store, |s| {
        let (session, key, elem) = (
            arg!(session, session_len),
            arg!(key, key_len),
            arg!(elem, elem_len),
        );
        Ok(s.set_add(session, key.to_vec(), elem.to_vec())?)
    })
}

/// Removes `elem` from set `key` of `session` (the adds this replica has seen).
///
/// # Safety
/// As `sha_set_add`.
#[no_mangle]
pub unsafe extern "C" fn sha_set_remove(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    elem: *const u8,
    elem_len: usize,
) -> ShaStatus {
    write(store, |s| {
        let (session, key, elem) = (
            arg!(session, session_len),
            arg!(key, key_len),
            arg!(elem, elem_len),
        );
        Ok(s.set_remove(session, key.to_vec(), elem.to_vec())?)
    })
}

/// Stores in `*contains` whether set `key` of `session` holds `elem` (false when the
/// session or the set is absent).
///
/// # Safety
/// As `sha_set_add`; `contains` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_set_contains(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    key: *const u8,
    key_len: usize,
    elem: *const u8,
    elem_len: usize,
    contains: *mut bool,
) -> ShaStatus {
    call(|| {
        let s = self::store(store)?;
        let (session, key, elem) = (
            arg!(session, session_len),
            arg!(key, key_len),
            arg!(elem, elem_len),
        );
        // SAFETY: as the caller guarantees.
        let out = unsafe { Out::new(contains, "contains") }?;
        out.set(s.read(|r| {
            r.session_state(session)
                .filter(|st| st.is_live(r.now_ms()))
                .and_then(|st| st.sets.get(key))
                .is_some_and(|set| set.contains(elem))
        }));
        Ok(())
    })
}

/// The whole of `session` as a reader sees it, as NUL-terminated JSON in `*out` (free with
/// `sha_buf_free`). Byte strings are base64 (standard alphabet, padded); counters are exact
/// integers; `expires_at_ms` is Unix ms or null:
/// `{"fields":{"<key>":"<value>"},"counters":{"<key>":n},"sets":{"<key>":["<elem>"]},"expires_at_ms":n}`.
/// `SHA_ERR_NOT_FOUND` when the session is absent, ended or expired.
///
/// # Safety
/// `session` as for `sha_put`; `out` null or valid for one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_session_json(
    store: *mut ShaStore,
    session: *const u8,
    session_len: usize,
    out: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(out, "out") }?;
        let s = self::store(store)?;
        let view = s
            .get(arg!(session, session_len))?
            .ok_or_else(|| Failure::not_found("no such session"))?;
        give_text(&out, report::session(&view));
        Ok(())
    })
}
