//! Last-writer-wins register: a value (or a deletion) tagged with a [`Stamp`]; the higher
//! stamp wins. A register holding a deletion is a tombstone until it is causally stable.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Merge;
use crate::causal::Dot;
use crate::clock::Timestamp;

/// Orders concurrent writes: hybrid logical time first, then the writing op's dot (its
/// replica id breaks ties). Carrying the dot lets a tombstone learnt from a full state be
/// collected by the same causal-stability rule as one learnt from its op.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Stamp {
    /// When the write was made.
    pub ts: Timestamp,
    /// The op that made it.
    pub dot: Dot,
}

/// A last-writer-wins register over bytes; `None` is a deletion.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LwwRegister {
    /// Stamp of the winning write.
    pub stamp: Stamp,
    /// The value written, or `None` for a deletion.
    pub value: Option<Bytes>,
}

impl LwwRegister {
    /// The register holding `value` written at `stamp`.
    pub fn new(stamp: Stamp, value: Option<Bytes>) -> LwwRegister {
        LwwRegister { stamp, value }
    }

    /// Whether the register holds a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

impl Merge for LwwRegister {
    fn merge(&mut self, other: &Self) {
        // Equal stamps only happen for the same write; comparing values as well keeps merge
        // a join for any input, even forged duplicates.
        if (other.stamp, &other.value) > (self.stamp, &self.value) {
            *self = other.clone();
        }
    }
}
