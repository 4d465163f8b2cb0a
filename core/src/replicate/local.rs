//! A [`Replica`]'s local writes. Each is checked against the limits and the session's state,
//! then made into an [`Op`] with the next dot, which is applied only afterwards: a store
//! appends the op to its log between the two steps, so a write the log refuses changes
//! nothing and uses no sequence number (I5 in `docs/INVARIANTS.md`). The plain methods
//! ([`Replica::put`], ...) do both steps at once.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::replica::Replica;
use crate::causal::Dot;
use crate::crdt::{FieldWrite, Op, OpKind, SessionId, SessionState};
use crate::error::{Error, Result};

/// A local write, before it is an op.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LocalWrite {
    /// Sets (value `Some`) or deletes (`None`) fields; the last write of a key wins.
    Put {
        /// The session.
        session: SessionId,
        /// The fields.
        fields: Vec<FieldWrite>,
    },
    /// Adds `delta` to a counter.
    Counter {
        /// The session.
        session: SessionId,
        /// The counter.
        key: Bytes,
        /// What to add (negative to subtract).
        delta: i64,
    },
    /// Adds an element to a set.
    SetAdd {
        /// The session.
        session: SessionId,
        /// The set.
        key: Bytes,
        /// The element.
        elem: Bytes,
    },
    /// Removes an element from a set (the adds this replica has seen).
    SetRemove {
        /// The session.
        session: SessionId,
        /// The set.
        key: Bytes,
        /// The element.
        elem: Bytes,
    },
    /// Extends the session's life to `ttl_ms` from now.
    Touch {
        /// The session.
        session: SessionId,
        /// Time to live from now, ms.
        ttl_ms: u64,
    },
    /// Ends the session for good.
    End {
        /// The session.
        session: SessionId,
    },
}

impl Replica {
    /// Checks `write` and makes its op with the next dot, without applying it: apply it with
    /// [`Replica::apply_local`] once it is logged, or drop it to leave the replica as it was.
    /// No other change may come between the two.
    ///
    /// # Errors
    /// Limits ([`Error::InvalidSessionId`], [`Error::InvalidKey`], [`Error::ValueTooLarge`],
    /// [`Error::TooManyFields`], [`Error::SessionTooLarge`]), [`Error::SessionEnded`],
    /// [`Error::CounterOverflow`], [`Error::InvalidTtl`], [`Error::InvalidArgument`] for an
    /// empty put, [`Error::CatchingUp`] while fenced.
    pub fn prepare(&mut self, write: LocalWrite) -> Result<Op> {
        self.check_unfenced()?;
        match write {
            LocalWrite::Put { session, fields } => self.prepare_put(session, fields),
            LocalWrite::Counter {
                session,
                key,
                delta,
            } => self.prepare_counter(session, key, delta),
            LocalWrite::SetAdd { session, key, elem } => self.prepare_set_add(session, key, elem),
            LocalWrite::SetRemove { session, key, elem } => {
                self.prepare_set_remove(session, key, elem)
            }
            LocalWrite::Touch { session, ttl_ms } => self.prepare_touch(session, ttl_ms),
            LocalWrite::End { session } => self.prepare_end(session),
        }
    }

    /// Applies an op [`Replica::prepare`] made.
    pub fn apply_local(&mut self, op: &Op) {
        self.apply_op(op);
    }

    /// [`Replica::prepare`] and [`Replica::apply_local`] at once.
    ///
    /// # Errors
    /// As [`Replica::prepare`]; the replica is then unchanged.
    pub fn write(&mut self, write: LocalWrite) -> Result<Op> {
        let op = self.prepare(write)?;
        self.apply_local(&op);
        Ok(op)
    }

