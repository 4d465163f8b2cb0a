//! Digests: an order-independent 128-bit digest per session, summed (wrapping) into a fixed
//! tree of buckets ([`DigestTree`]) that is updated on every change. Equal roots mean
//! consistent replicas; differing buckets pinpoint the sessions.
//!
//! A session's digest is itself a wrapping sum: a base term for the session id plus one
//! xxh3-128 term per live entry (each field with its stamp and value, each counter total,
//! each live set element with its add dot, the expiry deadline), every term seeded with a hash
//! of the session id so equal entries of different sessions never cancel out. An op changes
//! a few entries, so its digest update costs a few small hashes ([`entry_terms`]) instead of a
//! pass over the whole session. Tombstones are not hashed: a replica that already collected a
//! tombstone and one that has not yet agree. An ended session's digest is zero (absent).

mod entries;
mod tree;

use serde::{Deserialize, Serialize};

use crate::crdt::{SessionId, SessionState};

pub(crate) use entries::{base_term, entry_terms, seed_of, state_terms};
pub use tree::{DigestTree, LEAVES, LEAVES_PER_MID, MIDS};

/// A 128-bit digest. Zero means "absent" (no session, an ended one, or one without content).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Digest(pub u128);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({:032x})", self.0)
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The digest of one session computed from scratch (see the module doc); zero when ended
/// or without content (both read as absent).
pub fn session_digest(id: &SessionId, state: &SessionState) -> Digest {
    if !state.has_content() {
        return Digest(0);
    }
    let seed = seed_of(id);
    Digest(base_term(seed).wrapping_add(state_terms(seed, state)))
}
