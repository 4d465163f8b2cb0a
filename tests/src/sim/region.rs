//! What the simulator tracks about each region beside its store: whether it is up, down or
//! dead, the client writes and peer replies it holds back until they are durable, how it
//! last stopped, and what the checks remember about it between steps (the sessions it saw
//! end, its vector, what it ever held durably and what it claimed on the wire).

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use session_ha::{Dot, ReplicaId, SessionId, VersionVector};

/// Whether a region runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its store is open.
    Up,
    /// Stopped; it comes back at the given step (or in the settling phase).
    Down {
        /// Step at which it reopens.
        until: u32,
    },
    /// Gone for good (the region was lost).
    Dead,
}

/// A client write the store accepted and has not yet reported durable.
#[derive(Debug, Clone)]
pub struct PendingWrite {
    /// Its WAL record.
    pub lsn: u64,
    /// Its op's dot.
    pub dot: Dot,
    /// The unique value (field value or set element) it wrote, if it wrote one.
    pub value: Option<Bytes>,
}

/// An ack held until the record it acknowledges is durable.
#[derive(Debug, Clone)]
pub struct HeldReply {
    /// The record that must be durable first.
    pub lsn: u64,
    /// Receiving region.
    pub to: usize,
    /// The encoded reply.
    pub bytes: Vec<u8>,
}

/// How a region last stopped, and what its disk held durably at that moment.
#[derive(Debug, Clone)]
pub struct Stop {
    /// A clean close (everything synced) rather than a power cut.
    pub clean: bool,
    /// A power cut under `Never`: written but unsynced records may be gone (the policy's
    /// contract).
    pub never_cut: bool,
    /// The id it had.
    pub id: ReplicaId,
    /// What a recovery of the disk held right after the stop (before any damage).
    pub truth: Option<VersionVector>,
    /// The digest root of that recovery.
    pub truth_root: Option<u128>,
    /// At-rest damage done while it was down.
    pub damage: Option<String>,
    /// Its directory was replaced by a restore of a backup.
    pub restored: bool,
}

/// Everything the simulator tracks about one region.
#[derive(Debug)]
pub struct Region {
    /// Up, down or dead.
    pub phase: Phase,
    /// Its disk is planned to die; it loses power at this step.
    pub power_cut_at: Option<u32>,
    /// The log has failed since the store was opened.
    pub log_failed: bool,
    /// Client writes waiting to be reported durable.
    pub pending: Vec<PendingWrite>,
    /// Client writes whose log failed before they were durable: unknown until reopen.
    pub unknown: Vec<PendingWrite>,
    /// Replies waiting for durability.
    pub held: Vec<HeldReply>,
    /// How it last stopped.
    pub stop: Option<Stop>,
    /// Its newest backup.
    pub backup: Option<PathBuf>,
    /// Sessions it has seen ended or expired since it opened.
    pub gone_seen: BTreeSet<SessionId>,
    /// Its vector at the last check.
    pub last_vv: VersionVector,
    /// What it held of each retired origin it had not given up, at the last check.
    pub retired_holdings: Vec<super::give_ups::RetiredHolding>,
    /// Origins the cluster had given up before this incarnation opened: their changes a
    /// restored copy held past the mark are dropped, so its vector may go back to the mark.
    pub opened_after_give_up: BTreeSet<ReplicaId>,
    /// Everything its disk was ever seen to hold durably under its current id.
    pub ever_durable: VersionVector,
    /// Disk calls when `ever_durable` was last brought up to date.
    pub truth_at_calls: Option<u64>,
    /// What its disk held durably when its manifest last recorded where the log ended (at
    /// the last open or snapshot): after a crash the log must reach at least that (I3).
    pub recorded_end: VersionVector,
    /// The join of every vector it put on the wire since it opened (frames, acks, the ops
    /// it forwarded): all of it must be durable (I1).
    pub claims: VersionVector,
}

impl Region {
    /// A region that is about to open for the first time.
    pub fn new() -> Region {
        Region {
            phase: Phase::Down { until: 0 },
            power_cut_at: None,
            log_failed: false,
            pending: Vec::new(),
            unknown: Vec::new(),
            held: Vec::new(),
            stop: None,
            backup: None,
            gone_seen: BTreeSet::new(),
            last_vv: VersionVector::new(),
            retired_holdings: Vec::new(),
            opened_after_give_up: BTreeSet::new(),
            ever_durable: VersionVector::new(),
            truth_at_calls: None,
            recorded_end: VersionVector::new(),
            claims: VersionVector::new(),
        }
    }

    /// Whether the store is open.
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }
}

impl Default for Region {
    fn default() -> Region {
        Region::new()
    }
}
