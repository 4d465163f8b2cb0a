//! The moves of a step that involve the network or the stores' upkeep: regions send frames
//! and heartbeats (every message is read on its way out: what it claims, which ops it makes
//! seen, and whether it leaks a refused value), the network delivers what is due (replies
//! wait for durability), logs are pumped, maintenance and snapshots run, two regions repair
//! what their digests say differs, links are cut and healed, and the survivors remove the
//! region that died.

use session_ha::{FrameBody, Limits, Message, ReplicaId, SessionId, SessionState, VersionVector};

use super::node::{classify, Refusal};
use super::params::Invariant;
use super::region::HeldReply;
use super::world::World;

impl World {
    /// Hands `bytes` from `from` to the network for `to`, after reading it (see
    /// [`World::observe_outgoing`]).
    pub fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if let Err(e) = self.observe_outgoing(from, &bytes) {
            self.errors.push(e);
        }
        let now = self.now();
        self.net.send(&mut self.rng, from, to, bytes, now);
    }

    /// Reads a message on its way out of `from`: every vector it carries is a claim that
    /// must be durable at `from` (I1); every op it carries is recorded (a dot naming two ops
    /// is I2) and seen, as is every op whose session's state it carries; no value a refused
    /// write wrote may be in it (I5).
    ///
    /// # Errors
    /// A dot naming two ops, an engine op that is not an expiry end, a leaked value.
    pub fn observe_outgoing(&mut self, from: usize, bytes: &[u8]) -> Result<(), String> {
        let msg = Message::decode(bytes, &Limits::default())
            .map_err(|e| self.fail(format!("r{from} sent a message that does not decode: {e}")))?;
        match msg {
            Message::Hello(_) => Ok(()),
            Message::Ack(ack) => {
                self.regions[from].claims.merge(&ack.vv.held());
                Ok(())
            }
            Message::Frame(frame) => {
                self.regions[from].claims.merge(&frame.vv.held());
                match &frame.body {
                    FrameBody::Ops(ops) => {
                        for op in ops {
                            if self.model.get(op.dot).is_none() && self.params.checks(Invariant::I2)
                            {
                                // Only the engine's own ends reach the wire unrecorded (unless
                                // dots were reused, which only a skipped I2 lets go on).
                                let origin = self.index_of(op.dot.replica).unwrap_or(from);
                                self.check_engine_op(origin, op)?;
                            }
                            self.record_op(op, &format!("r{from} shipped {:?}", op.dot))?;
                            self.model.mark_shipped(op.dot);
                            self.regions[from].claims.raise(op.dot.replica, op.dot.seq);
                            if let Some(why) = super::check::leaked_by_op(&self.model, op) {
                                let what = format!(
                                    "I5 violated: r{from} shipped {:?}, a value that must stay invisible ({why})",
                                    op.dot
                                );
                                self.violation(Invariant::I5, what)?;
                            }
                        }
                    }
                    FrameBody::State { sessions, .. } => {
                        let states = sessions.iter().map(|(sid, st)| (sid, Some(st)));
                        self.observe_states(from, &frame.vv, states.collect())?;
                    }
                    FrameBody::Repair(sessions) => {
                        let states = sessions.iter().map(|(sid, st)| (sid, st.as_ref()));
                        self.observe_states(from, &frame.vv, states.collect())?;
                    }
                }
                Ok(())
            }
        }
    }

    /// The session states a frame from `from` carries, as of the frame's vector `vv`: every
    /// op they may reflect is seen, and none may hold a value that must stay invisible (I5).
    fn observe_states(
        &mut self,
        from: usize,
        vv: &VersionVector,
        states: Vec<(&SessionId, Option<&SessionState>)>,
    ) -> Result<(), String> {
        for (sid, state) in states {
            self.model.mark_session_seen(sid, vv);
            let leak = state.and_then(|st| super::check::leaked_by_state(&self.model, st));
            if let Some(why) = leak {
                let what = format!(
                    "I5 violated: r{from} shipped the state of {sid:?} holding a value that must stay invisible ({why})"
                );
                self.violation(Invariant::I5, what)?;
            }
        }
        Ok(())
    }

    /// Region `from` sends its peer `to` every frame it has for it (up to a bound), and
    /// with probability `heartbeat_pm` a heartbeat.
    ///
    /// # Errors
    /// When the store refuses to make a frame for a healthy peer of its own.
    pub fn send_frames(
        &mut self,
        from: usize,
        peer: ReplicaId,
        to: usize,
        heartbeat_pm: u64,
    ) -> Result<(), String> {
        for _ in 0..16 {
            let frame = match self.nodes[from].frame_for(peer) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return self.refused(from, "frame_for", &e),
            };
            self.log(|| format!("r{from} -> r{to} {}", self.describe_bytes(&frame)));
            self.count("frames");
            self.send(from, to, frame);
        }
        if self.rng.chance(heartbeat_pm) {
            match self.nodes[from].heartbeat(peer) {
                Ok(frame) => {
                    self.count("heartbeats");
                    self.send(from, to, frame);
                }
                Err(e) => return self.refused(from, "heartbeat", &e),
            }
        }
        Ok(())
    }

    /// A call on region `at` was refused: a failed log is bookkept, anything else is a bug.
    ///
    /// # Errors
    /// Refusals other than a failed log or a fence.
    pub fn refused(&mut self, at: usize, call: &str, e: &session_ha::Error) -> Result<(), String> {
        match classify(e) {
            Refusal::LogFailed => {
                self.on_log_failed(at, &format!("{call}: {e}"));
                Ok(())
            }
            Refusal::CatchingUp => {
                self.count("refused: catching up");
                Ok(())
            }
            _ => Err(self.fail(format!("r{at}.{call}: {e}"))),
        }
    }

    /// Region `from` sends frames to each of its peers with probability `send_pm`.
    ///
    /// # Errors
    /// As [`World::send_frames`].
    pub fn send_from(
        &mut self,
        from: usize,
        send_pm: u64,
        heartbeat_pm: u64,
    ) -> Result<(), String> {
        if !self.regions[from].is_up() {
            return Ok(());
        }
        for (peer, name) in self.nodes[from].peers() {
            let Some(to) = self.index_of_region(&name) else {
                return Err(self.fail(format!("r{from} has a peer in an unknown region {name}")));
            };
            if to != from && self.rng.chance(send_pm) {
                self.send_frames(from, peer, to, heartbeat_pm)?;
            }
        }
        Ok(())
    }

    /// Delivers one message; replies go back through the network once what they
    /// acknowledge is durable.
    ///
    /// # Errors
    /// When a region rejects a well-formed message from a member, or what it did breaks the
    /// model.
    pub fn deliver(&mut self, env: super::network::Envelope) -> Result<(), String> {
        let (from, to) = (env.from, env.to);
        if !self.regions[to].is_up() {
            self.count("lost to a stopped region");
            return Ok(());
        }
        let before = self.own_seq(to);
        match self.nodes[to].receive(&env.bytes) {
            Ok(receipt) => {
                self.log(|| format!("r{to} <- r{from}: {}", self.describe_bytes(&env.bytes)));
                self.record_engine_ops(to, before)?;
                if let Some(reply) = receipt.reply {
                    match receipt.lsn {
                        Some(lsn) if lsn > self.nodes[to].durable_lsn() => {
                            self.regions[to].held.push(HeldReply {
                                lsn,
                                to: from,
                                bytes: reply,
                            });
                        }
                        _ => self.send(to, from, reply),
                    }
                }
                Ok(())
            }
            Err(e) if classify(&e) == Refusal::RemovedSender => {
                self.log(|| format!("r{to} refused r{from}: removed"));
                self.count("refused from removed");
                Ok(())
            }
            Err(e) if classify(&e) == Refusal::Replayed => {
                self.log(|| format!("r{to} refused r{from}: a late or second copy"));
                self.count("refused as replayed");
                Ok(())
            }
            Err(e) if matches!(classify(&e), Refusal::NotAMember(_)) => {
                let Refusal::NotAMember(id) = classify(&e) else {
                    return Ok(());
                };
                if Some(id) == self.nodes[from].id() {
                    // A member the receiver forgot (its membership change was lost with
                    // its disk): the transport's next hello introduces it again.
                    self.log(|| format!("r{to} refused r{from}: not a member; hello"));
                    self.count("refused from a forgotten member");
                    let _ = self.nodes[to].add_peer(id, &self.nodes[from].region);
                } else {
                    self.log(|| format!("r{to} refused r{from}'s old incarnation {id}"));
                    self.count("refused from an old incarnation");
                }
                Ok(())
            }
            Err(e) => {
                self.record_engine_ops(to, before)?;
                self.refused(to, "receive", &e)
            }
        }
    }

    /// Takes what is due from the network, in the order it arrives.
    pub fn take_due(&mut self) -> Vec<super::network::Envelope> {
        let now = self.now();
        self.net.take_due(&mut self.rng, now)
    }

    /// Delivers everything due; returns how many were delivered.
    ///
    /// # Errors
    /// As [`World::deliver`].
    pub fn deliver_due(&mut self) -> Result<usize, String> {
        let due = self.take_due();
        let n = due.len();
        for env in due {
            self.deliver(env)?;
        }
        Ok(n)
    }

    /// Pumps region `at`'s log as its policy says (or syncs it when `force_sync`), then
    /// acknowledges what became durable.
    pub fn pump(&mut self, at: usize, force_sync: bool) {
        if !self.regions[at].is_up() {
            return;
        }
        let now = self.now();
        match self.nodes[at].pump(now, force_sync) {
            Ok(()) => self.on_durable(at),
            Err(e) => {
                self.on_durable(at);
                self.on_log_failed(at, &e.to_string());
            }
        }
    }

    /// Runs maintenance on region `at`.
    ///
    /// # Errors
    /// As [`World::record_engine_ops`], or a refusal that is not a failed log.
    pub fn tick(&mut self, at: usize) -> Result<(), String> {
        if !self.regions[at].is_up() {
            return Ok(());
        }
        let before = self.own_seq(at);
        let result = self.nodes[at].tick();
        self.record_engine_ops(at, before)?;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.refused(at, "tick", &e),
        }
    }

    /// Takes a snapshot (or compacts) on region `at`.
    ///
    /// # Errors
    /// A snapshot that fails on a healthy disk.
    pub fn snapshot(&mut self, at: usize, compact: bool) -> Result<(), String> {
        if !self.regions[at].is_up() {
            return Ok(());
        }
        self.count(if compact { "compactions" } else { "snapshots" });
        match self.nodes[at].snapshot(compact) {
            Ok(()) => {
                // The manifest now records where the log ended (I3).
                if let Some(vv) = self.nodes[at].durable_vector() {
                    self.regions[at].recorded_end = vv;
                }
                Ok(())
            }
            Err(_) if self.nodes[at].disk_failed() || self.regions[at].log_failed => {
                self.count("snapshots failed on a failing disk");
                Ok(())
            }
            Err(e) => self.refused(at, "snapshot", &e),
        }
    }

    /// Region `at` backs itself up.
    ///
    /// # Errors
    /// A backup that fails on a healthy disk.
    pub fn backup(&mut self, at: usize) -> Result<(), String> {
        if !self.regions[at].is_up() {
            return Ok(());
        }
        match self.nodes[at].backup() {
            Ok(file) => {
                self.log(|| format!("r{at} backed up to {}", file.display()));
                self.count("backups");
                self.regions[at].backup = Some(file);
                Ok(())
            }
            Err(_) if self.nodes[at].disk_failed() || self.regions[at].log_failed => {
                self.count("backups failed on a failing disk");
                Ok(())
            }
            Err(e) => self.refused(at, "backup", &e),
        }
    }

    /// Regions `a` and `b` compare digests; each sends the other repair frames for the
    /// sessions that differ.
    ///
    /// # Errors
    /// A refusal that is not a failed log or a fence.
    pub fn repair(&mut self, a: usize, b: usize) -> Result<(), String> {
        if a == b || !self.regions[a].is_up() || !self.regions[b].is_up() {
            return Ok(());
        }
        let ids = match self.nodes[a].differing_sessions(&self.nodes[b]) {
            Ok(ids) => ids,
            Err((who, e)) => return self.refused(who, "differing_sessions", &e),
        };
        if ids.is_empty() {
            return Ok(());
        }
        self.log(|| format!("repair r{a} <-> r{b}: {} sessions differ", ids.len()));
        self.count("repairs");
        for (x, y) in [(a, b), (b, a)] {
            let Some(peer) = self.nodes[y].id() else {
                continue;
            };
            if !self.nodes[x].peers().iter().any(|p| p.0 == peer) {
                // It has not heard of `y`'s new incarnation yet.
                continue;
            }
            match self.nodes[x].repair_frames(peer, &ids) {
                Ok(frames) => {
                    for f in frames {
                        self.send(x, y, f);
                    }
                }
                Err(e) => self.refused(x, "repair_frames", &e)?,
            }
        }
        Ok(())
    }

    /// Cuts the regions into two sides.
    pub fn start_partition(&mut self) {
        let n = self.nodes.len();
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
    /// When a store does not know a peer it was sending to.
    pub fn heal(&mut self, rewind_pm: u64) -> Result<(), String> {
        for (a, b) in self.net.heal() {
            if self.regions[a].is_up() && self.rng.chance(rewind_pm) {
                let Some(peer) = self.nodes[b].id() else {
                    continue;
                };
                if self.nodes[a].peers().iter().any(|p| p.0 == peer) {
                    self.nodes[a]
                        .rewind(peer)
                        .map_err(|e| self.fail(format!("rewind: {e}")))?;
                }
            }
        }
        self.log(|| "healed".to_string());
        Ok(())
    }

    /// Survivor `at` removes the dead region from membership: its last id, and any earlier
    /// one `at` still counts as a member (its retirement was lost in a crash of `at`, and the
    /// dead region is not there to introduce itself again), as an operator retires every
    /// member the status says it waits for.
    ///
    /// # Errors
    /// A refusal that is not a failed log.
    pub fn remove_dead(&mut self, at: usize) -> Result<(), String> {
        let Some(dead) = self.dead() else {
            return Ok(());
        };
        let Some(id) = self.nodes[dead].id() else {
            return Ok(());
        };
        if !self.regions[at].is_up() {
            return Ok(());
        }
        let members: Vec<_> = self.nodes[at]
            .inspect(|r| r.peers().into_iter().map(|(p, _)| p).collect())
            .unwrap_or_default();
        let old = self.nodes[dead].old_ids();
        let ids = std::iter::once(id).chain(old.into_iter().filter(|o| members.contains(o)));
        for id in ids.collect::<Vec<_>>() {
            self.log(|| format!("r{at} removes r{dead} ({id})"));
            match self.nodes[at].remove_member(id) {
                Ok(()) => self.on_durable(at),
                Err(e) => self.refused(at, "remove_member", &e)?,
            }
        }
        Ok(())
    }
}
