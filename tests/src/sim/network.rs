//! The simulated network: encoded messages between replica indices, with drops,
//! duplicates, delays (hence reordering) and partitions. Nothing here knows what a message
//! means; the world decides what to do with each delivery.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::rng::Rng;

/// Fault rates of the network (per mille) and the largest delay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Chance a message is lost.
    pub drop_pm: u64,
    /// Chance a message is delivered twice (the copy with its own delay).
    pub dup_pm: u64,
    /// Largest delivery delay in ms.
    pub max_delay_ms: u64,
    /// Whether a link may reorder messages; otherwise each link is FIFO (like TCP or
    /// Erlang distribution), though deliveries on different links still interleave freely.
    pub reorder: bool,
}

/// One message in flight.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Sending replica index.
    pub from: usize,
    /// Receiving replica index.
    pub to: usize,
    /// Encoded [`session_ha::Message`].
    pub bytes: Vec<u8>,
    /// Simulated time at which it may be delivered.
    pub due_ms: u64,
    /// Order of sending, for FIFO links.
    seq: u64,
}

/// Messages in flight and the links currently cut.
#[derive(Debug, Default)]
pub struct Network {
    /// The current fault rates.
    pub faults: Faults,
    queue: Vec<Envelope>,
    cut: BTreeSet<(usize, usize)>,
    /// Per link, the latest due time given (FIFO links never deliver earlier than that).
    last_due: BTreeMap<(usize, usize), u64>,
    next_seq: u64,
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages lost (faults or cut links).
    pub dropped: u64,
}

impl Network {
    /// A network with `faults`.
    pub fn new(faults: Faults) -> Network {
        Network {
            faults,
            ..Network::default()
        }
    }

    /// Sends `bytes` from `from` to `to` at `now_ms`.
    pub fn send(&mut self, rng: &mut Rng, from: usize, to: usize, bytes: Vec<u8>, now_ms: u64) {
        self.sent += 1;
        if self.is_cut(from, to) || rng.chance(self.faults.drop_pm) {
            self.dropped += 1;
            return;
        }
        if rng.chance(self.faults.dup_pm) {
            self.enqueue(rng, from, to, bytes.clone(), now_ms);
        }
        self.enqueue(rng, from, to, bytes, now_ms);
    }

    fn enqueue(&mut self, rng: &mut Rng, from: usize, to: usize, bytes: Vec<u8>, now_ms: u64) {
        let mut due_ms = now_ms + rng.below(self.faults.max_delay_ms + 1);
        if !self.faults.reorder {
            let last = self.last_due.entry((from, to)).or_insert(0);
            due_ms = due_ms.max(*last);
            *last = due_ms;
        }
        self.next_seq += 1;
        self.queue.push(Envelope {
            from,
            to,
            bytes,
            due_ms,
            seq: self.next_seq,
        });
    }

    /// Takes the messages due at `now_ms`, in random order. A message whose link was cut
    /// while it was in flight is lost.
    pub fn take_due(&mut self, rng: &mut Rng, now_ms: u64) -> Vec<Envelope> {
        let (mut due, rest): (Vec<Envelope>, Vec<Envelope>) =
            self.queue.drain(..).partition(|e| e.due_ms <= now_ms);
        self.queue = rest;
        let before = due.len();
        due.retain(|e| !self.cut.contains(&(e.from, e.to)));
        self.dropped += (before - due.len()) as u64;
        rng.shuffle(&mut due);
        if !self.faults.reorder {
            // Keep the random interleaving of links, but each link's messages in the order
            // they were sent: position k of link L gets L's k-th oldest message.
            let links: Vec<(usize, usize)> = due.iter().map(|e| (e.from, e.to)).collect();
            let mut by_link: BTreeMap<(usize, usize), VecDeque<Envelope>> = BTreeMap::new();
            due.sort_by_key(|e| e.seq);
            for e in due {
                by_link.entry((e.from, e.to)).or_default().push_back(e);
            }
            due = links
                .iter()
                .filter_map(|l| by_link.get_mut(l).and_then(VecDeque::pop_front))
                .collect();
        }
        due
    }

    /// Messages still in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Whether the link `from -> to` is cut.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Cuts every link between `side` and the other `n` replicas, both ways.
    pub fn partition(&mut self, side: &[usize], n: usize) {
        for &a in side {
            for b in (0..n).filter(|b| !side.contains(b)) {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    /// Whether any link is cut.
    pub fn partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Restores every link; returns the pairs that were cut.
    pub fn heal(&mut self) -> Vec<(usize, usize)> {
        std::mem::take(&mut self.cut).into_iter().collect()
    }
}
