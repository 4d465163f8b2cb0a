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
//! `raw_len == body_len`). `crc32` covers bytes 0..16 and the body. The raw body is the
//! bincode encoding (varint integers) of the message. Decoding checks, in order: length,
//! magic, version, flags, both lengths against the limit, checksum, decompression, bincode
//! (with a byte limit, so no declared length can allocate more than the input), trailing
//! bytes; then the caller validates the content.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DecodeError;

/// Magic bytes of a replication message.
pub const MAGIC: [u8; 4] = *b"SHAF";
/// Envelope format version written by this build. Version 2 frames carry boots, the
/// receiver, per-entry dots and repairs that name absent sessions; version 1 is refused.
pub const VERSION: u16 = 2;
/// Bytes in the envelope header.
pub const HEADER_LEN: usize = 20;
const FLAG_LZ4: u8 = 1;
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

/// Wraps an encoded body in an envelope, compressing it when that saves at least 1/8.
pub fn seal(raw: &[u8]) -> Vec<u8> {
    let compressed = if raw.len() >= COMPRESS_MIN {
        let c = lz4_flex::block::compress(raw);
        (c.len() < raw.len() - raw.len() / 8).then_some(c)
    } else {
        None
    };
    let (flags, body) = match &compressed {
        Some(c) => (FLAG_LZ4, c.as_slice()),
        None => (0, raw),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(flags);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..16]);
    h.update(body);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// Checks an envelope and returns its raw (decompressed) body.
///
/// # Errors
/// A [`DecodeError`] naming the first check that failed.
pub fn open(bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
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
    if flags & !FLAG_LZ4 != 0 || bytes[7] != 0 {
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
    let have = bytes.len() - HEADER_LEN;
    if have < body_len {
        return Err(DecodeError::Truncated {
            needed: (HEADER_LEN + body_len) as u64,
            have: bytes.len() as u64,
        });
    }
    if have > body_len {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            have - body_len
        )));
    }
    let body = &bytes[HEADER_LEN..];
    let expected = le_u32(bytes, 16);
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..16]);
    h.update(body);
    let actual = h.finalize();
    if expected != actual {
        return Err(DecodeError::ChecksumMismatch { expected, actual });
    }
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
}
