//! [`FileCipher`]: AES-256-GCM under one file's key. A file key is
//! `blake3::derive_key(FILE_KEY_CONTEXT, master key ‖ salt)`; the caller supplies a nonce that
//! is unique within the file (the formats use a counter: a WAL record's seq, a snapshot
//! chunk's index) and associated data binding the plaintext framing.
//!
//! ```text
//!  sealed = ciphertext (len of plaintext) ‖ tag (16)
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit, Tag};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use parking_lot::Mutex;

use super::block::{CipherBlock, SALT_LEN};
use super::keyring::{KeyId, KeyRing, MASTER_KEY_LEN};
use crate::error::{Error, Result};
use crate::fs::Vfs;

/// Bytes the GCM tag adds to every sealed body or chunk.
pub const TAG_LEN: usize = 16;

/// blake3 `derive_key` context of file keys.
const FILE_KEY_CONTEXT: &str = "session-ha 2026-12 encryption at rest: file key";

/// Every (file key, nonce) pair sealed under a ring, for tests that prove none repeats.
/// The file key is recorded as a blake3 hash of it, never as itself.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct NonceLog {
    pairs: Mutex<Vec<([u8; 16], [u8; 12])>>,
}

impl NonceLog {
    /// Every pair sealed so far, in order.
    pub fn pairs(&self) -> Vec<([u8; 16], [u8; 12])> {
        self.pairs.lock().clone()
    }
}

/// AES-256-GCM under one file's key.
pub struct FileCipher {
    block: CipherBlock,
    aead: Aes256Gcm,
    log: Option<(Arc<NonceLog>, [u8; 16])>,
}

impl fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCipher")
            .field("key_id", &self.block.key_id)
            .finish()
    }
}

fn derive(master: &[u8; MASTER_KEY_LEN], salt: &[u8; SALT_LEN]) -> [u8; 32] {
    let mut material = [0u8; MASTER_KEY_LEN + SALT_LEN];
    material[..MASTER_KEY_LEN].copy_from_slice(master);
    material[MASTER_KEY_LEN..].copy_from_slice(salt);
    let key = blake3::derive_key(FILE_KEY_CONTEXT, &material);
    material = [0; MASTER_KEY_LEN + SALT_LEN];
    std::hint::black_box(&material);
    key
}

impl FileCipher {
    fn with_key(ring: &KeyRing, block: CipherBlock, master: &[u8; MASTER_KEY_LEN]) -> FileCipher {
        let mut file_key = derive(master, &block.salt);
        let aead = Aes256Gcm::new(&Key::<Aes256Gcm>::from(file_key));
        let log = ring.nonce_log().map(|log| {
            let mut fp = [0u8; 16];
            fp.copy_from_slice(&blake3::hash(&file_key).as_bytes()[..16]);
            (log, fp)
        });
        file_key = [0; 32];
        std::hint::black_box(&file_key);
        FileCipher { block, aead, log }
    }

    /// A cipher for a new file under the ring's current key, with a fresh salt from `fs`'s
    /// entropy (the OS's random numbers on the real disk; a seeded sequence in simulations).
    pub fn create(ring: &KeyRing, fs: &dyn Vfs) -> FileCipher {
        let mut salt = [0u8; SALT_LEN];
        salt[..8].copy_from_slice(&fs.entropy().to_le_bytes());
        salt[8..].copy_from_slice(&fs.entropy().to_le_bytes());
        let (key_id, master) = match ring.current() {
            Some(c) => c,
            None => (KeyId([0; 8]), &[0u8; MASTER_KEY_LEN]),
        };
        FileCipher::with_key(ring, CipherBlock { key_id, salt }, master)
    }

    /// The cipher of an existing file whose header holds `block`.
    ///
    /// # Errors
    /// [`Error::MissingKey`] naming `path` and the key id when no key is configured or the
    /// ring lacks that key.
    pub fn open(ring: Option<&KeyRing>, block: CipherBlock, path: &Path) -> Result<FileCipher> {
        match ring.and_then(|r| r.key(block.key_id).map(|k| (r, k))) {
            Some((ring, master)) => Ok(FileCipher::with_key(ring, block, master)),
            None => Err(Error::MissingKey {
                path: path.to_path_buf(),
                key_id: block.key_id,
                configured: ring.map(KeyRing::ids).unwrap_or_default(),
            }),
        }
    }

    /// The block the file's header carries.
    pub fn block(&self) -> CipherBlock {
        self.block
    }

