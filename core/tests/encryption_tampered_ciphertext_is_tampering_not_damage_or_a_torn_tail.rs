//! Encrypted bytes changed on purpose (one bit flipped and the checksum recomputed) pass
//! every checksum but not the GCM tag: open refuses with `Error::Tampered` naming the file
//! and offset, changing nothing, even for the last record of a crashed log (which a torn
//! write would have left there and recovery would have cut); `verify` with the key reports
//! it as a problem. The same flip without the checksum fixed is plain damage, found by
//! `verify` with or without the key.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::store::{
    dir, encrypted_config, image, open_on, replace_file, ring, sealed_record_spans, segments,
    tamper_record, Writes,
};
use session_ha::fs::FaultyFs;
use session_ha::store::{verify_dir, verify_dir_with_keys};
use session_ha::{Error, KeyRing};

fn store_with_log(clean: bool) -> (FaultyFs, KeyRing, Writes) {
    let fs = FaultyFs::with_seed(31);
    let keys = ring(1, &[]);
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 12).unwrap();
    if clean {
        store.close().unwrap();
    } else {
        store.kill();
    }
    drop(store);
    (fs, keys, w)
}

fn last_segment(fs: &FaultyFs) -> (std::path::PathBuf, Vec<u8>) {
    let (_, path) = segments(fs, dir()).pop().unwrap();
    let bytes = fs.peek(&path).unwrap();
    (path, bytes)
}

fn without_locks(
    image: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    image
        .into_iter()
        .filter(|(p, _)| !p.ends_with("LOCK"))
        .collect()
}

fn assert_tampered(fs: &FaultyFs, keys: &KeyRing, seg: &Path, at: usize) {
    let before = image(fs);
    let e = open_on(fs, encrypted_config(keys)).unwrap_err();
    assert!(
        matches!(&e, Error::Tampered { path, offset, key_id }
            if path == seg && *offset == at as u64 && *key_id == keys.current_id()),
        "{e}"
    );
    assert_eq!(e.kind(), "tampered");
    assert_eq!(without_locks(image(fs)), without_locks(before));
}

#[test]
fn a_record_altered_with_its_crc_fixed_is_tampering_in_open_and_verify() {
    let (fs, keys, _) = store_with_log(true);
    let (path, mut bytes) = last_segment(&fs);
    let spans = sealed_record_spans(&bytes);
    let middle = spans[spans.len() / 2];
    tamper_record(&mut bytes, middle);
    replace_file(&fs, &path, &bytes);
    assert_tampered(&fs, &keys, &path, middle.0);

    let with_key = verify_dir_with_keys(&fs, dir(), Some(&keys)).unwrap();
    assert!(!with_key.is_intact());
    assert!(
        with_key
            .problems
            .iter()
            .any(|p| p.contains("fails authentication")),
        "{:?}",
        with_key.problems
    );
    // Without the key the checksums still verify: nothing is damaged, the key is named.
    let without = verify_dir(&fs, dir()).unwrap();
    assert!(without.is_intact(), "{:?}", without.problems);
    let id = keys.current_id().to_string();
    assert!(without.warnings.iter().any(|w| w.contains(&id)));
}

#[test]
fn the_last_record_of_a_crashed_log_altered_is_never_cut_as_a_torn_tail() {
    let (fs, keys, w) = store_with_log(false);
    let (path, mut bytes) = last_segment(&fs);
    let last = *sealed_record_spans(&bytes).last().unwrap();
    tamper_record(&mut bytes, last);
    replace_file(&fs, &path, &bytes);
    assert_tampered(&fs, &keys, &path, last.0);
    // Put back, the store opens with everything.
    tamper_record(&mut bytes, last);
    replace_file(&fs, &path, &bytes);
    let (store, report) = open_on(&fs, encrypted_config(&keys)).unwrap();
    assert_eq!(report.wal.bytes_truncated, 0);
    w.check(&store, "after the record was put back");
}

#[test]
fn a_flip_without_the_crc_fixed_is_damage_with_or_without_the_key() {
    let (fs, keys, _) = store_with_log(true);
    let (path, mut bytes) = last_segment(&fs);
    let spans = sealed_record_spans(&bytes);
    let (at, _) = spans[2];
    bytes[at + 18] ^= 0x01;
    replace_file(&fs, &path, &bytes);
    for report in [
        verify_dir(&fs, dir()).unwrap(),
        verify_dir_with_keys(&fs, dir(), Some(&keys)).unwrap(),
    ] {
        assert!(!report.is_intact());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("checksum mismatch")),
            "{:?}",
            report.problems
        );
    }
    let e = open_on(&fs, encrypted_config(&keys)).unwrap_err();
    assert!(
        matches!(e, Error::Corrupt { .. } | Error::DataLoss(_)),
        "{e}"
    );
}

