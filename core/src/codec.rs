//! Framing and checksums for messages between replicas, and the bincode settings every
//! format of the crate uses.
//!
//! Envelope (all integers little endian):
//! ```text
//! 0      4        6      7         8          12         16      20
//! +------+--------+------+---------+----------+----------+-------+-----------------+
//! | SHAF | ver u16| flags| reserved| body_len | raw_len  | crc32 | body (body_len) |
//! +------+--------+------+---------+----------+----------+-------+-----------------+
//! ```
//! `flags` bit 0: body is an lz4 block that decompresses to `raw_len` bytes (otherwise
//! `raw_len == body_len`). `flags` bit 1: a MAC trailer follows the body (see `auth`):
//! ```text
//! +------------------+------------+------------------------------------------------+
//! | sender id u64    | key id u32 | tag: BLAKE3 keyed hash of bytes 0..16, the     |
//! |                  |            | body, sender id and key id (32 bytes)          |
//! +------------------+------------+------------------------------------------------+
//! ```
//! `crc32` covers bytes 0..16, the body and the trailer, so damage is told from forgery:
//! a flipped bit fails the checksum, a forged or altered message that fixed the checksum
//! fails the tag. The raw body is the bincode encoding (varint integers) of the message.
//! Decoding checks, in order: length, magic, version, flags, both lengths against the limit,
//! total length, checksum, MAC (before any decompression or parsing), decompression, bincode
//! (with a byte limit, so no declared length can allocate more than the input), trailing
//! bytes; then the caller validates the content.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{FrameKey, FrameKeys, TAG_LEN};
use crate::error::{AuthFailure, DecodeError};

/// Magic bytes of a replication message.
pub const MAGIC: [u8; 4] = *b"SHAF";
/// Envelope format version written by this build. Version 2 frames carry boots, the
/// receiver, per-entry dots, repairs that name absent sessions and, between authenticated
/// replicas, a MAC; version 1 is refused.
pub const VERSION: u16 = 2;
/// Bytes in the envelope header.
pub const HEADER_LEN: usize = 20;
/// Bytes of the MAC trailer: sender id, key id, tag.
pub const TRAILER_LEN: usize = 8 + 4 + TAG_LEN;
const FLAG_LZ4: u8 = 1;
const FLAG_MAC: u8 = 2;
/// Bodies smaller than this are never compressed.
const COMPRESS_MIN: usize = 512;

fn options() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
}

/// Encodes `value` with the crate's bincode settings.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    use bincode::Options;
    // Serializing our own types into a Vec cannot fail: no maps with non-string keys issue,
    // no size limit is set. An error here would be a bug; encode an empty body then.
    options().serialize(value).unwrap_or_default()
}

/// Decodes a `T` from exactly `bytes` (no trailing bytes), never allocating for a declared
/// length beyond what `bytes` can hold.
///
/// # Errors
/// [`DecodeError::Malformed`] for anything bincode rejects.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    use bincode::Options;
    options()
        .with_limit(bytes.len() as u64)
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Wraps an encoded body in an envelope without a MAC, compressing it when that saves at
/// least 1/8.
pub fn seal(raw: &[u8]) -> Vec<u8> {
    seal_with(raw, None)
}

