//! One WAL record: encoding and checked decoding.
//!
//! ```text
//!  0        4        12         16           16+len
//!  ┌────────┬────────┬──────────┬────────────┬──────────┐
//!  │ len u32│ seq u64│ head_crc │ body (len) │ body_crc │     little endian
//!  └────────┴────────┴──────────┴────────────┴──────────┘
//!  head_crc = crc32 seeded with the segment salt over bytes 0..12
//!  body_crc = crc32 seeded with the segment salt over seq ‖ body
//!
//!  in an encrypted segment the body is sealed (len = plaintext + 16):
//!  body     = AES-256-GCM ciphertext ‖ tag (16), under the segment's file key
//!  nonce    = seq u64 ‖ 0u32                       (little endian; unique in the segment)
//!  aad      = bytes 0..12 (len ‖ seq)
//!  body_crc = as above, over seq ‖ sealed body: damage fails the crc, a change with the
//!             crc recomputed fails the tag
//! ```
//!
//! The header is checked before its length is believed; the length is checked against the
//! limit and against the bytes present before the body is touched. Decoding borrows: nothing
//! is allocated by a length read from disk.

use std::path::Path;

use crate::crypto::{CipherBlock, FileCipher, KeyRing, TAG_LEN};
use crate::error::{DecodeError, Error, Result};

/// Bytes a record takes on top of its body.
pub const RECORD_OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;
/// The largest `max_record_size` a configuration may set (1 GiB).
pub const RECORD_SIZE_LIMIT: u32 = 1 << 30;

pub(crate) const HEADER_LEN: usize = 16;
const TRAILER_LEN: usize = 4;

fn head_crc(salt: u32, head: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(salt);
    h.update(head);
    h.finalize()
}

fn body_crc(salt: u32, seq: u64, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(salt);
    h.update(&seq.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// Appends the encoding of record `seq` with `body` to `out`. The caller has checked that
/// `body` fits in a `u32` (it is at most the configured `max_record_size`).
pub(crate) fn encode_record(out: &mut Vec<u8>, salt: u32, seq: u64, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    let crc = head_crc(salt, &out[start..start + 12]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&body_crc(salt, seq, body).to_le_bytes());
}

fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n
}

fn aad(len: u32, seq: u64) -> [u8; 12] {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&len.to_le_bytes());
    a[4..].copy_from_slice(&seq.to_le_bytes());
    a
}

