//! Digests across the C ABI: the root (equal roots mean consistent stores), and a two-message
//! comparison that names exactly the sessions that differ between two stores, whichever
//! process or region each lives in:
//!
//! 1. store A: `sha_digest_summary` -> summary (A's non-zero leaf sums), sent to B;
//! 2. store B: `sha_digest_compare(summary)` -> entries (the leaves that differ, and B's
//!    session digests in them), sent back to A;
//! 3. store A: `sha_digest_diff(entries)` -> the ids of the sessions that differ;
//!    `sha_repair_frame(peer, ids)` ships A's full state of them to B (and B's
//!    `sha_repair_frame` to A with the same ids, for the other direction).
//!
//! The three messages share one envelope, checked before anything is allocated:
//!
//! ```text
//!  0  magic    4  "SHDG"
//!  4  version  2  1                          (integers little endian)
//!  6  kind     2  1 summary | 2 entries | 3 ids
//!  8  body     n
//! 8+n crc      4  crc32 of bytes 0 .. 8+n
//!  summary = count:u32, count x (leaf:u16, sum:u128)      leaves strictly increasing, sums != 0
//!  entries = nleaves:u32, nleaves x leaf:u16, count:u32, count x (idlen:u16, id, digest:u128)
//!  ids     = count:u32, count x (idlen:u16, id)
//! ```

use session_ha::digest::LEAVES;
use session_ha::{Digest, DigestTree, ReplicaId, SessionId};

use crate::args::{self, Out};
use crate::buf::{buf_out, give_bytes, ShaBuf};
use crate::guard::{call, Failure, Outcome};
use crate::handle::{store, ShaStore};
use crate::status::ShaStatus;

const MAGIC: &[u8; 4] = b"SHDG";
const VERSION: u16 = 1;
const HEADER: usize = 8;
const CRC: usize = 4;

/// Message kinds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u16)]
enum Kind {
    Summary = 1,
    Entries = 2,
    Ids = 3,
}

/// A 128-bit digest as 16 bytes, most significant first (`sha_digest` in C), so its hex
/// spelling is the one status JSON shows.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShaDigest {
    /// The digest, big endian.
    pub bytes: [u8; 16],
}

