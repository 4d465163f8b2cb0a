//! `verify`: a read-only pass over a WAL directory that checks every segment header, every
//! record checksum and the sequence, and lists what it finds. It never writes, renames,
//! truncates or locks anything, so it can run beside an open log (whose last segment may then
//! show a tail in the middle of being written).
//!
//! Same layout and rules as recovery (see `wal` and `recovery`), but instead of stopping at
//! the first problem it reports it and carries on at the next record that verifies.
//!
//! Encrypted segments: checksums are over the ciphertext, so without the key every checksum
//! is still checked (damage is told from a missing key) and the segment is listed in
//! [`VerifyReport::unauthenticated`]; with the key every record's tag is checked too, and
//! one that fails is [`ProblemKind::Tampered`].

use std::path::{Path, PathBuf};

use super::record::{apply_record, unseal_record};
use super::recovery::check_continuity;
use super::scan::{Scanner, Step};
use super::segment::{
    is_broken_name, is_temp_name, parse_segment_name, segment_name, SegmentHeader,
};
use super::RECORD_SIZE_LIMIT;
use crate::crypto::{FileCipher, KeyId, KeyRing, TAG_LEN};
use crate::error::{DecodeError, Error, Result};
use crate::fs::Vfs;

/// What is wrong at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The segment header does not verify (or disagrees with the file name): nothing in the
    /// file is trusted.
    BadHeader(DecodeError),
    /// A damaged record with a valid record after it, or in a segment that is not the last.
    Corrupt(DecodeError),
    /// Damaged bytes at the end of the last segment with no valid record after them: what a
    /// crash during a write leaves. Recovery cuts them off (keeping them in a `.broken` file).
    TornTail {
        /// Bytes from the offset to the end of the file.
        bytes: u64,
        /// Why the bytes at the offset are not a record.
        reason: DecodeError,
    },
    /// A record whose checksums verify but whose sequence number is not the next one.
    OutOfSequence {
        /// The sequence number that should be there.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The segment does not continue the sequence (records missing beyond what the snapshot
    /// covers, or overlapping the previous segment).
    SequenceGap(String),
    /// The file could not be read.
    Unreadable(String),
    /// Damage to records a snapshot already covers (recovery does not read them): nothing is
    /// lost, but an older snapshot generation can no longer fall back on them.
    Covered(DecodeError),
    /// A record of an encrypted segment whose checksums verify but whose authentication tag
    /// fails under the key the segment names: altered with the checksum recomputed.
    Tampered {
        /// The key the segment names.
        key_id: KeyId,
    },
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProblemKind::BadHeader(e) => write!(f, "bad segment header: {e}"),
            ProblemKind::Corrupt(e) => write!(f, "corrupt record: {e}"),
            ProblemKind::TornTail { bytes, reason } => {
                write!(
                    f,
                    "torn tail of {bytes} bytes (cut off by the next open): {reason}"
                )
            }
            ProblemKind::OutOfSequence { expected, found } => {
                write!(
                    f,
                    "record out of sequence: expected seq {expected}, found {found}"
                )
            }
            ProblemKind::SequenceGap(why) => write!(f, "{why}"),
            ProblemKind::Unreadable(why) => write!(f, "unreadable: {why}"),
            ProblemKind::Covered(e) => {
                write!(
                    f,
                    "damage to records a snapshot already covers (nothing lost): {e}"
                )
            }
            ProblemKind::Tampered { key_id } => write!(
                f,
                "record verifies its checksums but fails authentication under key {key_id}: \
                 altered, not damaged"
            ),
        }
    }
}

/// One problem: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Byte offset in the file.
    pub offset: u64,
    /// What is wrong there.
    pub what: ProblemKind,
}

impl Problem {
    /// Whether this is damage to acknowledged data, as opposed to the torn tail that an
    /// interrupted write leaves (and recovery repairs).
    pub fn is_corruption(&self) -> bool {
        !matches!(
            self.what,
            ProblemKind::TornTail { .. } | ProblemKind::Covered(_)
        )
    }
}

/// One segment as verify saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The file.
    pub path: PathBuf,
    /// Sequence number from its name.
    pub first_seq: u64,
    /// Records that verified.
    pub records: u64,
    /// File length.
    pub bytes: u64,
    /// The key it is encrypted under, when it is.
    pub key_id: Option<KeyId>,
}

/// The result of [`verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Every segment, oldest first.
    pub segments: Vec<SegmentSummary>,
    /// Records that verified, in all segments.
    pub records: u64,
    /// First and last sequence number that verified.
    pub first_seq: Option<u64>,
    /// See `first_seq`.
    pub last_seq: Option<u64>,
    /// Everything wrong, in file order.
    pub problems: Vec<Problem>,
    /// Torn tails set aside by earlier recoveries.
    pub broken_files: Vec<PathBuf>,
    /// Half-created files an interrupted run left (the next open removes them).
    pub temp_files: Vec<PathBuf>,
    /// Encrypted segments whose key is not configured: their checksums were checked, their
    /// authentication tags were not (nothing is wrong with them for that).
    pub unauthenticated: Vec<(PathBuf, KeyId)>,
}

