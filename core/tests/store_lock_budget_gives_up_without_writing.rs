//! A thread with a lock budget (an Erlang normal scheduler, through the NIF) gets
//! `Error::Busy` instead of waiting when the store's lock is held longer, and nothing is
//! written; without a budget the same call waits and succeeds.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::{mpsc, Arc};
use std::time::Duration;

use session_ha::store::set_thread_lock_budget;
use session_ha::{Error, FsyncPolicy, Store, StoreConfig};

#[test]
fn a_budgeted_write_gives_up_and_an_unbudgeted_one_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new("us-east-1");
    config.fsync = FsyncPolicy::Never;
    config.snapshot_interval = None;
    config.tick_interval = None;
    let (store, _) = Store::open(dir.path(), config).unwrap();
    let store = Arc::new(store);
    let (held, release) = (mpsc::channel::<()>(), mpsc::channel::<()>());
    let holder = {
        let store = Arc::clone(&store);
        let (held_tx, release_rx) = (held.0, release.1);
        std::thread::spawn(move || {
            store.read(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        })
    };
    held.1.recv().unwrap();
    set_thread_lock_budget(Some(Duration::from_millis(5)));
    assert!(matches!(store.put("s", "k", "v"), Err(Error::Busy)));
    assert!(
        matches!(store.try_get(b"s"), Ok(None)),
        "readers share the lock"
    );
    set_thread_lock_budget(None);
    let waiter = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.put("s", "k", "v").map(|_| ()))
    };
    std::thread::sleep(Duration::from_millis(20));
    release.0.send(()).unwrap();
    holder.join().unwrap();
    waiter.join().unwrap().unwrap();
    assert_eq!(store.get_field(b"s", b"k").unwrap().unwrap(), "v");
    assert_eq!(store.status().wal.last_seq, 1, "the busy put wrote nothing");
}
