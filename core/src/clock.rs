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

    /// Milliseconds on a clock that only moves forward at the rate of real time, from any
    /// origin (`None`: there is none; the wall clock is then taken as it reads). An [`Hlc`]
    /// measures the wall clock against it to notice a jump ahead.
    fn monotonic_ms(&self) -> Option<u64> {
        None
    }
}

/// The operating system's wall clock (and its monotonic clock beside it).
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl TimeSource for WallClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_ms(&self) -> Option<u64> {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let elapsed = ORIGIN.get_or_init(std::time::Instant::now).elapsed();
        Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to: for deterministic tests and simulations. Its
/// monotonic reading is its wall reading without the jumps made by [`ManualTime::jump`].
#[derive(Debug, Default, Clone)]
pub struct ManualTime {
    base: Arc<AtomicU64>,
    jumped: Arc<AtomicU64>,
}

impl ManualTime {
    /// A manual clock reading `ms`.
    pub fn new(ms: u64) -> ManualTime {
        ManualTime {
            base: Arc::new(AtomicU64::new(ms)),
            jumped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sets the reading to `ms` (it may go backwards: the HLC above it will not).
    pub fn set(&self, ms: u64) {
        self.base.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.base.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the wall reading forward by `ms` with no time passing: a wall clock set wrong.
    /// `jump(0)` after one puts it right again.
    pub fn jump(&self, ms: u64) {
        self.jumped.store(ms, Ordering::SeqCst);
    }
}

impl TimeSource for ManualTime {
    fn now_ms(&self) -> u64 {
        let base = self.base.load(Ordering::SeqCst);
        base.saturating_add(self.jumped.load(Ordering::SeqCst))
    }

    fn monotonic_ms(&self) -> Option<u64> {
        Some(self.base.load(Ordering::SeqCst))
    }
}

/// A hybrid logical clock: physical time when it moves forward, a logical counter otherwise.
///
/// With a bound (see [`Hlc::with_bound`]) and a time source that has a monotonic clock, the
/// physical part of what it issues never runs more than the bound ahead of the last good
/// wall reading plus the time measured since: a wall clock set far ahead is noticed
/// ([`Hlc::jump_ms`]) and not followed, so this replica's stamps stay where its peers accept
/// them. (A monotonic clock stops while the machine sleeps: after a suspend the wall clock is
/// taken for a jump until the process restarts; stamps then lag real time, which orders this
/// replica's writes earlier but never breaks the clock's monotonicity.)
#[derive(Debug, Clone)]
pub struct Hlc {
    source: Arc<dyn TimeSource>,
    last: Timestamp,
    max_skew_ms: u64,
    bound_ms: u64,
    /// The last good (wall, monotonic) reading.
    anchor: Option<(u64, u64)>,
}

impl Hlc {
    /// A clock over `source` that has issued nothing yet, following the wall clock as it
    /// reads.
    pub fn new(source: Arc<dyn TimeSource>) -> Hlc {
        Hlc {
            source,
            last: Timestamp(0),
            max_skew_ms: 0,
            bound_ms: 0,
            anchor: None,
        }
    }

    /// The same clock, not following a wall clock that runs more than `ms` ahead of the
    /// time its source's monotonic clock measured (0: no bound).
    pub fn with_bound(mut self, ms: u64) -> Hlc {
        self.bound_ms = ms;
        self
    }

    /// A clock that continues after `persisted`, the highest timestamp issued or seen before a
    /// restart, so that it never goes backwards even if the wall clock did.
    pub fn restore(source: Arc<dyn TimeSource>, persisted: Timestamp) -> Hlc {
        let mut hlc = Hlc::new(source);
        hlc.last = persisted;
        hlc
    }

    /// Physical time now, in ms, as the time source reads it.
    pub fn physical_ms(&self) -> u64 {
        self.source.now_ms()
    }

    /// The wall reading and the physical time this clock may issue (the reading, or the
    /// bound above the last good one when it jumped ahead); and the new anchor.
    fn read(&self) -> (u64, u64, Option<(u64, u64)>) {
        let wall = self.source.now_ms();
        let mono = match self.source.monotonic_ms() {
            Some(m) if self.bound_ms > 0 => m,
            _ => return (wall, wall, None),
        };
        let (aw, am) = self.anchor.unwrap_or((wall, mono));
        let limit = aw
            .saturating_add(mono.saturating_sub(am))
            .saturating_add(self.bound_ms);
        if wall > limit {
            (wall, limit, self.anchor)
        } else {
            (wall, wall, Some((wall, mono)))
        }
    }

    /// By how much the wall clock now runs ahead of what this clock issues, in ms (0 when it
    /// is followed): non-zero while a jump ahead is held back.
    pub fn jump_ms(&self) -> u64 {
        let (wall, issued, _) = self.read();
        wall - issued
    }

    /// A new timestamp, above every one issued or observed before.
    pub fn tick(&mut self) -> Timestamp {
        let (_, ms, anchor) = self.read();
        self.anchor = anchor;
        let physical = Timestamp::new(ms, 0);
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
    fn a_wall_clock_that_jumps_ahead_is_not_followed_beyond_the_bound() {
        let time = ManualTime::new(1_000_000);
        let mut hlc = Hlc::new(Arc::new(time.clone())).with_bound(60_000);
        assert_eq!(hlc.tick().millis(), 1_000_000);
        time.advance(10);
        time.jump(3_600_000);
        let t = hlc.tick();
        assert_eq!(t.millis(), 1_000_010 + 60_000, "held at the bound");
        assert_eq!(hlc.jump_ms(), 3_600_000 - 60_000);
        time.advance(5);
        assert_eq!(hlc.tick().millis(), 1_000_015 + 60_000, "time still passes");
        time.jump(0);
        let back = hlc.tick();
        assert!(back > t, "monotonic when the wall clock is put right");
        assert_eq!(hlc.jump_ms(), 0);
        // Steps within the bound are followed.
        time.jump(30_000);
        assert_eq!(hlc.jump_ms(), 0);
        time.jump(0);
        time.advance(120_000);
        assert_eq!(hlc.tick().millis(), 1_120_015);
    }

    #[test]
    fn replica_ids_are_stable_and_distinguish_incarnations() {
        let a = ReplicaId::from_region("us-east-1", 0);
        assert_eq!(a, ReplicaId::from_region("us-east-1", 0));
        assert_ne!(a, ReplicaId::from_region("us-east-1", 1));
        assert_ne!(a, ReplicaId::from_region("us-west-2", 0));
    }
}
