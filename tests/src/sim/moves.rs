//! The moves of a step: replicas send frames and heartbeats, the network delivers what is
//! due (replies go back through it), replicas tick, links are cut and healed, a replica
//! dies and the survivors remove it from membership.

use session_ha::{Error, Message, ReplicaId};

use super::world::World;

impl World {
    /// Replica `from` sends `peer` every frame it has for it (up to a bound), and with
    /// probability `heartbeat_pm` a heartbeat.
    ///
    /// # Errors
    /// When the engine refuses to make a frame for one of its own peers.
    pub fn send_frames(
        &mut self,
        from: usize,
        peer: ReplicaId,
        heartbeat_pm: u64,
    ) -> Result<(), String> {
        let Some(to) = self.index_of(peer) else {
            return Err(self.fail(format!("r{from} has an unknown peer {peer}")));
        };
        for _ in 0..16 {
            let frame = self.replicas[from]
                .frame_for(peer)
                .map_err(|e| self.fail(format!("r{from}.frame_for(r{to}): {e}")))?;
            let Some(frame) = frame else { break };
            self.log(|| {
                format!(
                    "r{from} -> r{to} frame {} {}",
                    frame.frame_no,
                    self.describe(&frame.body)
                )
            });
            self.count("frames");
            let bytes = Message::Frame(frame).encode();
            let now = self.now();
            self.net.send(&mut self.rng, from, to, bytes, now);
        }
        if self.rng.chance(heartbeat_pm) {
            let frame = self.replicas[from]
                .heartbeat(peer)
                .map_err(|e| self.fail(format!("r{from}.heartbeat(r{to}): {e}")))?;
            self.count("heartbeats");
            let bytes = Message::Frame(frame).encode();
            let now = self.now();
            self.net.send(&mut self.rng, from, to, bytes, now);
        }
        Ok(())
    }

    /// Every running replica sends frames to each of its peers with probability `send_pm`.
    ///
    /// # Errors
    /// As [`World::send_frames`].
    pub fn send_round(&mut self, send_pm: u64, heartbeat_pm: u64) -> Result<(), String> {
        for from in self.live() {
            let peers: Vec<ReplicaId> = self.replicas[from]
                .peers()
                .into_iter()
                .map(|p| p.0)
                .collect();
            for peer in peers {
                if self.rng.chance(send_pm) {
                    self.send_frames(from, peer, heartbeat_pm)?;
                }
            }
        }
        Ok(())
    }

    /// Delivers every message that is due; replies go back through the network. Returns how
    /// many were delivered.
    ///
    /// # Errors
    /// When a replica rejects a well-formed message from a member.
    pub fn deliver_due(&mut self) -> Result<usize, String> {
        let now = self.now();
        let due = self.net.take_due(&mut self.rng, now);
        let mut delivered = 0;
        for env in due {
            if !self.alive[env.to] {
                self.count("lost to the dead");
                continue;
            }
            delivered += 1;
            let (from, to) = (env.from, env.to);
            match self.replicas[to].receive(&env.bytes) {
                Ok(received) => {
                    self.log(|| {
                        format!(
                            "r{to} <- r{from}: {}",
                            self.describe_changes(&received.changes)
                        )
                    });
                    self.record_changes(to, &received.changes)?;
                    if let Some(reply) = received.reply {
                        self.net.send(&mut self.rng, to, from, reply, now);
                    }
                }
                Err(Error::RemovedReplica(id))
                    if id == self.replicas[from].id()
                        && self.replicas[to].status().removed.contains(&id) =>
                {
                    self.log(|| format!("r{to} refused r{from}: removed"));
                    self.count("refused from removed");
                }
                // The network duplicates and reorders: a copy that arrives after a later
                // frame is refused, and the protocol sends what it held again.
                Err(Error::ReplayedFrame { sender, .. }) if sender == self.replicas[from].id() => {
                    self.log(|| format!("r{to} refused r{from}: a late or second copy"));
                    self.count("refused as replayed");
                }
                Err(e) => {
                    return Err(self.fail(format!("r{to} rejected a message from r{from}: {e}")))
                }
            }
        }
        Ok(delivered)
    }

    /// Runs `tick` on replica `at`.
    ///
    /// # Errors
    /// As [`World::record_changes`].
    pub fn tick(&mut self, at: usize) -> Result<(), String> {
        let changes = self.replicas[at].tick();
        self.record_changes(at, &changes)
    }

    /// Cuts the replicas into two sides.
    pub fn start_partition(&mut self) {
        let n = self.replicas.len();
        let mut all: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut all);
        let k = self.rng.range(1, n as u64 - 1) as usize;
        let side = &all[..k];
        self.log(|| format!("partition {side:?} | rest"));
        self.count("partitions");
        self.net.partition(side, n);
    }

    /// Restores every link; like a transport that reconnects, each side may rewind what it
    /// sent the other.
    ///
    /// # Errors
    /// When the engine does not know a peer it was sending to.
    pub fn heal(&mut self, rewind_pm: u64) -> Result<(), String> {
        for (a, b) in self.net.heal() {
            if self.alive[a] && self.rng.chance(rewind_pm) {
                let peer = self.replicas[b].id();
                if self.replicas[a].peers().iter().any(|p| p.0 == peer) {
                    self.replicas[a]
                        .rewind(peer)
                        .map_err(|e| self.fail(format!("rewind: {e}")))?;
                }
            }
        }
        self.log(|| "healed".to_string());
        Ok(())
    }

    /// Kills replica `at` for good; its messages in flight stay in the network.
    pub fn kill(&mut self, at: usize) {
        self.log(|| format!("r{at} dies"));
        self.alive[at] = false;
    }

    /// Survivor `at` removes the dead replica from membership.
    ///
    /// # Errors
    /// When the engine refuses.
    pub fn remove_dead(&mut self, at: usize) -> Result<(), String> {
        let Some(dead) = self.dead() else {
            return Ok(());
        };
        let id = self.replicas[dead].id();
        self.log(|| format!("r{at} removes r{dead}"));
        self.replicas[at]
            .remove_member(id)
            .map(|_| ())
            .map_err(|e| self.fail(format!("remove_member: {e}")))
    }
}
