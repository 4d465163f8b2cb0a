//! Stores that replicate to each other, for the safety regression tests: each on its own
//! [`FaultyFs`] (so one can lose power alone), with the inline WAL writer and a shared manual
//! clock, so every run is the same run. Messages go through [`Node::deliver`], which sends an
//! ack only once the record it depends on is durable, as every transport must.

#![allow(dead_code)] // each test file uses part of this

use std::path::Path;
use std::sync::Arc;

use session_ha::fs::{FaultyFs, Vfs};
use session_ha::store::{restore_backup, RecoveryReport};
use session_ha::wal::WriterMode;
use session_ha::{
    FsyncPolicy, ManualTime, ReplicaId, Result, SessionId, Store, StoreConfig, WriteMode,
};

use super::store::T0;

/// Where each node's store lives on its file system.
pub const NODE_DIR: &str = "/data/store";

/// One region: its disk, its store (absent while down), its configuration.
pub struct Node {
    /// The node's disk.
    pub fs: FaultyFs,
    /// The open store, if the node is up.
    pub store: Option<Store>,
    /// How it opens.
    pub config: StoreConfig,
    /// The clock every node shares.
    pub time: ManualTime,
}

/// A deterministic configuration: inline WAL writer, no background thread, the given fsync
/// policy, writes that return once queued (the test decides when the log syncs).
pub fn node_config(region: &str, fsync: FsyncPolicy) -> StoreConfig {
    StoreConfig {
        fsync,
        write_mode: WriteMode::Queued,
        snapshot_interval: None,
        tick_interval: None,
        wal_writer: WriterMode::Inline,
        segment_size: 4096,
        ..StoreConfig::new(region)
    }
}

impl Node {
    /// A new node of `region`, opened on a fresh disk.
    pub fn new(region: &str, fsync: FsyncPolicy, time: &ManualTime, seed: u64) -> Node {
        let mut n = Node {
            fs: FaultyFs::with_seed(seed),
            store: None,
            config: node_config(region, fsync),
            time: time.clone(),
        };
        n.open().unwrap();
        n
    }

    /// Opens (recovers) the store.
    pub fn open(&mut self) -> Result<RecoveryReport> {
        let (store, report) = Store::open_with(
            Arc::new(self.fs.clone()),
            Path::new(NODE_DIR),
            self.config.clone(),
            Arc::new(self.time.clone()),
        )?;
        self.store = Some(store);
        Ok(report)
    }

    /// The open store.
    pub fn s(&self) -> &Store {
        self.store.as_ref().expect("the node is up")
    }

    /// The replica id.
    pub fn id(&self) -> ReplicaId {
        self.s().id()
    }

    /// Makes everything logged so far durable (the log's next sync).
    pub fn sync(&self) {
        self.s().pump_wal(true).unwrap();
    }

    /// Power cut: the store is abandoned, the disk keeps only what was synced.
    pub fn power_cut(&mut self) {
        if let Some(s) = self.store.take() {
            s.kill();
        }
        self.fs.crash();
    }

    /// Closes the store cleanly.
    pub fn close(&mut self) {
        if let Some(s) = self.store.take() {
            s.close().unwrap();
        }
    }

    /// Registers `other` as a peer.
    pub fn meet(&self, other: &Node) {
        let (id, region) = (other.id(), other.s().region().to_string());
        self.s().add_peer(id, &region).unwrap();
    }
}

/// Applies `bytes` at `to`; returns the reply once it may be sent (after `to` made the
/// record it depends on durable, which this does by syncing when `sync` is true; without,
/// the reply is held back and `None` returned, as a transport must).
pub fn deliver(to: &Node, bytes: &[u8], sync: bool) -> Option<Vec<u8>> {
    let receipt = to.s().receive_deferred(bytes).unwrap();
    let reply = receipt.reply?;
    match receipt.lsn {
        Some(lsn) if lsn > to.s().durable_lsn() => {
            if !sync {
                return None;
            }
            to.sync();
            to.s().wait_durable(lsn).unwrap();
            Some(reply)
        }
        _ => Some(reply),
    }
}

/// Delivers `from`'s repair frames of `ids` to `to` (synced; the acks are not taken back).
pub fn repair_to(from: &Node, to: &Node, ids: &[SessionId]) {
    for f in from.s().repair_frames(to.id(), ids).unwrap() {
        deliver(to, &f, true);
    }
}

