//! The resource behind an Erlang handle: the open store (or nothing once closed) and its
//! durability notifier.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use rustler::{Env, Resource, ResourceArc, Term};
use session_ha::Store;

use crate::convert;
use crate::notifier::Notifier;

/// An open store as Erlang holds it. Every NIF clones the `Arc` under the read lock and
/// works on the clone, so `close` never waits for a call in progress; calls that start after
/// `close` find `None` and return `{error, closed}`.
pub(crate) struct Handle {
    store: RwLock<Option<Arc<Store>>>,
    notifier: Notifier,
}

#[rustler::resource_impl]
impl Resource for Handle {}

impl Handle {
    pub(crate) fn new(store: Store) -> std::io::Result<Handle> {
        let store = Arc::new(store);
        let notifier = Notifier::start(Arc::clone(&store))?;
        Ok(Handle {
            store: RwLock::new(Some(store)),
            notifier,
        })
    }

    /// The store, unless closed.
    pub(crate) fn store(&self) -> Option<Arc<Store>> {
        self.store.read().clone()
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Closes the store (flushing the log), then answers every pending waiter. `None` when
    /// it was already closed.
    pub(crate) fn close(&self) -> Option<session_ha::Result<()>> {
        let store = self.store.write().take()?;
        let result = store.close();
        self.notifier.stop();
        Some(result)
    }
}

impl Drop for Handle {
    /// Runs on whatever thread collected the last reference, possibly a scheduler, so it
    /// blocks on nothing: a short-lived thread closes the store (flushing the log, which also
    /// ends the notifier's wait), and the notifier answers its waiters and exits.
    fn drop(&mut self) {
        self.notifier.shut_down();
        if let Some(store) = self.store.get_mut().take() {
            let closer = std::thread::Builder::new()
                .name("session-ha-close".into())
                .spawn(move || {
                    let _ = store.close();
                });
            // Without a thread, the notifier closes the store itself once its current wait
            // ends (at the next fsync).
            drop(closer);
        }
    }
}

/// For NIFs on a normal scheduler: runs `f` on the handle's store (or returns
/// `{error, closed}`), then charges the calling process for the time taken.
///
/// A NIF call costs its process one reduction however long it runs, so a process making
/// thousands of microsecond calls would keep its scheduler for many milliseconds in one time
/// slice. Charging each call its share of the 1 ms slice (1 % per started 10 us, at least
/// 1 %) makes the process yield on time.
pub(crate) fn with<'a>(
    env: Env<'a>,
    h: &ResourceArc<Handle>,
    f: impl FnOnce(&Store) -> rustler::NifResult<Term<'a>>,
) -> rustler::NifResult<Term<'a>> {
    let started = Instant::now();
    // A normal scheduler never waits long for the store's lock: such a call comes back
    // `{error, busy}` and the Erlang wrapper retries it on a dirty scheduler.
    session_ha::store::set_thread_lock_budget(Some(NORMAL_LOCK_BUDGET));
    let result = match h.store() {
        Some(store) => f(&store),
        None => Ok(convert::closed(env)),
    };
    let micros = started.elapsed().as_micros();
    let percent = i32::try_from(micros.div_ceil(10))
        .unwrap_or(100)
        .clamp(1, 100);
    rustler::schedule::consume_timeslice(env, percent);
    result
}

/// How long a NIF on a normal scheduler may wait for the store's lock.
const NORMAL_LOCK_BUDGET: std::time::Duration = std::time::Duration::from_micros(200);

/// For NIFs on a dirty scheduler (no time slice to charge): runs `f` on the handle's store,
/// or returns `{error, closed}`.
pub(crate) fn with_dirty<'a>(
    env: Env<'a>,
    h: &ResourceArc<Handle>,
    f: impl FnOnce(&Store) -> rustler::NifResult<Term<'a>>,
) -> rustler::NifResult<Term<'a>> {
    session_ha::store::set_thread_lock_budget(None);
    match h.store() {
        Some(store) => f(&store),
        None => Ok(convert::closed(env)),
    }
}
