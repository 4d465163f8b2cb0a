//! The adapter's disk side: what a node's simulated disk goes through and what it holds.
//! Power cuts and dying disks, backups and restores, at-rest damage, and the ground truth
//! the checks compare the store's claims with: a recovery (`recovered_state`) of what a
//! power cut now would leave, and `verify` of a stopped node's directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_ha::causal::GIVEN_UP;
use session_ha::fs::{Fault, FaultyFs, Repeat, Vfs};
use session_ha::store::{
    dry_run_recovery, recovered_state, restore_backup, verify_dir, RecoveredState,
};
use session_ha::wal::SEGMENT_HEADER_LEN;
use session_ha::{Error, FsyncPolicy, ReplicaId, VersionVector};

use super::{io_err, Node};

/// At-rest damage to a stopped node's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// One bit flipped near the end of the newest WAL segment (its last record).
    FlipLastRecord,
    /// The newest WAL segment cut short.
    CutLastSegment,
    /// The newest WAL segment deleted.
    EraseLastSegment,
    /// The whole `wal/` directory deleted.
    EraseWal,
    /// One bit flipped in the newest snapshot file.
    FlipNewestSnapshot,
}

impl Node {
    /// The power cut itself: the disk keeps only what was synced (with `tear`, a random
    /// prefix of each file's unsynced appends), and its planned faults are cleared.
    pub fn power_cut(&mut self, tear: Option<u64>) {
        match tear {
            Some(seed) => self.fs.crash_tearing(seed),
            None => self.fs.crash(),
        }
        self.fs.clear_faults();
        self.faults_cleared = self.fs.faults_fired();
    }

    /// Plans the disk to fail at its `after`-th next call, and at every call after it.
    pub fn plan_disk_death(&self, after: u64, fault: Fault) {
        let at = self.fs.calls(None) + after;
        self.fs.fail(None, at, fault, Repeat::FromThenOn);
    }

    /// Whether a planned fault has fired since the last power cut cleared the faults.
    pub fn disk_failed(&self) -> bool {
        self.fs.faults_fired() > self.faults_cleared
    }

    /// Calls made on the disk so far.
    pub fn disk_calls(&self) -> u64 {
        self.fs.calls(None)
    }