impl VerifyReport {
    /// No problem at all.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Some problem other than a torn tail.
    pub fn has_corruption(&self) -> bool {
        self.problems.iter().any(Problem::is_corruption)
    }
}

/// Checks every segment in `dir` without modifying anything. `covered_through` is what a
/// snapshot covers (as `replay_after` for [`Wal::open`](super::Wal::open)): records at or
/// below it may be missing without that being a gap. Record lengths are checked against
/// [`RECORD_SIZE_LIMIT`], since verify does not know the configured limit. Encrypted
/// segments are checked by checksum only ([`verify_with_keys`] checks their tags too).
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if the directory cannot be listed; a segment that cannot
/// be read is a [`ProblemKind::Unreadable`] instead.
pub fn verify(fs: &dyn Vfs, dir: &Path, covered_through: u64) -> Result<VerifyReport> {
    verify_with_keys(fs, dir, covered_through, None)
}

/// [`verify`], also checking the authentication tag of every record of a segment encrypted
/// under a key of `keys`.
///
/// # Errors
/// As [`verify`].
pub fn verify_with_keys(
    fs: &dyn Vfs,
    dir: &Path,
    covered_through: u64,
    keys: Option<&KeyRing>,
) -> Result<VerifyReport> {
    let names = fs.list_dir(dir)?;
    let mut report = VerifyReport::default();
    let mut firsts = Vec::new();
    for name in &names {
        if let Some(first) = parse_segment_name(name) {
            firsts.push(first);
        } else if is_broken_name(name) {
            report.broken_files.push(dir.join(name));
        } else if is_temp_name(name) || name.ends_with(".broken.tmp") {
            report.temp_files.push(dir.join(name));
        }
    }
    firsts.sort_unstable();
    let mut prev_end = None;
    for (i, &first) in firsts.iter().enumerate() {
        let path = dir.join(super::segment::segment_name(first));
        let is_last = i + 1 == firsts.len();
        let next_first = firsts.get(i + 1).copied();
        prev_end = verify_segment(
            fs,
            &path,
            (first, next_first),
            (is_last, keys),
            prev_end,
            covered_through,
            &mut report,
        );
    }
    Ok(report)
}

/// Passes every record whose sequence number is above `after` to `apply`, in log order, up
/// to the first spot that does not verify (damage to records at or below `after` is stepped
/// over as recovery steps over it); never modifies anything. On a log in which
/// [`verify`] found no corruption (a torn tail allowed) these are exactly the records
/// [`Wal::open`](super::Wal::open) would replay. Returns how many records were passed.
///
/// # Errors
/// I/O errors, [`Error::Corrupt`] for a segment header that does not verify,
/// [`Error::MissingKey`] / [`Error::Tampered`] for an encrypted record to pass that cannot be
/// decrypted, and whatever `apply` returns.
pub(crate) fn read_records(
    fs: &dyn Vfs,
    dir: &Path,
    after: u64,
    keys: Option<&KeyRing>,
    apply: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let mut firsts: Vec<u64> = fs
        .list_dir(dir)?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    firsts.sort_unstable();
    let mut passed = 0;
    for (i, &first) in firsts.iter().enumerate() {
        // Wholly covered (the next segment starts at or below `after + 1`): recovery does
        // not read it, nor does this.
        if firsts
            .get(i + 1)
            .is_some_and(|&next| next <= after.saturating_add(1) && first <= next)
        {
            continue;
        }
        let path = dir.join(segment_name(first));
        let bytes = fs.read_file(&path)?;
        let header = SegmentHeader::decode(&bytes).map_err(|source| Error::Corrupt {
            path: path.clone(),
            offset: 0,
            source,
        })?;
        let mut scanner = Scanner::new(&bytes, header.salt, limit(&header), header.len());
        let mut cipher = None;
        let mut expected = first;
        loop {
            match scanner.step() {
                Step::Record { rec, offset } => {
                    expected = rec.seq + 1;
                    if rec.seq <= after {
                        continue;
                    }
                    let at = (path.as_path(), offset);
                    apply_record(header.cipher, &mut cipher, keys, at, &rec, apply)?;
                    passed += 1;
                }
                Step::End => break,
                Step::Damaged {
                    next_valid: Some(next),
                    ..
                } if super::recovery::covered_resume(
                    &bytes,
                    &header,
                    limit(&header),
                    next,
                    expected,
                    after,
                )
                .is_some() =>
                {
                    scanner.resume_at(next);
                }
                Step::Damaged { .. } => return Ok(passed),
            }
        }
    }
    Ok(passed)
}

