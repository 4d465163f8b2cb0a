//! [`CipherBlock`]: the 32 bytes an encrypted file carries right after its own header, naming
//! the key it was written under and the salt its file key is derived with.
//!
//! ```text
//!  0 key_id 8 │ 8 salt 16 │ 24 reserved u32 = 0 │ 28 crc32 of (file header ‖ bytes 0..28)
//! ```
//!
//! The crc covers the file's own header too, so a block cannot be moved onto another file's
//! header unnoticed, and a damaged block is damage (a checksum fails), never a missing key.

use super::keyring::KeyId;
use crate::error::DecodeError;

/// Bytes in a cipher block.
pub const CIPHER_BLOCK_LEN: usize = 32;
/// Bytes of salt.
pub(crate) const SALT_LEN: usize = 16;

/// Which key a file was encrypted under, and its salt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CipherBlock {
    /// The master key's id.
    pub key_id: KeyId,
    /// Random per file: the file key is derived from the master key and this.
    pub salt: [u8; SALT_LEN],
}

fn crc(file_header: &[u8], block: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(file_header);
    h.update(block);
    h.finalize()
}

impl CipherBlock {
    /// The block's bytes, following `file_header`.
    pub fn encode(&self, file_header: &[u8]) -> [u8; CIPHER_BLOCK_LEN] {
        let mut b = [0u8; CIPHER_BLOCK_LEN];
        b[0..8].copy_from_slice(&self.key_id.0);
        b[8..24].copy_from_slice(&self.salt);
        let c = crc(file_header, &b[..28]);
        b[28..32].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes and checks the block at the start of `bytes`, which follows `file_header`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`], [`DecodeError::ChecksumMismatch`] or
    /// [`DecodeError::Malformed`] (reserved bytes set).
    pub fn decode(file_header: &[u8], bytes: &[u8]) -> Result<CipherBlock, DecodeError> {
        let b = bytes
            .get(..CIPHER_BLOCK_LEN)
            .ok_or(DecodeError::Truncated {
                needed: CIPHER_BLOCK_LEN as u64,
                have: bytes.len() as u64,
            })?;
        let expected = u32::from_le_bytes([b[28], b[29], b[30], b[31]]);
        let actual = crc(file_header, &b[..28]);
        if expected != actual {
            return Err(DecodeError::ChecksumMismatch { expected, actual });
        }
        if b[24..28] != [0; 4] {
            return Err(DecodeError::Malformed(
                "reserved bytes of the cipher block are not zero".into(),
            ));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[0..8]);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&b[8..24]);
        Ok(CipherBlock {
            key_id: KeyId(id),
            salt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_every_bit_flip_is_caught() {
        let block = CipherBlock {
            key_id: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            salt: [9; SALT_LEN],
        };
        let header = b"file header";
        let bytes = block.encode(header);
        assert_eq!(CipherBlock::decode(header, &bytes), Ok(block));
        assert!(CipherBlock::decode(b"other header", &bytes).is_err());
        for bit in 0..CIPHER_BLOCK_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(CipherBlock::decode(header, &b).is_err(), "bit {bit}");
        }
        assert!(matches!(
            CipherBlock::decode(header, &bytes[..10]),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
