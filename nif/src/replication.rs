//! Peers, frames and digests. Transport is the caller's: these NIFs produce frames for a
//! peer and apply frames from one. Frames can be large, so building and applying them runs
//! on dirty CPU schedulers; heartbeats (no ops) and bookkeeping stay on normal ones.

use rustler::{Binary, Encoder, Env, Error as NifError, NewBinary, NifResult, ResourceArc, Term};
use session_ha::digest::{LEAVES, LEAVES_PER_MID, MIDS};
use session_ha::{ReplicaId, SessionId};

use crate::atoms;
use crate::convert::{self, bin, to_str, unit_result};
use crate::handle::{self, Handle};

/// Bytes of one digest leaf on the wire: a `u128`, big endian.
const LEAF_BYTES: usize = 16;

#[rustler::nif]
fn add_peer<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    peer: u64,
    region: Binary<'a>,
) -> NifResult<Term<'a>> {
    let region = to_str(&region)?;
    handle::with(env, &h, |s| {
        Ok(unit_result(env, s.add_peer(ReplicaId(peer), region)))
    })
}

/// Logs the removal and waits for it to be durable, hence a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn remove_member(env: Env<'_>, h: ResourceArc<Handle>, peer: u64) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| {
        Ok(unit_result(env, s.remove_member(ReplicaId(peer))))
    })
}

/// `{ok, Frame}`, `none` when the peer lacks nothing, or `{error, Reason}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn frame_for(env: Env<'_>, h: ResourceArc<Handle>, peer: u64) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| {
        Ok(match s.frame_for(ReplicaId(peer)) {
            Ok(Some(frame)) => (atoms::ok(), bin(env, &frame)).encode(env),
            Ok(None) => atoms::none().encode(env),
            Err(e) => convert::error(env, &e),
        })
    })
}

#[rustler::nif]
fn heartbeat(env: Env<'_>, h: ResourceArc<Handle>, peer: u64) -> NifResult<Term<'_>> {
    handle::with(env, &h, |s| {
        Ok(match s.heartbeat(ReplicaId(peer)) {
            Ok(frame) => (atoms::ok(), bin(env, &frame)).encode(env),
            Err(e) => convert::error(env, &e),
        })
    })
}

/// Applies a frame or an ack from a peer: `{ok, Reply | none, Lsn | none}`. The caller sends
/// `Reply` only after `Lsn` is durable (`await_durable`), so an ack never promises what a
/// crash could still lose.
#[rustler::nif(schedule = "DirtyCpu")]
fn receive<'a>(env: Env<'a>, h: ResourceArc<Handle>, msg: Binary<'a>) -> NifResult<Term<'a>> {
    handle::with_dirty(env, &h, |s| {
        Ok(match s.receive_deferred(msg.as_slice()) {
            Ok(receipt) => {
                let reply = match &receipt.reply {
                    Some(r) => bin(env, r),
                    None => atoms::none().encode(env),
                };
                let lsn = match receipt.lsn {
                    Some(l) => l.encode(env),
                    None => atoms::none().encode(env),
                };
                (atoms::ok(), reply, lsn).encode(env)
            }
            Err(e) => convert::error(env, &e),
        })
    })
}

/// Lifts the catch-up fence by hand (logged, so it waits for durability: dirty I/O).
#[rustler::nif(schedule = "DirtyIo")]
fn lift_fence(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| Ok(unit_result(env, s.lift_fence())))
}

#[rustler::nif]
fn rewind(env: Env<'_>, h: ResourceArc<Handle>, peer: u64) -> NifResult<Term<'_>> {
    handle::with(env, &h, |s| Ok(unit_result(env, s.rewind(ReplicaId(peer)))))
}

/// `{ok, [Frame]}`: this node's state of the given sessions for `peer`, in frames within the
/// frame budget.
#[rustler::nif(schedule = "DirtyCpu")]
fn repair_frames<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    peer: u64,
    sids: Term<'a>,
) -> NifResult<Term<'a>> {
    let ids = convert::list(sids)?
        .map(|t| {
            let b: Binary = t?.decode()?;
            Ok(SessionId(convert::to_bytes(&b)))
        })
        .collect::<NifResult<Vec<SessionId>>>()?;
    handle::with_dirty(env, &h, |s| {
        Ok(match s.repair_frames(ReplicaId(peer), &ids) {
            Ok(frames) => {
                let list: Vec<Term<'a>> = frames.iter().map(|f| bin(env, f)).collect();
                (atoms::ok(), list).encode(env)
            }
            Err(e) => convert::error(env, &e),
        })
    })
}

#[rustler::nif]
fn digest_root(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with(env, &h, |s| {
        Ok(match s.digest_root() {
            Ok(d) => convert::digest(env, d.0),
            Err(e) => convert::error(env, &e),
        })
    })
}

/// Sums as one binary, 16 bytes each, big endian.
fn sums<'a>(env: Env<'a>, sums: &[u128]) -> Term<'a> {
    let mut out = NewBinary::new(env, sums.len() * LEAF_BYTES);
    for (dst, sum) in out.as_mut_slice().chunks_exact_mut(LEAF_BYTES).zip(sums) {
        dst.copy_from_slice(&sum.to_be_bytes());
    }
    out.into()
}

