//! The resource behind an Erlang handle: the open store (or nothing once closed) and its
//! durability notifier.

use std::sync::Arc;

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
    /// Runs on whatever thread collected the last reference, possibly a scheduler: it only
    /// tells the notifier to finish; the notifier thread closes the store and exits.
    fn drop(&mut self) {
        self.notifier.shut_down();
    }
}

/// Runs `f` on the handle's store, or returns `{error, closed}`.
pub(crate) fn with<'a>(
    env: Env<'a>,
    h: &ResourceArc<Handle>,
    f: impl FnOnce(&Store) -> rustler::NifResult<Term<'a>>,
) -> rustler::NifResult<Term<'a>> {
    match h.store() {
        Some(store) => f(&store),
        None => Ok(convert::closed(env)),
    }
}
