//! Frame authentication: the cluster's [`FrameKeys`] and the keyed MAC every replication
//! message carries when they are configured (the envelope is drawn in `codec`).
//!
//! A *secret* (one line of an `auth_key_file`, or the text of the Erlang cookie) becomes a
//! 256-bit key with BLAKE3 in key-derivation mode:
//! `key = blake3::derive_key(KEY_CONTEXT, secret)`. The key's *id*, carried in clear in every
//! authenticated message so that the receiver knows which key to check it with, is the first
//! four bytes (little endian) of `blake3::derive_key(ID_CONTEXT, key)`: it names a key
//! without revealing it. The *tag* is `blake3::keyed_hash(key, covered bytes)`, all 32 bytes.
//!
//! Two keys are accepted at once, so a cluster rotates its key without a pause: every node
//! first accepts the new key beside the old (`[old, new]`: sign with the old), then signs with
//! it (`[new, old]`), then drops the old (`[new]`).

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// BLAKE3 context string that turns a secret into a frame key.
pub const KEY_CONTEXT: &str = "session-ha 2026-12 replication frame key v1";
/// BLAKE3 context string that turns a frame key into its public id.
pub const ID_CONTEXT: &str = "session-ha 2026-12 replication frame key id v1";
/// Bytes of a tag.
pub const TAG_LEN: usize = 32;
/// Shortest secret an `auth_key_file` line may hold, in bytes.
pub const MIN_FILE_SECRET: usize = 16;

/// One frame key: 32 secret bytes and their public id. `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameKey {
    id: u32,
    key: [u8; 32],
}

impl fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrameKey({:08x})", self.id)
    }
}

impl FrameKey {
    /// The key derived from `secret` (any bytes; see the module header).
    pub fn from_secret(secret: &[u8]) -> FrameKey {
        let key = blake3::derive_key(KEY_CONTEXT, secret);
        let digest = blake3::derive_key(ID_CONTEXT, &key);
        let id = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        FrameKey { id, key }
    }

    /// The key's public id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The tag of `parts`, taken as one run of bytes.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        for p in parts {
            h.update(p);
        }
        *h.finalize().as_bytes()
    }

    /// Whether `tag` is the tag of `parts` (compared in constant time).
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8; TAG_LEN]) -> bool {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        for p in parts {
            h.update(p);
        }
        h.finalize() == blake3::Hash::from_bytes(*tag)
    }
}

/// The keys a replica signs with (`current`) and accepts (`current` and `previous`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FrameKeys {
    current: FrameKey,
    previous: Option<FrameKey>,
}

impl FrameKeys {
    /// Signs and accepts `current` only.
    pub fn new(current: FrameKey) -> FrameKeys {
        FrameKeys {
            current,
            previous: None,
        }
    }

    /// Also accepts `previous` (during a rotation).
    pub fn with_previous(mut self, previous: FrameKey) -> FrameKeys {
        if previous != self.current {
            self.previous = Some(previous);
        }
        self
    }

    /// The keys derived from one or two secrets: the first signs, both are accepted.
    ///
    /// # Errors
    /// [`Error::AuthKey`] for no secret, more than two, or an empty one.
    pub fn from_secrets<S: AsRef<[u8]>>(secrets: &[S]) -> Result<FrameKeys> {
        let (first, rest) = match secrets {
            [first, rest @ ..] if rest.len() <= 1 => (first, rest),
            _ => {
                return Err(Error::AuthKey(format!(
                    "{} frame key secrets given: one or two (during a rotation) are needed",
                    secrets.len()
                )))
            }
        };
        if secrets.iter().any(|s| s.as_ref().is_empty()) {
            return Err(Error::AuthKey("an empty frame key secret".into()));
        }
        let keys = FrameKeys::new(FrameKey::from_secret(first.as_ref()));
        Ok(match rest.first() {
            Some(prev) => keys.with_previous(FrameKey::from_secret(prev.as_ref())),
            None => keys,
        })
    }

    /// The keys of an `auth_key_file`: one secret per line (surrounding whitespace is not
    /// part of it; empty lines and lines starting with `#` are skipped), at least
    /// [`MIN_FILE_SECRET`] bytes each; the first signs, a second is accepted too.
    ///
    /// # Errors
    /// [`Error::AuthKey`] naming the file for a file that cannot be read, has no secret or
    /// more than two, or a secret that is too short.
    pub fn from_file(path: &Path) -> Result<FrameKeys> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::AuthKey(format!("cannot read {}: {e}", path.display())))?;
        let secrets: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if let Some(short) = secrets.iter().position(|s| s.len() < MIN_FILE_SECRET) {
            return Err(Error::AuthKey(format!(
                "{}: secret {} is shorter than {MIN_FILE_SECRET} bytes",
                path.display(),
                short + 1
            )));
        }
        FrameKeys::from_secrets(&secrets)
            .map_err(|e| Error::AuthKey(format!("{}: {e}", path.display())))
    }

    /// The key messages are signed with.
    pub fn current(&self) -> &FrameKey {
        &self.current
    }

    /// The ids of every accepted key, the signing one first.
    pub fn ids(&self) -> Vec<u32> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(FrameKey::id)
            .collect()
    }

    /// The accepted key with id `id`.
    pub(crate) fn find(&self, id: u32) -> Option<&FrameKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_always_gives_the_same_key_and_different_secrets_different_ones() {
        let a = FrameKey::from_secret(b"cluster secret one");
        assert_eq!(a, FrameKey::from_secret(b"cluster secret one"));
        let b = FrameKey::from_secret(b"cluster secret two");
        assert_ne!(a, b);
        assert_ne!(a.id(), b.id());
        assert!(!format!("{a:?}").contains("cluster"));
    }

    #[test]
    fn a_tag_verifies_under_its_key_only() {
        let (a, b) = (FrameKey::from_secret(b"a"), FrameKey::from_secret(b"b"));
        let tag = a.tag(&[b"head", b"body"]);
        assert!(a.verify(&[b"headbody"], &tag));
        assert!(!b.verify(&[b"headbody"], &tag));
        assert!(!a.verify(&[b"headbodz"], &tag));
    }

    #[test]
    fn a_key_file_holds_one_or_two_secrets_of_sixteen_bytes_or_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        std::fs::write(
            &path,
            "# rotation\n  new-secret-0123456789  \n\nold-secret-0123456789\n",
        )
        .unwrap();
        let keys = FrameKeys::from_file(&path).unwrap();
        assert_eq!(
            keys.ids(),
            vec![
                FrameKey::from_secret(b"new-secret-0123456789").id(),
                FrameKey::from_secret(b"old-secret-0123456789").id()
            ]
        );
        for bad in [
            "",
            "short\n",
            "a-long-enough-secret\nb-long-enough-secret\nc-long-enough-secret\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = FrameKeys::from_file(&path).unwrap_err();
            assert!(
                matches!(err, Error::AuthKey(ref why) if why.contains("auth")),
                "{err}"
            );
        }
        let missing = FrameKeys::from_file(&dir.path().join("none")).unwrap_err();
        assert!(matches!(missing, Error::AuthKey(_)));
    }
}
