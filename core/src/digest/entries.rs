//! The per-entry terms a session digest sums. Each term is xxh3-128, seeded with the
//! session's seed, over a tag byte and the entry's fields (little endian, lengths u32):
//! `'F' klen key ts replica seq vlen value`, `'C' klen key side replica total`,
//! `'S' klen key elen elem replica seq`, `'E' deadline`, and `'B'` for the session's base.

use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64};

use crate::causal::Dot;
use crate::clock::ReplicaId;
use crate::crdt::{LwwRegister, Op, OpKind, SessionId, SessionState};

/// The seed of a session's terms.
pub(crate) fn seed_of(id: &SessionId) -> u64 {
    xxh3_64(id.as_bytes())
}

/// Hashes the concatenation of `parts` with `seed`, without allocating for small entries.
fn term(seed: u64, parts: &[&[u8]]) -> u128 {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        for p in parts {
            buf.extend_from_slice(p);
        }
        xxh3_128_with_seed(&buf, seed)
    })
}

/// The base term of a live session.
pub(crate) fn base_term(seed: u64) -> u128 {
    term(seed, &[b"B"])
}

fn field_term(seed: u64, key: &[u8], reg: &LwwRegister) -> u128 {
    let Some(value) = &reg.value else { return 0 };
    let s = reg.stamp;
    term(
        seed,
        &[
            b"F",
            &(key.len() as u32).to_le_bytes(),
            key,
            &s.ts.0.to_le_bytes(),
            &s.dot.replica.0.to_le_bytes(),
            &s.dot.seq.to_le_bytes(),
            &(value.len() as u32).to_le_bytes(),
            value,
        ],
    )
}

fn counter_term(seed: u64, key: &[u8], side: u8, replica: ReplicaId, total: u64) -> u128 {
    let klen = (key.len() as u32).to_le_bytes();
    term(
        seed,
        &[
            b"C",
            &klen,
            key,
            &[side],
            &replica.0.to_le_bytes(),
            &total.to_le_bytes(),
        ],
    )
}

fn elem_term(seed: u64, key: &[u8], elem: &[u8], dot: Dot) -> u128 {
    let (klen, elen) = (
        (key.len() as u32).to_le_bytes(),
        (elem.len() as u32).to_le_bytes(),
    );
    term(
        seed,
        &[
            b"S",
            &klen,
            key,
            &elen,
            elem,
            &dot.replica.0.to_le_bytes(),
            &dot.seq.to_le_bytes(),
        ],
    )
}

fn expiry_term(seed: u64, deadline: Option<u64>) -> u128 {
    deadline.map_or(0, |d| term(seed, &[b"E", &d.to_le_bytes()]))
}

fn counter_terms(seed: u64, state: &SessionState, key: &[u8]) -> u128 {
    let Some(c) = state.counters.get(key) else {
        return 0;
    };
    let p = c.p.iter().map(|(r, v)| counter_term(seed, key, 0, *r, *v));
    let n = c.n.iter().map(|(r, v)| counter_term(seed, key, 1, *r, *v));
    p.chain(n).fold(0, u128::wrapping_add)
}

fn elem_terms(seed: u64, state: &SessionState, key: &[u8], elem: &[u8]) -> u128 {
    let Some(dots) = state.sets.get(key).and_then(|s| s.entries.get(elem)) else {
        return 0;
    };
    dots.iter()
        .map(|d| elem_term(seed, key, elem, *d))
        .fold(0, u128::wrapping_add)
}

/// Sum of the terms of every live entry of `state` (not the base).
pub(crate) fn state_terms(seed: u64, state: &SessionState) -> u128 {
    let mut sum = expiry_term(seed, state.expires_at);
    for (k, r) in &state.fields {
        sum = sum.wrapping_add(field_term(seed, k, r));
    }
    for k in state.counters.keys() {
        sum = sum.wrapping_add(counter_terms(seed, state, k));
    }
    for (k, s) in &state.sets {
        for e in s.entries.keys() {
            sum = sum.wrapping_add(elem_terms(seed, state, k, e));
        }
    }
    sum
}

/// Sum of the terms of the entries `op` can change in `state`. Taken before and after the
/// op is applied, the difference is the change of the session's digest. `None` for an end,
/// which clears everything.
pub(crate) fn entry_terms(seed: u64, state: &SessionState, op: &Op) -> Option<u128> {
    Some(match &op.kind {
        OpKind::Put(writes) => writes
            .iter()
            .filter_map(|w| {
                state
                    .fields
                    .get(&w.key)
                    .map(|r| field_term(seed, &w.key, r))
            })
            .fold(0, u128::wrapping_add),
        OpKind::Counter { key, .. } => counter_terms(seed, state, key),
        OpKind::SetAdd { key, elem } | OpKind::SetRemove { key, elem, .. } => {
            elem_terms(seed, state, key, elem)
        }
        OpKind::Touch { .. } => expiry_term(seed, state.expires_at),
        OpKind::End => return None,
    })
}
