//! Recovery: what [`Wal::open`](super::Wal::open) does before the writer starts. Reads every
//! segment in order, verifies every checksum and the sequence, replays records to the caller,
//! cuts a torn tail off the last segment and opens (or creates) the active segment.
//!
//! ```text
//!  segments by first_seq:  [1 ..= 90] [91 ..= 200] [201 .. torn?]
//!  rules   header bad, seq in header != seq in name            -> Corrupt at 0
//!          next segment does not start at previous end + 1     -> Corrupt at 0, unless every
//!                                                                 missing seq <= replay_after
//!          damaged record, valid record after it               -> Corrupt at the damage
//!          damaged record in a segment that is not the last    -> Corrupt at the damage
//!          record with valid checksums and the wrong seq       -> Corrupt at the record
//!          damaged bytes at the end of the last segment        -> torn tail: kept in
//!                                                                 <segment>.<offset>.broken,
//!                                                                 segment cut at <offset>
//!          a segment whose successor starts at or below        -> not read: every record in it
//!          replay_after + 1                                       is covered elsewhere
//!          damage followed by a valid record whose seq is      -> skipped: the damaged records
//!          at or below replay_after + 1                           are covered elsewhere
//! ```
//!
//! Covered records are never replayed, so damage to them loses nothing; the read-only
//! [`verify`](super::verify) still reports it (as covered damage).
//!
//! Encrypted segments: a record to replay is decrypted after its checksums verify. A key
//! that is not configured ([`Error::MissingKey`]) or a tag that fails ([`Error::Tampered`])
//! stops recovery at once, whatever [`WalRecovery`] says, and before anything on disk is
//! touched: every read comes before the first change (leftover temp files are removed, a
//! torn tail set aside, the active segment opened only after the last segment was read), so
//! an undecryptable record is never mistaken for a torn tail. When encryption is on, or the
//! last segment is encrypted, a new segment is started instead of appending to the last one
//! (a segment with no record left is replaced by it): a segment's nonces are only ever used
//! by the writer that created it.
//!
//! The callback sees records as they are verified; if open fails later (corruption further
//! on), whatever the callback built must be discarded.

use std::path::Path;
use std::time::Instant;

use super::aside::{remove_leftovers, set_aside, set_aside_after, Cut, TornTail};
use super::record::apply_record;
use super::scan::{Scanner, Step};
use super::segment::{
    create_segment, parse_segment_name, segment_name, OpenSegment, SegmentHeader,
};
use super::writer::Active;
use super::{RecoveryReport, SegmentInfo, WalConfig, WalRecovery};
use crate::crypto::{FileCipher, TAG_LEN};
use crate::error::{DecodeError, Error, Result};
use crate::fs::Vfs;

/// What recovery hands to the writer.
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    pub segments: Vec<SegmentInfo>,
    pub active: Active,
    pub next_seq: u64,
}

/// Whether segment `first` may follow a segment ending at `prev_end` (or be the first one)
/// when everything up to `replay_after` is covered elsewhere.
pub(crate) fn check_continuity(
    prev_end: Option<u64>,
    first: u64,
    replay_after: u64,
) -> std::result::Result<(), String> {
    let expected = match prev_end {
        Some(end) => end.saturating_add(1),
        None if first <= replay_after.saturating_add(1) => return Ok(()),
        None => replay_after.saturating_add(1),
    };
    if first < expected {
        return Err(format!(
            "segment starts at seq {first} but the records before it end at {}",
            expected - 1
        ));
    }
    if first == expected || first - 1 <= replay_after {
        return Ok(());
    }
    Err(format!(
        "sequence gap: records {expected}..={} are missing",
        first - 1
    ))
}

fn corrupt(path: &Path, offset: u64, source: DecodeError) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        source,
    }
}

