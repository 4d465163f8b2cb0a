//! [`SessionMap`]: the replica's sessions by id. Owns the two structures that index them and
//! keeps them in step: a hash map (one-shot xxh3 under a seed drawn from the OS) for the
//! point lookups every read, write and applied
//! op makes, and the ordered set of ids for the walks that need id order (snapshots, state
//! transfer, paging, the status). A lookup hashes the id once and compares it once; only a
//! session created or forgotten pays the ordered set's comparisons.
//!
//! ```text
//!  by_id:  HashMap<SessionId, SessionState>   get / get_mut / entry: one hash, one compare
//!  order:  BTreeSet<SessionId>                same ids (shared bytes), walked in id order
//! ```
//!
//! Every walk goes in id order, as the `BTreeMap` this replaces did, so what a replica does
//! does not depend on hashing.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Bound;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::crdt::{SessionId, SessionState};

/// The sessions a replica holds, by id (ended ones included until collected).
pub(crate) struct SessionMap {
    by_id: HashMap<SessionId, SessionState, SeededXxh3>,
    order: BTreeSet<SessionId>,
}

impl Default for SessionMap {
    /// Empty, hashing under a seed drawn from the OS for this map: ids a caller chooses
    /// cannot be precomputed to collide (xxh3 is no keyed PRF, but its default secret is
    /// public). Nothing depends on the hash but lookup time: every walk goes in id order.
    fn default() -> Self {
        let hasher = SeededXxh3(crate::fs::os_entropy());
        SessionMap {
            by_id: HashMap::with_hasher(hasher),
            order: BTreeSet::new(),
        }
    }
}

/// Hashes an id with one-shot xxh3 under a seed (the streaming hasher with a seed derives a
/// 192-byte secret for every hash: a tenth of a put).
#[derive(Clone, Copy)]
pub(crate) struct SeededXxh3(u64);

impl BuildHasher for SeededXxh3 {
    type Hasher = SeededHasher;

    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.0)
    }
}

/// The hasher of [`SeededXxh3`]: each write is hashed whole, seeded by what came before.
pub(crate) struct SeededHasher(u64);

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
    }

    fn write_usize(&mut self, n: usize) {
        // The length prefix of a slice: mixed in without hashing its bytes.
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl SessionMap {
    /// The session's state, if held.
    pub(crate) fn get<Q>(&self, id: &Q) -> Option<&SessionState>
    where
        SessionId: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.by_id.get(id)
    }

    /// The session's state, mutable, if held.
    pub(crate) fn get_mut<Q>(&mut self, id: &Q) -> Option<&mut SessionState>
    where
        SessionId: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.by_id.get_mut(id)
    }

    /// The session's state, an empty one made first if it is not held.
    pub(crate) fn entry_or_default(&mut self, id: &SessionId) -> &mut SessionState {
        use std::collections::hash_map::Entry;
        match self.by_id.entry(id.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                self.order.insert(id.clone());
                v.insert(SessionState::default())
            }
        }
    }

    /// Sets the session's state; the state it replaces, if any.
    pub(crate) fn insert(&mut self, id: SessionId, state: SessionState) -> Option<SessionState> {
        let old = self.by_id.insert(id.clone(), state);
        if old.is_none() {
            self.order.insert(id);
        }
        old
    }

    /// Forgets the session; its state, if it was held.
    pub(crate) fn remove<Q>(&mut self, id: &Q) -> Option<SessionState>
    where
        SessionId: Borrow<Q>,
        Q: Hash + Eq + Ord + ?Sized,
    {
        let old = self.by_id.remove(id)?;
        self.order.remove(id);
        Some(old)
    }

    /// How many sessions are held.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every session, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SessionId, &SessionState)> + '_ {
        self.order.iter().map(|id| (id, &self.by_id[id]))
    }

    /// Every id, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &SessionId> + '_ {
        self.order.iter()
    }

    /// The sessions from `lower` on, in id order.
    pub(crate) fn range_from<'a>(
        &'a self,
        lower: Bound<&SessionId>,
    ) -> impl Iterator<Item = (&'a SessionId, &'a SessionState)> + 'a {
        self.order
            .range::<SessionId, _>((lower, Bound::Unbounded))
            .map(|id| (id, &self.by_id[id]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touched() -> SessionState {
        SessionState {
            expires_at: Some(7),
            ..SessionState::default()
        }
    }

    #[test]
    fn lookups_and_walks_agree_after_inserts_and_removes() {
        let mut m = SessionMap::default();
        let ids: Vec<SessionId> = ["c", "a", "d", "b"].iter().map(|s| (*s).into()).collect();
        for id in &ids {
            m.entry_or_default(id);
        }
        assert!(m.insert("a".into(), touched()).is_some(), "a was held");
        assert!(m.remove(&b"d"[..]).is_some());
        assert!(m.remove(&b"d"[..]).is_none(), "removed once");
        assert!(m.insert("e".into(), touched()).is_none());
        let walked: Vec<&[u8]> = m.keys().map(SessionId::as_bytes).collect();
        assert_eq!(walked, [&b"a"[..], b"b", b"c", b"e"]);
        assert_eq!(m.len(), 4);
        assert_eq!(m.get(&b"a"[..]).and_then(|s| s.expires_at), Some(7));
        assert!(m.get(&b"b"[..]).is_some() && m.get(&b"d"[..]).is_none());
        let after_b: Vec<&[u8]> = m
            .range_from(Bound::Excluded(&"b".into()))
            .map(|(id, _)| id.as_bytes())
            .collect();
        assert_eq!(after_b, [&b"c"[..], b"e"]);
        m.get_mut(&b"c"[..]).unwrap().expires_at = Some(9);
        assert_eq!(m.iter().nth(2).and_then(|(_, s)| s.expires_at), Some(9));
    }
}