/// Wraps an encoded body in an envelope, with a MAC under `signer`'s key naming its sender
/// id when `signer` is given.
pub fn seal_with(raw: &[u8], signer: Option<(&FrameKey, u64)>) -> Vec<u8> {
    let compressed = if raw.len() >= COMPRESS_MIN {
        let c = lz4_flex::block::compress(raw);
        (c.len() < raw.len() - raw.len() / 8).then_some(c)
    } else {
        None
    };
    let (mut flags, body) = match &compressed {
        Some(c) => (FLAG_LZ4, c.as_slice()),
        None => (0, raw),
    };
    if signer.is_some() {
        flags |= FLAG_MAC;
    }
    let mut head = [0u8; 16];
    head[..4].copy_from_slice(&MAGIC);
    head[4..6].copy_from_slice(&VERSION.to_le_bytes());
    head[6] = flags;
    head[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
    head[12..16].copy_from_slice(&(raw.len() as u32).to_le_bytes());
    let mut trailer = Vec::new();
    if let Some((key, sender)) = signer {
        trailer.extend_from_slice(&sender.to_le_bytes());
        trailer.extend_from_slice(&key.id().to_le_bytes());
        let tag = key.tag(&[&head, body, &trailer]);
        trailer.extend_from_slice(&tag);
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&head);
    h.update(body);
    h.update(&trailer);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + trailer.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&trailer);
    out
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Checks an envelope that must carry no MAC and returns its raw (decompressed) body.
///
/// # Errors
/// A [`DecodeError`] naming the first check that failed.
pub fn open(bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    open_with(bytes, max, None)
}

/// The sender id an envelope's MAC trailer names, read without checking anything but the
/// trailer's presence where the header says it is (to count a refusal against the sender
/// it claims; a truncated or padded envelope claims none).
pub fn claimed_sender(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < HEADER_LEN + TRAILER_LEN || bytes[6] & FLAG_MAC == 0 {
        return None;
    }
    let body_len = le_u32(bytes, 8) as usize;
    if HEADER_LEN.checked_add(body_len)?.checked_add(TRAILER_LEN)? != bytes.len() {
        return None;
    }
    Some(le_u64(bytes, bytes.len() - TRAILER_LEN))
}

/// Checks an envelope and returns its raw (decompressed) body. With `keys`, the envelope
/// must carry a MAC under one of them; without, it must carry none.
///
/// # Errors
/// A [`DecodeError`] naming the first check that failed: damage (checksum, lengths) is told
/// apart from a failed authentication ([`DecodeError::Unauthenticated`]).
pub fn open_with(
    bytes: &[u8],
    max: usize,
    keys: Option<&FrameKeys>,
) -> Result<Vec<u8>, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: HEADER_LEN as u64,
            have: bytes.len() as u64,
        });
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&bytes[..4]);
    if magic != MAGIC {
        return Err(DecodeError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let flags = bytes[6];
    if flags & !(FLAG_LZ4 | FLAG_MAC) != 0 || bytes[7] != 0 {
        return Err(DecodeError::Malformed(format!(
            "unknown flags {flags:#04x}/{:#04x}",
            bytes[7]
        )));
    }
    let body_len = le_u32(bytes, 8) as usize;
    let raw_len = le_u32(bytes, 12) as usize;
    for len in [body_len, raw_len] {
        if len > max {
            return Err(DecodeError::TooLarge {
                len: len as u64,
                max: max as u64,
            });
        }
    }
    let trailer_len = if flags & FLAG_MAC != 0 {
        TRAILER_LEN
    } else {
        0
    };
    let needed = HEADER_LEN + body_len + trailer_len;
    if bytes.len() < needed {
        return Err(DecodeError::Truncated {
            needed: needed as u64,
            have: bytes.len() as u64,
        });
    }
    if bytes.len() > needed {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            bytes.len() - needed
        )));
    }
    let body = &bytes[HEADER_LEN..HEADER_LEN + body_len];
    let trailer = &bytes[HEADER_LEN + body_len..];
    let expected = le_u32(bytes, 16);
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..16]);
    h.update(body);
    h.update(trailer);
    let actual = h.finalize();
    if expected != actual {
        return Err(DecodeError::ChecksumMismatch { expected, actual });
    }
    authenticate(&bytes[..16], body, trailer, keys).map_err(DecodeError::Unauthenticated)?;
    if flags & FLAG_LZ4 == 0 {
        if raw_len != body_len {
            return Err(DecodeError::Malformed(
                "raw length differs from body length".into(),
            ));
        }
        return Ok(body.to_vec());
    }
    let mut raw = vec![0u8; raw_len];
    match lz4_flex::block::decompress_into(body, &mut raw) {
        Ok(n) if n == raw_len => Ok(raw),
        Ok(n) => Err(DecodeError::Decompress(format!(
            "{n} bytes, expected {raw_len}"
        ))),
        Err(e) => Err(DecodeError::Decompress(e.to_string())),
    }
}

