//! Replica fixtures: a replica holding sessions of a given shape, a replica with a given
//! number of ops in its log, and a connected pair of replicas.
//!
//! Sessions are ids shaped like UUIDs (36 bytes, the kind erlmcp hands out) with fields
//! `field-0`, `field-1`, ... holding incompressible values.

use std::sync::Arc;

use bytes::Bytes;
use session_ha::{ManualTime, Replica, ReplicaConfig, SessionId, TimeSource};

use crate::rng::{mix, Rng};

/// Region of the replica that writes.
pub const EAST: &str = "us-east-1";
/// Region of the replica that receives.
pub const WEST: &str = "us-west-2";
/// Fixed start time for manual clocks: 2026-01-01T00:00:00Z, so timestamps have a realistic
/// width on the wire.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
/// Frame budget of [`config`]: room for a few thousand small ops, so a frame built from a
/// log of 1,000 ops carries all of them.
pub const FRAME_BUDGET: usize = 1 << 20;

/// The default configuration with the frame budget raised to [`FRAME_BUDGET`].
pub fn config() -> ReplicaConfig {
    ReplicaConfig {
        frame_budget: FRAME_BUDGET,
        ..ReplicaConfig::default()
    }
}

/// A manual clock at [`EPOCH_MS`].
pub fn manual_time() -> Arc<dyn TimeSource> {
    Arc::new(ManualTime::new(EPOCH_MS))
}

/// The id of session number `i`: 36 bytes shaped like a UUID, different for every `i`.
pub fn session_id(i: u64) -> SessionId {
    let (hi, lo) = (mix(i), mix(i ^ 0x5555_5555_5555_5555));
    SessionId::from(
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
        .as_str(),
    )
}

/// The key of field number `j`.
pub fn field_key(j: usize) -> Bytes {
    Bytes::from(format!("field-{j}"))
}

/// A replica of `region` at incarnation 0 with [`config`].
pub fn replica(region: &str, time: Arc<dyn TimeSource>) -> Replica {
    Replica::new(region, 0, config(), time)
}

/// A replica of [`EAST`] and one of [`WEST`], each registered as the other's peer.
pub fn pair(time: Arc<dyn TimeSource>) -> (Replica, Replica) {
    let mut east = replica(EAST, time.clone());
    let mut west = replica(WEST, time);
    // Two distinct, unremoved replicas: registering cannot fail.
    east.add_peer(west.id(), west.name())
        .expect("west is a valid peer of east");
    west.add_peer(east.id(), east.name())
        .expect("east is a valid peer of west");
    (east, west)
}

/// Writes sessions `0..sessions`, each with `fields` fields of `value_len` bytes (one op per
/// session).
pub fn populate(
    replica: &mut Replica,
    sessions: u64,
    fields: usize,
    value_len: usize,
    rng: &mut Rng,
) {
    for i in 0..sessions {
        let writes = (0..fields)
            .map(|j| (field_key(j), rng.bytes(value_len)))
            .collect();
        replica
            .put_fields(session_id(i), writes)
            .expect("fixture sessions stay within the default limits");
    }
}

/// Makes `ops` local writes of one field of `value_len` bytes each, round robin over
/// sessions `0..sessions` and fields `0..fields` (later writes overwrite earlier ones).
pub fn write_ops(
    replica: &mut Replica,
    ops: u64,
    sessions: u64,
    fields: usize,
    value_len: usize,
    rng: &mut Rng,
) {
    for n in 0..ops {
        let field = (n / sessions) as usize % fields;
        replica
            .put(
                session_id(n % sessions),
                field_key(field),
                rng.bytes(value_len),
            )
            .expect("fixture writes stay within the default limits");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_ha::{FrameBody, Message};

    #[test]
    fn session_ids_are_uuid_shaped_and_distinct() {
        assert_eq!(session_id(0).as_bytes().len(), 36);
        assert_ne!(session_id(0), session_id(1));
    }

    #[test]
    fn a_log_of_1000_ops_fits_one_frame_and_replicates_fully() {
        let (mut east, mut west) = pair(manual_time());
        write_ops(&mut east, 1000, 100, 8, 64, &mut Rng::new(1));
        let frame = east
            .frame_for(west.id())
            .expect("west is a peer")
            .expect("ops to send");
        assert!(matches!(&frame.body, FrameBody::Ops(ops) if ops.len() == 1000));
        let received = west
            .receive(&Message::Frame(frame).encode())
            .expect("a valid frame");
        assert_eq!(received.changes.len(), 1000);
        assert_eq!(west.version_vector(), east.version_vector());
        assert_eq!(west.digests().root(), east.digests().root());
    }

    #[test]
    fn populated_sessions_have_the_asked_shape() {
        let mut r = replica(EAST, manual_time());
        populate(&mut r, 3, 8, 64, &mut Rng::new(2));
        let view = r.get(session_id(2).as_bytes()).expect("written");
        assert_eq!(view.fields.len(), 8);
        assert!(view.fields.values().all(|v| v.len() == 64));
    }
}
