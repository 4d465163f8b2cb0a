//! In-process replicas joined as a full mesh, and the frame exchange between two of them,
//! for the replication tests that drive replicas by hand.

use std::sync::Arc;

use session_ha::{ManualTime, Message, Replica, ReplicaConfig, ReplicaId, SessionId};

/// One replica per name, all on `time`, each a peer of every other.
pub fn mesh(names: &[&str], time: &ManualTime, config: ReplicaConfig) -> Vec<Replica> {
    let mut rs: Vec<Replica> = names
        .iter()
        .map(|n| Replica::new(n, 0, config.clone(), Arc::new(time.clone())))
        .collect();
    let ids: Vec<_> = rs.iter().map(|r| (r.id(), r.name().to_string())).collect();
    for r in &mut rs {
        for (id, name) in &ids {
            if *id != r.id() {
                r.add_peer(*id, name).unwrap();
            }
        }
    }
    rs
}

/// Takes every frame `from` has for `to` and a heartbeat, then delivers them in that order,
/// each followed by its ack back to `from`.
pub fn send(rs: &mut [Replica], from: usize, to: usize) {
    let to_id = rs[to].id();
    let mut frames = Vec::new();
    while let Some(f) = rs[from].frame_for(to_id).unwrap() {
        frames.push(f);
    }
    frames.push(rs[from].heartbeat(to_id).unwrap());
    for f in frames {
        let bytes = rs[from].encode(&Message::Frame(f));
        let reply = rs[to].receive(&bytes).unwrap();
        rs[from].receive(&reply.reply.unwrap()).unwrap();
    }
}

/// Delivers every repair frame of `ids` from `rs[from]` to `rs[to]`, each followed by its
/// ack back to `from`.
pub fn repair(rs: &mut [Replica], from: usize, to: usize, ids: &[SessionId]) {
    let to_id = rs[to].id();
    for f in rs[from].repair_frames(to_id, ids).unwrap() {
        let bytes = rs[from].encode(&Message::Frame(f));
        let reply = rs[to].receive(&bytes).unwrap();
        rs[from].receive(&reply.reply.unwrap()).unwrap();
    }
}

/// `n` rounds among the replicas `live`: the clock moves 10 ms, each runs its maintenance,
/// then each sends to each other everything it has (see [`send`]).
pub fn rounds(time: &ManualTime, rs: &mut [Replica], live: &[usize], n: usize) {
    for _ in 0..n {
        time.advance(10);
        for &i in live {
            rs[i].tick();
        }
        for &i in live {
            for &j in live {
                if i != j {
                    send(rs, i, j);
                }
            }
        }
    }
}

/// `from` sends `to` a heartbeat and takes its ack: each learns what the other holds, and
/// no op moves.
pub fn heartbeat(rs: &mut [Replica], from: usize, to: usize) {
    let to_id = rs[to].id();
    let beat = rs[from].heartbeat(to_id).unwrap();
    let bytes = rs[from].encode(&Message::Frame(beat));
    let reply = rs[to].receive(&bytes).unwrap().reply.unwrap();
    rs[from].receive(&reply).unwrap();
}

/// [`heartbeat`] both ways between `x` and `y`, then both tick.
pub fn heartbeats(time: &ManualTime, rs: &mut [Replica], x: usize, y: usize) {
    heartbeat(rs, x, y);
    heartbeat(rs, y, x);
    time.advance(10);
    rs[x].tick();
    rs[y].tick();
}

/// The seq at which `r` gave retired origin `origin` up, if it did.
pub fn given_up_at(r: &Replica, origin: ReplicaId) -> Option<u64> {
    r.status()
        .retired
        .iter()
        .find(|x| x.id == origin)
        .and_then(|x| x.given_up_at)
}
