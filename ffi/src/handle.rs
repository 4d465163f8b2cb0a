//! Store handles. A `sha_store *` is an opaque token, never an address: the library keeps
//! the open stores in a registry (token -> `Arc<Store>`) and every call looks its token up.
//! Tokens are never reused, so a call with a closed handle is always detected and answered
//! with `SHA_ERR_CLOSED` (a value never handed out gets `SHA_ERR_INVALID_HANDLE`), and no
//! call ever dereferences a pointer the caller passed as a handle.
//!
//! A call takes its own `Arc` of the store out of the registry, so `sha_close` on one thread
//! while another thread is inside a call is safe: the closing thread closes the store
//! (releasing the directory), the running call finishes or fails with `SHA_ERR_CLOSED`, and
//! the memory goes when the last call returns.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard};

use session_ha::Store;

use crate::args::{self, Out};
use crate::guard::{call, Failure, Outcome};
use crate::options::ShaOptions;
use crate::status::ShaStatus;

/// The opaque store type (`sha_store` in C); only pointers to it exist.
pub enum ShaStore {}

struct Registry {
    /// The next token to hand out; tokens below it were handed out once.
    next: usize,
    open: BTreeMap<usize, Arc<Store>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 1,
    open: BTreeMap::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // Inserts and removes cannot leave the map half-changed: a poisoned lock is still sound.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(store: Store) -> *mut ShaStore {
    let mut r = registry();
    let token = r.next;
    r.next += 1;
    r.open.insert(token, Arc::new(store));
    std::ptr::without_provenance_mut(token)
}

fn unknown(h: *const ShaStore, next: usize) -> Failure {
    let token = h.addr();
    if token > 0 && token < next {
        Failure::new(ShaStatus::ErrClosed, "store handle was closed")
    } else {
        Failure::new(
            ShaStatus::ErrInvalidHandle,
            format!("{h:p} is not a handle returned by sha_open"),
        )
    }
}

/// The store behind a handle.
pub(crate) fn store(h: *const ShaStore) -> Outcome<Arc<Store>> {
    if h.is_null() {
        return Err(Failure::null("store"));
    }
    let r = registry();
    r.open
        .get(&h.addr())
        .cloned()
        .ok_or_else(|| unknown(h, r.next))
}

/// Opens (recovering) or creates the store in directory `dir`, configured by `opts`, and
/// stores its handle in `*out` (null on failure). The directory is locked while the store
/// is open: a second open of it, in this process or another, fails with `SHA_ERR_LOCKED`.
///
/// # Safety
/// `dir` must be null or a NUL-terminated path; `opts` null or a valid `sha_options` whose
/// `region` is null or NUL-terminated; `out` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_open(
    dir: *const c_char,
    opts: *const ShaOptions,
    out: *mut *mut ShaStore,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { Out::new(out, "out") }?;
        out.set(std::ptr::null_mut());
        // SAFETY: as the caller guarantees.
        let dir = unsafe { args::path(dir, "dir") }?;
        if opts.is_null() {
            return Err(Failure::null("opts"));
        }
        // SAFETY: non-null and, as the caller guarantees, a valid `sha_options` with a null
        // or NUL-terminated region.
        let config = unsafe { (*opts).to_config() }?;
        let (store, _report) = Store::open(dir, config)?;
        out.set(register(store));
        Ok(())
    })
}

/// Closes a store: stops its background work, makes everything written durable, releases
/// the directory and frees the handle. The handle is invalid afterwards whatever this
/// returns (later calls with it return `SHA_ERR_CLOSED`). Returns the failure that poisoned
/// the log, if one did (`SHA_ERR_POISONED`, `SHA_ERR_NO_SPACE`, ...).
#[no_mangle]
pub extern "C" fn sha_close(store: *mut ShaStore) -> ShaStatus {
    call(|| {
        if store.is_null() {
            return Err(Failure::null("store"));
        }
        let s = {
            let mut r = registry();
            let next = r.next;
            r.open
                .remove(&store.addr())
                .ok_or_else(|| unknown(store, next))?
        };
        s.close()?;
        Ok(())
    })
}
