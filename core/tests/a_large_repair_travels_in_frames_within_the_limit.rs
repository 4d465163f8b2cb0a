//! Repair is bounded: the full states of many differing sessions travel in several frames,
//! each within the frame budget (and far below the size limit every receiver enforces), so
//! a repair of a whole region converges. The failure this guards against: a repair of about
//! 100,000 sessions built one frame over the 64 MiB limit, which the peer refused, so repair
//! never converged.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{Limits, ManualTime, Message, Replica, ReplicaConfig, SessionId};

#[test]
fn twenty_thousand_differing_sessions_repair_in_frames_under_the_budget() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig {
        frame_budget: 64 * 1024,
        limits: Limits {
            max_frame: 1 << 20,
            ..Limits::default()
        },
        ..ReplicaConfig::default()
    };
    let mut a = Replica::new("a", 1, config.clone(), Arc::new(time.clone()));
    let mut b = Replica::new("b", 2, config.clone(), Arc::new(time.clone()));
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    let ids: Vec<SessionId> = (0..20_000)
        .map(|i| SessionId::from(format!("s{i:06}")))
        .collect();
    for id in &ids {
        a.put(id.clone(), "payload", vec![b'x'; 100]).unwrap();
    }
    // b never got the ops: only the repair reconciles them.
    let frames = a.repair_frames(b.id(), &ids).unwrap();
    assert!(frames.len() > 20, "{} frames", frames.len());
    for f in frames {
        let bytes = Message::Frame(f).encode();
        assert!(
            bytes.len() <= config.frame_budget * 2,
            "a repair frame of {} bytes",
            bytes.len()
        );
        assert!(bytes.len() <= config.limits.max_frame);
        b.receive(&bytes).unwrap();
    }
    assert_eq!(a.digests().root(), b.digests().root());
    assert_eq!(b.session_ids().len(), ids.len());
}
