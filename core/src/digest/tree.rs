//! The digest tree: [`LEAVES`] leaf buckets (by a hash of the session id), [`MIDS`] middle
//! buckets of [`LEAVES_PER_MID`] leaves each, and a root; each node is the wrapping sum of
//! the digests below it, so any change updates three sums and no scan is ever needed. Two
//! replicas compare top down: root, then the middle sums, then the leaves under the middle
//! buckets that differ, then the session digests in the leaves that differ.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::xxh3_64;

use super::Digest;
use crate::crdt::SessionId;

/// Number of leaf buckets.
pub const LEAVES: usize = 1 << 16;
/// Number of middle buckets (each sums [`LEAVES_PER_MID`] leaves).
pub const MIDS: usize = 256;
/// Leaves under one middle bucket.
pub const LEAVES_PER_MID: usize = LEAVES / MIDS;

/// Incrementally maintained sums of session digests.
#[derive(Clone)]
pub struct DigestTree {
    root: u128,
    mids: Vec<u128>,
    leaves: Vec<u128>,
    /// Keyed by leaf, then the id's 64-bit hash, then the id: lookups compare integers and
    /// reach the id bytes only on a hash tie.
    members: BTreeMap<(u16, u64, SessionId), u128>,
}

impl Default for DigestTree {
    fn default() -> Self {
        DigestTree {
            root: 0,
            mids: vec![0; MIDS],
            leaves: vec![0; LEAVES],
            members: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for DigestTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestTree")
            .field("root", &Digest(self.root))
            .field("sessions", &self.members.len())
            .finish()
    }
}

/// The members key of a session id: its leaf, its hash, the id.
fn key_of(id: &SessionId) -> (u16, u64, SessionId) {
    let h = xxh3_64(id.as_bytes());
    ((h >> 48) as u16, h, id.clone())
}

impl DigestTree {
    /// An empty tree.
    pub fn new() -> DigestTree {
        DigestTree::default()
    }

    /// Sets the digest of session `id` (zero removes it).
    pub fn update(&mut self, id: &SessionId, digest: Digest) {
        let key = key_of(id);
        let leaf = key.0;
        let old = if digest.0 == 0 {
            self.members.remove(&key).unwrap_or(0)
        } else {
            self.members.insert(key, digest.0).unwrap_or(0)
        };
        self.add_to_sums(leaf, digest.0.wrapping_sub(old));
    }

    /// Changes the digest of session `id` to `f(old)` (old is zero when absent) with one
    /// lookup; a result of zero removes it.
    pub fn adjust(&mut self, id: &SessionId, f: impl FnOnce(u128) -> u128) {
        use std::collections::btree_map::Entry;
        let key = key_of(id);
        let leaf = key.0;
        let (old, new) = match self.members.entry(key) {
            Entry::Occupied(mut e) => {
                let old = *e.get();
                let new = f(old);
                if new == 0 {
                    e.remove();
                } else {
                    *e.get_mut() = new;
                }
                (old, new)
            }
            Entry::Vacant(e) => {
                let new = f(0);
                if new != 0 {
                    e.insert(new);
                }
                (0, new)
            }
        };
        self.add_to_sums(leaf, new.wrapping_sub(old));
    }

    fn add_to_sums(&mut self, leaf: u16, delta: u128) {
        let l = leaf as usize;
        self.leaves[l] = self.leaves[l].wrapping_add(delta);
        self.mids[l / MIDS] = self.mids[l / MIDS].wrapping_add(delta);
        self.root = self.root.wrapping_add(delta);
    }

    /// Sets the digests of many sessions at once (each id once; zero digests are skipped):
    /// sorted and bulk-built when the tree is empty, which is much faster than one insert
    /// each.
    pub fn load(&mut self, digests: Vec<(SessionId, Digest)>) {
        if !self.members.is_empty() {
            for (id, d) in digests {
                self.update(&id, d);
            }
            return;
        }
        let mut keyed: Vec<((u16, u64, SessionId), u128)> = digests
            .into_iter()
            .filter(|(_, d)| d.0 != 0)
            .map(|(id, d)| (key_of(&id), d.0))
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((leaf, _, _), d) in &keyed {
            self.add_to_sums(*leaf, *d);
        }
        self.members = keyed.into_iter().collect();
    }

    /// The digest of session `id` (zero when absent).
    pub fn get(&self, id: &SessionId) -> Digest {
        let key = key_of(id);
        Digest(self.members.get(&key).copied().unwrap_or(0))
    }

    /// The root: equal roots mean equal live state (up to a 2^-128 chance).
    pub fn root(&self) -> Digest {
        Digest(self.root)
    }

    /// Number of sessions with a digest (live or expired, not ended).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no session has a digest.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// All leaf sums, in bucket order (what a remote replica needs to find differing buckets).
    pub fn leaves(&self) -> &[u128] {
        &self.leaves
    }

    /// Leaf buckets whose sums differ from `theirs` (a peer's [`DigestTree::leaves`]); a
    /// vector of the wrong length differs everywhere.
    pub fn differing_leaves(&self, theirs: &[u128]) -> Vec<u16> {
        if theirs.len() != LEAVES {
            return (0..LEAVES).map(|l| l as u16).collect();
        }
        (0..LEAVES)
            .filter(|&l| self.leaves[l] != theirs[l])
            .map(|l| l as u16)
            .collect()
    }

    /// All middle sums, in bucket order: the first step of a comparison over the wire (4 KiB
    /// instead of the leaves' 1 MiB).
    pub fn mids(&self) -> &[u128] {
        &self.mids
    }

