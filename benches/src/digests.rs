//! Digest-tree fixtures: two [`DigestTree`]s over the same sessions that differ in a known
//! set of them, as two replicas' trees would after some writes failed to replicate.
//!
//! Digests are inserted directly with [`DigestTree::update`]: pseudo-random non-zero 128-bit
//! values stand in for `session_digest` (an xxh3-128), which is what the tree sees either way.
//! This keeps a million-session fixture to a couple of seconds of setup.

use session_ha::{Digest, DigestTree, SessionId};

use crate::replicas::session_id;
use crate::rng::Rng;

/// Two trees and the sessions whose digests differ between them.
#[derive(Debug, Clone)]
pub struct DigestPair {
    /// The first replica's tree.
    pub a: DigestTree,
    /// The second replica's tree: `a` with [`DigestPair::differing`] changed.
    pub b: DigestTree,
    /// The sessions that differ, sorted (what a diff must return).
    pub differing: Vec<SessionId>,
}

/// A non-zero pseudo-random digest (zero means "absent" to the tree).
fn digest(rng: &mut Rng) -> Digest {
    let d = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    Digest(d.max(1))
}

/// Trees over sessions `0..sessions` that differ in `differing` of them, spread evenly.
///
/// # Panics
/// When `differing` is 0 or above `sessions`.
pub fn digest_pair(sessions: u64, differing: u64) -> DigestPair {
    assert!(
        differing > 0 && differing <= sessions,
        "need 1..=sessions differing sessions"
    );
    let mut rng = Rng::new(0xd16e57);
    let mut a = DigestTree::new();
    for i in 0..sessions {
        a.update(&session_id(i), digest(&mut rng));
    }
    let mut b = a.clone();
    let stride = sessions / differing;
    let mut ids: Vec<SessionId> = (0..differing).map(|k| session_id(k * stride)).collect();
    for id in &ids {
        // A fresh random digest equals the old one with probability 2^-128.
        b.update(id, digest(&mut rng));
    }
    ids.sort();
    DigestPair {
        a,
        b,
        differing: ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_diffs_name_exactly_the_changed_sessions() {
        let p = digest_pair(10_000, 100);
        assert_eq!(p.a.len(), 10_000);
        assert_eq!(p.b.len(), 10_000);
        assert_eq!(p.a.diff(&p.b), p.differing);
        let leaves = p.a.differing_leaves(p.b.leaves());
        assert_eq!(
            DigestTree::diff_entries(&p.a.entries(&leaves), &p.b.entries(&leaves)),
            p.differing
        );
    }
}
