//! [`ReplicaConfig`]: limits and replication tuning for one replica.

use crate::auth::FrameKeys;
use crate::limits::Limits;

/// How a replica replicates. `ReplicaConfig::default()` suits erlmcp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Size limits for writes, frames and files.
    pub limits: Limits,
    /// Most ops kept in the in-memory op log for peers that lag.
    pub log_max_ops: usize,
    /// Most bytes kept in the op log.
    pub log_max_bytes: usize,
    /// Target size of one frame's content, in bytes (at least one op is always sent).
    pub frame_budget: usize,
    /// Most unacknowledged frames in flight to one peer.
    pub window: u64,
    /// A peer that acknowledged nothing new for this long while frames are in flight gets
    /// everything unacknowledged again.
    pub resend_after_ms: u64,
    /// An ended session is kept (and local writes to its id refused) for at least this long
    /// after its end, even once the end is causally stable; then its id is forgotten.
    pub end_retention_ms: u64,
    /// The cluster's frame keys: with them every message sent carries a MAC and every
    /// message received must (see [`crate::auth`]); without, messages carry none and none
    /// may (a replica that trusts its transport, as tests and single-process uses do).
    pub frame_keys: Option<FrameKeys>,
    /// A frame carrying a clock reading more than this many ms ahead of this replica's
    /// clock is held back (see [`crate::Error::ClockAhead`]); and this replica's own clock
    /// never runs more than this far ahead of the time its monotonic clock has measured.
    pub max_clock_skew_ms: u64,
}

impl Default for ReplicaConfig {
    fn default() -> ReplicaConfig {
        ReplicaConfig {
            limits: Limits::default(),
            log_max_ops: 200_000,
            log_max_bytes: 64 * 1024 * 1024,
            frame_budget: 256 * 1024,
            window: 8,
            resend_after_ms: 1_000,
            end_retention_ms: 60_000,
            frame_keys: None,
            max_clock_skew_ms: 60_000,
        }
    }
}
