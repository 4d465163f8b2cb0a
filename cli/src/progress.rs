//! Progress for long passes. The library reads and writes through a [`Vfs`]; a [`Pass`]
//! hands it one that counts files opened and bytes read and written (over the real disk),
//! and, when enabled, a thread redraws one line on stderr (`\r`, erase to end of line) with
//! those counts a few times a second. Enabled only when stderr is a terminal and output is
//! not JSON: the caller decides ([`Pass::start`]); nothing is drawn for passes under 300 ms.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use session_ha::fs::{DirLock, OsFs, Vfs, VfsFile};
use session_ha::Result;

use crate::text::size;

/// What a pass has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    files: AtomicU64,
    read: AtomicU64,
    written: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.files.load(Ordering::Relaxed),
            self.read.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
        )
    }
}

/// A [`Vfs`] that counts what goes through it and passes everything on.
#[derive(Debug)]
pub struct CountingFs {
    inner: Arc<dyn Vfs>,
    counters: Arc<Counters>,
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn VfsFile>,
    counters: Arc<Counters>,
}

impl CountingFs {
    fn wrap(&self, inner: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        Box::new(CountingFile {
            inner,
            counters: Arc::clone(&self.counters),
        })
    }
}

impl Vfs for CountingFs {
    fn create(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        Ok(self.wrap(self.inner.create(path)?))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        Ok(self.wrap(self.inner.open_append(path)?))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let f = self.inner.open_read(path)?;
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        Ok(self.wrap(f))
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        let bytes = self.inner.read_file(path)?;
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters
            .read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    fn file_len(&self, path: &Path) -> Result<u64> {
        self.inner.file_len(path)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list_dir(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }

    fn lock_dir(&self, dir: &Path) -> Result<DirLock> {
        self.inner.lock_dir(dir)
    }
}

impl VfsFile for CountingFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn append(&mut self, buf: &[u8]) -> Result<()> {
        self.inner.append(buf)?;
        self.counters
            .written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let n = self.inner.read_at(offset, buf)?;
        self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn sync_data(&mut self) -> Result<()> {
        self.inner.sync_data()
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        self.inner.set_len(len)
    }

    fn size(&self) -> Result<u64> {
        self.inner.size()
    }
}

/// The progress line for these counts.
pub fn line(
    label: &str,
    (files, read, written): (u64, u64, u64),
    total: Option<u64>,
    elapsed: Duration,
) -> String {
    let plural = if files == 1 { "" } else { "s" };
    let mut out = format!("{label}: {files} file{plural}, {} ", size(read));
    match total {
        Some(t) if t > 0 && read <= t => {
            out.push_str(&format!("of {} read ({}%)", size(t), read * 100 / t));
        }
        _ => out.push_str("read"),
    }
    if written > 0 {
        out.push_str(&format!(", {} written", size(written)));
    }
    out.push_str(&format!(", {:.1} s", elapsed.as_secs_f64()));
    out
}

/// Delay before the first draw, so quick passes draw nothing.
const QUIET_FOR: Duration = Duration::from_millis(300);
/// Time between redraws.
const EVERY: Duration = Duration::from_millis(100);

/// One long pass: the counting file system to give the library, and the line drawer.
#[derive(Debug)]
pub struct Pass {
    fs: Arc<CountingFs>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    drawer: Option<JoinHandle<()>>,
}

impl Pass {
    /// Starts a pass named `label` over about `total` bytes (when known); draws progress on
    /// stderr only when `draw` is true.
    pub fn start(draw: bool, label: &str, total: Option<u64>) -> Pass {
        let counters = Arc::new(Counters::default());
        let fs = Arc::new(CountingFs {
            inner: Arc::new(OsFs),
            counters: Arc::clone(&counters),
        });
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let drawer = if draw {
            let (stop, label) = (Arc::clone(&stop), label.to_string());
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || draw_until_stopped(&label, total, &counters, &stop))
                .ok()
        } else {
            None
        };
        Pass { fs, stop, drawer }
    }

    /// The file system to run the pass over.
    pub fn fs(&self) -> Arc<dyn Vfs> {
        self.fs.clone()
    }

    /// Stops drawing and erases the line (also done on drop).
    pub fn finish(mut self) {
        self.stop_drawing();
    }

    fn stop_drawing(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        if let Some(h) = self.drawer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.stop_drawing();
    }
}

fn draw_until_stopped(
    label: &str,
    total: Option<u64>,
    counters: &Counters,
    stop: &(Mutex<bool>, Condvar),
) {
    let started = Instant::now();
    let (lock, cvar) = stop;
    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut drawn = false;
    loop {
        let wait = if drawn {
            EVERY
        } else {
            QUIET_FOR.saturating_sub(started.elapsed())
        };
        stopped = match cvar.wait_timeout(stopped, wait) {
            Ok((guard, _)) => guard,
            Err(e) => e.into_inner().0,
        };
        let mut err = std::io::stderr().lock();
        if *stopped {
            if drawn {
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
            return;
        }
        if started.elapsed() >= QUIET_FOR {
            let text = line(label, counters.snapshot(), total, started.elapsed());
            let _ = write!(err, "\r{text}\x1b[K");
            let _ = err.flush();
            drawn = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_files_bytes_share_and_time() {
        let l = line(
            "verify",
            (3, 512 << 10, 0),
            Some(1 << 20),
            Duration::from_millis(1500),
        );
        assert_eq!(l, "verify: 3 files, 512.0 KiB of 1.0 MiB read (50%), 1.5 s");
        let l = line("export", (1, 2048, 1024), Some(10), Duration::ZERO);
        assert_eq!(l, "export: 1 file, 2.0 KiB read, 1.0 KiB written, 0.0 s");
    }

    #[test]
    fn counting_fs_counts_reads_and_writes_and_passes_them_on() {
        let tmp = tempfile::tempdir().unwrap();
        let pass = Pass::start(false, "t", None);
        let fs = pass.fs();
        let p = tmp.path().join("f");
        let mut f = fs.create(&p).unwrap();
        f.append(b"hello").unwrap();
        drop(f);
        assert_eq!(fs.read_file(&p).unwrap(), b"hello");
        let r = fs.open_read(&p).unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(r.read_at(2, &mut buf).unwrap(), 3);
        assert_eq!(pass.fs.counters.snapshot(), (2, 8, 5));
        pass.finish();
    }
}
