//! Replication between stores over any transport the C program chooses: register peers,
//! take the next frame for a peer, apply what a peer sent (frames and acks alike) and pass
//! back the reply, run maintenance, and read the replication status.

use std::ffi::c_char;

use session_ha::ReplicaId;

use crate::args::{self, Out};
use crate::buf::{buf_out, give_bytes, give_text, ShaBuf};
use crate::guard::call;
use crate::handle::{store, ShaStore};
use crate::report;
use crate::status::ShaStatus;

/// Stores this replica's id in `*id` (what peers pass to `sha_add_peer`; stable across
/// restarts of the same directory).
///
/// # Safety
/// `id` must be null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_id(store: *mut ShaStore, id: *mut u64) -> ShaStatus {
    call(|| {
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let out = unsafe { Out::new(id, "id") }?;
        out.set(s.id().0);
        Ok(())
    })
}

/// Registers peer `peer` (its `sha_id`) of region `region` (NUL-terminated UTF-8): from now
/// on this store keeps what the peer lacks and `sha_frame_for` produces frames for it.
///
/// # Safety
/// `region` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sha_add_peer(
    store: *mut ShaStore,
    peer: u64,
    region: *const c_char,
) -> ShaStatus {
    call(|| {
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let region = unsafe { args::text(region, "region") }?;
        s.add_peer(ReplicaId(peer), region)?;
        Ok(())
    })
}

/// The next frame for peer `peer`, in `*frame` (free with `sha_buf_free`): send its bytes
/// to the peer, which applies them with `sha_receive`. An empty `*frame` (null `ptr`, `len`
/// 0) with `SHA_OK` means there is nothing to send now (everything is sent, or the window of
/// unacknowledged frames is full until an ack arrives). `SHA_ERR_UNKNOWN_PEER` for a peer
/// never added.
///
/// # Safety
/// `frame` must be null or valid for one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_frame_for(
    store: *mut ShaStore,
    peer: u64,
    frame: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(frame, "frame") }?;
        let s = self::store(store)?;
        if let Some(bytes) = s.frame_for(ReplicaId(peer))? {
            give_bytes(&out, bytes);
        }
        Ok(())
    })
}

/// Applies a message from a peer (a frame or an ack) and, once what it changed is durable,
/// puts the reply to send back in `*reply` (free with `sha_buf_free`): a frame is answered
/// with an ack, an ack with nothing (empty `*reply`). Pass the reply to the sender's
/// `sha_receive`. Bytes that do not decode give `SHA_ERR_BAD_FRAME` and change nothing.
///
/// # Safety
/// `bytes` must be null with `len` 0 or valid for `len` bytes; `reply` null or valid for
/// one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_receive(
    store: *mut ShaStore,
    bytes: *const u8,
    len: usize,
    reply: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(reply, "reply") }?;
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let bytes = unsafe { args::bytes(bytes, len, "bytes") }?;
        if let Some(ack) = s.receive(bytes)? {
            give_bytes(&out, ack);
        }
        Ok(())
    })
}

/// Runs maintenance now: expiry, resending what peers did not acknowledge in time,
/// collecting stable tombstones. The store also does this every `tick_interval_ms`.
#[no_mangle]
pub extern "C" fn sha_tick(store: *mut ShaStore) -> ShaStatus {
    call(|| {
        self::store(store)?.tick()?;
        Ok(())
    })
}

/// Lifts the catch-up fence by hand (see `Store::lift_fence`).
#[no_mangle]
pub extern "C" fn sha_lift_fence(store: *mut ShaStore) -> ShaStatus {
    call(|| {
        self::store(store)?.lift_fence()?;
        Ok(())
    })
}

/// The store's status as NUL-terminated JSON in `*out` (free with `sha_buf_free`):
/// `{"dir","incarnation","replica":{"id","name","now_ms","vv","durable_vv","boot","fence",
/// "sessions","live_sessions",
/// "digest_root","log_ops","log_bytes","tombstones_pending","stable","gaps","clock_skew_ms",
/// "peers":[{"id","name","acked","pending_ops","lag_ms","lag_exact","behind_ops",
/// "last_heard_ms","in_flight","state_transfer"}],"removed","expired_total",
/// "unknown_origins"},
/// "wal":{"last_seq","durable_seq","segments","bytes","failure"},
/// "snapshot":{"generation","covers_seq","base","deltas","bytes","last_ok_ms","last_error"},
/// "open":{"boot","clean_shutdown","bytes_cut","lost":[first,last],"reincarnated_from"},
/// "tainted"}`. `durable_vv` is what a crash would keep; `fence`, when not null, says why
/// reads and writes are refused until the store caught up with a peer; `tainted`, when not
/// null, that the log failed with writes in flight and nothing is served until reopened.
///
/// # Safety
/// `out` must be null or valid for one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_replication_status(
    store: *mut ShaStore,
    out: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(out, "out") }?;
        let s = self::store(store)?;
        give_text(&out, report::status(&s.status()));
        Ok(())
    })
}