/// Recovers the log in `dir` (which exists and is locked). See the module doc.
pub(crate) fn recover(
    fs: &dyn Vfs,
    dir: &Path,
    config: &WalConfig,
    replay_after: u64,
    apply: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<Recovered> {
    let keep_prefix = config.recovery == WalRecovery::KeepPrefix;
    let started = Instant::now();
    let mut report = RecoveryReport::default();
    let names = fs.list_dir(dir)?;
    let keys = config.encryption.as_ref();
    let mut firsts: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    firsts.sort_unstable();

    let mut segments = Vec::with_capacity(firsts.len());
    let mut prev_end: Option<u64> = None;
    let mut last: Option<(SegmentHeader, u64, Option<TornTail>)> = None;
    let mut cut: Option<Cut> = None;
    // Damage at `$offset` of segment `$i`: corruption, or under `KeepPrefix` the end of what
    // is kept.
    macro_rules! damaged {
        ($i:expr, $path:expr, $offset:expr, $reason:expr) => {{
            let error = corrupt($path, $offset as u64, $reason);
            if !keep_prefix {
                return Err(error);
            }
            cut = Some(Cut {
                index: $i,
                offset: $offset,
                error,
            });
        }};
    }
    'segments: for (i, &first) in firsts.iter().enumerate() {
        let is_last = i + 1 == firsts.len();
        let path = dir.join(segment_name(first));
        if let Some(&next) = firsts.get(i + 1) {
            if next <= replay_after.saturating_add(1) && first <= next {
                // Wholly covered: needed only by an older snapshot generation.
                let bytes = fs.file_len(&path)?;
                segments.push(SegmentInfo {
                    path,
                    first_seq: first,
                    bytes,
                });
                report.segments_skipped += 1;
                prev_end = Some(next - 1);
                continue;
            }
        }
        let bytes = fs.read_file(&path)?;
        let header = match SegmentHeader::decode(&bytes) {
            Ok(h) => h,
            Err(e) => {
                damaged!(i, &path, 0, e);
                break 'segments;
            }
        };
        if header.first_seq != first {
            let why = format!(
                "header says the first seq is {}, the file name says {first}",
                header.first_seq
            );
            damaged!(i, &path, 0, DecodeError::Malformed(why));
            break 'segments;
        }
        if let Err(why) = check_continuity(prev_end, first, replay_after) {
            damaged!(i, &path, 0, DecodeError::Malformed(why));
            break 'segments;
        }
        report.segments_read += 1;

        let mut expected = first;
        let max_body = max_body(config, &header);
        let mut scanner = Scanner::new(&bytes, header.salt, max_body, header.len());
        // Opened when the first record to replay needs it (covered records need no key).
        let mut cipher: Option<FileCipher> = None;
        let torn = loop {
            match scanner.step() {
                Step::Record { offset, rec } => {
                    if rec.seq != expected {
                        let why = format!("record has seq {}, expected {expected}", rec.seq);
                        damaged!(i, &path, offset, DecodeError::Malformed(why));
                        break Some(TornTail {
                            offset,
                            bytes: bytes[offset..].to_vec(),
                        });
                    }
                    if rec.seq > replay_after {
                        let at = (path.as_path(), offset);
                        apply_record(header.cipher, &mut cipher, keys, at, &rec, apply)?;
                        report.records_replayed += 1;
                    }
                    report.records += 1;
                    report.first_seq.get_or_insert(rec.seq);
                    report.last_seq = Some(rec.seq);
                    expected += 1;
                }
                Step::End => break None,
                Step::Damaged {
                    offset,
                    reason,
                    next_valid,
                } => {
                    if let Some(next) = next_valid {
                        if let Some(seq) =
                            covered_resume(&bytes, &header, max_body, next, expected, replay_after)
                        {
                            report.covered_damage += 1;
                            scanner.resume_at(next);
                            expected = seq;
                            continue;
                        }
                    }
                    if next_valid.is_some() || !is_last {
                        damaged!(i, &path, offset, reason);
                    }
                    break Some(TornTail {
                        offset,
                        bytes: bytes[offset..].to_vec(),
                    });
                }
            }
        };
        prev_end = Some(expected - 1);
        let kept = torn.as_ref().map_or(bytes.len(), |t| t.offset) as u64;
        segments.push(SegmentInfo {
            path,
            first_seq: first,
            bytes: kept,
        });
        if is_last || cut.is_some() {
            last = Some((header, expected - first, torn));
        }
        if cut.is_some() {
            break;
        }
    }
    // Everything is read: from here on, recovery changes the directory.
    report.temp_files_removed = remove_leftovers(fs, dir, &names)?;
    if let Some(c) = &cut {
        report.damage_cut = Some(set_aside_after(fs, dir, &firsts, c, prev_end)?);
        if c.offset == 0 {
            // The damaged segment itself went aside: a new one starts after the prefix.
            last = None;
        }
    }

    let next_seq = prev_end
        .map_or(1, |end| end.saturating_add(1))
        .max(replay_after.saturating_add(1));
    let mut active = None;
    if let (Some((header, records, torn)), Some(info)) = (last, segments.last()) {
        let mut file = fs.open_append(&info.path)?;
        if let Some(torn) = torn {
            let broken = set_aside(fs, dir, &info.path, &torn)?;
            file.set_len(torn.offset as u64)?;
            report.bytes_truncated = torn.bytes.len() as u64;
            report.broken_files.push(broken);
        }
        // Whatever recovery read is made durable before anything new is written after it.
        file.sync_data()?;
        let plain = config.encryption.is_none() && header.cipher.is_none();
        if plain && prev_end.map(|e| e + 1) == Some(next_seq) {
            active = Some(Active {
                seg: OpenSegment {
                    path: info.path.clone(),
                    file,
                    header,
                    cipher: None,
                },
                len: info.bytes,
                synced_len: info.bytes,
                acked_len: info.bytes,
                records,
            });
        }
    }
    let active = match active {
        Some(a) => a,
        None => {
            // An empty directory, a snapshot covers more than the log holds (start at the
            // next seq so that numbering never reuses a covered seq), or the log is
            // encrypted (a segment is written by one writer only).
            let seg = create_segment(fs, dir, next_seq, config.encryption.as_ref())?;
            // A kept segment of the same name (its first seq is `next_seq`, so it kept no
            // record: an empty segment, or one a set-aside left behind) was just replaced.
            // Listed twice, the older entry would not be the last, and removing covered
            // segments would delete the file being appended to.
            segments.retain(|s| s.path != seg.path);
            let len = seg.header.len() as u64;
            segments.push(SegmentInfo {
                path: seg.path.clone(),
                first_seq: next_seq,
                bytes: len,
            });
            Active {
                seg,
                len,
                synced_len: len,
                acked_len: len,
                records: 0,
            }
        }
    };
    report.next_seq = next_seq;
    report.elapsed = started.elapsed();
    Ok(Recovered {
        report,
        segments,
        active,
        next_seq,
    })
}