fn begin(kind: Kind) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(kind as u16).to_le_bytes());
    out
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_id(out: &mut Vec<u8>, id: &SessionId) {
    let b = id.as_bytes();
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

fn bad(why: impl std::fmt::Display) -> Failure {
    Failure::new(ShaStatus::ErrBadFrame, format!("digest message: {why}"))
}

/// Reads a message body after its envelope was checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks magic, version, kind and checksum; reads the body.
    fn open(msg: &'a [u8], kind: Kind) -> Outcome<Reader<'a>> {
        if msg.len() < HEADER + CRC {
            return Err(bad(format!("{} bytes is shorter than a header", msg.len())));
        }
        let (covered, crc) = msg.split_at(msg.len() - CRC);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let actual = crc32fast::hash(covered);
        if stored != actual {
            return Err(bad(format!(
                "checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
            )));
        }
        if &covered[..4] != MAGIC {
            return Err(bad(format!("bad magic {:02x?}", &covered[..4])));
        }
        let version = u16::from_le_bytes([covered[4], covered[5]]);
        if version != VERSION {
            return Err(bad(format!(
                "version {version} (this build reads {VERSION})"
            )));
        }
        let found = u16::from_le_bytes([covered[6], covered[7]]);
        if found != kind as u16 {
            return Err(bad(format!("kind {found}, expected {}", kind as u16)));
        }
        Ok(Reader {
            rest: &covered[HEADER..],
        })
    }

    fn take(&mut self, n: usize) -> Outcome<&'a [u8]> {
        if self.rest.len() < n {
            return Err(bad(format!(
                "truncated: need {n} bytes, have {}",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Outcome<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u128(&mut self) -> Outcome<u128> {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.take(16)?);
        Ok(u128::from_le_bytes(b))
    }

    /// A count of items of at least `min_item` bytes each, checked against the bytes left
    /// and `max` before anything is allocated for it.
    fn count(&mut self, min_item: usize, max: usize) -> Outcome<usize> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > max || n.saturating_mul(min_item) > self.rest.len() {
            return Err(bad(format!("count {n} does not fit the message")));
        }
        Ok(n)
    }

    fn id(&mut self, max_len: usize) -> Outcome<SessionId> {
        let len = usize::from(self.u16()?);
        if len == 0 || len > max_len {
            return Err(bad(format!("session id of {len} bytes")));
        }
        Ok(SessionId::from(self.take(len)?))
    }

    /// Strictly increasing leaf numbers.
    fn leaves(&mut self) -> Outcome<Vec<u16>> {
        let n = self.count(2, LEAVES)?;
        let mut leaves: Vec<u16> = Vec::with_capacity(n);
        for _ in 0..n {
            let leaf = self.u16()?;
            if leaves.last().is_some_and(|&prev| prev >= leaf) {
                return Err(bad("leaves out of order"));
            }
            leaves.push(leaf);
        }
        Ok(leaves)
    }

    fn end(self) -> Outcome {
        if !self.rest.is_empty() {
            return Err(bad(format!("{} bytes after the body", self.rest.len())));
        }
        Ok(())
    }
}

fn encode_summary(leaves: &[u128]) -> Vec<u8> {
    let mut out = begin(Kind::Summary);
    let nonzero: Vec<(usize, u128)> = leaves
        .iter()
        .enumerate()
        .filter(|(_, &s)| s != 0)
        .map(|(l, &s)| (l, s))
        .collect();
    put_count(&mut out, nonzero.len());
    for (leaf, sum) in nonzero {
        out.extend_from_slice(&(leaf as u16).to_le_bytes());
        out.extend_from_slice(&sum.to_le_bytes());
    }
    finish(out)
}

fn decode_summary(msg: &[u8]) -> Outcome<Vec<u128>> {
    let mut r = Reader::open(msg, Kind::Summary)?;
    let n = r.count(18, LEAVES)?;
    let mut leaves = vec![0u128; LEAVES];
    let mut prev: Option<u16> = None;
    for _ in 0..n {
        let leaf = r.u16()?;
        let sum = r.u128()?;
        if prev.is_some_and(|p| p >= leaf) || sum == 0 {
            return Err(bad("summary leaves out of order or zero"));
        }
        prev = Some(leaf);
        leaves[usize::from(leaf)] = sum;
    }
    r.end()?;
    Ok(leaves)
}

fn encode_entries(leaves: &[u16], entries: &[(SessionId, Digest)]) -> Vec<u8> {
    let mut out = begin(Kind::Entries);
    put_count(&mut out, leaves.len());
    for leaf in leaves {
        out.extend_from_slice(&leaf.to_le_bytes());
    }
    put_count(&mut out, entries.len());
    for (id, digest) in entries {
        put_id(&mut out, id);
        out.extend_from_slice(&digest.0.to_le_bytes());
    }
    finish(out)
}

type Entries = (Vec<u16>, Vec<(SessionId, Digest)>);

fn decode_entries(msg: &[u8], max_id: usize) -> Outcome<Entries> {
    let mut r = Reader::open(msg, Kind::Entries)?;
    let leaves = r.leaves()?;
    let n = r.count(2 + 1 + 16, usize::MAX)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.id(max_id)?;
        entries.push((id, Digest(r.u128()?)));
    }
    r.end()?;
    Ok((leaves, entries))
}

fn encode_ids(ids: &[SessionId]) -> Vec<u8> {
    let mut out = begin(Kind::Ids);
    put_count(&mut out, ids.len());
    for id in ids {
        put_id(&mut out, id);
    }
    finish(out)
}

fn decode_ids(msg: &[u8], max_id: usize) -> Outcome<Vec<SessionId>> {
    let mut r = Reader::open(msg, Kind::Ids)?;
    let n = r.count(2 + 1, usize::MAX)?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(r.id(max_id)?);
    }
    r.end()?;
    Ok(ids)
}

/// Stores the root of the store's digest tree in `*root`. Two stores with equal roots hold
/// the same live state (up to a 2^-128 chance).
///
/// # Safety
/// `root` must be null or valid for one `sha_digest` write.
#[no_mangle]
pub unsafe extern "C" fn sha_digest_root(store: *mut ShaStore, root: *mut ShaDigest) -> ShaStatus {
    call(|| {
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let out = unsafe { Out::new(root, "root") }?;
        out.set(ShaDigest {
            bytes: s.digest_root()?.0.to_be_bytes(),
        });
        Ok(())
    })
}

/// Step 1 of a comparison: this store's digest summary in `*summary` (free with
/// `sha_buf_free`), to pass to the other store's `sha_digest_compare`.
///
/// # Safety
/// `summary` must be null or valid for one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_digest_summary(
    store: *mut ShaStore,
    summary: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(summary, "summary") }?;
        let s = self::store(store)?;
        give_bytes(&out, s.read(|r| encode_summary(r.digests().leaves())));
        Ok(())
    })
}

