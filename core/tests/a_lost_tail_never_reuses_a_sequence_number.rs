//! I2 and I3: a damaged or cut end of the log is never taken for a torn write after a clean
//! close, and a replica that may have lost acknowledged ops of its own never hands their
//! sequence numbers out again. The failure this guards against: the last record (an ended
//! session's end) was damaged, the store opened without a word, served the ended session
//! again, and its next write took the lost record's sequence number, which a peer that held
//! the lost op then dropped as a duplicate while both reported "synced".
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::pair::{pair, sync_all, Node, NODE_DIR};
use common::store::{record_spans, segments};
use session_ha::{Error, FsyncPolicy, RecoveryMode};
use std::path::Path;

/// The last record of `node`'s newest segment: `(path, offset, len)`.
fn last_record(node: &Node) -> (std::path::PathBuf, usize, usize) {
    let (_, seg) = segments(&node.fs, Path::new(NODE_DIR)).pop().unwrap();
    let bytes = node.fs.peek(&seg).unwrap();
    let (at, len) = *record_spans(&bytes).last().unwrap();
    (seg, at, len)
}

#[test]
fn a_damaged_last_record_after_a_clean_close_is_refused_by_name() {
    let (_time, mut a, b) = pair(FsyncPolicy::Always);
    a.s().put("s", "k", "v").unwrap();
    a.s().end("s").unwrap();
    sync_all(&[&a, &b]);
    a.close();
    let (seg, at, len) = last_record(&a);
    a.fs.flip_bit(&seg, (at + len / 2) as u64, 3);
    let v = session_ha::store::verify_dir(&a.fs, Path::new(NODE_DIR)).unwrap();
    assert!(
        !v.is_intact(),
        "verify took the damaged end for a torn write"
    );
    assert!(
        v.problems.iter().any(|p| p.contains("are missing")),
        "{v:?}"
    );
    match a.open() {
        Err(Error::DataLoss(why)) => assert!(why.contains("clean close"), "{why}"),
        other => panic!("a damaged last record opened: {other:?}"),
    }
}

#[test]
fn a_cut_tail_after_a_crash_continues_as_a_new_incarnation_and_takes_its_ops_back() {
    let (_time, mut a, b) = pair(FsyncPolicy::Always);
    a.s().put("s1", "k", "one").unwrap();
    a.s().put("s2", "k", "two").unwrap();
    sync_all(&[&a, &b]);
    let old = a.id();
    // b holds a:1 and a:2. A crash, then the end of a's log is cut (power loss, damage).
    a.power_cut();
    let (seg, at, _) = last_record(&a);
    a.fs.cut(&seg, (at + 5) as u64);
    let report = a.open().unwrap();
    assert!(report.wal.bytes_truncated > 0);
    assert_eq!(report.reincarnated_from, Some(old), "{report:?}");
    assert_ne!(a.id(), old, "the old id would hand out seq 2 again");
    // Fenced until it caught up with b (it has a member), then it writes under its new id.
    assert!(matches!(
        a.s().put("s3", "k", "three"),
        Err(Error::CatchingUp(_))
    ));
    // b learns of the new incarnation the way a transport does it: a hello, then frames.
    b.s().add_peer(a.id(), "us-east-1").unwrap();
    sync_all(&[&a, &b]);
    assert!(a.s().status().replica.fence.is_none(), "caught up");
    assert_eq!(
        a.s().get_field(b"s2", b"k").unwrap().as_deref(),
        Some(&b"two"[..]),
        "the lost op came back from b"
    );
    let seq = a.s().put("s3", "k", "three").map(|_| a.id()).unwrap();
    assert_ne!(seq, old);
    sync_all(&[&a, &b]);
    assert_eq!(
        b.s().get_field(b"s3", b"k").unwrap().as_deref(),
        Some(&b"three"[..]),
        "b dropped the new write as a duplicate"
    );
    assert!(
        b.s().status().replica.removed.contains(&old),
        "the old id is retired"
    );
    assert_eq!(a.s().digest_root().unwrap(), b.s().digest_root().unwrap());
}

#[test]
fn a_missing_newest_segment_or_wal_directory_after_a_clean_close_is_refused() {
    for what in ["segment", "wal"] {
        let (_time, mut a, _b) = pair(FsyncPolicy::Always);
        for i in 0..40 {
            a.s().put(format!("s{i}"), "k", vec![b'x'; 200]).unwrap();
        }
        a.sync();
        a.close();
        let gone = match what {
            "segment" => segments(&a.fs, Path::new(NODE_DIR)).pop().unwrap().1,
            _ => Path::new(NODE_DIR).join("wal"),
        };
        assert!(a.fs.erase(&gone));
        match a.open() {
            Err(Error::DataLoss(_)) => {}
            other => panic!("{what} gone: {other:?}"),
        }
        // Rebuilding keeps what is left, names the loss, and is a new incarnation.
        a.config.recovery = RecoveryMode::RebuildFromPeers;
        let report = a.open().unwrap();
        assert!(report.lost.is_some(), "{what}: {report:?}");
        assert!(report.reincarnated_from.is_some(), "{what}");
    }
}
