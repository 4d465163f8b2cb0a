//! A state transfer larger than one WAL record holds (here about 19 MB, more than the
//! 16 MiB limit of one record) is logged in several records and survives a reopen whole.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use session_ha::{FsyncPolicy, Store, StoreConfig};

fn config(region: &str) -> StoreConfig {
    let mut c = StoreConfig::new(region);
    c.fsync = FsyncPolicy::Never;
    c.snapshot_interval = None;
    c.tick_interval = None;
    c.replica.log_max_ops = 10; // the receiver will need a full state transfer
    c
}

#[test]
fn a_large_transfer_is_durable_in_several_records() {
    let root = tempfile::tempdir().unwrap();
    let (a, _) = Store::open(root.path().join("a"), config("a")).unwrap();
    let (b, _) = Store::open(root.path().join("b"), config("b")).unwrap();
    let value = vec![0x5au8; 1200];
    for i in 0..16_000 {
        a.put(format!("s{i}").as_str(), "v", value.clone()).unwrap();
    }
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    let records_before = b.status().wal.last_seq;
    while let Some(frame) = a.frame_for(b.id()).unwrap() {
        if let Some(ack) = b.receive(&frame).unwrap() {
            a.receive(&ack).unwrap();
        }
    }
    assert_eq!(b.digest_root().unwrap(), a.digest_root().unwrap());
    assert!(
        b.status().wal.last_seq - records_before >= 2,
        "logged in more than one record"
    );
    let root_digest = b.digest_root().unwrap();
    b.close().unwrap();
    let (b, report) = Store::open(root.path().join("b"), config("b")).unwrap();
    assert!(report.fallbacks.is_empty());
    assert_eq!(b.digest_root().unwrap(), root_digest);
    assert_eq!(b.session_ids().unwrap().len(), 16_000);
    assert_eq!(
        b.read(|r| r.version_vector().clone()),
        a.read(|r| r.version_vector().clone())
    );
}
