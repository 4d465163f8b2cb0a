//! The manifest: which snapshot chain is live (and the one before it, as a fallback), from
//! which WAL record recovery replays, and where the log is known to end. Two slots,
//! `MANIFEST-0` and `MANIFEST-1`; generation `g` goes to slot `g % 2`, so the previous
//! generation stays intact while the next is written (temp file, fsync, rename, directory
//! fsync). Recovery takes the newest generation that verifies and loads, then its fallback
//! chain, then the other slot.
//!
//! A generation is installed at every snapshot, at every open (a new `boot`, and `log_end`
//! as recovered) and at a clean close (`clean`, with `log_end` the last record): so a
//! damaged or missing end of the log is corruption, not a torn write (I3 in
//! `docs/INVARIANTS.md`). One is also installed when the replica gets its first member
//! (`clustered`), so that a crash that takes the membership records with the log still
//! fences it (I4).
//!
//! ```text
//! 0 "SHAM"  4 version u16 (3; 2 and 1 are read)  6 reserved u16 (0)  8 body_len u32
//! 12 crc32 of bytes 0..12 and body
//! 16 body: bincode of Manifest (version 3: version 2's fields, then `clustered`),
//!          of ManifestV2 (version 2) or of format_v1::ManifestV1 (version 1)
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::format::{u32_at, SnapKind};
use crate::codec;
use crate::error::{DecodeError, Error, Result};
use crate::format_v1::ManifestV1;
use crate::fs::Vfs;
use crate::replicate::FenceReason;

/// Magic of a manifest.
pub const MAGIC: [u8; 4] = *b"SHAM";
const VERSION: u16 = 3;
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

/// A snapshot chain: a base, the deltas on it, and the WAL record replay starts from.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Chain {
    /// The base snapshot, if any.
    pub base: Option<SnapRef>,
    /// Delta snapshots chained on the base, oldest first.
    pub deltas: Vec<SnapRef>,
    /// First WAL sequence number recovery needs (everything below is in the chain).
    pub wal_from: u64,
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
    /// The run of the store that installed it (increases at every open).
    pub boot: u64,
    /// The base snapshot, if any.
    pub base: Option<SnapRef>,
    /// Delta snapshots chained on the base, oldest first.
    pub deltas: Vec<SnapRef>,
    /// First WAL sequence number recovery needs (everything below is in the chain).
    pub wal_from: u64,
    /// The chain before this one, kept whole as recovery's fallback.
    pub fallback: Option<Chain>,
    /// Every WAL record up to this was durable when this generation was installed.
    pub log_end: u64,
    /// Installed by a clean close: the log ends exactly at `log_end`.
    pub clean: bool,
    /// The run that installed it synced with `FsyncPolicy::Never`: a power cut may have lost
    /// records that were shipped (see I2).
    pub unsynced: bool,
    /// Earlier incarnations of this directory, retired for good (a replica that may have lost
    /// part of its own history continues as a new incarnation, I2).
    pub retired: Vec<u32>,
    /// The catch-up fence, if raised when this generation was installed (I4).
    pub fence: Option<FenceReason>,
    /// When this generation was installed (Unix ms).
    pub created_ms: u64,
    /// The replica has had a member (since version 3): after a crash it is fenced even when
    /// the records naming its members went with the log (I4).
    pub clustered: bool,
}

/// A version-2 manifest: [`Manifest`] without `clustered`.
#[derive(Serialize, Deserialize)]
struct ManifestV2 {
    generation: u64,
    region: String,
    incarnation: u32,
    boot: u64,
    base: Option<SnapRef>,
    deltas: Vec<SnapRef>,
    wal_from: u64,
    fallback: Option<Chain>,
    log_end: u64,
    clean: bool,
    unsynced: bool,
    retired: Vec<u32>,
    fence: Option<FenceReason>,
    created_ms: u64,
}

