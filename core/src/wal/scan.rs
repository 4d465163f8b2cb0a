//! Walking the records of one segment's bytes (already read into memory), and deciding what a
//! damaged spot is: a torn tail (nothing valid after it) or corruption (a valid record after
//! it). Pure: used by recovery, which acts on the answer, and by verify, which reports it.
//!
//! ```text
//!  header │ rec │ rec │ rec │ ??????????????????      ?? = no offset after here decodes as a
//!                             ▲ Damaged{next_valid: None}   record valid under this salt:
//!                                                         a torn tail
//!  header │ rec │ ?? │ rec │ rec                        a record validates after the damage:
//!                 ▲ Damaged{next_valid: Some(off)}      corruption
//! ```

use super::record::{decode_record, RecordRef, HEADER_LEN};
use crate::error::DecodeError;

/// One step of a scan.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A record whose checksums verify.
    Record { offset: usize, rec: RecordRef<'a> },
    /// The bytes at `offset` are not a valid record.
    Damaged {
        offset: usize,
        reason: DecodeError,
        /// The offset of the first later record that verifies, if any.
        next_valid: Option<usize>,
    },
    /// The end of the bytes, exactly after a record.
    End,
}

/// A cursor over the records of one segment.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    salt: u32,
    max_body: u32,
    offset: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner over a segment's `bytes` whose header (with `salt`) ends at `start`.
    pub fn new(bytes: &'a [u8], salt: u32, max_body: u32, start: usize) -> Scanner<'a> {
        Scanner {
            bytes,
            salt,
            max_body,
            offset: start,
        }
    }

    /// The next record, the damage in the way, or the end. After `Damaged` the scanner stays
    /// where it is until [`resume_at`](Scanner::resume_at).
    pub fn step(&mut self) -> Step<'a> {
        let at = self.offset;
        if at >= self.bytes.len() {
            return Step::End;
        }
        match decode_record(&self.bytes[at..], self.salt, self.max_body) {
            Ok(rec) => {
                self.offset += rec.encoded_len;
                Step::Record { offset: at, rec }
            }
            Err(reason) => Step::Damaged {
                offset: at,
                reason,
                next_valid: self.find_valid_after(at),
            },
        }
    }

    /// Continues at `offset` (a `next_valid` from a `Damaged` step).
    pub fn resume_at(&mut self, offset: usize) {
        self.offset = offset;
    }

    /// The first offset after `at` where a whole record verifies under this segment's salt.
    fn find_valid_after(&self, at: usize) -> Option<usize> {
        let end = self.bytes.len();
        (at + 1..end.saturating_sub(HEADER_LEN - 1)).find(|&off| {
            let rest = &self.bytes[off..];
            // Cheap filter first: a length that cannot fit is not worth a checksum.
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            len <= self.max_body
                && (len as usize) + super::record::RECORD_OVERHEAD <= rest.len()
                && decode_record(rest, self.salt, self.max_body).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::encode_record;
    use super::*;

    fn segment(salt: u32, n: u64) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        for seq in 1..=n {
            encode_record(&mut b, salt, seq, &[seq as u8; 10]);
        }
        b
    }

    fn collect(bytes: &[u8], salt: u32) -> (Vec<u64>, Option<(usize, Option<usize>)>) {
        let mut s = Scanner::new(bytes, salt, 1000, 24);
        let mut seqs = Vec::new();
        loop {
            match s.step() {
                Step::Record { rec, .. } => seqs.push(rec.seq),
                Step::End => return (seqs, None),
                Step::Damaged {
                    offset, next_valid, ..
                } => return (seqs, Some((offset, next_valid))),
            }
        }
    }

    #[test]
    fn clean_segment_ends_exactly_after_the_last_record() {
        let b = segment(5, 3);
        assert_eq!(collect(&b, 5), (vec![1, 2, 3], None));
    }

    #[test]
    fn zero_tail_is_damage_with_nothing_valid_after() {
        let mut b = segment(5, 3);
        let end = b.len();
        b.resize(end + 100, 0);
        assert_eq!(collect(&b, 5), (vec![1, 2, 3], Some((end, None))));
    }

    #[test]
    fn damage_with_a_valid_record_after_points_at_it() {
        let mut b = segment(5, 3);
        b[24 + 30 + 20] ^= 1; // inside record 2's body
        assert_eq!(collect(&b, 5), (vec![1], Some((54, Some(84)))));
    }

    #[test]
    fn records_of_another_salt_are_not_found_after_damage() {
        let mut b = segment(5, 1);
        let cut = b.len();
        b.extend_from_slice(&[0xFF; 7]);
        let other = segment(6, 2);
        b.extend_from_slice(&other[24..]);
        assert_eq!(collect(&b, 5), (vec![1], Some((cut, None))));
    }
}
