//! Malformed frames and acks are refused with a typed error, never panic, and leave the
//! receiving replica exactly as it was (digest root, version vector and status).
//!
//! Starting from real encoded messages (an ops frame, a state-transfer chunk on the lz4
//! path, a repair, an ack): every truncation, every single-bit flip and many random
//! multi-bit flips of the envelope; declared lengths patched to huge values, with and
//! without the checksum fixed up; and mutations of the body re-sealed with a correct
//! checksum so that they reach the decompressor and the parser (every truncation, a huge
//! varint length at every byte, random bit flips, trailing bytes). Garbage and an empty
//! buffer too. A mutation that still decodes to a valid message is a legitimate frame: it is
//! applied to a fresh replica, which must then keep working (frames, status, ticks).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::codec::{self, HEADER_LEN};
use session_ha::{
    Error, Limits, ManualTime, Message, Replica, ReplicaConfig, ReplicaStatus, SessionId,
    VersionVector,
};
use session_ha_tests::sim::rng::Rng;

/// The replicas the messages travel between, built the same way every time.
struct Fixture {
    time: ManualTime,
    /// Receives the frames.
    receiver: Replica,
    /// Sends the ops frame and the repair; receives the ack.
    east: Replica,
}

/// The real messages under test, with whether each goes to `east` (acks) or the receiver.
struct Samples {
    messages: Vec<(&'static str, Vec<u8>, Target)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Receiver,
    East,
}

fn replica(name: &str, config: ReplicaConfig, time: &ManualTime) -> Replica {
    Replica::new(name, 0, config, Arc::new(time.clone()))
}

fn link(a: &mut Replica, b: &mut Replica) {
    a.add_peer(b.id(), b.name()).unwrap();
    b.add_peer(a.id(), a.name()).unwrap();
}

fn fixture() -> (Fixture, Samples) {
    let time = ManualTime::new(1_700_000_000_000);
    let mut receiver = replica("receiver", ReplicaConfig::default(), &time);
    let mut east = replica("east", ReplicaConfig::default(), &time);
    // West's log keeps 2 ops, so the receiver, far behind, gets a state transfer.
    let west_config = ReplicaConfig {
        log_max_ops: 2,
        ..ReplicaConfig::default()
    };
    let mut west = replica("west", west_config, &time);
    let mut ack_maker = replica("ack-maker", ReplicaConfig::default(), &time);
    link(&mut receiver, &mut east);
    link(&mut receiver, &mut west);
    link(&mut east, &mut ack_maker);
    receiver.put("mine", "k", "v").unwrap();
    receiver.counter_add("mine", "n", 2).unwrap();

    east.put("s1", "user", "alice").unwrap();
    east.put_fields(
        "s1",
        vec![("a".into(), "1".into()), ("b".into(), "2".into())],
    )
    .unwrap();
    east.counter_add("s1", "requests", -3).unwrap();
    east.set_add("s1", "tags", "x").unwrap();
    east.set_remove("s1", "tags", "x").unwrap();
    east.delete_field("s1", "a").unwrap();
    east.touch("s1", 60_000).unwrap();
    east.end("s2").unwrap();
    let ops = east.frame_for(receiver.id()).unwrap().unwrap();
    let ops_for_acks = east.frame_for(ack_maker.id()).unwrap().unwrap();
    let repair = east
        .repair_frames(receiver.id(), &[SessionId::from("s1")])
        .unwrap()
        .remove(0);

    for i in 0..20 {
        let id = format!("session-{i:02}");
        west.put(id.as_str(), "payload", vec![b'x'; 100]).unwrap();
        west.set_add(id.as_str(), "tags", format!("t{i}")).unwrap();
    }
    let chunk = west.frame_for(receiver.id()).unwrap().unwrap();
    assert!(matches!(chunk.body, session_ha::FrameBody::State { .. }));

    let ack = ack_maker
        .receive(&Message::Frame(ops_for_acks).encode())
        .unwrap()
        .reply
        .unwrap();
    let state_bytes = Message::Frame(chunk).encode();
    assert_eq!(state_bytes[6] & 1, 1, "the chunk takes the lz4 path");
    let samples = Samples {
        messages: vec![
            ("ops frame", Message::Frame(ops).encode(), Target::Receiver),
            ("state chunk", state_bytes, Target::Receiver),
            ("repair", Message::Frame(repair).encode(), Target::Receiver),
            ("ack", ack, Target::East),
        ],
    };
    (
        Fixture {
            time,
            receiver,
            east,
        },
        samples,
    )
}

impl Fixture {
    fn target(&mut self, t: Target) -> &mut Replica {
        match t {
            Target::Receiver => &mut self.receiver,
            Target::East => &mut self.east,
        }
    }
}

type Snapshot = (u128, VersionVector, ReplicaStatus);

/// What must not change (the refusal counts do: every refusal is counted).
fn snapshot(r: &Replica) -> Snapshot {
    let mut st = r.status();
    st.refused.clear();
    st.refused_other = Default::default();
    (r.digests().root().0, r.version_vector().clone(), st)
}

/// Feeds mutants to the fixture's replicas and keeps count.
struct Harness {
    fx: Fixture,
    baseline: Vec<(Target, Snapshot)>,
    rejected: usize,
    accepted: usize,
}

impl Harness {
    fn new() -> (Harness, Samples) {
        let (fx, samples) = fixture();
        let baseline = vec![
            (Target::Receiver, snapshot(&fx.receiver)),
            (Target::East, snapshot(&fx.east)),
        ];
        let h = Harness {
            fx,
            baseline,
            rejected: 0,
            accepted: 0,
        };
        (h, samples)
    }

