//! The trust boundary from C: hellos (`sha_hello`, `sha_open_hello`), the frame keys
//! (`auth_key_file` in `sha_options`, `sha_set_auth_key_file` for a rotation), and retiring a
//! replica for good (`sha_retire_replica`).

use std::ffi::c_char;
use std::path::Path;

use session_ha::{FrameKeys, ReplicaId};

use crate::args;
use crate::buf::{buf_out, give_bytes, give_text, ShaBuf};
use crate::guard::call;
use crate::handle::{store, ShaStore};
use crate::json::Json;
use crate::status::ShaStatus;

/// This store's hello for the peers of transport node `node` (NUL-terminated UTF-8, how
/// peers reach this store) in `*hello` (free with `sha_buf_free`): send it to every peer,
/// which opens it with `sha_open_hello`.
///
/// # Safety
/// `node` must be null or a NUL-terminated string; `hello` null or valid for one `sha_buf`
/// write.
#[no_mangle]
pub unsafe extern "C" fn sha_hello(
    store: *mut ShaStore,
    node: *const c_char,
    hello: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(hello, "hello") }?;
        // SAFETY: as the caller guarantees.
        let node = unsafe { args::text(node, "node") }?;
        let s = self::store(store)?;
        give_bytes(&out, s.hello(node)?);
        Ok(())
    })
}

/// Opens a peer's hello: once it is authenticated (and from neither this replica nor a
/// retired one), `*info` holds NUL-terminated JSON `{"id","region","node","boot"}` (free with
/// `sha_buf_free`); `id` is the hex replica id, which `sha_add_peer` takes as a number.
/// Opening a hello makes nobody a member: call `sha_add_peer` for a node you want.
/// `SHA_ERR_UNAUTHENTICATED`, `SHA_ERR_BAD_FRAME`, `SHA_ERR_OWN_FRAME` or
/// `SHA_ERR_REMOVED_REPLICA` otherwise, each counted in the status.
///
/// # Safety
/// `bytes` must be null with `len` 0 or valid for `len` bytes; `info` null or valid for one
/// `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_open_hello(
    store: *mut ShaStore,
    bytes: *const u8,
    len: usize,
    info: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(info, "info") }?;
        // SAFETY: as the caller guarantees.
        let bytes = unsafe { args::bytes(bytes, len, "bytes") }?;
        let s = self::store(store)?;
        let h = s.open_hello(bytes)?;
        let mut j = Json::new();
        j.begin_object();
        j.key("id").str(&h.sender.to_string());
        j.key("region").str(&h.sender_name);
        j.key("node").str(&h.node);
        j.key("boot").u64(h.boot);
        j.end_object();
        give_text(&out, j.finish());
        Ok(())
    })
}

/// Replaces the frame keys with those of the `auth_key_file` at `path` (NUL-terminated;
/// one or two secrets, one per line, the first signing), or turns authentication off when
/// `path` is null. `SHA_ERR_AUTH_KEY`, the keys unchanged, for a file that cannot be used.
///
/// # Safety
/// `path` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sha_set_auth_key_file(
    store: *mut ShaStore,
    path: *const c_char,
) -> ShaStatus {
    call(|| {
        let keys = if path.is_null() {
            None
        } else {
            // SAFETY: as the caller guarantees.
            let path = unsafe { args::text(path, "path") }?;
            Some(FrameKeys::from_file(Path::new(path))?)
        };
        self::store(store)?.set_frame_keys(keys);
        Ok(())
    })
}

/// Retires replica `id` for good (an operator's decision for a region that will not come
/// back): logged and durable before this returns, it replicates to every member, and once
/// every remaining member has confirmed it, tombstone collection stops waiting for it. Its
/// frames are refused from then on.
#[no_mangle]
pub extern "C" fn sha_retire_replica(store: *mut ShaStore, id: u64) -> ShaStatus {
    call(|| {
        self::store(store)?.remove_member(ReplicaId(id))?;
        Ok(())
    })
}
