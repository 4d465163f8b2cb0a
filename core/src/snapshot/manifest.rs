//! The manifest: which snapshot chain is live and from which WAL record recovery replays.
//! Two slots, `MANIFEST-0` and `MANIFEST-1`; generation `g` goes to slot `g % 2`, so the
//! previous generation stays intact while the next is written (temp file, fsync, rename,
//! directory fsync). Recovery takes the newest generation that verifies and loads, and falls
//! back to the other one.
//!
//! ```text
//! 0 "SHAM"  4 version u16  6 reserved u16 (0)  8 body_len u32  12 crc32 of bytes 0..12 and body
//! 16 body: bincode of Manifest
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::format::{u32_at, SnapKind};
use crate::codec;
use crate::error::{DecodeError, Error, Result};
use crate::fs::Vfs;

/// Magic of a manifest.
pub const MAGIC: [u8; 4] = *b"SHAM";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 16;
const MAX_BODY: usize = 16 << 20;
/// File names of the two slots.
pub const SLOTS: [&str; 2] = ["MANIFEST-0", "MANIFEST-1"];

/// A snapshot file the manifest names.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SnapRef {
    /// File name in the snapshot directory.
    pub file: String,
    /// Base or delta.
    pub kind: SnapKind,
    /// The snapshot's generation.
    pub generation: u64,
    /// WAL records up to this are reflected in the chain up to this file.
    pub covers_seq: u64,
    /// File size.
    pub bytes: u64,
}

/// One generation of the manifest.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Generation, increasing by one per install.
    pub generation: u64,
    /// Region name of the replica stored here.
    pub region: String,
    /// Its incarnation.
    pub incarnation: u32,
    /// The base snapshot, if any.
    pub base: Option<SnapRef>,
    /// Delta snapshots chained on the base, oldest first.
    pub deltas: Vec<SnapRef>,
    /// First WAL sequence number recovery needs (everything below is in the chain).
    pub wal_from: u64,
    /// When this generation was installed (Unix ms).
    pub created_ms: u64,
}

impl Manifest {
    /// WAL records up to this are covered by the chain (0 when there is no snapshot).
    pub fn covers_seq(&self) -> u64 {
        self.wal_from.saturating_sub(1)
    }

    /// Every snapshot file of the chain, base first.
    pub fn chain(&self) -> impl Iterator<Item = &SnapRef> {
        self.base.iter().chain(self.deltas.iter())
    }

    /// Bytes of the deltas.
    pub fn delta_bytes(&self) -> u64 {
        self.deltas.iter().map(|d| d.bytes).sum()
    }

    /// The manifest's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = codec::to_bytes(self);
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&out[..12]);
        h.update(&body);
        out.extend_from_slice(&h.finalize().to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and verifies a manifest.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Manifest, DecodeError> {
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
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let len = u32_at(b, 8) as usize;
        if len > MAX_BODY {
            return Err(DecodeError::TooLarge {
                len: len as u64,
                max: MAX_BODY as u64,
            });
        }
        if b.len() != HEADER_LEN + len {
            return Err(DecodeError::Truncated {
                needed: (HEADER_LEN + len) as u64,
                have: b.len() as u64,
            });
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..12]);
        h.update(&b[HEADER_LEN..]);
        let (expected, actual) = (u32_at(b, 12), h.finalize());
        if expected != actual {
            return Err(DecodeError::ChecksumMismatch { expected, actual });
        }
        if b[6] != 0 || b[7] != 0 {
            return Err(DecodeError::Malformed(
                "reserved manifest bytes are not zero".into(),
            ));
        }
        codec::from_bytes(&b[HEADER_LEN..])
    }
}

/// What the two slots hold: valid manifests newest first, and the problems found.
#[derive(Debug, Default)]
pub struct Slots {
    /// Valid manifests, newest generation first.
    pub valid: Vec<Manifest>,
    /// Slots that exist but do not verify.
    pub damaged: Vec<Error>,
}

/// Reads both slots of `dir`. Never modifies anything.
///
/// # Errors
/// I/O errors other than a missing slot.
pub fn read_slots(fs: &dyn Vfs, dir: &Path) -> Result<Slots> {
    let mut out = Slots::default();
    for slot in SLOTS {
        let path = dir.join(slot);
        if !fs.exists(&path)? {
            continue;
        }
        let bytes = fs.read_file(&path)?;
        match Manifest::decode(&bytes) {
            Ok(m) => out.valid.push(m),
            Err(source) => out.damaged.push(Error::Corrupt {
                path,
                offset: 0,
                source,
            }),
        }
    }
    out.valid.sort_by_key(|m| std::cmp::Reverse(m.generation));
    Ok(out)
}

/// Installs `m` durably in its slot (`generation % 2`).
///
/// # Errors
/// I/O errors; the other slot is untouched.
pub fn install(fs: &dyn Vfs, dir: &Path, m: &Manifest) -> Result<()> {
    let slot = SLOTS[(m.generation % 2) as usize];
    let tmp = dir.join(format!("{slot}.tmp"));
    if fs.exists(&tmp)? {
        fs.remove_file(&tmp)?;
    }
    let mut f = fs.create(&tmp)?;
    f.append(&m.encode())?;
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, &dir.join(slot))?;
    fs.sync_dir(dir)
}