    /// `bytes`, a mutation described by `what`, must be refused with a typed error and
    /// change nothing; or, if it still decodes, be a frame a replica can live with.
    fn feed(&mut self, what: &str, target: Target, bytes: &[u8]) {
        if Message::decode(bytes, &Limits::default()).is_ok() {
            self.accepted += 1;
            accept_on_a_fresh_fixture(what, target, bytes);
            return;
        }
        self.rejected += 1;
        let r = self.fx.target(target);
        match r.receive(bytes) {
            Err(Error::Frame(_)) => {}
            Err(e) => panic!("{what}: refused with {e}, not as a bad frame"),
            Ok(_) => panic!("{what}: accepted bytes that do not decode"),
        }
        let before = self
            .baseline
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, s)| s)
            .unwrap();
        assert!(snapshot(r) == *before, "{what}: the replica changed");
    }

    /// Every mutant must have been refused.
    fn feed_refused(&mut self, what: &str, target: Target, bytes: &[u8]) {
        let accepted = self.accepted;
        self.feed(what, target, bytes);
        assert_eq!(self.accepted, accepted, "{what}: decoded");
    }
}

/// A mutant that decodes is a well-formed message with odd content: the replica takes it
/// (or refuses it with a typed error) and keeps working afterwards.
fn accept_on_a_fresh_fixture(what: &str, target: Target, bytes: &[u8]) {
    let (mut fx, _) = fixture();
    for _ in 0..2 {
        let _ = fx.target(target).receive(bytes);
    }
    for t in [Target::Receiver, Target::East] {
        let r = fx.target(t);
        for (peer, _) in r.peers() {
            for _ in 0..10 {
                if r.frame_for(peer).unwrap_or(None).is_none() {
                    break;
                }
            }
            let _ = r.heartbeat(peer);
        }
        let _ = r.status();
        let _ = r.tick();
    }
    fx.time.advance(10_000);
    for t in [Target::Receiver, Target::East] {
        let _ = fx.target(t).tick();
        let _ = fx.target(t).status();
    }
    let _ = what;
}

fn fix_crc(bytes: &mut [u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..16]);
    h.update(&bytes[HEADER_LEN..]);
    let crc = h.finalize();
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn raw_body(bytes: &[u8]) -> Vec<u8> {
    codec::open(bytes, Limits::default().max_frame).unwrap()
}

#[test]
fn an_empty_buffer_and_garbage_are_refused() {
    let (mut h, _) = Harness::new();
    h.feed_refused("empty buffer", Target::Receiver, &[]);
    let mut rng = Rng::new(7);
    for i in 0..300 {
        let len = rng.below(300) as usize;
        let mut junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        h.feed_refused(&format!("garbage #{i}"), Target::Receiver, &junk);
        // Our magic and version, then garbage.
        if junk.len() >= 6 {
            junk[..4].copy_from_slice(&codec::MAGIC);
            junk[4..6].copy_from_slice(&codec::VERSION.to_le_bytes());
            h.feed_refused(
                &format!("garbage after the magic #{i}"),
                Target::Receiver,
                &junk,
            );
        }
        // A valid envelope around garbage reaches the parser.
        h.feed(
            &format!("sealed garbage #{i}"),
            Target::Receiver,
            &codec::seal(&junk),
        );
    }
    assert!(h.rejected >= 890, "{} rejected", h.rejected);
}

