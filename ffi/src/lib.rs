//! session-ha-ffi: the C ABI of session-ha, declared in `native_src/include/session_ha.h`.
//!
//! Conventions every entry point follows:
//! - it returns a [`ShaStatus`] (`SHA_OK` = 0) and runs inside `catch_unwind`, so no panic
//!   crosses into C (a caught one is `SHA_ERR_PANIC`); a failure's message is this thread's
//!   last error (`sha_last_error`);
//! - every pointer is checked: a null required pointer is `SHA_ERR_NULL`, a `(pointer,
//!   length)` pair may be null only with length 0;
//! - results go either into a caller buffer with a "needed size" answer
//!   (`SHA_ERR_BUFFER_TOO_SMALL` when it does not fit), or into a [`ShaBuf`] the library
//!   allocated, freed with `sha_buf_free`;
//! - a store handle is an opaque token for an `Arc<Store>` in a registry, usable from any
//!   thread at once; after `sha_close` every call with it returns `SHA_ERR_CLOSED`.
//!
//! Files by role: `status` (codes), `guard` (panics, last error), `args` (pointer checks),
//! `buf` (output buffers), `handle` (open, close, the registry), `options`, `session`
//! (reads and writes), `replication`, `digest`, `durability`, `report` and `json` (the JSON
//! results).
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod args;
mod buf;
mod digest;
mod durability;
mod guard;
mod handle;
mod json;
mod options;
mod replication;
mod report;
mod session;
mod status;
mod trust;

#[cfg(test)]
mod header_check;

use std::ffi::c_char;

pub use buf::ShaBuf;
pub use digest::ShaDigest;
pub use handle::ShaStore;
pub use options::{
    ShaOptions, SHA_FSYNC_ALWAYS, SHA_FSYNC_EVERY_MS, SHA_FSYNC_NEVER,
    SHA_RECOVERY_REBUILD_FROM_PEERS, SHA_RECOVERY_STRICT,
};
pub use status::ShaStatus;

const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => panic!("the package version contains a NUL byte"),
};

/// The library's version (`"0.1.0"`), a static string: never free it. Compare it with the
/// header's `SHA_VERSION` to catch a header and a library from different builds.
#[no_mangle]
pub extern "C" fn sha_version() -> *const c_char {
    VERSION.as_ptr()
}