/// `from` introduces itself to `to` if `to` does not know it (as a transport's hello on
/// connecting does: membership lost in a power cut comes back this way).
pub fn hello(from: &Node, to: &Node) {
    if to
        .s()
        .read(|r| r.peers().iter().any(|(id, _)| *id == from.id()))
    {
        return;
    }
    let bytes = from.s().hello("node").unwrap();
    if let Ok(h) = to.s().open_hello(&bytes) {
        to.s().add_peer(h.sender, &h.sender_name).unwrap();
    }
}

/// `from` sends `to` everything it has for it and a heartbeat; `to` applies each frame and,
/// when `to_syncs`, makes it durable and acks; acks go back.
pub fn send(from: &Node, to: &Node, to_syncs: bool) {
    hello(from, to);
    hello(to, from);
    let peer = to.id();
    let mut frames = Vec::new();
    while let Some(f) = from.s().frame_for(peer).unwrap() {
        frames.push(f);
    }
    frames.push(from.s().heartbeat(peer).unwrap());
    for f in frames {
        if let Some(ack) = deliver(to, &f, to_syncs) {
            from.s().receive(&ack).unwrap();
        }
    }
}

/// Both directions until both are idle, everyone syncing.
pub fn sync_all(nodes: &[&Node]) {
    for _ in 0..6 {
        for a in nodes {
            a.sync();
            for b in nodes {
                if a.id() != b.id() {
                    send(a, b, true);
                }
            }
        }
    }
}

/// A fresh pair of nodes that know each other.
pub fn pair(fsync: FsyncPolicy) -> (ManualTime, Node, Node) {
    let time = ManualTime::new(T0);
    let a = Node::new("us-east-1", fsync, &time, 1);
    let b = Node::new("eu-central-1", fsync, &time, 2);
    a.meet(&b);
    b.meet(&a);
    (time, a, b)
}

/// Three fresh nodes (us-east-1, eu-central-1, ap-south-1), each a peer of the others.
pub fn three(fsync: FsyncPolicy) -> (ManualTime, Node, Node, Node) {
    let time = ManualTime::new(T0);
    let a = Node::new("us-east-1", fsync, &time, 1);
    let b = Node::new("eu-central-1", fsync, &time, 2);
    let c = Node::new("ap-south-1", fsync, &time, 3);
    for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
        x.meet(y);
        y.meet(x);
    }
    (time, a, b, c)
}

/// A new node of `from`'s region restored, on a fresh disk, from the backup `backup` that
/// `from` wrote: the operator's restore of that backup as a new incarnation. Not opened.
pub fn restored_from(from: &Node, backup: &Path, fsync: FsyncPolicy) -> Node {
    let fs = FaultyFs::with_seed(99);
    let bytes = from.fs.peek(backup).unwrap();
    if let Some(dir) = backup.parent() {
        fs.create_dir_all(dir).unwrap();
    }
    let mut f = fs.create(backup).unwrap();
    f.append(&bytes).unwrap();
    f.sync_data().unwrap();
    restore_backup(Arc::new(fs.clone()), backup, Path::new(NODE_DIR)).unwrap();
    let region = from.config.region.clone();
    Node {
        fs,
        store: None,
        config: node_config(&region, fsync),
        time: from.time.clone(),
    }
}

/// `rounds` rounds: every node syncs with the others, then each ticks `ms` later and syncs
/// its log.
pub fn settle(time: &ManualTime, nodes: &[&Node], rounds: usize, ms: u64) {
    for _ in 0..rounds {
        sync_all(nodes);
        for n in nodes {
            time.advance(ms);
            n.s().tick().unwrap();
            n.sync();
        }
    }
}

/// `a` is backed up and then lost in a power cut; returns the node the operator restores
/// from that backup (the copy kept off the box), not yet opened.
pub fn backed_up_then_lost(a: &mut Node) -> Node {
    let backup = Path::new("/backups/a.backup");
    a.fs.create_dir_all(Path::new("/backups")).unwrap();
    a.s().backup(backup).unwrap();
    let restored = restored_from(a, backup, FsyncPolicy::Always);
    a.power_cut();
    restored
}

/// `b` retires `a_id`, ends `s` and collects the end.
pub fn retire_end_and_collect(time: &ManualTime, b: &Node, a_id: ReplicaId) {
    b.s().remove_member(a_id).unwrap();
    b.s().end("s").unwrap();
    for _ in 0..8 {
        time.advance(31_000);
        b.s().tick().unwrap();
        b.sync();
    }
    assert!(b.s().read(|r| r.session_state(b"s").is_none()), "collected");
}
