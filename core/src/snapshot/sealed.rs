//! The encrypted layer of a snapshot (and backup) file: where the cipher block goes and how a
//! chunk's payload is sealed. The chunk framing, the footer and every checksum stay as in a
//! plain file (`format.rs`), computed over what is stored, so damage is told from a missing
//! key without the key.
//!
//! ```text
//! header (32 bytes, flags bit 0 set) ‖ cipher block (32 bytes: key id, salt, crc32 over the
//!                                                     header and the block's bytes 0..28)
//! chunk i of n
//!   0 raw_len u32  4 comp_len u32 (lz4 length + 16)  8 crc32 of bytes 0..8 and the payload
//!   12 payload: AES-256-GCM(lz4 block) ‖ tag 16, under the file key
//!      nonce = i u64 ‖ 0 0 0 ‖ last u8 (1 for i = n - 1, else 0)      (little endian)
//!      aad   = bytes 0..8
//! footer (32 bytes, as in a plain file)
//! ```
//!
//! The index in the nonce makes a chunk moved, dropped or repeated fail its tag; the `last`
//! byte makes a file cut after a whole chunk (with its footer rewritten) fail too: the chunk
//! that became the last was sealed as not being the last (the STREAM construction of Hoang,
//! Reyhanitabar, Rogaway and Vizár). A file is written once by one writer with a fresh salt,
//! and each index is sealed once, so no nonce repeats under a file key.

use super::format::{frame_chunk, CHUNK_HEADER_LEN};
use crate::crypto::{FileCipher, TAG_LEN};

fn nonce(index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&u64::from(index).to_le_bytes());
    n[11] = u8::from(last);
    n
}

/// Compresses and seals chunk `index` (`last` when no chunk follows); returns its bytes
/// (header and sealed payload) and its crc.
pub(crate) fn seal_chunk(
    cipher: &FileCipher,
    index: u32,
    last: bool,
    raw: &[u8],
) -> (Vec<u8>, u32) {
    let mut payload = lz4_flex::block::compress(raw);
    let mut aad = [0u8; 8];
    aad[..4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
    aad[4..].copy_from_slice(&((payload.len() + TAG_LEN) as u32).to_le_bytes());
    cipher.seal(nonce(index, last), &aad, &mut payload, 0);
    frame_chunk(raw.len(), &payload)
}

/// The lz4 block inside the sealed `payload` of chunk `index` whose header is `header`;
/// `None` when the tag does not verify.
pub(crate) fn unseal_chunk(
    cipher: &FileCipher,
    index: u32,
    last: bool,
    header: &[u8; CHUNK_HEADER_LEN],
    payload: &[u8],
) -> Option<Vec<u8>> {
    cipher.unseal(nonce(index, last), &header[..8], payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyRing;
    use crate::fs::FaultyFs;

    #[test]
    fn a_chunk_opens_only_at_its_index_and_with_its_last_flag() {
        let ring = KeyRing::new([3; 32], []).unwrap();
        let cipher = FileCipher::create(&ring, &FaultyFs::with_seed(5));
        let raw = b"sessions sessions sessions".repeat(10);
        let (bytes, _) = seal_chunk(&cipher, 2, false, &raw);
        let mut header = [0u8; CHUNK_HEADER_LEN];
        header.copy_from_slice(&bytes[..CHUNK_HEADER_LEN]);
        let payload = &bytes[CHUNK_HEADER_LEN..];
        let lz4 = unseal_chunk(&cipher, 2, false, &header, payload).unwrap();
        assert_eq!(lz4_flex::block::decompress(&lz4, raw.len()).unwrap(), raw);
        assert!(unseal_chunk(&cipher, 3, false, &header, payload).is_none());
        assert!(unseal_chunk(&cipher, 2, true, &header, payload).is_none());
    }
}
