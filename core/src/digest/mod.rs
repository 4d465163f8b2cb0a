//! Digests: an order-independent 128-bit digest per session over its canonical live state,
//! summed (wrapping) into a fixed tree of buckets ([`DigestTree`]) that is updated on every
//! change. Equal roots mean consistent replicas; differing buckets pinpoint the sessions.

mod tree;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::crdt::{SessionId, SessionState};

pub use tree::{DigestTree, LEAVES};

/// A 128-bit digest. Zero means "absent" (no session, or an ended one).
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

struct HashSink(Xxh3);

impl crate::crdt::Sink for HashSink {
    fn put(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The digest of one session: xxh3-128 over its id and its canonical live state; zero when
/// the session has ended (so an ended session and a collected one agree).
pub fn session_digest(id: &SessionId, state: &SessionState) -> Digest {
    if state.is_ended() {
        return Digest(0);
    }
    let mut sink = HashSink(Xxh3::new());
    crate::crdt::Sink::put_bytes(&mut sink, id.as_bytes());
    state.write_canonical(&mut sink);
    match sink.0.digest128() {
        0 => Digest(1), // zero is reserved for "absent"
        d => Digest(d),
    }
}
