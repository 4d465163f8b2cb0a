//! [`KeyRing`]: the master keys a store may use, loaded from a key file, and [`KeyId`], the
//! fingerprint by which an encrypted file names the key it was written under.
//!
//! ```text
//!  # session-ha keys: first line is the current key
//!  4f1c...64 hex chars...e2      <- current: every new file is encrypted under it
//!  9a07...64 hex chars...31      <- older: still accepted for reading until compacted away
//! ```
//!
//! Key bytes live only here and in the ciphers derived from them: `Debug` and every error
//! show key ids, never keys.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::cipher::NonceLog;
use crate::error::{Error, Result};

/// Bytes in a master key (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// blake3 `derive_key` context of key ids.
const KEY_ID_CONTEXT: &str = "session-ha 2026-12 encryption at rest: key id";

/// Largest key file read (a few thousand keys): a larger file is not a key file.
const MAX_KEY_FILE: u64 = 1 << 20;

/// The fingerprint of a master key: the first 8 bytes of blake3 `derive_key` under a context
/// of its own, so it reveals nothing of the key and differs from every file key. Shown as 16
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &[u8; MASTER_KEY_LEN]) -> KeyId {
        let d = blake3::derive_key(KEY_ID_CONTEXT, key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// One master key. Overwritten with zeros when dropped (best effort: copies the compiler
/// made while moving it are not reached).
struct MasterKey {
    id: KeyId,
    bytes: [u8; MASTER_KEY_LEN],
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes = [0; MASTER_KEY_LEN];
        std::hint::black_box(&self.bytes);
    }
}

/// The master keys a store encrypts and decrypts with: the first is the current key (every
/// new file is encrypted under it), the others are older keys still accepted for reading
/// (rotation: files written under them stay readable until compaction rewrites them under
/// the current key). Cheap to clone (shared). `Debug` shows key ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<Vec<MasterKey>>,
    log: Option<Arc<NonceLog>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current_id())
            .field("older", &&self.ids()[1..])
            .finish()
    }
}

/// Two rings are equal when they hold keys with the same ids in the same order.
impl PartialEq for KeyRing {
    fn eq(&self, other: &KeyRing) -> bool {
        self.ids() == other.ids()
    }
}

impl Eq for KeyRing {}

impl KeyRing {
    /// A ring of `current` followed by `older` keys.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a key appears twice.
    pub fn new(
        current: [u8; MASTER_KEY_LEN],
        older: impl IntoIterator<Item = [u8; MASTER_KEY_LEN]>,
    ) -> Result<KeyRing> {
        let mut keys: Vec<MasterKey> = Vec::new();
        for bytes in std::iter::once(current).chain(older) {
            let id = KeyId::of(&bytes);
            if keys.iter().any(|k| k.id == id) {
                return Err(Error::InvalidArgument(format!(
                    "key {id} appears twice in the key ring"
                )));
            }
            keys.push(MasterKey { id, bytes });
        }
        Ok(KeyRing {
            keys: Arc::new(keys),
            log: None,
        })
    }

    /// Reads a key file (see the module doc): one key per line as 64 hex digits, the first
    /// the current key; blank lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// [`Error::BadKeyFile`] naming the file (and the line) when it cannot be read, holds no
    /// key, or a line is not 64 hex digits; never shows what the line held.
    pub fn from_file(path: impl AsRef<Path>) -> Result<KeyRing> {
        let path = path.as_ref();
        let bad = |reason: String| Error::BadKeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| bad(format!("cannot read it: {e}")))?
            .len();
        if len > MAX_KEY_FILE {
            return Err(bad(format!("{len} bytes is too large for a key file")));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        KeyRing::parse(&text).map_err(|e| match e {
            Error::BadKeyFile { reason, .. } => bad(reason),
            other => bad(other.to_string()),
        })
    }