/// Step 2: compares another store's summary with this store's digests and puts, in
/// `*entries` (free with `sha_buf_free`), the leaves that differ and this store's session
/// digests in them, to pass back to the other store's `sha_digest_diff`. A summary that
/// does not decode is `SHA_ERR_BAD_FRAME`.
///
/// # Safety
/// `summary` must be null with `len` 0 or valid for `len` bytes; `entries` null or valid for
/// one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_digest_compare(
    store: *mut ShaStore,
    summary: *const u8,
    len: usize,
    entries: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(entries, "entries") }?;
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let theirs = decode_summary(unsafe { args::bytes(summary, len, "summary") }?)?;
        let leaves = s.read(|r| r.digests().differing_leaves(&theirs));
        let msg = encode_entries(&leaves, &s.digest_entries(&leaves)?);
        give_bytes(&out, msg);
        Ok(())
    })
}

/// Step 3: the sessions whose digests differ between this store and the one that produced
/// `entries` (with `sha_digest_compare`), as an ids message in `*ids` (free with
/// `sha_buf_free`; pass it to `sha_repair_frame`), and their number in `*count`; 0 means
/// the stores agree. Malformed `entries` are `SHA_ERR_BAD_FRAME`.
///
/// # Safety
/// `entries` must be null with `len` 0 or valid for `len` bytes; `ids` null or valid for one
/// `sha_buf` write; `count` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_digest_diff(
    store: *mut ShaStore,
    entries: *const u8,
    len: usize,
    ids: *mut ShaBuf,
    count: *mut usize,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(ids, "ids") }?;
        // SAFETY: as the caller guarantees.
        let count = unsafe { Out::new(count, "count") }?;
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let msg = unsafe { args::bytes(entries, len, "entries") }?;
        let max_id = s.read(|r| r.config().limits.max_session_id);
        let (leaves, theirs) = decode_entries(msg, max_id)?;
        let mine = s.digest_entries(&leaves)?;
        let differing = DigestTree::diff_entries(&mine, &theirs);
        count.set(differing.len());
        give_bytes(&out, encode_ids(&differing));
        Ok(())
    })
}

/// Frames for peer `peer` carrying this store's full state of the sessions in `ids` (from
/// `sha_digest_diff`), each within the frame budget, as a frame list in `*frames` (free with
/// `sha_buf_free`; walk it with `sha_next_frame`) and their number in `*count`; the peer
/// applies each with `sha_receive`, which repairs those sessions on its side.
///
/// # Safety
/// `ids` must be null with `len` 0 or valid for `len` bytes; `frames` null or valid for one
/// `sha_buf` write; `count` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn sha_repair_frames(
    store: *mut ShaStore,
    peer: u64,
    ids: *const u8,
    len: usize,
    frames: *mut ShaBuf,
    count: *mut usize,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(frames, "frames") }?;
        // SAFETY: as the caller guarantees.
        let count = unsafe { Out::new(count, "count") }?;
        let s = self::store(store)?;
        // SAFETY: as the caller guarantees.
        let msg = unsafe { args::bytes(ids, len, "ids") }?;
        let max_id = s.read(|r| r.config().limits.max_session_id);
        let ids = decode_ids(msg, max_id)?;
        let list = s.repair_frames(ReplicaId(peer), &ids)?;
        count.set(list.len());
        give_bytes(&out, frame_list(&list));
        Ok(())
    })
}