impl From<ManifestV2> for Manifest {
    /// A version-2 store does not know whether it had members: its open decides from the
    /// members it recovers, as before.
    fn from(m: ManifestV2) -> Manifest {
        Manifest {
            generation: m.generation,
            region: m.region,
            incarnation: m.incarnation,
            boot: m.boot,
            base: m.base,
            deltas: m.deltas,
            wal_from: m.wal_from,
            fallback: m.fallback,
            log_end: m.log_end,
            clean: m.clean,
            unsynced: m.unsynced,
            retired: m.retired,
            fence: m.fence,
            created_ms: m.created_ms,
            clustered: false,
        }
    }
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

    /// The live chain.
    pub fn current(&self) -> Chain {
        Chain {
            base: self.base.clone(),
            deltas: self.deltas.clone(),
            wal_from: self.wal_from,
        }
    }

    /// A first manifest (generation 0, nothing snapshotted) for a new store.
    pub fn new(region: &str, incarnation: u32, created_ms: u64) -> Manifest {
        Manifest {
            generation: 0,
            region: region.to_string(),
            incarnation,
            boot: 0,
            base: None,
            deltas: Vec::new(),
            wal_from: 1,
            fallback: None,
            log_end: 0,
            clean: false,
            unsynced: false,
            retired: Vec::new(),
            fence: None,
            created_ms,
            clustered: false,
        }
    }

    /// This manifest with its fallback chain in place of the live one, if it has one.
    pub fn with_fallback(&self) -> Option<Manifest> {
        let f = self.fallback.clone()?;
        Some(Manifest {
            base: f.base,
            deltas: f.deltas,
            wal_from: f.wal_from,
            fallback: None,
            ..self.clone()
        })
    }

    /// Every snapshot file this manifest keeps alive (live chain and fallback).
    pub fn files(&self) -> impl Iterator<Item = &SnapRef> {
        self.chain().chain(
            self.fallback
                .iter()
                .flat_map(|c| c.base.iter().chain(c.deltas.iter())),
        )
    }

    /// The first WAL record any chain it names needs.
    pub fn oldest_wal_needed(&self) -> u64 {
        self.fallback
            .as_ref()
            .map_or(self.wal_from, |f| f.wal_from.min(self.wal_from))
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
        if !(1..=VERSION).contains(&version) {
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
        if version == 1 {
            let m: ManifestV1 = codec::from_bytes(&b[HEADER_LEN..])?;
            return Ok(Manifest {
                generation: m.generation,
                region: m.region,
                incarnation: m.incarnation,
                boot: 0,
                base: m.base,
                deltas: m.deltas,
                wal_from: m.wal_from,
                fallback: None,
                log_end: m.wal_from.saturating_sub(1),
                clean: false,
                unsynced: false,
                retired: Vec::new(),
                fence: None,
                created_ms: m.created_ms,
                clustered: false,
            });
        }
        if version == 2 {
            let m: ManifestV2 = codec::from_bytes(&b[HEADER_LEN..])?;
            return Ok(m.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_manifest_reads_as_not_clustered() {
        let m = Manifest {
            generation: 7,
            log_end: 41,
            retired: vec![3],
            ..Manifest::new("us-east-1", 2, 1_700_000_000_000)
        };
        let v2 = ManifestV2 {
            generation: m.generation,
            region: m.region.clone(),
            incarnation: m.incarnation,
            boot: m.boot,
            base: m.base.clone(),
            deltas: m.deltas.clone(),
            wal_from: m.wal_from,
            fallback: m.fallback.clone(),
            log_end: m.log_end,
            clean: m.clean,
            unsynced: m.unsynced,
            retired: m.retired.clone(),
            fence: m.fence,
            created_ms: m.created_ms,
        };
        let mut bytes = m.encode();
        let body = codec::to_bytes(&v2);
        bytes.truncate(HEADER_LEN);
        bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
        bytes[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[..12]);
        h.update(&body);
        bytes[12..16].copy_from_slice(&h.finalize().to_le_bytes());
        bytes.extend_from_slice(&body);
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);

        let clustered = Manifest {
            clustered: true,
            ..m
        };
        assert_eq!(Manifest::decode(&clustered.encode()).unwrap(), clustered);
    }
}