    /// Sets one field of a session (creating the session if needed).
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn put(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<Op> {
        self.write(LocalWrite::Put {
            session: session.into(),
            fields: vec![FieldWrite {
                key: key.into(),
                value: Some(value.into()),
            }],
        })
    }

    /// Sets several fields of a session in one change.
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn put_fields(
        &mut self,
        session: impl Into<SessionId>,
        fields: Vec<(Bytes, Bytes)>,
    ) -> Result<Op> {
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

    /// Deletes one field of a session.
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn delete_field(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
    ) -> Result<Op> {
        self.write(LocalWrite::Put {
            session: session.into(),
            fields: vec![FieldWrite {
                key: key.into(),
                value: None,
            }],
        })
    }

    /// Adds `delta` to a counter of a session.
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn counter_add(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        delta: i64,
    ) -> Result<Op> {
        self.write(LocalWrite::Counter {
            session: session.into(),
            key: key.into(),
            delta,
        })
    }

    /// Adds an element to a set of a session.
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn set_add(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<Op> {
        self.write(LocalWrite::SetAdd {
            session: session.into(),
            key: key.into(),
            elem: elem.into(),
        })
    }

    /// Removes an element from a set of a session (the adds this replica has seen).
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn set_remove(
        &mut self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<Op> {
        self.write(LocalWrite::SetRemove {
            session: session.into(),
            key: key.into(),
            elem: elem.into(),
        })
    }

    /// Extends a session's life to `ttl_ms` from now (the longest deadline any replica set
    /// wins). After the deadline the session reads as absent everywhere and never comes back.
    ///
    /// # Errors
    /// As [`Replica::prepare`]: [`Error::InvalidTtl`] for 0 or a deadline past the clock's
    /// range.
    pub fn touch(&mut self, session: impl Into<SessionId>, ttl_ms: u64) -> Result<Op> {
        self.write(LocalWrite::Touch {
            session: session.into(),
            ttl_ms,
        })
    }

    /// Ends (deletes) a session for good: it reads as absent everywhere, and no late,
    /// duplicated or reordered change brings it back. Ending an ended session is harmless.
    ///
    /// # Errors
    /// As [`Replica::prepare`].
    pub fn end(&mut self, session: impl Into<SessionId>) -> Result<Op> {
        self.write(LocalWrite::End {
            session: session.into(),
        })
    }

    fn prepare_put(&mut self, session: SessionId, mut writes: Vec<FieldWrite>) -> Result<Op> {
        let limits = self.config.limits;
        limits.check_session_id(session.as_bytes())?;
        for w in &writes {
            limits.check_key(&w.key)?;
            if let Some(v) = &w.value {
                limits.check_value(v)?;
            }
        }
        if writes.is_empty() {
            return Err(Error::InvalidArgument(
                "a put needs at least one field".into(),
            ));
        }
        if writes.len() > 1 {
            // Last write of a key wins within one call; the op holds each key once, in order.
            let by_key: BTreeMap<Bytes, Option<Bytes>> =
                writes.into_iter().map(|w| (w.key, w.value)).collect();
            writes = by_key
                .into_iter()
                .map(|(key, value)| FieldWrite { key, value })
                .collect();
        }
        let state = self.writable(&session)?;
        let (mut grow_entries, mut grow_bytes) = (0isize, 0isize);
        for w in &writes {
            if let Some(old) = state
                .and_then(|s| s.fields.get(&w.key))
                .and_then(|r| r.value.as_ref())
            {
                grow_entries -= 1;
                grow_bytes -= (w.key.len() + old.len()) as isize;
            }
            if let Some(v) = &w.value {
                grow_entries += 1;
                grow_bytes += (w.key.len() + v.len()) as isize;
            }
        }
        // The session can only exceed a limit if it grows (a session over a limit, built by
        // merges from peers with other limits, may still shrink).
        if grow_entries > 0 || grow_bytes > 0 {
            let (entries, bytes) = state.map_or((0, 0), SessionState::live_size);
            self.check_size(
                entries.saturating_add_signed(grow_entries),
                bytes.saturating_add_signed(grow_bytes),
            )?;
        }
        Ok(self.stage(session, OpKind::Put(writes)))
    }

    fn prepare_counter(&mut self, session: SessionId, key: Bytes, delta: i64) -> Result<Op> {
        self.config.limits.check_session_id(session.as_bytes())?;
        self.config.limits.check_key(&key)?;
        let state = self.writable(&session)?;
        let counter = state.and_then(|s| s.counters.get(&key));
        let value = counter.map_or(0, |c| c.value());
        value.checked_add(delta).ok_or(Error::CounterOverflow)?;
        let (mut p, mut n) = counter.map_or((0, 0), |c| c.totals(self.id));
        if delta >= 0 {
            p = p
                .checked_add(delta.unsigned_abs())
                .ok_or(Error::CounterOverflow)?;
        } else {
            n = n
                .checked_add(delta.unsigned_abs())
                .ok_or(Error::CounterOverflow)?;
        }
        if counter.is_none() {
            let (entries, bytes) = state.map_or((0, 0), SessionState::live_size);
            self.check_size(entries + 1, bytes + key.len() + 8)?;
        }
        Ok(self.stage(session, OpKind::Counter { key, p, n }))
    }

    fn prepare_set_add(&mut self, session: SessionId, key: Bytes, elem: Bytes) -> Result<Op> {
        self.config.limits.check_session_id(session.as_bytes())?;
        self.config.limits.check_key(&key)?;
        self.config.limits.check_value(&elem)?;
        let state = self.writable(&session)?;
        let set = state.and_then(|s| s.sets.get(&key));
        if !set.is_some_and(|s| s.contains(&elem)) {
            let (entries, bytes) = state.map_or((0, 0), SessionState::live_size);
            let key_bytes = if set.is_some_and(|s| !s.entries.is_empty()) {
                0
            } else {
                key.len()
            };
            self.check_size(entries + 1, bytes + key_bytes + elem.len())?;
        }
        Ok(self.stage(session, OpKind::SetAdd { key, elem }))
    }

    fn prepare_set_remove(&mut self, session: SessionId, key: Bytes, elem: Bytes) -> Result<Op> {
        self.config.limits.check_session_id(session.as_bytes())?;
        self.config.limits.check_key(&key)?;
        self.config.limits.check_value(&elem)?;
        let state = self.writable(&session)?;
        let dots = state
            .and_then(|s| s.sets.get(&key))
            .map(|s| s.dots_of(&elem))
            .unwrap_or_default();
        Ok(self.stage(session, OpKind::SetRemove { key, elem, dots }))
    }

    fn prepare_touch(&mut self, session: SessionId, ttl_ms: u64) -> Result<Op> {
        self.config.limits.check_session_id(session.as_bytes())?;
        let deadline = self
            .now_ms()
            .checked_add(ttl_ms)
            .filter(|d| ttl_ms > 0 && *d < 1 << 48);
        let deadline_ms = deadline.ok_or(Error::InvalidTtl(ttl_ms))?;
        self.writable(&session)?;
        Ok(self.stage(session, OpKind::Touch { deadline_ms }))
    }

    fn prepare_end(&mut self, session: SessionId) -> Result<Op> {
        self.config.limits.check_session_id(session.as_bytes())?;
        Ok(self.stage(session, OpKind::End))
    }

    /// The session's state if a local write may change it (`None`: it does not exist yet).
    fn writable(&self, session: &SessionId) -> Result<Option<&SessionState>> {
        match self.sessions.get(session) {
            // Ended or past its deadline; an emptied session may be written again.
            Some(s) if s.is_ended() || (s.expires_at.is_some() && s.is_expired(self.now_ms())) => {
                Err(Error::SessionEnded)
            }
            other => Ok(other),
        }
    }

    fn check_size(&self, entries: usize, bytes: usize) -> Result<()> {
        let l = &self.config.limits;
        if entries > l.max_fields {
            return Err(Error::TooManyFields {
                count: entries,
                max: l.max_fields,
            });
        }
        if bytes > l.max_session_bytes {
            return Err(Error::SessionTooLarge {
                bytes,
                max: l.max_session_bytes,
            });
        }
        Ok(())
    }

    /// Makes the op of a local change with the next dot, without applying it.
    fn stage(&mut self, session: SessionId, kind: OpKind) -> Op {
        let seq = self.ctx.vv().get(self.id) + 1;
        Op {
            dot: Dot {
                replica: self.id,
                seq,
            },
            ts: self.clock.tick(),
            session,
            kind,
        }
    }

    /// Makes a local op with the next dot and applies it (maintenance: expiry ends).
    pub(crate) fn commit_local(&mut self, session: SessionId, kind: OpKind) -> Op {
        let op = self.stage(session, kind);
        self.apply_op(&op);
        op
    }
}