/// A frame list: for each frame, its length (u32, little endian) and its bytes.
fn frame_list(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frames.iter().map(|f| f.len() + 4).sum());
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Takes the next frame of a frame list (`sha_repair_frames`): `*cursor` and `*left` name
/// what is left of the list; on `SHA_OK`, `*frame` and `*frame_len` name the frame (inside
/// the list's buffer) and `*cursor`, `*left` move past it. `SHA_ERR_NOT_FOUND` when the list
/// is used up; `SHA_ERR_BAD_FRAME` when what is left does not parse (nothing moves).
///
/// # Safety
/// `cursor`, `left`, `frame` and `frame_len` must be null or valid for reads and writes of
/// their types; `*cursor` must be null with `*left` 0 or valid for `*left` bytes.
#[no_mangle]
pub unsafe extern "C" fn sha_next_frame(
    cursor: *mut *const u8,
    left: *mut usize,
    frame: *mut *const u8,
    frame_len: *mut usize,
) -> ShaStatus {
    call(|| {
        if cursor.is_null() || left.is_null() {
            return Err(Failure::null(if cursor.is_null() {
                "cursor"
            } else {
                "left"
            }));
        }
        // SAFETY: as the caller guarantees.
        let frame = unsafe { Out::new(frame, "frame") }?;
        // SAFETY: as the caller guarantees.
        let frame_len = unsafe { Out::new(frame_len, "frame_len") }?;
        // SAFETY: non-null and valid for reads, as the caller guarantees.
        let (at, n) = unsafe { (*cursor, *left) };
        // SAFETY: as the caller guarantees for `*cursor` and `*left`.
        let rest = unsafe { args::bytes(at, n, "cursor") }?;
        if rest.is_empty() {
            return Err(Failure::not_found("no frame left in the list"));
        }
        let bad = || Failure::new(ShaStatus::ErrBadFrame, "frame list is truncated");
        let head: [u8; 4] = rest
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(bad)?;
        let size = u32::from_le_bytes(head) as usize;
        let body = rest.get(4..4 + size).ok_or_else(bad)?;
        frame.set(body.as_ptr());
        frame_len.set(size);
        // SAFETY: non-null and valid for writes, as the caller guarantees; the new cursor
        // stays inside (or one past) the caller's buffer.
        unsafe {
            *cursor = body.as_ptr().add(size);
            *left = n - 4 - size;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SessionId {
        SessionId::from(s)
    }

    #[test]
    fn messages_round_trip() {
        let mut leaves = vec![0u128; LEAVES];
        leaves[3] = 7;
        leaves[LEAVES - 1] = u128::MAX;
        assert_eq!(decode_summary(&encode_summary(&leaves)).unwrap(), leaves);
        let entries = vec![(id("a"), Digest(1)), (id("bb"), Digest(u128::MAX))];
        let msg = encode_entries(&[3, 9], &entries);
        assert_eq!(decode_entries(&msg, 256).unwrap(), (vec![3, 9], entries));
        let ids = vec![id("x"), id("yz")];
        assert_eq!(decode_ids(&encode_ids(&ids), 256).unwrap(), ids);
    }

    fn code(r: Outcome<impl std::fmt::Debug>) -> ShaStatus {
        r.unwrap_err().code
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_a_bad_frame() {
        let msg = encode_ids(&[id("one"), id("two")]);
        for i in 0..msg.len() * 8 {
            let mut bad = msg.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(
                code(decode_ids(&bad, 256)),
                ShaStatus::ErrBadFrame,
                "bit {i}"
            );
        }
        for n in 0..msg.len() {
            assert_eq!(
                code(decode_ids(&msg[..n], 256)),
                ShaStatus::ErrBadFrame,
                "len {n}"
            );
        }
    }

    #[test]
    fn a_count_larger_than_the_message_is_refused_before_allocating() {
        let mut body = begin(Kind::Ids);
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        let msg = finish(body);
        assert!(code(decode_ids(&msg, 256)) == ShaStatus::ErrBadFrame);
        let mut body = begin(Kind::Summary);
        put_count(&mut body, LEAVES + 1);
        assert!(code(decode_summary(&finish(body))) == ShaStatus::ErrBadFrame);
    }

    #[test]
    fn the_wrong_kind_and_ids_over_the_limit_are_refused() {
        let ids = encode_ids(&[id("abc")]);
        assert_eq!(code(decode_summary(&ids)), ShaStatus::ErrBadFrame);
        assert_eq!(code(decode_ids(&ids, 2)), ShaStatus::ErrBadFrame);
    }
}
