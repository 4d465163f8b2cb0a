//! A [`Store`]'s writes and reads.
//!
//! A write is checked and made into an op, appended to the log, and only then applied in
//! memory, all under the state lock (so log order is apply order): a write the log refuses
//! changes nothing (I5). It returns once its record is durable under
//! [`WriteMode::WaitDurable`], at once under [`WriteMode::Queued`].
//!
//! Reads are refused while the store is fenced ([`Error::CatchingUp`], I4) or tainted (the
//! log failed with changes in memory that no durable record holds, I5).

use bytes::Bytes;

use super::{Store, WriteMode};
use crate::crdt::{FieldWrite, SessionId, SessionRef, SessionView};
use crate::error::Result;
use crate::replicate::{encode_changes, Change, LocalWrite, Replica};

impl Store {
    /// Checks, logs and applies a local write; returns its WAL sequence number once durable
    /// (or once queued, under [`WriteMode::Queued`]).
    ///
    /// # Errors
    /// As [`Replica::prepare`], plus log failures ([`crate::Error::Poisoned`],
    /// [`crate::Error::NoSpace`]) and [`crate::Error::Closed`]; the store is then unchanged,
    /// except for `Poisoned` after the record was handed to the log (its outcome is
    /// unknown until the store reopens, see I5).
    pub fn write(&self, write: LocalWrite) -> Result<u64> {
        self.check_open()?;
        let (lsn, wake) = {
            let mut st = self.inner.lock_write()?;
            if let Some(why) = self.inner.wal.failure() {
                return Err(why);
            }
            let op = st.replica.prepare(write)?;
            let changes = [Change::Op(op)];
            let (lsn, wake) = self.inner.wal.append_quiet(&encode_changes(&changes))?;
            let [Change::Op(op)] = &changes else {
                unreachable!("built above")
            };
            st.replica.apply_local(op);
            st.replica.note_logged(lsn);
            self.inner.note_durable(&mut st);
            (lsn, wake)
        };
        if wake {
            self.inner.wal.wake_writer();
        }
        if self.inner.config.write_mode == WriteMode::WaitDurable {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(lsn)
    }

    /// Waits until the record `lsn` (from a write under [`WriteMode::Queued`]) is durable.
    ///
    /// # Errors
    /// [`crate::Error::Poisoned`] / [`crate::Error::NoSpace`] when the log failed,
    /// [`crate::Error::Closed`].
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        self.inner.wal.wait_durable(lsn)
    }

    /// WAL sequence number up to which everything is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.inner.wal.durable_seq()
    }

    /// Sets one field. See [`Replica::put`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn put(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<u64> {
        self.write(LocalWrite::Put {
            session: session.into(),
            fields: vec![FieldWrite {
                key: key.into(),
                value: Some(value.into()),
            }],
        })
    }

    /// Sets several fields in one change. See [`Replica::put_fields`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn put_fields(
        &self,
        session: impl Into<SessionId>,
        fields: Vec<(Bytes, Bytes)>,
    ) -> Result<u64> {
        let fields = fields
            .into_iter()
            .map(|(key, v)| FieldWrite {
                key,
                value: Some(v),
            })
            .collect();
        self.write(LocalWrite::Put {
            session: session.into(),
            fields,
        })
    }

    /// Deletes one field. See [`Replica::delete_field`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn delete_field(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
    ) -> Result<u64> {
        self.write(LocalWrite::Put {
            session: session.into(),
            fields: vec![FieldWrite {
                key: key.into(),
                value: None,
            }],
        })
    }

    /// Ends (deletes) a session for good. See [`Replica::end`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn end(&self, session: impl Into<SessionId>) -> Result<u64> {
        self.write(LocalWrite::End {
            session: session.into(),
        })
    }

    /// Extends a session's life. See [`Replica::touch`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn touch(&self, session: impl Into<SessionId>, ttl_ms: u64) -> Result<u64> {
        self.write(LocalWrite::Touch {
            session: session.into(),
            ttl_ms,
        })
    }

    /// Adds to a counter. See [`Replica::counter_add`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn counter_add(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        delta: i64,
    ) -> Result<u64> {
        self.write(LocalWrite::Counter {
            session: session.into(),
            key: key.into(),
            delta,
        })
    }

    /// Adds a set element. See [`Replica::set_add`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn set_add(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<u64> {
        self.write(LocalWrite::SetAdd {
            session: session.into(),
            key: key.into(),
            elem: elem.into(),
        })
    }

    /// Removes a set element. See [`Replica::set_remove`].
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn set_remove(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<u64> {
        self.write(LocalWrite::SetRemove {
            session: session.into(),
            key: key.into(),
            elem: elem.into(),
        })
    }

    /// Runs `f` on the replica if the store may serve what memory holds: not tainted and not
    /// fenced. Waits for the lock within this thread's budget.
    fn readable<T>(&self, f: impl FnOnce(&Replica) -> T) -> Result<T> {
        let st = self.inner.lock_read()?;
        self.inner.check_serving(&st)?;
        st.replica.check_unfenced()?;
        Ok(f(&st.replica))
    }

    /// Runs `f` on the replica unless the store is tainted (fenced is fine: for digests and
    /// replication, which never hand a session to a reader).
    pub(crate) fn serving<T>(&self, f: impl FnOnce(&Replica) -> T) -> Result<T> {
        let st = self.inner.lock_read()?;
        self.inner.check_serving(&st)?;
        Ok(f(&st.replica))
    }

    /// A session as a reader sees it. See [`Replica::get`].
    ///
    /// # Errors
    /// [`crate::Error::CatchingUp`] while fenced, the log's failure while tainted,
    /// [`crate::Error::Busy`] past this thread's lock budget.
    pub fn get(&self, session: &[u8]) -> Result<Option<SessionView>> {
        self.readable(|r| r.get(session))
    }

    /// Runs `f` on the session as a reader sees it, borrowed in place under the store's read
    /// lock (see [`Replica::get_ref`]): for a caller that encodes it at once and needs no
    /// copy. `f` should be short (writers wait for it) and must not call back into this
    /// store: the read lock is held while it runs.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn read_session<T>(
        &self,
        session: &[u8],
        f: impl FnOnce(Option<SessionRef<'_>>) -> T,
    ) -> Result<T> {
        self.readable(|r| f(r.get_ref(session)))
    }

    /// One field's value. See [`Replica::get_field`].
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_field(&self, session: &[u8], key: &[u8]) -> Result<Option<Bytes>> {
        self.readable(|r| r.get_field(session, key))
    }

    /// [`Store::get`] (kept for callers that name the lock budget explicitly).
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn try_get(&self, session: &[u8]) -> Result<Option<SessionView>> {
        self.get(session)
    }

    /// [`Store::get_field`] (kept for callers that name the lock budget explicitly).
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn try_get_field(&self, session: &[u8], key: &[u8]) -> Result<Option<Bytes>> {
        self.get_field(session, key)
    }

    /// Ids of the sessions a reader sees, in order.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn session_ids(&self) -> Result<Vec<SessionId>> {
        self.readable(Replica::session_ids)
    }

    /// Runs `f` on the replica under the read lock, whatever its state (for inspection and
    /// tests: nothing here checks the fence or the log).
    pub fn read<T>(&self, f: impl FnOnce(&Replica) -> T) -> T {
        f(&self.inner.state.read().replica)
    }
}