    /// The id of the key the file is encrypted under.
    pub fn key_id(&self) -> KeyId {
        self.block.key_id
    }

    /// Encrypts `buf[from..]` in place and appends the tag.
    pub fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>, from: usize) {
        if let Some((log, fp)) = &self.log {
            log.pairs.lock().push((*fp, nonce));
        }
        let nonce = Nonce::from(nonce);
        let tag = match buf.get_mut(from..) {
            Some(plain) => self.aead.encrypt_inout_detached(&nonce, aad, plain.into()),
            None => return,
        };
        match tag {
            Ok(tag) => buf.extend_from_slice(tag.as_slice()),
            // Only for plaintexts over 64 GiB, which no caller builds: leave a tag that can
            // never verify rather than plaintext.
            Err(_) => {
                buf.truncate(from);
                buf.extend_from_slice(&[0u8; TAG_LEN]);
            }
        }
    }

    /// Decrypts `sealed` (ciphertext ‖ tag); `None` when the tag does not verify (the bytes
    /// were changed, or were sealed under another key or nonce).
    pub fn unseal(&self, nonce: [u8; 12], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let split = sealed.len().checked_sub(TAG_LEN)?;
        let (ct, tag) = sealed.split_at(split);
        let tag = Tag::<Aes256Gcm>::try_from(tag).ok()?;
        let mut plain = ct.to_vec();
        self.aead
            .decrypt_inout_detached(&Nonce::from(nonce), aad, plain.as_mut_slice().into(), &tag)
            .ok()?;
        Some(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FaultyFs;

    fn ring(byte: u8) -> KeyRing {
        KeyRing::new([byte; 32], []).unwrap()
    }

    #[test]
    fn seal_then_unseal_round_trips_and_binds_nonce_aad_and_key() {
        let fs = FaultyFs::with_seed(1);
        let r = ring(7);
        let c = FileCipher::create(&r, &fs);
        let mut buf = b"head".to_vec();
        buf.extend_from_slice(b"secret session");
        c.seal([1; 12], b"aad", &mut buf, 4);
        assert_eq!(buf.len(), 4 + 14 + TAG_LEN);
        assert!(!buf.windows(6).any(|w| w == b"secret"));
        let sealed = &buf[4..];
        assert_eq!(
            c.unseal([1; 12], b"aad", sealed).unwrap(),
            b"secret session"
        );
        assert!(c.unseal([2; 12], b"aad", sealed).is_none());
        assert!(c.unseal([1; 12], b"AAD", sealed).is_none());
        let mut flipped = sealed.to_vec();
        flipped[3] ^= 1;
        assert!(c.unseal([1; 12], b"aad", &flipped).is_none());
        assert!(c.unseal([1; 12], b"aad", &sealed[..10]).is_none());
        // The same block under the same key reads it; under another key it does not verify.
        let again = FileCipher::open(Some(&r), c.block(), Path::new("f")).unwrap();
        assert!(again.unseal([1; 12], b"aad", sealed).is_some());
        let other = KeyRing::new([8; 32], [[7; 32]]).unwrap();
        let forged = CipherBlock {
            key_id: other.current_id(),
            ..c.block()
        };
        let wrong = FileCipher::open(Some(&other), forged, Path::new("f")).unwrap();
        assert!(wrong.unseal([1; 12], b"aad", sealed).is_none());
    }

    #[test]
    fn a_key_the_ring_lacks_is_missing_key_naming_file_and_id() {
        let fs = FaultyFs::with_seed(2);
        let c = FileCipher::create(&ring(1), &fs);
        let e = FileCipher::open(Some(&ring(2)), c.block(), Path::new("/d/f")).unwrap_err();
        let id = c.key_id();
        assert!(matches!(&e, Error::MissingKey { key_id, .. } if *key_id == id));
        assert!(e.to_string().contains(&id.to_string()), "{e}");
        let e = FileCipher::open(None, c.block(), Path::new("/d/f")).unwrap_err();
        assert!(matches!(e, Error::MissingKey { ref configured, .. } if configured.is_empty()));
    }

    #[test]
    fn each_new_file_gets_its_own_salt() {
        let fs = crate::fs::OsFs;
        let r = ring(3);
        let a = FileCipher::create(&r, &fs).block().salt;
        let b = FileCipher::create(&r, &fs).block().salt;
        assert_ne!(a, b);
    }
}
