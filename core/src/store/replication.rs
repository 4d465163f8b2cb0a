//! A [`Store`]'s side of replication: peers, frames out, messages in. Acks leave only once
//! what they acknowledge is durable, ops only once durable here, and frames that carry state
//! only once everything they may reflect is durable (I1 in `docs/INVARIANTS.md`).

use super::Store;
use crate::auth::FrameKeys;
use crate::clock::ReplicaId;
use crate::crdt::SessionId;
use crate::error::{Error, Result};
use crate::replicate::{FrameBody, Hello, Message};

/// What applying a message did, for a caller that waits for durability itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The encoded reply (an ack), to send once `lsn` is durable.
    pub reply: Option<Vec<u8>>,
    /// The WAL record holding the changes, if any were made.
    pub lsn: Option<u64>,
}

impl Store {
    /// Registers a peer (a new member is logged: membership survives a restart). See
    /// [`Replica::add_peer`](crate::Replica::add_peer).
    ///
    /// # Errors
    /// As [`Replica::add_peer`](crate::Replica::add_peer), plus log failures.
    pub fn add_peer(&self, id: ReplicaId, name: &str) -> Result<()> {
        self.check_open()?;
        let mut st = self.inner.lock_write()?;
        let changes = st.replica.add_member(id, name)?;
        if changes.is_empty() {
            return Ok(());
        }
        self.inner.log_changes(&mut st, &changes)?;
        let now_ms = st.replica.now_ms();
        drop(st);
        // A member's records live in the log until the next snapshot: the manifest says the
        // replica is clustered, so that a crash that takes them still fences it (I4).
        let mut snap = self.inner.snap.lock();
        // Closed meanwhile: the close installed the last generation of this run.
        self.check_open()?;
        let fs = self.inner.fs.as_ref();
        if let Some(m) = super::open::record_clustered(fs, &self.inner.dir, &snap.manifest, now_ms)?
        {
            snap.manifest = m;
        }
        Ok(())
    }

