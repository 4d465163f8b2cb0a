//! Helpers shared by the test files (each test file uses a subset): the WAL helpers here, the
//! store helpers in `store`.
#![allow(dead_code, clippy::unwrap_used)]

pub mod mesh;
pub mod pair;
pub mod store;

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use session_ha::fs::Vfs;
use session_ha::wal::{RecoveryReport, Wal, WalConfig};
use session_ha::Result;

/// Records as replayed by recovery: (seq, body).
pub type Replayed = Vec<(u64, Vec<u8>)>;

/// The body of record number `i` in test workloads: distinct and of varying length.
pub fn body(i: u64) -> Vec<u8> {
    let len = 5 + (i as usize * 7) % 23;
    (0..len)
        .map(|k| (i as u8).wrapping_mul(31).wrapping_add(k as u8))
        .collect()
}

/// Opens the log, collecting every replayed record.
pub fn open_collect(
    fs: Arc<dyn Vfs>,
    dir: &Path,
    config: WalConfig,
    replay_after: u64,
) -> Result<(Wal, RecoveryReport, Replayed)> {
    let mut got = Vec::new();
    let (wal, report) = Wal::open(fs, dir, config, replay_after, |seq, b| {
        got.push((seq, b.to_vec()));
        Ok(())
    })?;
    Ok((wal, report, got))
}

/// Reopens the log, returns what it holds, and closes it again.
pub fn contents(fs: Arc<dyn Vfs>, dir: &Path) -> Replayed {
    let (wal, _, got) = open_collect(fs, dir, WalConfig::default(), 0).unwrap();
    wal.close().unwrap();
    got
}

/// Runs `f` on another thread and fails the test if it does not finish in `secs` seconds
/// (a hung waiter would otherwise hang the whole suite).
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not finish within {secs} s: a waiter hung")
        }
    }
}
