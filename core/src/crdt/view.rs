//! [`SessionView`]: a session as a reader sees it, built with one allocation per kind of
//! entry: the session's maps are already in key order, so the view keeps sorted vectors
//! ([`Entries`]) and looks keys up by binary search. [`SessionRef`]: the same content
//! borrowed from the session in place, for a reader that encodes it at once (the NIF) and
//! so needs no copy of it.

use std::ops::Index;

use bytes::Bytes;

use super::SessionState;

/// Entries sorted by key, each key once.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entries<V>(Vec<(Bytes, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<V> Entries<V> {
    /// Entries from pairs already sorted by key with no key twice.
    pub(crate) fn from_sorted(pairs: Vec<(Bytes, V)>) -> Entries<V> {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        Entries(pairs)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The sorted pairs.
    pub fn into_vec(self) -> Vec<(Bytes, V)> {
        self.0
    }
}

impl<V> Index<&[u8]> for Entries<V> {
    type Output = V;

    /// # Panics
    /// When `key` is absent, like indexing a map.
    fn index(&self, key: &[u8]) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no entry for key {key:?}"),
        }
    }
}

impl<V> FromIterator<(Bytes, V)> for Entries<V> {
    /// Sorts by key; a key given twice keeps its last value, as inserting into a map would.
    fn from_iter<I: IntoIterator<Item = (Bytes, V)>>(iter: I) -> Self {
        let mut pairs: Vec<(Bytes, V)> = iter.into_iter().collect();
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Entries(pairs)
    }
}

impl<'a, V> IntoIterator for &'a Entries<V> {
    type Item = &'a (Bytes, V);
    type IntoIter = std::slice::Iter<'a, (Bytes, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A session as a reader sees it: live content only.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct SessionView {
    /// Field values by key.
    pub fields: Entries<Bytes>,
    /// Counter values by key.
    pub counters: Entries<i64>,
    /// Set elements by key, each set in order.
    pub sets: Entries<Vec<Bytes>>,
    /// Deadline (Unix ms) after which the session reads as absent, if touched.
    pub expires_at_ms: Option<u64>,
}

/// A session's live content borrowed in place: what [`SessionView`] holds, read without
/// building it (no allocation, no reference count touched). Live for as long as the lock
/// the session was read under.
#[derive(Clone, Copy, Debug)]
pub struct SessionRef<'a>(pub(crate) &'a SessionState);

impl<'a> SessionRef<'a> {
    /// Live fields in key order: `(key, value)`.
    pub fn fields(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.0
            .fields
            .iter()
            .filter_map(|(k, r)| r.value.as_ref().map(|v| (k.as_ref(), v.as_ref())))
    }

    /// Counters in key order: `(key, value)`.
    pub fn counters(&self) -> impl Iterator<Item = (&'a [u8], i64)> + 'a {
        self.0.counters.iter().map(|(k, c)| (k.as_ref(), c.value()))
    }

    /// Non-empty sets in key order: `(key, elements in order)`.
    pub fn sets(
        &self,
    ) -> impl Iterator<Item = (&'a [u8], impl Iterator<Item = &'a [u8]> + 'a)> + 'a {
        self.0
            .sets
            .iter()
            .filter(|(_, s)| !s.entries.is_empty())
            .map(|(k, s)| (k.as_ref(), s.elements().map(|e| e.as_ref())))
    }

    /// Deadline (Unix ms) after which the session reads as absent, if touched.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.0.expires_at
    }

    /// Bytes of live keys, values and elements (as the session-size limit counts them).
    pub fn live_bytes(&self) -> usize {
        self.0.live_size().1
    }

    /// The session's whole state (tombstones included), as borrowed.
    pub fn state(&self) -> &'a SessionState {
        self.0
    }

    /// The same content as an owned [`SessionView`].
    pub fn to_view(&self) -> SessionView {
        self.0.view()
    }
}
