//! `retire DIR REPLICA` retires a member of a closed store for good, by region name or by
//! id: the removal is on record when the store next opens; a name that is no member, and a
//! store held by a running node, exit 1 and change nothing.

mod common;

use common::*;
use session_ha::{ReplicaId, Store};

#[test]
fn retire_removes_a_member_of_a_closed_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (west, dead) = (
        ReplicaId::from_region("us-west-2", 0),
        ReplicaId::from_region("ap-south-1", 0),
    );
    {
        let (s, _) = Store::open(&dir, config()).unwrap();
        s.add_peer(west, "us-west-2").unwrap();
        s.add_peer(dead, "ap-south-1").unwrap();
        fill(&s, 0, 2);
        s.close().unwrap();
    }
    let out = run(&[
        "retire".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
        "ap-south-1".as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v.at("retired/0").str(), dead.to_string());

    // By id, and not twice.
    let out = run(&[
        "retire".as_ref(),
        dir.as_os_str(),
        west.to_string().as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&["retire".as_ref(), dir.as_os_str(), "us-west-2".as_ref()]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no member"), "{}", stderr(&out));

    let (s, _) = Store::open(&dir, config()).unwrap();
    let st = s.status();
    assert_eq!(st.replica.removed, {
        let mut v = vec![west, dead];
        v.sort();
        v
    });
    assert!(st.replica.peers.is_empty());
    // A store a node holds is locked: retire through the node.
    let out = run(&["retire".as_ref(), dir.as_os_str(), "us-west-2".as_ref()]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("retire_region"), "{}", stderr(&out));
    s.close().unwrap();
}