    /// Middle buckets whose sums differ from `theirs` (a peer's [`DigestTree::mids`]); a
    /// vector of the wrong length differs everywhere.
    pub fn differing_mids(&self, theirs: &[u128]) -> Vec<u8> {
        if theirs.len() != MIDS {
            return (0..MIDS).map(|m| m as u8).collect();
        }
        (0..MIDS)
            .filter(|&m| self.mids[m] != theirs[m])
            .map(|m| m as u8)
            .collect()
    }

    /// The leaf sums under the given middle buckets, [`LEAVES_PER_MID`] per bucket, in the
    /// order given.
    pub fn leaves_under(&self, mids: &[u8]) -> Vec<u128> {
        mids.iter()
            .flat_map(|&m| {
                let from = usize::from(m) * LEAVES_PER_MID;
                self.leaves[from..from + LEAVES_PER_MID].iter().copied()
            })
            .collect()
    }

    /// Leaves under `mids` whose sums differ from `theirs` (a peer's
    /// [`DigestTree::leaves_under`] of the same `mids`); a vector of the wrong length differs
    /// everywhere under them.
    pub fn differing_leaves_under(&self, mids: &[u8], theirs: &[u128]) -> Vec<u16> {
        let mine = self.leaves_under(mids);
        let leaf_of = |i: usize| {
            let m = usize::from(mids[i / LEAVES_PER_MID]);
            (m * LEAVES_PER_MID + i % LEAVES_PER_MID) as u16
        };
        if theirs.len() != mine.len() {
            return (0..mine.len()).map(leaf_of).collect();
        }
        (0..mine.len())
            .filter(|&i| mine[i] != theirs[i])
            .map(leaf_of)
            .collect()
    }

    /// The sessions and digests in the given leaf buckets.
    pub fn entries(&self, leaves: &[u16]) -> Vec<(SessionId, Digest)> {
        let mut out = Vec::new();
        for &leaf in leaves {
            let start = (leaf, 0, SessionId(bytes::Bytes::new()));
            for ((l, _, id), d) in self.members.range(start..) {
                if *l != leaf {
                    break;
                }
                out.push((id.clone(), Digest(*d)));
            }
        }
        out
    }

    /// Sessions whose digests differ between two entry lists (each from [`Self::entries`]
    /// over the same buckets), sorted.
    pub fn diff_entries(
        mine: &[(SessionId, Digest)],
        theirs: &[(SessionId, Digest)],
    ) -> Vec<SessionId> {
        let a: BTreeMap<&SessionId, Digest> = mine.iter().map(|(i, d)| (i, *d)).collect();
        let b: BTreeMap<&SessionId, Digest> = theirs.iter().map(|(i, d)| (i, *d)).collect();
        let mut out: Vec<SessionId> = a
            .iter()
            .filter(|(id, d)| b.get(*id) != Some(d))
            .map(|(id, _)| (*id).clone())
            .collect();
        out.extend(
            b.keys()
                .filter(|id| !a.contains_key(*id))
                .map(|id| (*id).clone()),
        );
        out.sort();
        out
    }

    /// Exactly the sessions whose digests differ between two trees, sorted.
    pub fn diff(&self, other: &DigestTree) -> Vec<SessionId> {
        if self.root == other.root {
            return Vec::new();
        }
        let mut leaves = Vec::new();
        for m in 0..MIDS {
            if self.mids[m] == other.mids[m] {
                continue;
            }
            for l in m * MIDS..(m + 1) * MIDS {
                if self.leaves[l] != other.leaves[l] {
                    leaves.push(l as u16);
                }
            }
        }
        Self::diff_entries(&self.entries(&leaves), &other.entries(&leaves))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> SessionId {
        SessionId::from(format!("s{i}").as_str())
    }

    #[test]
    fn root_is_independent_of_insertion_order_and_removal_restores_it() {
        let mut a = DigestTree::new();
        let mut b = DigestTree::new();
        for i in 0..100 {
            a.update(&id(i), Digest(u128::from(i) * 7919 + 1));
        }
        for i in (0..100).rev() {
            b.update(&id(i), Digest(u128::from(i) * 7919 + 1));
        }
        assert_eq!(a.root(), b.root());
        let before = a.root();
        a.update(&id(500), Digest(42));
        assert_ne!(a.root(), before);
        a.update(&id(500), Digest(0));
        assert_eq!(a.root(), before);
        assert_eq!(a.len(), 100);
    }

    #[test]
    fn diff_names_exactly_the_differing_sessions() {
        let mut a = DigestTree::new();
        let mut b = DigestTree::new();
        for i in 0..1000 {
            a.update(&id(i), Digest(u128::from(i) + 1));
            b.update(&id(i), Digest(u128::from(i) + 1));
        }
        b.update(&id(3), Digest(99_999));
        b.update(&id(2000), Digest(5));
        a.update(&id(7), Digest(0));
        let mut expect = vec![id(3), id(2000), id(7)];
        expect.sort();
        assert_eq!(a.diff(&b), expect);
        assert_eq!(b.diff(&a), expect);
        let leaves = a.differing_leaves(b.leaves());
        assert_eq!(
            DigestTree::diff_entries(&a.entries(&leaves), &b.entries(&leaves)),
            expect
        );
        // The same, through the middle level as the wire does it.
        let mids = a.differing_mids(b.mids());
        assert!(mids.len() <= 3);
        let under = a.differing_leaves_under(&mids, &b.leaves_under(&mids));
        assert_eq!(under, leaves);
    }
}