#[test]
fn every_truncation_is_refused_and_changes_nothing() {
    let (mut h, samples) = Harness::new();
    for (name, bytes, target) in &samples.messages {
        for cut in 0..bytes.len() {
            h.feed_refused(&format!("{name} cut at {cut}"), *target, &bytes[..cut]);
        }
        // Truncated bodies in a valid envelope, so that the parser sees them.
        let raw = raw_body(bytes);
        for cut in 0..raw.len() {
            let sealed = codec::seal(&raw[..cut]);
            h.feed_refused(&format!("{name} body cut at {cut}"), *target, &sealed);
        }
    }
}

#[test]
fn every_bit_flip_and_random_damage_of_the_envelope_is_refused() {
    let (mut h, samples) = Harness::new();
    let mut rng = Rng::new(11);
    for (name, bytes, target) in &samples.messages {
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            h.feed_refused(&format!("{name} bit {bit} flipped"), *target, &b);
        }
        for i in 0..500 {
            let mut b = bytes.clone();
            for _ in 0..rng.range(2, 16) {
                let at = rng.index(b.len());
                b[at] ^= 1 << rng.below(8);
            }
            h.feed_refused(&format!("{name} random flips #{i}"), *target, &b);
        }
    }
}

#[test]
fn huge_declared_lengths_are_refused() {
    let (mut h, samples) = Harness::new();
    let max = Limits::default().max_frame as u32;
    for (name, bytes, target) in &samples.messages {
        let body_len = (bytes.len() - HEADER_LEN) as u32;
        for field in [8usize, 12] {
            for value in [u32::MAX, max + 1, max, body_len * 2, body_len + 1, 0, 1] {
                let mut b = bytes.clone();
                if u32::from_le_bytes(b[field..field + 4].try_into().unwrap()) == value {
                    continue;
                }
                b[field..field + 4].copy_from_slice(&value.to_le_bytes());
                h.feed_refused(&format!("{name} len@{field}={value}"), *target, &b);
                fix_crc(&mut b);
                h.feed_refused(
                    &format!("{name} len@{field}={value}, crc fixed"),
                    *target,
                    &b,
                );
            }
        }
        // bincode lengths inside the body: a huge varint in place of every byte.
        let raw = raw_body(bytes);
        let huge: [&[u8]; 4] = [
            &[0xfb, 0xff, 0xff],
            &[0xfc, 0xff, 0xff, 0xff, 0xff],
            &[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            &[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ];
        for at in 0..raw.len() {
            for varint in huge {
                let mut m = raw[..at].to_vec();
                m.extend_from_slice(varint);
                m.extend_from_slice(&raw[at + 1..]);
                h.feed(
                    &format!("{name} varint {varint:02x?} at {at}"),
                    *target,
                    &codec::seal(&m),
                );
            }
        }
    }
    assert!(
        h.rejected > h.accepted,
        "{} rejected, {} accepted",
        h.rejected,
        h.accepted
    );
}

#[test]
fn body_damage_behind_a_valid_checksum_reaches_the_parser_safely() {
    let (mut h, samples) = Harness::new();
    let mut rng = Rng::new(13);
    for (name, bytes, target) in &samples.messages {
        let raw = raw_body(bytes);
        for i in 0..400 {
            let mut m = raw.clone();
            for _ in 0..rng.range(1, 6) {
                let at = rng.index(m.len());
                m[at] ^= 1 << rng.below(8);
            }
            h.feed(
                &format!("{name} body flips #{i}"),
                *target,
                &codec::seal(&m),
            );
        }
        let mut m = raw.clone();
        m.push(0);
        h.feed_refused(&format!("{name} trailing byte"), *target, &codec::seal(&m));
        // The compressed payload itself, checksum fixed, so the decompressor sees it.
        if bytes[6] & 1 == 1 {
            for bit in 0..(bytes.len() - HEADER_LEN) * 8 {
                let mut b = bytes.clone();
                b[HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
                fix_crc(&mut b);
                h.feed(&format!("{name} lz4 bit {bit}"), *target, &b);
            }
            for raw_len in [0u32, 1, raw.len() as u32 - 1, raw.len() as u32 + 1] {
                let mut b = bytes.clone();
                b[12..16].copy_from_slice(&raw_len.to_le_bytes());
                fix_crc(&mut b);
                h.feed_refused(&format!("{name} raw_len {raw_len}"), *target, &b);
            }
        }
    }
}