/// The record size limit verify applies to a segment with `header`.
fn limit(header: &SegmentHeader) -> u32 {
    match header.cipher {
        Some(_) => RECORD_SIZE_LIMIT + TAG_LEN as u32,
        None => RECORD_SIZE_LIMIT,
    }
}

/// Verifies one segment into `report`; returns the last seq it ends at (for the next
/// segment's continuity check), or `None` if nothing in it could be trusted.
fn verify_segment(
    fs: &dyn Vfs,
    path: &Path,
    (first, next_first): (u64, Option<u64>),
    (is_last, keys): (bool, Option<&KeyRing>),
    prev_end: Option<u64>,
    covered_through: u64,
    report: &mut VerifyReport,
) -> Option<u64> {
    // Every record of a segment whose successor starts at or below covered_through + 1 is
    // covered by a snapshot: damage in it loses nothing.
    let wholly_covered = next_first.is_some_and(|n| n <= covered_through.saturating_add(1));
    let mut problem = |offset: u64, what: ProblemKind| {
        let what = match what {
            ProblemKind::BadHeader(e) | ProblemKind::Corrupt(e) if wholly_covered => {
                ProblemKind::Covered(e)
            }
            other => other,
        };
        report.problems.push(Problem {
            file: path.to_path_buf(),
            offset,
            what,
        })
    };
    let bytes = match fs.read_file(path) {
        Ok(b) => b,
        Err(e) => {
            problem(0, ProblemKind::Unreadable(e.to_string()));
            return None;
        }
    };
    let header = match SegmentHeader::decode(&bytes) {
        Ok(h) if h.first_seq == first => h,
        Ok(h) => {
            let why = format!("header says the first seq is {}", h.first_seq);
            problem(0, ProblemKind::BadHeader(DecodeError::Malformed(why)));
            return None;
        }
        Err(e) => {
            problem(0, ProblemKind::BadHeader(e));
            return None;
        }
    };
    if let Err(why) = check_continuity(prev_end, first, covered_through) {
        problem(0, ProblemKind::SequenceGap(why));
    }
    let cipher = header
        .cipher
        .and_then(|block| FileCipher::open(keys, block, path).ok());
    let mut unauthenticated = None;
    if let (Some(block), None) = (header.cipher, &cipher) {
        unauthenticated = Some((path.to_path_buf(), block.key_id));
    }
    let mut scanner = Scanner::new(&bytes, header.salt, limit(&header), header.len());
    let mut expected = first;
    let mut records = 0;
    let mut last_seen = first.checked_sub(1);
    // Records inside a damaged stretch are lost with it: the first record after the damage
    // may skip ahead without that being reported again.
    let mut after_damage = false;
    loop {
        match scanner.step() {
            Step::Record { offset, rec } => {
                let skipped_damage = after_damage && rec.seq > expected;
                after_damage = false;
                if rec.seq != expected && !skipped_damage {
                    problem(
                        offset as u64,
                        ProblemKind::OutOfSequence {
                            expected,
                            found: rec.seq,
                        },
                    );
                }
                if let Some(c) = &cipher {
                    if unseal_record(c, &rec).is_none() {
                        let key_id = c.key_id();
                        problem(offset as u64, ProblemKind::Tampered { key_id });
                    }
                }
                expected = rec.seq.saturating_add(1);
                last_seen = Some(rec.seq);
                records += 1;
                report.records += 1;
                report.first_seq.get_or_insert(rec.seq);
                report.last_seq = Some(rec.seq);
            }
            Step::End => break,
            Step::Damaged {
                offset,
                reason,
                next_valid,
            } => match next_valid {
                Some(next) => {
                    let covered = super::recovery::covered_resume(
                        &bytes,
                        &header,
                        limit(&header),
                        next,
                        expected,
                        covered_through,
                    );
                    let what = if covered.is_some() {
                        ProblemKind::Covered(reason)
                    } else {
                        ProblemKind::Corrupt(reason)
                    };
                    problem(offset as u64, what);
                    scanner.resume_at(next);
                    after_damage = true;
                }
                None if is_last => {
                    let bytes = (bytes.len() - offset) as u64;
                    problem(offset as u64, ProblemKind::TornTail { bytes, reason });
                    break;
                }
                None => {
                    problem(offset as u64, ProblemKind::Corrupt(reason));
                    break;
                }
            },
        }
    }
    report.segments.push(SegmentSummary {
        path: path.to_path_buf(),
        first_seq: first,
        records,
        bytes: bytes.len() as u64,
        key_id: header.cipher.map(|b| b.key_id),
    });
    report.unauthenticated.extend(unauthenticated);
    last_seen
}
