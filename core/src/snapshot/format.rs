//! Byte layout of a snapshot file (all integers little endian):
//!
//! ```text
//! header (32 bytes)
//!   0 "SHAS"  4 version u16  6 kind u8  7 flags u8 (0; bit 0: encrypted)  8 generation u64
//!   16 covers_seq u64  24 reserved u32 (0)  28 crc32 of bytes 0..28
//! cipher block (32 bytes, encrypted files only; see `sealed.rs`)
//! chunks, each
//!   0 raw_len u32 (<= 1 MiB)  4 comp_len u32  8 crc32 of bytes 0..8 and the payload
//!   12 payload: lz4 block of raw_len bytes
//! footer (32 bytes)
//!   0 "SHAE"  4 chunk_count u32  8 entry_count u64  16 body_len u64 (bytes of all chunks)
//!   24 crc32 of every chunk's crc in order  28 crc32 of bytes 0..28
//! ```
//!
//! The raw chunk payloads, concatenated, are a stream of entries, each `len u32` followed by
//! the bincode of a [`SnapEntry`] (version 4; version 1 to 3 files hold
//! `format_v1::SnapEntryV1`, `format_v2::SnapEntryV2` and `format_v3::SnapEntryV3`,
//! converted as they are read; 3 added the meta's `retired_held`, 4 its `retired_runs`); an
//! entry may span chunks. The last entry is the
//! [`SnapEntry::Meta`] of the replica. Every length is checked against its limit before
//! anything is allocated for it. An encrypted file seals each chunk's payload (`sealed.rs`):
//! `comp_len` is then the sealed length, and the crc covers the sealed bytes.

use serde::{Deserialize, Serialize};

use crate::causal::{CausalContext, SeqRun, VersionVector};
use crate::clock::{ReplicaId, Timestamp};
use crate::crdt::{SessionId, SessionState};
use crate::error::DecodeError;
use crate::replicate::FenceReason;

/// Magic of a snapshot file.
pub const MAGIC: [u8; 4] = *b"SHAS";
/// Magic of a snapshot footer.
pub const FOOTER_MAGIC: [u8; 4] = *b"SHAE";
/// Snapshot format version written by this build; versions 1 to 3 (see `format_v1`,
/// `format_v2`, `format_v3`) are read.
pub const VERSION: u16 = 4;
/// Header and footer sizes.
pub const HEADER_LEN: usize = 32;
/// Footer size.
pub const FOOTER_LEN: usize = 32;
/// Chunk header size.
pub const CHUNK_HEADER_LEN: usize = 12;
/// Largest raw chunk.
pub const MAX_CHUNK: usize = 1 << 20;
/// Largest single entry (a session at the largest limit, with its tombstones).
pub const MAX_ENTRY: usize = 256 << 20;

/// What a snapshot file holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SnapKind {
    /// Every session.
    Base,
    /// The sessions changed since the previous snapshot of the chain.
    Delta,
    /// Every session, as a self-contained backup file.
    Backup,
}

impl SnapKind {
    fn to_u8(self) -> u8 {
        match self {
            SnapKind::Base => 0,
            SnapKind::Delta => 1,
            SnapKind::Backup => 2,
        }
    }

    fn from_u8(b: u8) -> Result<SnapKind, DecodeError> {
        match b {
            0 => Ok(SnapKind::Base),
            1 => Ok(SnapKind::Delta),
            2 => Ok(SnapKind::Backup),
            other => Err(DecodeError::Malformed(format!(
                "unknown snapshot kind {other}"
            ))),
        }
    }
}

