//! What is in a store directory, read with `std::fs` metadata only (no file is opened):
//! whether it holds a store at all, its files by role, and their total size. The layout is
//! the library's (`core/src/store/layout.rs`): `MANIFEST-0/1`, `snap/snap-*`, `wal/wal-*`.

use std::fs;
use std::path::Path;

use session_ha::snapshot::SLOTS;

use crate::report::{io_failure, Exit, Failure};

/// One file: its name in its directory and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// The files of a store directory, by role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Manifest slots present.
    pub manifests: Vec<Entry>,
    /// `snap/` entries.
    pub snap: Vec<Entry>,
    /// `wal/` entries other than the WAL's `LOCK`.
    pub wal: Vec<Entry>,
}

impl Listing {
    /// Whether the directory holds a store: a manifest slot, a snapshot or a WAL segment.
    pub fn holds_store(&self) -> bool {
        !self.manifests.is_empty()
            || self.snap.iter().any(|e| e.name.starts_with("snap-"))
            || self.wal.iter().any(|e| e.name.starts_with("wal-"))
    }

    /// Bytes in all of the store's files.
    pub fn total_bytes(&self) -> u64 {
        self.manifests
            .iter()
            .chain(&self.snap)
            .chain(&self.wal)
            .map(|e| e.bytes)
            .sum()
    }
}

fn entries(dir: &Path) -> Result<Vec<Entry>, Failure> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_failure("cannot list", dir, &e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_failure("cannot list", dir, &e))?;
        let meta = entry
            .metadata()
            .map_err(|e| io_failure("cannot stat", &entry.path(), &e))?;
        if meta.is_file() {
            out.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                bytes: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Lists the store directory `dir`.
///
/// # Errors
/// `not_found` when `dir` does not exist or is not a directory, `io` when it cannot be read.
pub fn list(dir: &Path) -> Result<Listing, Failure> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Failure::new(
                Exit::Usage,
                "not_found",
                format!("{} is not a directory", dir.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::new(
                Exit::Usage,
                "not_found",
                format!("{}: no such directory", dir.display()),
            ))
        }
        Err(e) => return Err(io_failure("cannot read", dir, &e)),
    }
    let manifests = entries(dir)?
        .into_iter()
        .filter(|e| SLOTS.contains(&e.name.as_str()))
        .collect();
    let snap = entries(&dir.join("snap"))?;
    let wal = entries(&dir.join("wal"))?
        .into_iter()
        .filter(|e| e.name != "LOCK")
        .collect();
    Ok(Listing {
        manifests,
        snap,
        wal,
    })
}

/// Lists `dir` and checks that it holds a store, so that a mistyped path is an error and
/// not an empty "intact" report.
///
/// # Errors
/// As [`list`], and `not_a_store` when `dir` holds no manifest, snapshot or WAL segment.
pub fn require_store(dir: &Path) -> Result<Listing, Failure> {
    let listing = list(dir)?;
    if !listing.holds_store() {
        return Err(Failure::new(
            Exit::Usage,
            "not_a_store",
            format!(
                "{} holds no session-ha store (no MANIFEST-0/1, no snap/snap-*, no wal/wal-*)",
                dir.display()
            ),
        ));
    }
    Ok(listing)
}

/// The first sequence number in a WAL segment's name (`wal-<20 digits>.log`).
pub fn segment_first_seq(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert_eq!(
            segment_first_seq("wal-00000000000000004711.log"),
            Some(4711)
        );
        assert_eq!(segment_first_seq("wal-00000000000000004711.log.tmp"), None);
        assert_eq!(segment_first_seq("wal-4711.log"), None);
        assert_eq!(
            segment_first_seq("wal-00000000000000000001.log.48.broken"),
            None
        );
    }

    #[test]
    fn an_empty_or_missing_dir_is_not_a_store() {
        let tmp = tempfile::tempdir().unwrap();
        let e = require_store(tmp.path()).unwrap_err();
        assert_eq!((e.exit, e.kind), (Exit::Usage, "not_a_store"));
        let e = require_store(&tmp.path().join("nope")).unwrap_err();
        assert_eq!(e.kind, "not_found");
        std::fs::write(tmp.path().join("MANIFEST-1"), b"x").unwrap();
        let l = require_store(tmp.path()).unwrap();
        assert_eq!(l.total_bytes(), 1);
    }
}
