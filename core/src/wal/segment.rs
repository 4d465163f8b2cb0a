//! Segment files: their names, their header, and creating a new one durably.
//!
//! ```text
//!  name    wal-<first_seq as 20 decimal digits>.log
//!  header  0 magic "SHWL" │ 4 version u16 = 1 │ 6 flags u16 │ 8 salt u32 │ 12 first_seq u64 │
//!          20 crc32(bytes 0..20) u32                                     (little endian)
//!  flags   0: plain; 24 bytes of header
//!          bit 0 (FLAG_ENCRYPTED): record bodies are sealed with AES-256-GCM; the header
//!          goes on with a cipher block (crypto::CipherBlock, 32 bytes: key id, salt, crc of
//!          bytes 0..52), 56 bytes in all
//! ```
//!
//! An encrypted segment is only ever written by the writer that created it: when encryption
//! is on, every open starts a new segment rather than appending to the last one, so the
//! nonces of its records (their seqs) are never reused under its key (`crate::crypto`).
//!
//! A segment is created as `<name>.tmp`, its header written and fdatasync'd, then renamed to
//! `<name>` and the directory fsync'd. So a file with a segment name always has a complete
//! header: a bad header is corruption, never a torn write; a leftover `.tmp` is removed.

use crate::crypto::{CipherBlock, FileCipher, KeyRing, CIPHER_BLOCK_LEN};
use crate::error::{DecodeError, Result};
use crate::fs::{Vfs, VfsFile};
use std::path::{Path, PathBuf};

/// The first four bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 4] = *b"SHWL";
/// The segment format this build writes (and the highest it reads).
pub const SEGMENT_VERSION: u16 = 1;
/// Length of the header of a plain segment.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Length of the header of an encrypted segment (the plain header and a cipher block).
pub const ENCRYPTED_SEGMENT_HEADER_LEN: usize = SEGMENT_HEADER_LEN + CIPHER_BLOCK_LEN;
/// Header flag: record bodies are encrypted, a cipher block follows.
const FLAG_ENCRYPTED: u16 = 1;

const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";
const TEMP_SUFFIX: &str = ".log.tmp";
const DIGITS: usize = 20;

/// The decoded segment header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SegmentHeader {
    pub salt: u32,
    pub first_seq: u64,
    /// Present when the segment is encrypted.
    pub cipher: Option<CipherBlock>,
}

impl SegmentHeader {
    /// The header's bytes: 24, or 56 for an encrypted segment.
    pub fn encode(&self) -> Vec<u8> {
        let mut h = vec![0u8; SEGMENT_HEADER_LEN];
        h[0..4].copy_from_slice(&SEGMENT_MAGIC);
        h[4..6].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        let flags = if self.cipher.is_some() {
            FLAG_ENCRYPTED
        } else {
            0
        };
        h[6..8].copy_from_slice(&flags.to_le_bytes());
        h[8..12].copy_from_slice(&self.salt.to_le_bytes());
        h[12..20].copy_from_slice(&self.first_seq.to_le_bytes());
        let crc = crc32fast::hash(&h[0..20]);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        if let Some(block) = &self.cipher {
            let b = block.encode(&h);
            h.extend_from_slice(&b);
        }
        h
    }

    /// Where the first record starts.
    pub fn len(&self) -> usize {
        if self.cipher.is_some() {
            ENCRYPTED_SEGMENT_HEADER_LEN
        } else {
            SEGMENT_HEADER_LEN
        }
    }

    /// Decodes and checks the header at the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, DecodeError> {
        let h: &[u8; SEGMENT_HEADER_LEN] = bytes
            .get(..SEGMENT_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Truncated {
                needed: SEGMENT_HEADER_LEN as u64,
                have: bytes.len() as u64,
            })?;
        let magic = [h[0], h[1], h[2], h[3]];
        if magic != SEGMENT_MAGIC {
            return Err(DecodeError::BadMagic { found: magic });
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != SEGMENT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: SEGMENT_VERSION,
            });
        }
        let expected = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
        let actual = crc32fast::hash(&h[0..20]);
        if expected != actual {
            return Err(DecodeError::ChecksumMismatch { expected, actual });
        }
        let flags = u16::from_le_bytes([h[6], h[7]]);
        if flags & !FLAG_ENCRYPTED != 0 {
            return Err(DecodeError::Malformed(format!(
                "segment flags {flags:#06x} are not known to this build"
            )));
        }
        let cipher = if flags & FLAG_ENCRYPTED != 0 {
            Some(CipherBlock::decode(h, &bytes[SEGMENT_HEADER_LEN..])?)
        } else {
            None
        };
        let salt = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&h[12..20]);
        Ok(SegmentHeader {
            salt,
            first_seq: u64::from_le_bytes(seq),
            cipher,
        })
    }
}

/// `wal-<first_seq>.log`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:0DIGITS$}{SUFFIX}")
}

/// The first sequence number named by a segment file name, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` is a segment that was being created when the process stopped.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.strip_suffix(TEMP_SUFFIX)
        .and_then(|stem| parse_segment_name(&format!("{stem}{SUFFIX}")))
        .is_some()
}

/// Whether `name` is a torn tail set aside by recovery.
pub(crate) fn is_broken_name(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with(".broken")
}