/// The largest record body a segment with `header` may hold under `config` (the tag on top
/// of the configured limit when it is encrypted).
pub(crate) fn max_body(config: &WalConfig, header: &SegmentHeader) -> u32 {
    match header.cipher {
        Some(_) => config.max_record_size.saturating_add(TAG_LEN as u32),
        None => config.max_record_size,
    }
}

/// When damage is followed by a valid record at `next` whose seq shows that every damaged
/// record is covered (at or below `replay_after`), the seq to continue at.
pub(crate) fn covered_resume(
    bytes: &[u8],
    header: &SegmentHeader,
    max_body: u32,
    next: usize,
    expected: u64,
    replay_after: u64,
) -> Option<u64> {
    let mut peek = Scanner::new(bytes, header.salt, max_body, next);
    match peek.step() {
        Step::Record { rec, .. }
            if rec.seq >= expected && rec.seq <= replay_after.saturating_add(1) =>
        {
            Some(rec.seq)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::check_continuity;

    #[test]
    fn continuity_rules() {
        assert!(check_continuity(None, 1, 0).is_ok());
        assert!(check_continuity(None, 5, 4).is_ok());
        assert!(check_continuity(None, 3, 10).is_ok());
        assert!(check_continuity(None, 6, 4).is_err());
        assert!(check_continuity(Some(10), 11, 0).is_ok());
        assert!(check_continuity(Some(10), 13, 0).is_err());
        assert!(check_continuity(Some(10), 13, 12).is_ok());
        assert!(check_continuity(Some(10), 10, 100).is_err());
    }
}