    /// Removes a replica from membership for good (logged). See [`Replica::remove_member`](crate::Replica::remove_member).
    ///
    /// # Errors
    /// As [`Replica::remove_member`](crate::Replica::remove_member), plus log failures.
    pub fn remove_member(&self, id: ReplicaId) -> Result<()> {
        self.check_open()?;
        let lsn = {
            let mut st = self.inner.state.write();
            let mut changes = vec![st.replica.remove_member(id)?];
            // What the members held of it, on record with its removal.
            st.replica.log_retired_held(&mut changes);
            self.inner.log_changes(&mut st, &changes)?
        };
        if let Some(lsn) = lsn {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(())
    }

    /// Lifts the catch-up fence by hand (logged): for an operator who knows no member is left
    /// to catch up with, so this replica's state is the best there is. See I4.
    ///
    /// # Errors
    /// Log failures, [`Error::Closed`].
    pub fn lift_fence(&self) -> Result<()> {
        self.check_open()?;
        let lsn = {
            let mut st = self.inner.state.write();
            match st.replica.lift_fence() {
                Some(change) => self.inner.log_changes(&mut st, &[change])?,
                None => None,
            }
        };
        if let Some(lsn) = lsn {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(())
    }

    /// The next encoded frame for `peer`, if there is anything to send. See
    /// [`Replica::frame_for`](crate::Replica::frame_for). A frame that carries state (a
    /// transfer chunk) is returned only once every record it may reflect is durable (I1).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::Closed`], the log's failure while tainted.
    pub fn frame_for(&self, peer: ReplicaId) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let (frame, needs) = {
            let mut st = self.inner.lock_write()?;
            self.inner.check_serving(&st)?;
            self.inner.note_durable(&mut st);
            let frame = st.replica.frame_for(peer)?;
            let carries_state = frame
                .as_ref()
                .is_some_and(|f| !matches!(f.body, FrameBody::Ops(_)));
            (frame, carries_state.then(|| st.replica.logged_lsn()))
        };
        if let Some(lsn) = needs {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(frame.map(|f| self.encode(&Message::Frame(f))))
    }

    /// An encoded heartbeat frame for `peer`. See [`Replica::heartbeat`](crate::Replica::heartbeat).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::Closed`], the log's failure while tainted.
    pub fn heartbeat(&self, peer: ReplicaId) -> Result<Vec<u8>> {
        self.check_open()?;
        let frame = {
            let mut st = self.inner.lock_write()?;
            self.inner.check_serving(&st)?;
            self.inner.note_durable(&mut st);
            st.replica.heartbeat(peer)?
        };
        Ok(self.encode(&Message::Frame(frame)))
    }

    /// Encoded repair frames carrying this replica's full state of `ids` (or that it lacks
    /// them), each within the frame budget, returned once what they reflect is durable. See
    /// [`Replica::repair_frames`](crate::Replica::repair_frames).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::Closed`], the log's failure while tainted.
    pub fn repair_frames(&self, peer: ReplicaId, ids: &[SessionId]) -> Result<Vec<Vec<u8>>> {
        self.check_open()?;
        let (frames, lsn) = {
            let mut st = self.inner.lock_write()?;
            self.inner.check_serving(&st)?;
            let frames = st.replica.repair_frames(peer, ids)?;
            (frames, st.replica.logged_lsn())
        };
        self.inner.wal.wait_durable(lsn)?;
        Ok(frames
            .into_iter()
            .map(|f| self.encode(&Message::Frame(f)))
            .collect())
    }

    /// Forgets what was sent to `peer` and not acknowledged. See [`Replica::rewind`](crate::Replica::rewind).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`].
    pub fn rewind(&self, peer: ReplicaId) -> Result<()> {
        self.inner.state.write().replica.rewind(peer)
    }

    /// Applies an encoded message from a peer; returns the encoded reply (an ack) once what
    /// it acknowledges is durable. Decoding happens outside the lock.
    ///
    /// # Errors
    /// [`Error::Frame`] for bytes that do not decode (nothing changed), the errors of
    /// [`Replica::apply_frame`](crate::Replica::apply_frame) / [`Replica::on_ack`](crate::Replica::on_ack), log failures, [`Error::Closed`].
    pub fn receive(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let receipt = self.receive_deferred(bytes)?;
        if let Some(lsn) = receipt.lsn {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(receipt.reply)
    }

    /// [`Store::receive`] without the wait: the caller must send `reply` only after
    /// [`Store::wait_durable`] of `lsn` succeeded (the NIF does so without blocking a
    /// scheduler). The ack claims everything applied here when it was made, so `lsn` is the
    /// last record appended then: every change it covers is durable once `lsn` is (I1).
    ///
    /// # Errors
    /// As [`Store::receive`].
    pub fn receive_deferred(&self, bytes: &[u8]) -> Result<Receipt> {
        self.check_open()?;
        let decoded = {
            let keys = self.inner.frame_keys.read();
            let limits = &self.inner.config.replica.limits;
            Message::decode_with(bytes, limits, keys.as_ref())
        };
        let msg = match decoded {
            Ok(msg) => msg,
            Err(e) => return Err(self.refused(bytes, e)),
        };
        let mut st = self.inner.state.write();
        if let Some(why) = self.inner.wal.failure() {
            return Err(why);
        }
        let (ack, changes) = match msg {
            Message::Frame(frame) => {
                let applied = st.replica.apply_frame(frame)?;
                (Some(applied.ack), applied.changes)
            }
            Message::Ack(ack) => (None, st.replica.on_ack(&ack)?),
            Message::Hello(h) => {
                let err = Error::Frame(crate::DecodeError::Malformed(
                    "a hello is opened with open_hello".into(),
                ));
                st.replica.count_refusal(Some(h.sender), &err);
                return Err(err);
            }
        };
        let logged = self.inner.log_changes(&mut st, &changes)?;
        self.inner.note_durable(&mut st);
        let lsn = match ack {
            Some(_) => Some(st.replica.logged_lsn()).filter(|&l| l > self.inner.wal.durable_seq()),
            None => logged,
        };
        drop(st);
        Ok(Receipt {
            reply: ack.map(|a| self.encode(&Message::Ack(a))),
            lsn,
        })
    }

    /// Counts a message that failed to decode against the sender it claims; its error.
    fn refused(&self, bytes: &[u8], e: crate::DecodeError) -> Error {
        let sender = crate::codec::claimed_sender(bytes).map(ReplicaId);
        let err = match e {
            crate::DecodeError::Unauthenticated(why) => Error::Unauthenticated { sender, why },
            other => Error::Frame(other),
        };
        self.inner.state.write().replica.count_refusal(sender, &err);
        err
    }

    /// Encodes `msg` for the wire, signed when the store has frame keys.
    fn encode(&self, msg: &Message) -> Vec<u8> {
        msg.encode_with(self.inner.frame_keys.read().as_ref())
    }

    /// Replaces the frame keys (a rotation, see [`crate::auth`]); `None` turns
    /// authentication off. Takes effect for the next message in and out.
    pub fn set_frame_keys(&self, keys: Option<FrameKeys>) {
        let mut st = self.inner.state.write();
        st.replica.set_frame_keys(keys.clone());
        *self.inner.frame_keys.write() = keys;
    }

    /// This store's hello for the peers of transport node `node`. See
    /// [`Replica::hello`](crate::Replica::hello).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn hello(&self, node: &str) -> Result<Vec<u8>> {
        self.check_open()?;
        Ok(self.inner.state.read().replica.hello(node))
    }

    /// Opens a peer's hello (authenticated, from neither this replica nor a removed one);
    /// make it a member with [`Store::add_peer`]. See
    /// [`Replica::open_hello`](crate::Replica::open_hello).
    ///
    /// # Errors
    /// As [`Replica::open_hello`](crate::Replica::open_hello), [`Error::Closed`].
    pub fn open_hello(&self, bytes: &[u8]) -> Result<Hello> {
        self.check_open()?;
        self.inner.state.write().replica.open_hello(bytes)
    }

    /// Ends every session whose deadline has passed now (each end replicates like any
    /// change); returns how many. Maintenance does the same every `tick_interval`.
    ///
    /// # Errors
    /// Log failures, [`Error::Closed`].
    pub fn expire_due(&self) -> Result<usize> {
        self.check_open()?;
        let mut st = self.inner.state.write();
        let changes = st.replica.expire_due();
        self.inner.log_changes(&mut st, &changes)?;
        Ok(changes.len())
    }

    /// Runs maintenance now (expiry, resends, tombstone collection); the background thread
    /// also does every `tick_interval`.
    ///
    /// # Errors
    /// Log failures, [`Error::Closed`].
    pub fn tick(&self) -> Result<()> {
        self.check_open()?;
        self.inner.tick()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreConfig, WriteMode};
    use crate::FsyncPolicy;

    #[test]
    fn own_writes_count_as_durable_once_their_records_are_without_peers_or_status_calls() {
        let tmp = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            fsync: FsyncPolicy::Always,
            write_mode: WriteMode::WaitDurable,
            snapshot_interval: None,
            tick_interval: None,
            ..StoreConfig::new("eu-west-1")
        };
        let (store, _) = Store::open(tmp.path().join("store"), config).unwrap();
        for i in 0..200 {
            store.put(format!("s{i}").into_bytes(), "k", "v").unwrap();
        }
        // Every write was durable when it returned: the next call that looks (a frame, a
        // heartbeat, the status) counts them all as durable.
        assert_eq!(store.status().replica.durable_vv.get(store.id()), 200);
    }
}
