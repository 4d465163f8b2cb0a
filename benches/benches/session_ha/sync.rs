//! The replication path of a frame of 1,000 ops (one-field puts of 64 bytes over 100
//! sessions of 8 fields): `frame_for` on the sender, `Message::encode`, `Message::decode`,
//! and `receive` (decode, validate, apply, encode the ack) on the receiver; encode, decode
//! and receive again with a MAC under a frame key (`_signed`), to measure what
//! authentication costs.
//!
//! Each measured `frame_for` builds a fresh frame: the peer is rewound (outside the
//! measurement) first, so the ops are not already marked sent. Each measured `receive` goes
//! into a replica that has never seen the ops, so none is skipped as a duplicate.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use session_ha::{FrameBody, FrameKey, FrameKeys, Message, Replica};
use session_ha_benches::replicas::{manual_time, pair, replica, write_ops, EAST, WEST};
use session_ha_benches::Rng;

/// Ops in the frame.
const OPS: u64 = 1_000;

fn frame_ops(body: &FrameBody) -> usize {
    match body {
        FrameBody::Ops(ops) => ops.len(),
        _ => 0,
    }
}

fn frame_path(c: &mut Criterion) {
    let time = manual_time();
    let (mut east, west) = pair(time.clone());
    write_ops(&mut east, OPS, 100, 8, 64, &mut Rng::new(0xf4a3e));
    let (east_id, west_id) = (east.id(), west.id());
    drop(west);

    let frame = east
        .frame_for(west_id)
        .expect("west is a peer")
        .expect("ops to send");
    assert_eq!(
        frame_ops(&frame.body),
        OPS as usize,
        "one frame carries every op"
    );
    let message = Message::Frame(frame);
    let encoded = message.encode();
    // Envelope layout (see `session_ha::codec`): flags at byte 6 (bit 0: lz4), raw body
    // length at bytes 12..16.
    let raw_len = u32::from_le_bytes([encoded[12], encoded[13], encoded[14], encoded[15]]);
    println!(
        "sync: a frame of {OPS} ops encodes to {} bytes ({raw_len} bytes of bincode, {})",
        encoded.len(),
        if encoded[6] & 1 == 1 {
            "lz4-compressed"
        } else {
            "sent raw: lz4 saved < 1/8"
        }
    );
    let fresh_receiver = || {
        let mut w = replica(WEST, time.clone());
        w.add_peer(east_id, EAST).expect("east is a valid peer");
        w
    };
    {
        let mut w = fresh_receiver();
        let received = w.receive(&encoded).expect("a valid frame");
        assert_eq!(received.changes.len(), OPS as usize, "every op applied");
        assert_eq!(w.digests().root(), east.digests().root());
    }

    let mut group = c.benchmark_group("sync");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50)
        .throughput(Throughput::Elements(OPS));

    // Rewinding borrows the sender between measured calls; a RefCell lets the setup and the
    // routine share it. One rewind per measured call (PerIteration), or the second call of a
    // batch would find everything already sent.
    let sender = RefCell::new(east);
    group.bench_function("frame_for_1000_ops", |b| {
        b.iter_batched(
            || sender.borrow_mut().rewind(west_id).expect("west is a peer"),
            |()| {
                let frame = sender
                    .borrow_mut()
                    .frame_for(west_id)
                    .expect("west is a peer")
                    .expect("ops to send after a rewind");
                assert_eq!(frame_ops(&frame.body), OPS as usize);
                frame
            },
            BatchSize::PerIteration,
        )
    });
    let east = sender.into_inner();

    group.bench_function("encode_1000_ops", |b| {
        b.iter(|| black_box(&message).encode())
    });

    let limits = east.config().limits;
    group.bench_function("decode_1000_ops", |b| {
        b.iter(|| Message::decode(black_box(&encoded), &limits).expect("a valid frame"))
    });

    // The same with a MAC under a frame key (keyed BLAKE3), side by side.
    let keys = FrameKeys::new(FrameKey::from_secret(b"bench cluster secret"));
    let signed = message.encode_with(Some(&keys));
    group.bench_function("encode_1000_ops_signed", |b| {
        b.iter(|| black_box(&message).encode_with(Some(&keys)))
    });
    group.bench_function("decode_1000_ops_signed", |b| {
        b.iter(|| {
            Message::decode_with(black_box(&signed), &limits, Some(&keys)).expect("a valid frame")
        })
    });

    group.sample_size(30);
    group.bench_function("receive_1000_ops_into_fresh_replica", |b| {
        b.iter_batched(
            fresh_receiver,
            |mut w: Replica| {
                let received = w.receive(black_box(&encoded)).expect("a valid frame");
                (w, received)
            },
            BatchSize::LargeInput,
        )
    });
    let fresh_keyed_receiver = || {
        let mut w = fresh_receiver();
        w.set_frame_keys(Some(keys.clone()));
        w
    };
    group.bench_function("receive_1000_ops_into_fresh_replica_signed", |b| {
        b.iter_batched(
            fresh_keyed_receiver,
            |mut w: Replica| {
                let received = w.receive(black_box(&signed)).expect("a valid frame");
                (w, received)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, frame_path);
