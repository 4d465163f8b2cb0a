//! Local writes and reads on one replica holding 10,000 sessions of 8 fields of 64 bytes,
//! against the wall clock (as in production).
//!
//! The put overwrites one field of an existing session, so the session keeps its 8 fields
//! however many iterations run; every put still appends an op to the replica's log (bounded
//! by the default 200,000 ops, after which each put also evicts the oldest).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use session_ha::WallClock;
use session_ha_benches::replicas::{field_key, populate, replica, session_id, EAST};
use session_ha_benches::Rng;

/// Sessions held by the replica under test.
const SESSIONS: u64 = 10_000;
/// Fields per session.
const FIELDS: usize = 8;
/// Bytes per field value.
const VALUE_LEN: usize = 64;

fn put_and_get(c: &mut Criterion) {
    let mut rng = Rng::new(0x5e55);
    let mut r = replica(EAST, Arc::new(WallClock));
    populate(&mut r, SESSIONS, FIELDS, VALUE_LEN, &mut rng);
    let session = session_id(SESSIONS / 2);
    let key = field_key(3);
    let value = rng.bytes(VALUE_LEN);

    r.put(session.clone(), key.clone(), value.clone())
        .expect("within limits");
    let view = r.get(session.as_bytes()).expect("the session exists");
    assert_eq!(
        view.fields.len(),
        FIELDS,
        "a put overwrites, it does not add"
    );
    assert_eq!(view.fields[&key[..]], value);

    let mut group = c.benchmark_group("replica");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    // The caller's id, key and value are `Bytes`: cloning them is a reference count, so what
    // is measured is the replica's work, not the caller's allocations.
    group.bench_function("put_64B_field_into_8_field_session", |b| {
        b.iter(|| {
            black_box(r.put(session.clone(), key.clone(), value.clone())).expect("within limits")
        })
    });
    group.bench_function("get_8_field_session", |b| {
        b.iter(|| black_box(r.get(black_box(session.as_bytes()))).expect("the session exists"))
    });
    group.finish();
}

criterion_group!(benches, put_and_get);