/// Sums from a binary of `count` x 16 bytes; `badarg` for any other size.
fn parse_sums(bin: &Binary<'_>, count: usize) -> NifResult<Vec<u128>> {
    if bin.len() != count * LEAF_BYTES {
        return Err(NifError::BadArg);
    }
    Ok(bin
        .as_slice()
        .chunks_exact(LEAF_BYTES)
        .map(|c| {
            let mut b = [0u8; LEAF_BYTES];
            b.copy_from_slice(c);
            u128::from_be_bytes(b)
        })
        .collect())
}

/// Middle-bucket numbers (`0..255`, each once, else `badarg`).
fn parse_mids(term: Term<'_>) -> NifResult<Vec<u8>> {
    let mids = convert::list(term)?
        .map(|t| u8::try_from(t?.decode::<u32>()?).map_err(|_| NifError::BadArg))
        .collect::<NifResult<Vec<u8>>>()?;
    if mids.len() > MIDS {
        return Err(NifError::BadArg);
    }
    Ok(mids)
}

/// All leaf sums, 16 bytes each, big endian, written straight into the result binary.
#[rustler::nif(schedule = "DirtyCpu")]
fn digest_leaves(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| {
        Ok(match s.with_digests(|d| sums(env, d.leaves())) {
            Ok(t) => t,
            Err(e) => convert::error(env, &e),
        })
    })
}

/// The 256 middle sums (4 KiB): the first step of a comparison over the wire.
#[rustler::nif]
fn digest_mids(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with(env, &h, |s| {
        Ok(match s.with_digests(|d| sums(env, d.mids())) {
            Ok(t) => t,
            Err(e) => convert::error(env, &e),
        })
    })
}

/// Middle buckets whose sums differ from a peer's `digest_mids/1`.
#[rustler::nif]
fn digest_diff_mids<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    theirs: Binary<'a>,
) -> NifResult<Term<'a>> {
    let theirs = parse_sums(&theirs, MIDS)?;
    handle::with(env, &h, |s| {
        Ok(match s.with_digests(|d| d.differing_mids(&theirs)) {
            Ok(mids) => mids
                .iter()
                .map(|&m| u32::from(m))
                .collect::<Vec<_>>()
                .encode(env),
            Err(e) => convert::error(env, &e),
        })
    })
}

/// The leaf sums under the given middle buckets (256 x 16 bytes each, in that order).
#[rustler::nif(schedule = "DirtyCpu")]
fn digest_leaves_under<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    mids: Term<'a>,
) -> NifResult<Term<'a>> {
    let mids = parse_mids(mids)?;
    handle::with_dirty(env, &h, |s| {
        Ok(
            match s.with_digests(|d| sums(env, &d.leaves_under(&mids))) {
                Ok(t) => t,
                Err(e) => convert::error(env, &e),
            },
        )
    })
}

/// Leaves under `Mids` whose sums differ from a peer's `digest_leaves_under(Mids)`.
#[rustler::nif(schedule = "DirtyCpu")]
fn digest_diff_leaves_under<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    mids: Term<'a>,
    theirs: Binary<'a>,
) -> NifResult<Term<'a>> {
    let mids = parse_mids(mids)?;
    let theirs = parse_sums(&theirs, mids.len() * LEAVES_PER_MID)?;
    handle::with_dirty(env, &h, |s| {
        Ok(
            match s.with_digests(|d| d.differing_leaves_under(&mids, &theirs)) {
                Ok(leaves) => leaves.encode(env),
                Err(e) => convert::error(env, &e),
            },
        )
    })
}

/// Leaves whose sums differ from a peer's `digest_leaves/1`; `badarg` unless exactly
/// 65536 x 16 bytes.
#[rustler::nif(schedule = "DirtyCpu")]
fn digest_diff_leaves<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    theirs: Binary<'a>,
) -> NifResult<Term<'a>> {
    let theirs = parse_sums(&theirs, LEAVES)?;
    handle::with_dirty(env, &h, |s| {
        Ok(match s.with_digests(|d| d.differing_leaves(&theirs)) {
            Ok(leaves) => leaves.encode(env),
            Err(e) => convert::error(env, &e),
        })
    })
}

/// `[{Sid, Digest}]` for the sessions in the given leaves (`0..65535`, else `badarg`).
#[rustler::nif(schedule = "DirtyCpu")]
fn digest_entries<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    leaves: Term<'a>,
) -> NifResult<Term<'a>> {
    let leaves = convert::list(leaves)?
        // rustler's own u16 decoder truncates (65536 would read as 0): range-check a u32.
        .map(|t| u16::try_from(t?.decode::<u32>()?).map_err(|_| NifError::BadArg))
        .collect::<NifResult<Vec<u16>>>()?;
    handle::with_dirty(env, &h, |s| {
        Ok(match s.digest_entries(&leaves) {
            Ok(entries) => {
                let entries: Vec<Term<'a>> = entries
                    .iter()
                    .map(|(id, d)| (bin(env, id.as_bytes()), convert::digest(env, d.0)).encode(env))
                    .collect();
                entries.encode(env)
            }
            Err(e) => convert::error(env, &e),
        })
    })
}
