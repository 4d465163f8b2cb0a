//! `Replica::get_ref` (the session borrowed in place, as the NIF encodes it) and
//! `Replica::get` (an owned view) show the same live content: deleted fields, removed set
//! elements and emptied sets left out, counters at their value, the deadline; and neither
//! shows a session that is ended, expired or absent.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{ManualTime, Replica, ReplicaConfig, SessionRef, SessionView};

/// What a borrowed read shows, in the owned view's terms.
type Shown = (
    Vec<(Vec<u8>, Vec<u8>)>,
    Vec<(Vec<u8>, i64)>,
    Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    Option<u64>,
);

fn of_ref(r: &SessionRef<'_>) -> Shown {
    (
        r.fields().map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
        r.counters().map(|(k, n)| (k.to_vec(), n)).collect(),
        r.sets()
            .map(|(k, e)| (k.to_vec(), e.map(<[u8]>::to_vec).collect()))
            .collect(),
        r.expires_at_ms(),
    )
}

fn of_view(v: &SessionView) -> Shown {
    (
        v.fields
            .iter()
            .map(|(k, x)| (k.to_vec(), x.to_vec()))
            .collect(),
        v.counters.iter().map(|(k, n)| (k.to_vec(), *n)).collect(),
        v.sets
            .iter()
            .map(|(k, e)| (k.to_vec(), e.iter().map(|x| x.to_vec()).collect()))
            .collect(),
        v.expires_at_ms,
    )
}

#[test]
fn both_reads_show_the_same_live_content_and_the_same_absences() {
    let time = ManualTime::new(1_000);
    let mut r = Replica::new("a", 0, ReplicaConfig::default(), Arc::new(time.clone()));
    r.put("s", "b", "2").unwrap();
    r.put("s", "a", "1").unwrap();
    r.put("s", "gone", "x").unwrap();
    r.delete_field("s", "gone").unwrap();
    r.counter_add("s", "hits", 5).unwrap();
    r.counter_add("s", "hits", -2).unwrap();
    r.set_add("s", "tags", "y").unwrap();
    r.set_add("s", "tags", "x").unwrap();
    r.set_add("s", "empty", "z").unwrap();
    r.set_remove("s", "empty", "z").unwrap();
    r.touch("s", 500).unwrap();

    let shown = of_ref(&r.get_ref(b"s").unwrap());
    assert_eq!(shown, of_view(&r.get(b"s").unwrap()));
    assert_eq!(
        shown.0,
        [
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(shown.1, [(b"hits".to_vec(), 3)]);
    assert_eq!(
        shown.2,
        [(b"tags".to_vec(), vec![b"x".to_vec(), b"y".to_vec()])]
    );
    assert_eq!(shown.3, Some(1_500));

    r.put("t", "k", "v").unwrap();
    r.end("t").unwrap();
    time.advance(500);
    for id in [&b"s"[..], b"t", b"never"] {
        assert!(r.get_ref(id).is_none(), "{id:?}");
        assert!(r.get(id).is_none(), "{id:?}");
    }
}
