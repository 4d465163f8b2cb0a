//! Finding the sessions that differ between two replicas of 1,000,000 sessions, 100 of
//! which differ: in process (`DigestTree::diff`), and over the wire (`differing_leaves` on
//! the peer's leaf sums, then `entries` of those leaves on both sides, then `diff_entries`).
//!
//! Building the two trees is setup (about two seconds), done once, outside the measurement.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use session_ha::DigestTree;
use session_ha_benches::digests::digest_pair;

/// Sessions per tree.
const SESSIONS: u64 = 1_000_000;
/// Sessions whose digests differ.
const DIFFERING: u64 = 100;

fn diff(c: &mut Criterion) {
    let p = digest_pair(SESSIONS, DIFFERING);
    assert_eq!(p.a.len(), SESSIONS as usize);
    assert_eq!(p.differing.len(), DIFFERING as usize);

    let wire = |a: &DigestTree, b: &DigestTree| {
        // What `a` computes from `b`'s leaf sums and, for the differing leaves, `b`'s entries.
        let leaves = a.differing_leaves(b.leaves());
        let theirs = b.entries(&leaves);
        DigestTree::diff_entries(&a.entries(&leaves), &theirs)
    };
    assert_eq!(
        p.a.diff(&p.b),
        p.differing,
        "the diff names exactly the 100"
    );
    assert_eq!(wire(&p.a, &p.b), p.differing, "so does the wire path");

    let mut group = c.benchmark_group("digest");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50);
    group.bench_function("diff_1M_sessions_100_differ", |b| {
        b.iter(|| {
            let ids = black_box(&p.a).diff(black_box(&p.b));
            assert_eq!(ids.len(), DIFFERING as usize);
            ids
        })
    });
    group.bench_function("wire_diff_1M_sessions_100_differ", |b| {
        b.iter(|| {
            let ids = wire(black_box(&p.a), black_box(&p.b));
            assert_eq!(ids.len(), DIFFERING as usize);
            ids
        })
    });
    group.finish();
}

criterion_group!(benches, diff);