    /// Writes a backup to a new file on this node's disk; returns its path.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn backup(&mut self) -> Result<PathBuf, Error> {
        let s = self.store.as_ref().ok_or(Error::Closed)?;
        self.backups += 1;
        let dir = PathBuf::from(format!("/backup/r{}", self.index));
        session_ha::fs::create_dir_durably(&self.fs, &dir)?;
        let file = dir.join(format!("b{}", self.backups));
        s.backup(&file)?;
        Ok(file)
    }

    /// Replaces the (stopped) node's directory by a restore of the backup `file`.
    ///
    /// # Errors
    /// The restore's refusal.
    pub fn restore(&mut self, file: &Path) -> Result<ReplicaId, Error> {
        self.fs.erase(&self.dir);
        let report = restore_backup(Arc::new(self.fs.clone()), file, &self.dir)?;
        Ok(ReplicaId::from_region(&report.region, report.incarnation))
    }

    // ----- ground truth from the disk -------------------------------------------------------

    /// The version vector a recovery of the disk would hold right now, if the node lost
    /// power at this instant (under `Never`, where written counts as durable: what an orderly
    /// OS would keep), given-up origins at the seq held. `None` when nothing would recover.
    ///
    /// # Errors
    /// When the image cannot be read at all.
    pub fn durable_truth(&self) -> Result<Option<VersionVector>, String> {
        Ok(self.durable_state()?.map(|s| s.replica.vv))
    }

    /// [`Node::durable_truth`] as what it covers: a given-up origin's mark on disk counts
    /// every seq of that origin as seen, so any claim of it is durable (a claim made before
    /// the mark, of changes the mark has since dropped, was durable when made).
    ///
    /// # Errors
    /// As [`Node::durable_truth`].
    pub fn durable_cover(&self) -> Result<Option<VersionVector>, String> {
        Ok(self.durable_state()?.map(|s| {
            let mut vv = s.replica.vv;
            for r in s.replica.retired.iter().filter(|r| r.given_up_at.is_some()) {
                vv.raise(r.id, GIVEN_UP - 1);
            }
            vv
        }))
    }

    fn durable_state(&self) -> Result<Option<RecoveredState>, String> {
        let image = if self.is_up() && self.config.fsync == FsyncPolicy::Never {
            self.written_image()?
        } else {
            self.fs.crash_image()
        };
        recovered_state(&image, &self.dir).map_err(io_err)
    }

    /// What recovering the disk after a power cut now would do, in one line (for failure
    /// messages).
    pub fn describe_recovery(&self) -> String {
        let image = if self.is_up() && self.config.fsync == FsyncPolicy::Never {
            match self.written_image() {
                Ok(image) => image,
                Err(e) => return e,
            }
        } else {
            self.fs.crash_image()
        };
        match dry_run_recovery(&image, &self.dir) {
            Ok(p) => format!(
                "a recovery now would use generation {:?} covering {} and replay {} records, \
                 cutting {}B; fallbacks {:?}; failure {:?}",
                p.generation,
                p.covers_seq,
                p.records_to_replay,
                p.bytes_to_truncate,
                p.fallbacks,
                p.failure
            ),
            Err(e) => format!("a recovery now cannot read the disk: {e}"),
        }
    }

    /// The version vector opening a store on a copy of the disk as a power cut now would
    /// leave it actually recovers (the slow cross-check of [`Node::durable_truth`], whose
    /// dry run must agree with it). `None` when the copy does not open.
    pub fn durable_truth_by_opening(&self) -> Result<Option<VersionVector>, String> {
        let image = if self.is_up() && self.config.fsync == FsyncPolicy::Never {
            self.written_image()?
        } else {
            self.fs.crash_image()
        };
        let config = self.store_config(session_ha::RecoveryMode::Strict);
        let time: Arc<dyn session_ha::TimeSource> = Arc::new(self.time.clone());
        Ok(
            session_ha::Store::open_with(Arc::new(image), &self.dir, config, time)
                .ok()
                .map(|(store, _)| {
                    let vv = store.read(|r| r.version_vector().held());
                    store.kill();
                    vv
                }),
        )
    }

    /// A copy of the disk holding everything written, synced or not (nothing is lost).
    fn written_image(&self) -> Result<FaultyFs, String> {
        let image = FaultyFs::new();
        for path in self.fs.files() {
            if !path.starts_with(&self.dir) {
                continue;
            }
            let data = self.fs.peek(&path).unwrap_or_default();
            if let Some(parent) = path.parent() {
                image.create_dir_all(parent).map_err(io_err)?;
            }
            let mut f = image.create(&path).map_err(io_err)?;
            f.append(&data).map_err(io_err)?;
        }
        Ok(image)
    }

    /// What recovering the disk as it is now would hold: `(vector, digest root)`.
    ///
    /// # Errors
    /// When the disk cannot be read at all.
    pub fn recoverable(&self) -> Result<Option<(VersionVector, u128)>, String> {
        let image = self.fs.crash_image();
        Ok(recovered_state(&image, &self.dir)
            .map_err(io_err)?
            .map(|s| (s.replica.vv.held(), s.replica.digest_root.0)))
    }

    /// Whether `verify` finds the (stopped) node's directory intact.
    ///
    /// # Errors
    /// When the directory cannot be read at all.
    pub fn verify_intact(&self) -> Result<bool, String> {
        let image = self.fs.crash_image();
        Ok(verify_dir(&image, &self.dir).map_err(io_err)?.is_intact())
    }

    /// Damages the (stopped) node's files at rest; returns what was hit, `None` when there
    /// was nothing to damage.
    pub fn damage(&self, what: Damage, roll: u64) -> Option<String> {
        let newest = |sub: &str, prefix: &str| {
            let under = self.dir.join(sub);
            self.fs
                .files()
                .into_iter()
                .filter(|p| p.parent() == Some(under.as_path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && !n.ends_with(".tmp"))
                })
                .max()
        };
        let segment = newest("wal", "wal-");
        let len = |p: &Path| self.fs.peek(p).map_or(0, |d| d.len() as u64);
        match what {
            Damage::FlipLastRecord => {
                let seg = segment?;
                let n = len(&seg);
                let body = n
                    .checked_sub(SEGMENT_HEADER_LEN as u64)
                    .filter(|b| *b > 0)?;
                let back = 1 + roll % body.min(48);
                let at = n - back;
                self.fs.flip_bit(&seg, at, (roll >> 8) as u8 % 8).then(|| {
                    format!(
                        "flipped a bit {back} bytes before the end of {}",
                        seg.display()
                    )
                })
            }
            Damage::CutLastSegment => {
                let seg = segment?;
                let n = len(&seg);
                let to = roll % n.max(1);
                self.fs
                    .cut(&seg, to)
                    .then(|| format!("cut {} from {n} to {to} bytes", seg.display()))
            }
            Damage::EraseLastSegment => {
                let seg = segment?;
                self.fs
                    .erase(&seg)
                    .then(|| format!("erased {}", seg.display()))
            }
            Damage::EraseWal => {
                let wal = self.dir.join("wal");
                self.fs
                    .erase(&wal)
                    .then(|| format!("erased {}", wal.display()))
            }
            Damage::FlipNewestSnapshot => {
                let snap = newest("snap", "snap-")?;
                let n = len(&snap);
                let at = roll % n.max(1);
                self.fs
                    .flip_bit(&snap, at, (roll >> 8) as u8 % 8)
                    .then(|| format!("flipped a bit at {at} of {}", snap.display()))
            }
        }
    }
}