/// Flips a bit of the first chunk's sealed payload of an encrypted snapshot file and fixes
/// the chunk crc, the footer's crc of chunk crcs and the footer's own crc.
fn tamper_snapshot(bytes: &mut [u8]) {
    let chunk = 64; // 32 bytes of header, 32 of cipher block
    let comp = u32::from_le_bytes(bytes[chunk + 4..chunk + 8].try_into().unwrap()) as usize;
    let payload = chunk + 12..chunk + 12 + comp;
    bytes[payload.start + 3] ^= 0x80;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[chunk..chunk + 8]);
    h.update(&bytes[payload.clone()]);
    let crc = h.finalize();
    bytes[chunk + 8..chunk + 12].copy_from_slice(&crc.to_le_bytes());
    let footer = bytes.len() - 32;
    assert_eq!(payload.end, footer, "one chunk");
    let chunks_crc = crc32fast::hash(&crc.to_le_bytes());
    bytes[footer + 24..footer + 28].copy_from_slice(&chunks_crc.to_le_bytes());
    let f = crc32fast::hash(&bytes[footer..footer + 28]);
    bytes[footer + 28..].copy_from_slice(&f.to_le_bytes());
}

#[test]
fn a_snapshot_chunk_altered_with_its_checksums_fixed_is_tampering() {
    let fs = FaultyFs::with_seed(32);
    let keys = ring(1, &[]);
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    Writes::default().write_many(&store, 10).unwrap();
    let file = store.snapshot().unwrap().file.unwrap();
    store.close().unwrap();
    drop(store);
    let path = dir().join("snap").join(file);
    let mut bytes = fs.peek(&path).unwrap();
    tamper_snapshot(&mut bytes);
    replace_file(&fs, &path, &bytes);
    assert!(verify_dir(&fs, dir()).unwrap().is_intact());
    let with_key = verify_dir_with_keys(&fs, dir(), Some(&keys)).unwrap();
    assert!(
        with_key.problems.iter().any(|p| p.contains("altered")),
        "{:?}",
        with_key.problems
    );
    let before = image(&fs);
    let e = open_on(&fs, encrypted_config(&keys)).unwrap_err();
    assert!(
        matches!(&e, Error::Tampered { path: p, .. } if *p == path),
        "{e}"
    );
    assert_eq!(without_locks(image(&fs)), without_locks(before));
}

/// The offsets of the chunks of an encrypted snapshot file: (start, end) of each.
fn chunk_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 64;
    let end = bytes.len() - 32;
    let mut out = Vec::new();
    while at < end {
        let comp = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, at + 12 + comp));
        at += 12 + comp;
    }
    out
}

#[test]
fn a_snapshot_cut_after_a_whole_chunk_with_its_footer_rewritten_fails_authentication() {
    let fs = FaultyFs::with_seed(33);
    let keys = ring(1, &[]);
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    // Enough sessions for more than one 1 MiB chunk.
    let filler = "x".repeat(4_000);
    for i in 0..400u32 {
        store
            .put(format!("s{i:05}").as_str(), "f", filler.clone())
            .unwrap();
    }
    let file = store.compact().unwrap().file.unwrap();
    store.close().unwrap();
    drop(store);
    let path = dir().join("snap").join(file);
    let bytes = fs.peek(&path).unwrap();
    let chunks = chunk_spans(&bytes);
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    // Keep every chunk but the last, and write the footer they would have had.
    let (_, kept_end) = chunks[chunks.len() - 2];
    let mut cut = bytes[..kept_end].to_vec();
    let crcs: Vec<u8> = chunks[..chunks.len() - 1]
        .iter()
        .flat_map(|(at, _)| bytes[at + 8..at + 12].to_vec())
        .collect();
    let old_footer = &bytes[bytes.len() - 32..];
    let mut footer = [0u8; 32];
    footer[..4].copy_from_slice(b"SHAE");
    footer[4..8].copy_from_slice(&((chunks.len() - 1) as u32).to_le_bytes());
    footer[8..16].copy_from_slice(&old_footer[8..16]);
    footer[16..24].copy_from_slice(&((kept_end - 64) as u64).to_le_bytes());
    footer[24..28].copy_from_slice(&crc32fast::hash(&crcs).to_le_bytes());
    let f = crc32fast::hash(&footer[..28]);
    footer[28..].copy_from_slice(&f.to_le_bytes());
    cut.extend_from_slice(&footer);
    replace_file(&fs, &path, &cut);

    // Every checksum verifies; authentication does not: the new last chunk was sealed as
    // not being the last.
    assert!(verify_dir(&fs, dir()).unwrap().is_intact());
    let e = open_on(&fs, encrypted_config(&keys)).unwrap_err();
    assert!(
        matches!(&e, Error::Tampered { path: p, offset, .. }
            if *p == path && *offset == chunks[chunks.len() - 2].0 as u64),
        "{e}"
    );
}