fn authenticate(
    head: &[u8],
    body: &[u8],
    trailer: &[u8],
    keys: Option<&FrameKeys>,
) -> Result<(), AuthFailure> {
    let keys = match (keys, trailer.is_empty()) {
        (None, true) => return Ok(()),
        (None, false) => return Err(AuthFailure::Unexpected),
        (Some(_), true) => return Err(AuthFailure::Missing),
        (Some(keys), false) => keys,
    };
    let key_id = le_u32(trailer, 8);
    let key = keys.find(key_id).ok_or(AuthFailure::UnknownKey(key_id))?;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&trailer[12..]);
    if key.verify(&[head, body, &trailer[..12]], &tag) {
        Ok(())
    } else {
        Err(AuthFailure::BadTag(key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_stay_raw_and_large_repetitive_ones_are_compressed() {
        let small = seal(b"hello");
        assert_eq!(small[6], 0);
        assert_eq!(open(&small, 1 << 20).unwrap(), b"hello");
        let big = vec![7u8; 10_000];
        let sealed = seal(&big);
        assert_eq!(sealed[6], FLAG_LZ4);
        assert!(sealed.len() < 1_000);
        assert_eq!(open(&sealed, 1 << 20).unwrap(), big);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_rejected() {
        let sealed = seal(
            &(0..2000u32)
                .flat_map(|i| (i % 97).to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        for cut in 0..sealed.len() {
            assert!(open(&sealed[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        for bit in 0..sealed.len() * 8 {
            let mut b = sealed.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&b, 1 << 20).is_err(), "flip {bit}");
        }
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused_before_allocation() {
        let mut sealed = seal(&[1u8; 64]);
        sealed[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            open(&sealed, 1 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    fn keys(secret: &[u8]) -> FrameKeys {
        FrameKeys::new(FrameKey::from_secret(secret))
    }

    fn fix_crc(b: &mut [u8]) {
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..16]);
        h.update(&b[HEADER_LEN..]);
        let crc = h.finalize();
        b[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn a_signed_envelope_opens_under_its_key_and_under_no_other_setting() {
        let k = keys(b"cluster");
        let sealed = seal_with(&[5u8; 2000], Some((k.current(), 77)));
        assert_eq!(
            open_with(&sealed, 1 << 20, Some(&k)).unwrap(),
            vec![5u8; 2000]
        );
        assert_eq!(claimed_sender(&sealed), Some(77));
        let unauth = |r| matches!(r, Err(DecodeError::Unauthenticated(_)));
        assert!(unauth(open(&sealed, 1 << 20)));
        assert!(unauth(open_with(&sealed, 1 << 20, Some(&keys(b"other")))));
        let plain = seal(b"hello");
        assert_eq!(claimed_sender(&plain), None);
        assert_eq!(
            open_with(&plain, 1 << 20, Some(&k)),
            Err(DecodeError::Unauthenticated(AuthFailure::Missing))
        );
        // The previous key of a rotation is accepted too.
        let rotated = keys(b"next").with_previous(FrameKey::from_secret(b"cluster"));
        assert!(open_with(&sealed, 1 << 20, Some(&rotated)).is_ok());
    }

    #[test]
    fn an_altered_signed_envelope_with_its_checksum_fixed_fails_the_tag() {
        let k = keys(b"cluster");
        let sealed = seal_with(b"frame body of some length", Some((k.current(), 9)));
        for at in (0..sealed.len()).filter(|&i| !(16..20).contains(&i)) {
            let mut b = sealed.clone();
            b[at] ^= 0x10;
            // A flip alone is damage: the checksum says so.
            assert!(matches!(
                open_with(&b, 1 << 20, Some(&k)),
                Err(DecodeError::ChecksumMismatch { .. }
                    | DecodeError::BadMagic { .. }
                    | DecodeError::UnsupportedVersion { .. }
                    | DecodeError::Malformed(_)
                    | DecodeError::TooLarge { .. }
                    | DecodeError::Truncated { .. })
            ));
            // A forger fixes the checksum: the tag still fails (or the structure does).
            fix_crc(&mut b);
            match open_with(&b, 1 << 20, Some(&k)) {
                Err(DecodeError::Unauthenticated(_)) => {}
                Err(DecodeError::ChecksumMismatch { .. }) => panic!("checksum fixed at {at}"),
                Err(_) => assert!(
                    at < 16,
                    "byte {at}: only a header change fails before the tag"
                ),
                Ok(_) => panic!("altered byte {at} accepted"),
            }
        }
        // Stripping the MAC (flag cleared, trailer cut, checksum fixed) does not help.
        let mut stripped = sealed[..sealed.len() - TRAILER_LEN].to_vec();
        stripped[6] &= !FLAG_MAC;
        fix_crc(&mut stripped);
        assert_eq!(
            open_with(&stripped, 1 << 20, Some(&k)),
            Err(DecodeError::Unauthenticated(AuthFailure::Missing))
        );
        // Every truncation is refused.
        for cut in 0..sealed.len() {
            assert!(open_with(&sealed[..cut], 1 << 20, Some(&k)).is_err());
        }
    }
}
