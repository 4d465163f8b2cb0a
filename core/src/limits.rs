//! Size limits: what a single write, a session and a frame may hold.
//!
//! Local writes over a limit are refused with a typed error. Frames and files are decoded
//! against the same limits, so a length over a limit is rejected before anything is
//! allocated for it. Every replica of a cluster must run with the same limits: a frame whose
//! content exceeds the receiver's limits is rejected as malformed.

use crate::error::{Error, Result};

/// Size limits. `Limits::default()` suits erlmcp sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest session id, in bytes.
    pub max_session_id: usize,
    /// Longest field, counter or set key, in bytes.
    pub max_key: usize,
    /// Largest field value or set element, in bytes.
    pub max_value: usize,
    /// Most entries (fields + counters + set elements) in one session.
    pub max_fields: usize,
    /// Most live bytes (keys + values + elements) in one session.
    pub max_session_bytes: usize,
    /// Largest encoded frame, in bytes (before and after compression).
    pub max_frame: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_session_id: 256,
            max_key: 256,
            max_value: 256 * 1024,
            max_fields: 4096,
            max_session_bytes: 4 * 1024 * 1024,
            max_frame: 64 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks a session id's length.
    ///
    /// # Errors
    /// [`Error::InvalidSessionId`] when empty or too long.
    pub fn check_session_id(&self, id: &[u8]) -> Result<()> {
        if id.is_empty() || id.len() > self.max_session_id {
            return Err(Error::InvalidSessionId {
                len: id.len(),
                max: self.max_session_id,
            });
        }
        Ok(())
    }

    /// Checks a key's length.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when empty or too long.
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() || key.len() > self.max_key {
            return Err(Error::InvalidKey {
                len: key.len(),
                max: self.max_key,
            });
        }
        Ok(())
    }

    /// Checks a value's length.
    ///
    /// # Errors
    /// [`Error::ValueTooLarge`] when too long.
    pub fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.max_value {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.max_value,
            });
        }
        Ok(())
    }
}