/// Appends the encoding of record `seq` with `body` sealed under `cipher` to `out` (see the
/// module doc). The caller has checked that `body` plus the tag fits in a `u32`.
pub(crate) fn encode_sealed_record(
    out: &mut Vec<u8>,
    salt: u32,
    seq: u64,
    body: &[u8],
    cipher: &FileCipher,
) {
    let start = out.len();
    let len = (body.len() + TAG_LEN) as u32;
    out.extend_from_slice(&aad(len, seq));
    let crc = head_crc(salt, &out[start..start + 12]);
    out.extend_from_slice(&crc.to_le_bytes());
    let body_at = out.len();
    out.extend_from_slice(body);
    cipher.seal(nonce(seq), &aad(len, seq), out, body_at);
    let crc = body_crc(salt, seq, &out[body_at..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The plaintext of a record of an encrypted segment whose checksums verified; `None` when
/// its tag does not verify under `cipher`.
pub(crate) fn unseal_record(cipher: &FileCipher, rec: &RecordRef<'_>) -> Option<Vec<u8>> {
    let len = u32::try_from(rec.body.len()).ok()?;
    cipher.unseal(nonce(rec.seq), &aad(len, rec.seq), rec.body)
}

/// Hands `rec` (at `offset` of the segment at `path`) to `apply` as plaintext: as it is for a
/// plain segment (`block` `None`), unsealed for an encrypted one, opening the segment's
/// cipher under `keys` on its first record.
///
/// # Errors
/// [`Error::MissingKey`] and the like from opening the cipher, [`Error::Tampered`] for a
/// record whose tag does not verify, and whatever `apply` returns.
pub(crate) fn apply_record(
    block: Option<CipherBlock>,
    cipher: &mut Option<FileCipher>,
    keys: Option<&KeyRing>,
    (path, offset): (&Path, usize),
    rec: &RecordRef<'_>,
    apply: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let Some(block) = block else {
        return apply(rec.seq, rec.body);
    };
    if cipher.is_none() {
        *cipher = Some(FileCipher::open(keys, block, path)?);
    }
    let plain = cipher
        .as_ref()
        .and_then(|c| unseal_record(c, rec))
        .ok_or_else(|| Error::Tampered {
            path: path.to_path_buf(),
            offset: offset as u64,
            key_id: block.key_id,
        })?;
    apply(rec.seq, &plain)
}

/// A record decoded in place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RecordRef<'a> {
    pub seq: u64,
    pub body: &'a [u8],
    /// Bytes the record takes, header and trailer included.
    pub encoded_len: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Decodes the record at the start of `bytes`, verifying both checksums with `salt`.
///
/// `Truncated` means the bytes end inside the record (after a valid header, or inside the
/// header); every other error means the bytes there are not a record.
pub(crate) fn decode_record(
    bytes: &[u8],
    salt: u32,
    max_body: u32,
) -> Result<RecordRef<'_>, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: HEADER_LEN as u64,
            have: bytes.len() as u64,
        });
    }
    let stored = u32_at(bytes, 12);
    let computed = head_crc(salt, &bytes[..12]);
    if stored != computed {
        return Err(DecodeError::ChecksumMismatch {
            expected: stored,
            actual: computed,
        });
    }
    let len = u32_at(bytes, 0);
    if len > max_body {
        return Err(DecodeError::TooLarge {
            len: u64::from(len),
            max: u64::from(max_body),
        });
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[4..12]);
    let seq = u64::from_le_bytes(seq);
    let encoded_len = RECORD_OVERHEAD + len as usize;
    if bytes.len() < encoded_len {
        return Err(DecodeError::Truncated {
            needed: encoded_len as u64,
            have: bytes.len() as u64,
        });
    }
    let body = &bytes[HEADER_LEN..HEADER_LEN + len as usize];
    let stored = u32_at(bytes, HEADER_LEN + len as usize);
    let computed = body_crc(salt, seq, body);
    if stored != computed {
        return Err(DecodeError::ChecksumMismatch {
            expected: stored,
            actual: computed,
        });
    }
    Ok(RecordRef {
        seq,
        body,
        encoded_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_record_bytes() {
        let mut out = Vec::new();
        encode_record(&mut out, 0x1234_5678, 7, b"hi");
        assert_eq!(out.len(), 22);
        assert_eq!(out[..12], [2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        let mut h = crc32fast::Hasher::new_with_initial(0x1234_5678);
        h.update(&out[..12]);
        assert_eq!(out[12..16], h.finalize().to_le_bytes());
        assert_eq!(&out[16..18], b"hi");
        let mut h = crc32fast::Hasher::new_with_initial(0x1234_5678);
        h.update(&7u64.to_le_bytes());
        h.update(b"hi");
        assert_eq!(out[18..22], h.finalize().to_le_bytes());
    }

    #[test]
    fn a_record_does_not_validate_under_another_salt() {
        let mut out = Vec::new();
        encode_record(&mut out, 1, 1, b"body");
        assert!(decode_record(&out, 1, 100).is_ok());
        assert!(matches!(
            decode_record(&out, 2, 100),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn zeroed_bytes_are_not_a_record() {
        let zeros = [0u8; 64];
        assert!(matches!(
            decode_record(&zeros, 0x5eed, 100),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn length_over_the_limit_is_refused_before_the_body_is_read() {
        let mut out = Vec::new();
        encode_record(&mut out, 9, 1, &[0u8; 50]);
        assert!(matches!(
            decode_record(&out[..20], 9, 10),
            Err(DecodeError::TooLarge { len: 50, max: 10 })
        ));
    }

    #[test]
    fn a_sealed_record_round_trips_and_a_flip_with_the_crc_fixed_fails_the_tag() {
        let fs = crate::fs::FaultyFs::with_seed(9);
        let ring = crate::crypto::KeyRing::new([4; 32], []).unwrap();
        let cipher = FileCipher::create(&ring, &fs);
        let mut out = Vec::new();
        encode_sealed_record(&mut out, 77, 5, b"session body", &cipher);
        assert_eq!(out.len(), RECORD_OVERHEAD + 12 + TAG_LEN);
        assert!(!out.windows(7).any(|w| w == b"session"));
        let rec = decode_record(&out, 77, 100).unwrap();
        assert_eq!(unseal_record(&cipher, &rec).unwrap(), b"session body");
        // Flip a ciphertext bit and recompute the crc: the crc passes, the tag does not.
        let mut t = out.clone();
        t[HEADER_LEN + 2] ^= 0x10;
        let end = t.len() - 4;
        let crc = body_crc(77, 5, &t[HEADER_LEN..end]);
        t[end..].copy_from_slice(&crc.to_le_bytes());
        let rec = decode_record(&t, 77, 100).unwrap();
        assert!(unseal_record(&cipher, &rec).is_none());
        // Without the crc fixed it is damage, as in a plain segment.
        let mut d = out.clone();
        d[HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            decode_record(&d, 77, 100),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(
            salt: u32, seq: u64, body in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let mut out = vec![0xAA];
            encode_record(&mut out, salt, seq, &body);
            let r = decode_record(&out[1..], salt, 300).unwrap();
            prop_assert_eq!(r.seq, seq);
            prop_assert_eq!(r.body, &body[..]);
            prop_assert_eq!(r.encoded_len, out.len() - 1);
        }

        #[test]
        fn any_bit_flip_is_detected_and_any_cut_is_truncated(
            salt: u32, body in proptest::collection::vec(any::<u8>(), 0..64), pick: usize
        ) {
            let mut out = Vec::new();
            encode_record(&mut out, salt, 3, &body);
            let bit = pick % (out.len() * 8);
            let mut flipped = out.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_record(&flipped, salt, 64).is_err());
            let cut = pick % out.len();
            prop_assert!(decode_record(&out[..cut], salt, 64).is_err());
        }
    }
}
