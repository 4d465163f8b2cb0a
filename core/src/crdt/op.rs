//! Changes: every local change is one [`Op`] with its own [`Dot`]. An op is a small piece of
//! state (a delta): applying it to a session is a join, so applying it twice, late or out of
//! order is harmless.

use std::borrow::Borrow;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Stamp;
use crate::causal::Dot;
use crate::clock::Timestamp;

/// A session's id: opaque bytes, 1 to `Limits::max_session_id` long.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub Bytes);

impl SessionId {
    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "SessionId({s:?})"),
            _ => write!(f, "SessionId(0x{})", hex(&self.0)),
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Borrow<[u8]> for SessionId {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for SessionId {
    fn from(s: &str) -> Self {
        SessionId(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<&[u8]> for SessionId {
    fn from(s: &[u8]) -> Self {
        SessionId(Bytes::copy_from_slice(s))
    }
}

impl From<String> for SessionId {
    fn from(s: String) -> Self {
        SessionId(Bytes::from(s.into_bytes()))
    }
}

impl From<Vec<u8>> for SessionId {
    fn from(v: Vec<u8>) -> Self {
        SessionId(Bytes::from(v))
    }
}

impl From<Bytes> for SessionId {
    fn from(b: Bytes) -> Self {
        SessionId(b)
    }
}

/// One field written by a put: a value, or `None` to delete the field.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FieldWrite {
    /// The field's key.
    pub key: Bytes,
    /// The new value, or `None` for a deletion.
    pub value: Option<Bytes>,
}

/// What a change does to its session.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum OpKind {
    /// Writes (or deletes) fields, all under the op's stamp.
    Put(Vec<FieldWrite>),
    /// The origin's new totals for a counter.
    Counter {
        /// Counter key.
        key: Bytes,
        /// Origin's total of increments.
        p: u64,
        /// Origin's total of decrements.
        n: u64,
    },
    /// Adds an element to a set, tagged with the op's dot.
    SetAdd {
        /// Set key.
        key: Bytes,
        /// The element.
        elem: Bytes,
    },
    /// Removes the observed adds of an element.
    SetRemove {
        /// Set key.
        key: Bytes,
        /// The element.
        elem: Bytes,
        /// The add dots observed (and removed).
        dots: Vec<Dot>,
    },
    /// Extends the session's life to at least `deadline_ms` (Unix ms); the longest wins.
    Touch {
        /// Deadline in Unix milliseconds.
        deadline_ms: u64,
    },
    /// Ends the session for good (delete, or expiry observed).
    End,
}

/// One change to one session.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Op {
    /// The change's identity.
    pub dot: Dot,
    /// When it was made (hybrid logical clock of its origin).
    pub ts: Timestamp,
    /// The session it changes.
    pub session: SessionId,
    /// What it does.
    pub kind: OpKind,
}

impl Op {
    /// The last-writer-wins stamp of this change.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            ts: self.ts,
            dot: self.dot,
        }
    }

    /// Whether applying this op leaves a tombstone that must wait for causal stability.
    pub fn makes_tombstone(&self) -> bool {
        match &self.kind {
            OpKind::Put(writes) => writes.iter().any(|w| w.value.is_none()),
            OpKind::SetRemove { .. } | OpKind::End => true,
            OpKind::Counter { .. } | OpKind::SetAdd { .. } | OpKind::Touch { .. } => false,
        }
    }

    /// Rough encoded size in bytes, for frame budgets.
    pub fn approx_size(&self) -> usize {
        let body = match &self.kind {
            OpKind::Put(w) => w
                .iter()
                .map(|f| 4 + f.key.len() + f.value.as_ref().map_or(0, Bytes::len))
                .sum(),
            OpKind::Counter { key, .. } => key.len() + 20,
            OpKind::SetAdd { key, elem } => key.len() + elem.len() + 4,
            OpKind::SetRemove { key, elem, dots } => key.len() + elem.len() + 4 + dots.len() * 20,
            OpKind::Touch { .. } => 10,
            OpKind::End => 1,
        };
        32 + self.session.0.len() + body
    }
}
