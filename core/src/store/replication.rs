//! A [`Store`]'s side of replication: peers, frames out, messages in. Acks leave only once
//! what they acknowledge is durable, and own ops are released to peers only once durable.

use super::{State, Store};
use crate::clock::ReplicaId;
use crate::crdt::SessionId;
use crate::error::{Error, Result};
use crate::replicate::Message;

/// What applying a message did, for a caller that waits for durability itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The encoded reply (an ack), to send once `lsn` is durable.
    pub reply: Option<Vec<u8>>,
    /// The WAL record holding the changes, if any were made.
    pub lsn: Option<u64>,
}

impl Store {
    /// Registers a peer. See [`Replica::add_peer`](crate::Replica::add_peer).
    ///
    /// # Errors
    /// As [`Replica::add_peer`](crate::Replica::add_peer).
    pub fn add_peer(&self, id: ReplicaId, name: &str) -> Result<()> {
        self.inner.state.write().replica.add_peer(id, name)
    }

    /// Removes a replica from membership for good (logged). See [`Replica::remove_member`](crate::Replica::remove_member).
    ///
    /// # Errors
    /// As [`Replica::remove_member`](crate::Replica::remove_member), plus log failures.
    pub fn remove_member(&self, id: ReplicaId) -> Result<()> {
        self.check_open()?;
        let lsn = {
            let mut st = self.inner.state.write();
            let change = st.replica.remove_member(id)?;
            self.inner.log_changes(&mut st, &[change])?
        };
        if let Some(lsn) = lsn {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(())
    }

    pub(crate) fn release_durable(&self, st: &mut State) {
        let durable = self.inner.wal.durable_seq();
        let mut top = None;
        while let Some(&(lsn, own)) = st.own_pending.front() {
            if lsn > durable {
                break;
            }
            top = Some(own);
            st.own_pending.pop_front();
        }
        if let Some(own) = top {
            st.replica.release_own_ops_through(own);
        }
    }

    /// The next encoded frame for `peer`, if there is anything to send. See
    /// [`Replica::frame_for`](crate::Replica::frame_for).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::Closed`].
    pub fn frame_for(&self, peer: ReplicaId) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let frame = {
            let mut st = self.inner.state.write();
            self.release_durable(&mut st);
            st.replica.frame_for(peer)?
        };
        Ok(frame.map(|f| Message::Frame(f).encode()))
    }

    /// An encoded heartbeat frame for `peer`. See [`Replica::heartbeat`](crate::Replica::heartbeat).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::Closed`].
    pub fn heartbeat(&self, peer: ReplicaId) -> Result<Vec<u8>> {
        self.check_open()?;
        let frame = self.inner.state.write().replica.heartbeat(peer)?;
        Ok(Message::Frame(frame).encode())
    }

    /// An encoded repair frame carrying the full states of `ids`. See
    /// [`Replica::repair_frame`](crate::Replica::repair_frame).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`], [`Error::Closed`].
    pub fn repair_frame(&self, peer: ReplicaId, ids: &[SessionId]) -> Result<Vec<u8>> {
        self.check_open()?;
        let frame = self.inner.state.write().replica.repair_frame(peer, ids)?;
        Ok(Message::Frame(frame).encode())
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
    /// scheduler).
    ///
    /// # Errors
    /// As [`Store::receive`].
    pub fn receive_deferred(&self, bytes: &[u8]) -> Result<Receipt> {
        self.check_open()?;
        let msg =
            Message::decode(bytes, &self.inner.config.replica.limits).map_err(Error::Frame)?;
        let (ack, lsn) = {
            let mut st = self.inner.state.write();
            if let Some(why) = self.inner.wal.failure() {
                return Err(why);
            }
            match msg {
                Message::Frame(frame) => {
                    let applied = st.replica.apply_frame(frame)?;
                    let lsn = self.inner.log_changes(&mut st, &applied.changes)?;
                    (Some(applied.ack), lsn)
                }
                Message::Ack(ack) => {
                    let changes = st.replica.on_ack(&ack)?;
                    (None, self.inner.log_changes(&mut st, &changes)?)
                }
            }
        };
        Ok(Receipt {
            reply: ack.map(|a| Message::Ack(a).encode()),
            lsn,
        })
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
    fn own_writes_waiting_for_durability_are_released_without_peers_or_status_calls() {
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
        // Every write but the last was durable when the next one came, so at most the last
        // waits: nothing grows with the number of writes.
        let pending = store.inner.state.read().own_pending.len();
        assert!(pending <= 1, "{pending} own writes still held");
    }
}