/// Replica state beyond sessions, as of a snapshot's cut.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Region name.
    pub region: String,
    /// Incarnation of the replica.
    pub incarnation: u32,
    /// What the replica held at the cut.
    pub context: CausalContext,
    /// Highest clock reading at the cut.
    pub clock: Timestamp,
    /// Replicas removed from membership.
    pub removed: Vec<ReplicaId>,
    /// When the snapshot was cut (Unix ms).
    pub created_ms: u64,
    /// Members at the cut, with their region names (membership is durable).
    pub members: Vec<(ReplicaId, String)>,
    /// The catch-up fence at the cut, if raised.
    pub fence: Option<FenceReason>,
    /// Per retired origin, the highest seq another member was reported to hold of it
    /// (`Replica::give_up_retired`; format 3).
    pub retired_held: VersionVector,
    /// Per retired origin, the runs of seqs another member was reported to hold out of
    /// order (`Replica::give_up_retired`; format 4).
    pub retired_runs: Vec<SeqRun>,
}

/// One entry of a snapshot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SnapEntry {
    /// A session's full state.
    Session(SessionId, SessionState),
    /// A session collected since the previous snapshot.
    Gone(SessionId),
    /// The replica's state at the cut (last entry).
    Meta(SnapshotMeta),
}

/// A snapshot file's header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// The format version the file was written in (this build writes [`VERSION`]).
    pub version: u16,
    /// What the file holds.
    pub kind: SnapKind,
    /// The snapshot's generation (unique per store, increasing).
    pub generation: u64,
    /// WAL records up to this sequence number are reflected in it.
    pub covers_seq: u64,
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Header flag: chunks are sealed, a cipher block follows the header.
pub(crate) const FLAG_ENCRYPTED: u8 = 1;

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        self.encode_with_flags(0)
    }

    /// The header's bytes with `flags` in byte 7.
    pub(crate) fn encode_with_flags(&self, flags: u8) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[6] = self.kind.to_u8();
        b[7] = flags;
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..24].copy_from_slice(&self.covers_seq.to_le_bytes());
        let c = crc(&[&b[..28]]);
        b[28..32].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes and verifies the header of a plain (not encrypted) file.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Header, DecodeError> {
        match Header::decode_with_flags(b)? {
            (h, 0) => Ok(h),
            _ => Err(DecodeError::Malformed(
                "the file is encrypted; read it with a SnapshotReader".into(),
            )),
        }
    }

    /// Decodes and verifies a header; returns it and its flags.
    pub(crate) fn decode_with_flags(b: &[u8]) -> Result<(Header, u8), DecodeError> {
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                needed: HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&b[..4]);
        if magic != MAGIC {
            return Err(DecodeError::BadMagic { found: magic });
        }
        let (expected, actual) = (u32_at(b, 28), crc(&[&b[..28]]));
        if expected != actual {
            return Err(DecodeError::ChecksumMismatch { expected, actual });
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if !(1..=VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        if b[7] & !FLAG_ENCRYPTED != 0 || u32_at(b, 24) != 0 {
            return Err(DecodeError::Malformed(
                "reserved header bytes are not zero".into(),
            ));
        }
        let header = Header {
            version,
            kind: SnapKind::from_u8(b[6])?,
            generation: u64_at(b, 8),
            covers_seq: u64_at(b, 16),
        };
        Ok((header, b[7]))
    }
}

/// A snapshot file's footer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Footer {
    /// Number of chunks.
    pub chunks: u32,
    /// Number of entries.
    pub entries: u64,
    /// Bytes of all chunks (headers included).
    pub body_len: u64,
    /// crc32 over every chunk's crc, in order.
    pub chunks_crc: u32,
}

impl Footer {
    /// The footer's bytes.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..4].copy_from_slice(&FOOTER_MAGIC);
        b[4..8].copy_from_slice(&self.chunks.to_le_bytes());
        b[8..16].copy_from_slice(&self.entries.to_le_bytes());
        b[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.chunks_crc.to_le_bytes());
        let c = crc(&[&b[..28]]);
        b[28..32].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes and verifies a footer.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Footer, DecodeError> {
        if b.len() < FOOTER_LEN {
            return Err(DecodeError::Truncated {
                needed: FOOTER_LEN as u64,
                have: b.len() as u64,
            });
        }
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&b[..4]);
        if magic != FOOTER_MAGIC {
            return Err(DecodeError::BadMagic { found: magic });
        }
        let (expected, actual) = (u32_at(b, 28), crc(&[&b[..28]]));
        if expected != actual {
            return Err(DecodeError::ChecksumMismatch { expected, actual });
        }
        Ok(Footer {
            chunks: u32_at(b, 4),
            entries: u64_at(b, 8),
            body_len: u64_at(b, 16),
            chunks_crc: u32_at(b, 24),
        })
    }
}

