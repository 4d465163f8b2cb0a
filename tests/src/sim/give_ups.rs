//! What the checks know of retired origins given up over a gap (`give_up.rs` in the core):
//! the mark counts every seq up to the highest held as seen, though no member held the
//! gaps' changes (gone for good) and the changes held out of order only as effects in
//! copies. A region's holdings of each retired origin are read at every check
//! ([`RetiredHolding`]); when an origin turns up given up at a region, its holdings at the
//! check before say which seqs the mark covers without their being held in order.

use std::collections::BTreeSet;

use session_ha::{Dot, ReplicaId};

/// What a region held of a retired origin it had not given up: its vector entry, the
/// changes it held out of order above it (up to `top`), and the gaps between.
#[derive(Debug, Clone)]
pub struct RetiredHolding {
    /// The region's id when it held it.
    pub holder: ReplicaId,
    /// The retired origin.
    pub origin: ReplicaId,
    /// Its vector entry.
    pub contiguous: u64,
    /// The highest seq held (the entry, or a change held out of order).
    pub top: u64,
    /// The runs missing between the entry and `top`.
    pub gaps: Vec<(u64, u64)>,
}

impl RetiredHolding {
    /// Whether change `seq` of the origin was held, in order or not.
    pub fn holds(&self, seq: u64) -> bool {
        seq <= self.contiguous
            || (seq <= self.top && !self.gaps.iter().any(|&(f, t)| (f..=t).contains(&seq)))
    }

    fn in_gap(&self, seq: u64) -> bool {
        seq > self.contiguous && !self.holds(seq)
    }
}

/// The give-ups over a gap seen so far.
#[derive(Debug, Default)]
pub struct GiveUps {
    /// Seqs a mark covers that the region giving up held out of order or not at all (and
    /// no region held in order at its last check).
    out_of_order: BTreeSet<Dot>,
    /// Of those, the ones in a gap of that region that no region held at all.
    gaps: BTreeSet<Dot>,
    /// What each region held of an origin at its check before it gave the origin up.
    held: Vec<RetiredHolding>,
    /// How many regions gave an origin up over a gap.
    pub count: u64,
}

impl GiveUps {
    /// Region holdings `given_up` (this check's give-ups of the region, with its holdings
    /// at the check before) are recorded; `last` is every region's holdings at its last
    /// check, `running` the incarnations that still run (not restarted since, not dead).
    pub fn record(
        &mut self,
        given_up: Vec<RetiredHolding>,
        last: &[&[RetiredHolding]],
        running: &BTreeSet<ReplicaId>,
    ) {
        let still_runs = |x: &RetiredHolding| running.contains(&x.holder);
        for h in given_up {
            if !h.gaps.is_empty() {
                self.count += 1;
                for seq in h.contiguous + 1..=h.top {
                    let running = || {
                        last.iter()
                            .flat_map(|r| r.iter())
                            .filter(|x| x.origin == h.origin && still_runs(x))
                    };
                    if running().any(|x| seq <= x.contiguous) {
                        continue;
                    }
                    let dot = Dot {
                        replica: h.origin,
                        seq,
                    };
                    self.out_of_order.insert(dot);
                    if h.in_gap(seq) && !running().any(|x| x.holds(seq)) {
                        self.gaps.insert(dot);
                    }
                }
            }
            self.held.push(h);
        }
    }

    /// Changes a mark covers that no region held when the origin was given up: gone for
    /// good, though vectors count them as seen. With `or_lost_since`, also those only a
    /// region held that has restarted since (it runs under another id, and may have lost
    /// them with an unsynced tail) or died.
    pub fn unheld(&self, running: &BTreeSet<ReplicaId>, or_lost_since: bool) -> BTreeSet<Dot> {
        self.filtered(&self.gaps, running, or_lost_since, RetiredHolding::holds)
    }

    /// Changes a mark covers that no region held in order when the origin was given up:
    /// [`GiveUps::unheld`] and those held out of order, of which survivors hold effects at
    /// most. A region that restarted or died since counts for nothing.
    pub fn out_of_order(&self, running: &BTreeSet<ReplicaId>) -> BTreeSet<Dot> {
        self.filtered(&self.out_of_order, running, true, |h, seq| {
            seq <= h.contiguous
        })
    }

    fn filtered(
        &self,
        set: &BTreeSet<Dot>,
        running: &BTreeSet<ReplicaId>,
        or_lost_since: bool,
        held: impl Fn(&RetiredHolding, u64) -> bool,
    ) -> BTreeSet<Dot> {
        let counts = |h: &RetiredHolding| !or_lost_since || running.contains(&h.holder);
        set.iter()
            .filter(|d| {
                !self
                    .held
                    .iter()
                    .any(|h| h.origin == d.replica && held(h, d.seq) && counts(h))
            })
            .copied()
            .collect()
    }
}