    /// Parses the text of a key file (see [`KeyRing::from_file`]).
    ///
    /// # Errors
    /// [`Error::BadKeyFile`] (with an empty path) naming the offending line.
    pub fn parse(text: &str) -> Result<KeyRing> {
        let bad = |reason: String| Error::BadKeyFile {
            path: Default::default(),
            reason,
        };
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(parse_hex_key(line).ok_or_else(|| {
                bad(format!(
                    "line {} is not a key: expected 64 hex digits, found {} characters",
                    n + 1,
                    line.chars().count()
                ))
            })?);
        }
        let mut keys = keys.into_iter();
        let current = keys.next().ok_or_else(|| bad("it holds no key".into()))?;
        KeyRing::new(current, keys).map_err(|e| bad(e.to_string()))
    }

    /// This ring, recording every (file key, nonce) pair sealed under it into the returned
    /// log: for tests that prove no nonce repeats under one key.
    #[doc(hidden)]
    pub fn with_nonce_log(&self) -> (KeyRing, Arc<NonceLog>) {
        let log = Arc::new(NonceLog::default());
        let ring = KeyRing {
            keys: Arc::clone(&self.keys),
            log: Some(Arc::clone(&log)),
        };
        (ring, log)
    }

    pub(crate) fn nonce_log(&self) -> Option<Arc<NonceLog>> {
        self.log.clone()
    }

    /// The id of the current key (the one new files are encrypted under).
    pub fn current_id(&self) -> KeyId {
        self.keys.first().map_or(KeyId([0; 8]), |k| k.id)
    }

    /// Every key id, current first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// Whether the ring holds the key with `id`.
    pub fn holds(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// The key with `id`, for deriving a file key.
    pub(crate) fn key(&self, id: KeyId) -> Option<&[u8; MASTER_KEY_LEN]> {
        self.keys.iter().find(|k| k.id == id).map(|k| &k.bytes)
    }

    /// The current key.
    pub(crate) fn current(&self) -> Option<(KeyId, &[u8; MASTER_KEY_LEN])> {
        self.keys.first().map(|k| (k.id, &k.bytes))
    }
}

fn parse_hex_key(s: &str) -> Option<[u8; MASTER_KEY_LEN]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * MASTER_KEY_LEN {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut key = [0u8; MASTER_KEY_LEN];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        key[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "ffeeddccbbaa99887766554433221100FFEEDDCCBBAA99887766554433221100";

    #[test]
    fn a_key_file_with_comments_and_two_keys_parses_current_first() {
        let ring = KeyRing::parse(&format!("# keys\n\n{K2}\n  {K1}  \n# end\n")).unwrap();
        assert_eq!(ring.ids().len(), 2);
        let k1 = parse_hex_key(K1).unwrap();
        let k2 = parse_hex_key(K2).unwrap();
        assert_eq!(ring.current_id(), KeyId::of(&k2));
        assert!(ring.holds(KeyId::of(&k1)));
        assert_eq!(ring.key(KeyId::of(&k1)), Some(&k1));
    }

    #[test]
    fn bad_lines_name_the_line_and_never_show_it() {
        let e = KeyRing::parse(&format!("{K1}\nnot-a-key-secret\n")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::BadKeyFile { .. }));
        assert!(msg.contains("line 2"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        assert!(matches!(
            KeyRing::parse("# nothing\n"),
            Err(Error::BadKeyFile { .. })
        ));
        assert!(KeyRing::parse(&format!("{K1}\n{K1}\n")).is_err());
        assert!(KeyRing::parse(&K1[..63]).is_err());
        assert!(KeyRing::parse(&format!("{}g", &K1[..63])).is_err());
    }

    #[test]
    fn debug_and_ids_never_show_key_bytes() {
        let ring = KeyRing::parse(K1).unwrap();
        let shown = format!("{ring:?} {}", ring.current_id());
        assert!(!shown.contains("0001020304"), "{shown}");
        assert_eq!(ring.current_id().to_string().len(), 16);
    }

    #[test]
    fn key_id_golden_value() {
        // Pinned: files name their key by this id, so it must never change.
        let id = KeyId::of(&parse_hex_key(K1).unwrap());
        let d = blake3::derive_key(KEY_ID_CONTEXT, &parse_hex_key(K1).unwrap());
        assert_eq!(id.0, d[..8]);
        assert_eq!(
            KEY_ID_CONTEXT,
            "session-ha 2026-12 encryption at rest: key id"
        );
    }

    #[test]
    fn from_file_reports_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope.key");
        let e = KeyRing::from_file(&missing).unwrap_err();
        assert!(matches!(&e, Error::BadKeyFile { path, .. } if *path == missing));
        let good = tmp.path().join("k");
        std::fs::write(&good, format!("{K1}\n")).unwrap();
        assert!(KeyRing::from_file(&good).is_ok());
    }
}