/// Encodes one chunk (header and lz4 payload) of at most [`MAX_CHUNK`] raw bytes; returns
/// the bytes and the chunk's crc.
pub fn encode_chunk(raw: &[u8]) -> (Vec<u8>, u32) {
    frame_chunk(raw.len(), &lz4_flex::block::compress(raw))
}

/// A chunk's bytes (header, then `payload` as stored) for `raw_len` raw bytes; and its crc.
pub(crate) fn frame_chunk(raw_len: usize, payload: &[u8]) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + payload.len());
    out.extend_from_slice(&(raw_len as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let c = crc(&[&out[..8], payload]);
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(payload);
    (out, c)
}

/// Checks a chunk header whose payload carries `extra` bytes on top of the lz4 block (the
/// tag of a sealed chunk, else 0); returns `(raw_len, comp_len, crc)`.
///
/// # Errors
/// [`DecodeError::TooLarge`] for lengths over their limits.
pub(crate) fn decode_chunk_header_sized(
    b: &[u8; CHUNK_HEADER_LEN],
    extra: usize,
) -> Result<(usize, usize, u32), DecodeError> {
    let raw = u32_at(b, 0) as usize;
    let comp = u32_at(b, 4) as usize;
    let max_comp = lz4_flex::block::get_maximum_output_size(MAX_CHUNK) + extra;
    if raw > MAX_CHUNK || raw == 0 {
        return Err(DecodeError::TooLarge {
            len: raw as u64,
            max: MAX_CHUNK as u64,
        });
    }
    if comp > max_comp {
        return Err(DecodeError::TooLarge {
            len: comp as u64,
            max: max_comp as u64,
        });
    }
    Ok((raw, comp, u32_at(b, 8)))
}

/// Checks a chunk's crc (over its header's lengths and its payload as stored).
pub(crate) fn check_chunk_crc(
    header: &[u8; CHUNK_HEADER_LEN],
    payload: &[u8],
) -> Result<(), DecodeError> {
    let expected = u32_at(header, 8);
    let actual = crc(&[&header[..8], payload]);
    if expected != actual {
        return Err(DecodeError::ChecksumMismatch { expected, actual });
    }
    Ok(())
}

/// Decompresses an lz4 chunk payload of `raw_len` bytes.
pub(crate) fn decompress_chunk(payload: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    let mut raw = vec![0u8; raw_len];
    match lz4_flex::block::decompress_into(payload, &mut raw) {
        Ok(n) if n == raw_len => Ok(raw),
        Ok(n) => Err(DecodeError::Decompress(format!(
            "{n} bytes, expected {raw_len}"
        ))),
        Err(e) => Err(DecodeError::Decompress(e.to_string())),
    }
}

/// Decodes one entry body of a file of format `version`.
pub(crate) fn decode_entry(version: u16, body: &[u8]) -> Result<SnapEntry, DecodeError> {
    if version == 1 {
        return crate::codec::from_bytes::<crate::format_v1::SnapEntryV1>(body).map(Into::into);
    }
    if version == 2 {
        return crate::codec::from_bytes::<crate::format_v2::SnapEntryV2>(body).map(Into::into);
    }
    if version == 3 {
        return crate::codec::from_bytes::<crate::format_v3::SnapEntryV3>(body).map(Into::into);
    }
    crate::codec::from_bytes(body)
}
