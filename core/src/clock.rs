//! Identity and time: [`ReplicaId`], the hybrid logical clock [`Hlc`] and its [`Timestamp`]s,
//! and the [`TimeSource`] that supplies physical time (the system clock, or a manual one for
//! deterministic tests).
//!
//! A timestamp packs physical milliseconds (high 48 bits) and a logical counter (low 16 bits)
//! into one `u64`, so comparing timestamps is comparing integers. The clock never goes
//! backwards: every tick is above the last one issued and above every remote timestamp seen.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Identity of one replica: one region's store, in one incarnation.
///
/// Derived from the region name and an incarnation number. The incarnation is chosen when a
/// data directory is created and persisted with it, so the id is stable across restarts; a
/// region rebuilt from an empty directory gets a new incarnation, so its new changes can never
/// be mistaken for the old incarnation's (already seen) changes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub u64);

impl ReplicaId {
    /// The id of `region` in `incarnation`. Pure: the same inputs give the same id forever
    /// (FNV-1a, 64-bit, over the name, a zero byte and the incarnation in little endian).
    pub fn from_region(region: &str, incarnation: u32) -> ReplicaId {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = region.bytes().chain([0]).chain(incarnation.to_le_bytes());
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        ReplicaId(h)
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplicaId({:016x})", self.0)
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A hybrid logical clock reading: physical ms in the high 48 bits, a logical counter below.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

const LOGICAL_BITS: u32 = 16;

impl Timestamp {
    /// The timestamp with physical part `ms` and logical part `logical`.
    pub fn new(ms: u64, logical: u16) -> Timestamp {
        Timestamp((ms << LOGICAL_BITS) | u64::from(logical))
    }

    /// Physical milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// Logical counter within the millisecond.
    pub fn logical(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

/// Where physical time comes from.
pub trait TimeSource: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl TimeSource for WallClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to: for deterministic tests and simulations.
#[derive(Debug, Default, Clone)]
pub struct ManualTime(Arc<AtomicU64>);

impl ManualTime {
    /// A manual clock reading `ms`.
    pub fn new(ms: u64) -> ManualTime {
        ManualTime(Arc::new(AtomicU64::new(ms)))
    }

    /// Sets the reading to `ms` (it may go backwards: the HLC above it will not).
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl TimeSource for ManualTime {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A hybrid logical clock: physical time when it moves forward, a logical counter otherwise.
#[derive(Debug, Clone)]
pub struct Hlc {
    source: Arc<dyn TimeSource>,
    last: Timestamp,
    max_skew_ms: u64,
}

impl Hlc {
    /// A clock over `source` that has issued nothing yet.
    pub fn new(source: Arc<dyn TimeSource>) -> Hlc {
        Hlc {
            source,
            last: Timestamp(0),
            max_skew_ms: 0,
        }
    }

    /// A clock that continues after `persisted`, the highest timestamp issued or seen before a
    /// restart, so that it never goes backwards even if the wall clock did.
    pub fn restore(source: Arc<dyn TimeSource>, persisted: Timestamp) -> Hlc {
        Hlc {
            source,
            last: persisted,
            max_skew_ms: 0,
        }
    }

    /// Physical time now, in ms, as the time source reads it.
    pub fn physical_ms(&self) -> u64 {
        self.source.now_ms()
    }

    /// A new timestamp, above every one issued or observed before.
    pub fn tick(&mut self) -> Timestamp {
        let physical = Timestamp::new(self.source.now_ms(), 0);
        // Logical overflow carries into the millisecond: the clock runs ahead rather than back.
        self.last = Timestamp(physical.0.max(self.last.0.saturating_add(1)));
        self.last
    }

    /// Advances the clock past a timestamp seen from another replica.
    pub fn observe(&mut self, remote: Timestamp) {
        if remote <= self.last {
            return; // nothing to learn; no clock read on the hot path
        }
        let now = self.source.now_ms();
        if remote.millis() > now {
            self.max_skew_ms = self.max_skew_ms.max(remote.millis() - now);
        }
        self.last = remote;
    }

    /// The highest timestamp issued or observed (what to persist).
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// The largest amount by which a remote timestamp was ahead of our physical time, in ms.
    /// Remote clocks running ahead drag this clock forward; this says by how much.
    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_wall_clock_stalls_or_goes_back() {
        let time = ManualTime::new(1_000);
        let mut hlc = Hlc::new(Arc::new(time.clone()));
        let a = hlc.tick();
        let b = hlc.tick();
        time.set(500);
        let c = hlc.tick();
        assert!(a < b && b < c);
        assert_eq!(a.millis(), 1_000);
        assert_eq!(b.logical(), 1);
        time.set(2_000);
        assert_eq!(hlc.tick(), Timestamp::new(2_000, 0));
    }

    #[test]
    fn observing_a_remote_timestamp_moves_the_clock_past_it() {
        let time = ManualTime::new(1_000);
        let mut hlc = Hlc::new(Arc::new(time));
        let remote = Timestamp::new(5_000, 7);
        hlc.observe(remote);
        assert!(hlc.tick() > remote);
        assert_eq!(hlc.max_skew_ms(), 4_000);
    }

    #[test]
    fn restored_clock_never_issues_below_the_persisted_value() {
        let persisted = Timestamp::new(9_000, 3);
        let mut hlc = Hlc::restore(Arc::new(ManualTime::new(10)), persisted);
        assert!(hlc.tick() > persisted);
    }

    #[test]
    fn logical_overflow_carries_into_the_next_millisecond() {
        let mut hlc = Hlc::restore(Arc::new(ManualTime::new(7)), Timestamp::new(7, u16::MAX));
        assert_eq!(hlc.tick(), Timestamp::new(8, 0));
    }

    #[test]
    fn replica_ids_are_stable_and_distinguish_incarnations() {
        let a = ReplicaId::from_region("us-east-1", 0);
        assert_eq!(a, ReplicaId::from_region("us-east-1", 0));
        assert_ne!(a, ReplicaId::from_region("us-east-1", 1));
        assert_ne!(a, ReplicaId::from_region("us-west-2", 0));
    }
}