/// Where recovery keeps the bytes it cut off `segment` at `offset`: `<segment>.<offset>.broken`,
/// or `<segment>.<offset>-<attempt>.broken` when an earlier cut at the same offset is kept.
pub(crate) fn broken_path(segment: &Path, offset: u64, attempt: u32) -> PathBuf {
    let mut name = segment.file_name().unwrap_or_default().to_os_string();
    match attempt {
        0 => name.push(format!(".{offset}.broken")),
        n => name.push(format!(".{offset}-{n}.broken")),
    }
    segment.with_file_name(name)
}

/// A fresh salt from the file system's entropy. Never 0, so that an all-zero header can never
/// carry a plausible salt.
pub(crate) fn new_salt(fs: &dyn Vfs) -> u32 {
    let h = fs.entropy();
    ((h >> 32) as u32 ^ h as u32).max(1)
}

/// A segment open for appending.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub path: PathBuf,
    pub file: Box<dyn VfsFile>,
    pub header: SegmentHeader,
    /// Seals its record bodies, when it is encrypted.
    pub cipher: Option<FileCipher>,
}

/// Creates segment `first_seq` in `dir` durably (temp file, header, fdatasync, rename
/// replacing a segment of that name that holds no record, directory fsync) and opens it for
/// appending; encrypted under the current key of `keys` when given, with a fresh salt. On
/// failure a temp file left behind is removed when possible (recovery removes it otherwise).
pub(crate) fn create_segment(
    fs: &dyn Vfs,
    dir: &Path,
    first_seq: u64,
    keys: Option<&KeyRing>,
) -> Result<OpenSegment> {
    let path = dir.join(segment_name(first_seq));
    let tmp = dir.join(format!("{PREFIX}{first_seq:0DIGITS$}{TEMP_SUFFIX}"));
    let cipher = keys.map(|k| FileCipher::create(k, fs));
    let header = SegmentHeader {
        salt: new_salt(fs),
        first_seq,
        cipher: cipher.as_ref().map(FileCipher::block),
    };
    let made = (|| -> Result<()> {
        let mut f = fs.create(&tmp)?;
        f.append(&header.encode())?;
        f.sync_data()?;
        drop(f);
        fs.rename(&tmp, &path)?;
        fs.sync_dir(dir)
    })();
    if let Err(e) = made {
        if matches!(fs.exists(&tmp), Ok(true)) {
            let _ = fs.remove_file(&tmp);
        }
        return Err(e);
    }
    let file = fs.open_append(&path)?;
    Ok(OpenSegment {
        path,
        file,
        header,
        cipher,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_golden_bytes() {
        let h = SegmentHeader {
            salt: 0x0403_0201,
            first_seq: 0x0102,
            cipher: None,
        };
        let bytes = h.encode();
        assert_eq!(
            bytes[..20],
            [b'S', b'H', b'W', b'L', 1, 0, 0, 0, 1, 2, 3, 4, 2, 1, 0, 0, 0, 0, 0, 0]
        );
        let crc = crc32fast::hash(&bytes[..20]);
        assert_eq!(bytes[20..], crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&bytes).unwrap(), h);
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_rejected() {
        for cipher in [
            None,
            Some(CipherBlock {
                key_id: crate::crypto::KeyId([5; 8]),
                salt: [6; 16],
            }),
        ] {
            let h = SegmentHeader {
                salt: 77,
                first_seq: 9,
                cipher,
            };
            let bytes = h.encode();
            assert_eq!(bytes.len(), h.len());
            assert_eq!(SegmentHeader::decode(&bytes).unwrap(), h);
            for bit in 0..bytes.len() * 8 {
                let mut b = bytes.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    SegmentHeader::decode(&b).is_err(),
                    "bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn encrypted_header_golden_bytes() {
        let h = SegmentHeader {
            salt: 0x0403_0201,
            first_seq: 0x0102,
            cipher: Some(CipherBlock {
                key_id: crate::crypto::KeyId([0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7]),
                salt: [0x5A; 16],
            }),
        };
        let bytes = h.encode();
        assert_eq!(bytes.len(), ENCRYPTED_SEGMENT_HEADER_LEN);
        assert_eq!(
            bytes[..20],
            [b'S', b'H', b'W', b'L', 1, 0, 1, 0, 1, 2, 3, 4, 2, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes[24..32],
            [0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7]
        );
        assert_eq!(bytes[32..48], [0x5A; 16]);
        assert_eq!(bytes[48..52], [0; 4]);
        assert_eq!(bytes[52..56], crc32fast::hash(&bytes[..52]).to_le_bytes());
    }

    #[test]
    fn short_header_is_truncated_not_a_panic() {
        let r = SegmentHeader::decode(&[0u8; 10]);
        assert!(matches!(
            r,
            Err(DecodeError::Truncated {
                needed: 24,
                have: 10
            })
        ));
    }

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(segment_name(42), "wal-00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("wal-42.log"), None);
        assert_eq!(parse_segment_name("wal-0000000000000000004x.log"), None);
        assert!(is_temp_name("wal-00000000000000000042.log.tmp"));
        assert!(!is_temp_name("wal-42.log.tmp"));
        let b = broken_path(Path::new("/d/wal-00000000000000000042.log"), 99, 0);
        assert_eq!(b, Path::new("/d/wal-00000000000000000042.log.99.broken"));
        let b = broken_path(Path::new("/d/wal-00000000000000000042.log"), 99, 2);
        assert_eq!(b, Path::new("/d/wal-00000000000000000042.log.99-2.broken"));
        assert!(is_broken_name("wal-00000000000000000042.log.99.broken"));
    }

    #[test]
    fn salts_differ_between_segments() {
        let fs = crate::fs::OsFs;
        let a = new_salt(&fs);
        let b = new_salt(&fs);
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }
}
