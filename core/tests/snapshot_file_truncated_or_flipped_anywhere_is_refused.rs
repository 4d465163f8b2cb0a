//! A snapshot file cut at any byte, or with any bit flipped (header, chunk headers, lz4
//! payloads, footer), is refused: `SnapshotReader` returns `Error::Corrupt` naming the file
//! (never a panic, never an entry stream that ends as if nothing were wrong), and
//! `verify_dir` reports it as a problem of the store. Checked on a one-chunk delta (every
//! cut, every bit) and on the second chunk, the chunk boundary and the footer of a base of
//! two chunks.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::{Path, PathBuf};

use common::store::{dir, open_on, replace_file, store_config, Writes};
use session_ha::fs::FaultyFs;
use session_ha::snapshot::{SnapshotReader, MAX_CHUNK};
use session_ha::store::verify_dir;
use session_ha::Error;

/// Reads every entry of `path`; the error if any.
fn read_all(fs: &FaultyFs, path: &Path) -> Result<u64, Error> {
    let mut r = SnapshotReader::open(fs, path)?;
    let mut n = 0;
    while r.next_entry()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// A store with a small base and a small delta (one chunk each); the delta's path.
fn small_delta() -> (FaultyFs, PathBuf) {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 6).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 4).unwrap();
    let delta = store.snapshot().unwrap();
    store.close().unwrap();
    (fs, dir().join("snap").join(delta.file.unwrap()))
}

/// A store whose base holds 5 x 250 kB of compressible values: two chunks, an entry across
/// the boundary, a small file. Compacted again so that the WAL no longer holds the values.
fn two_chunk_base() -> (FaultyFs, PathBuf) {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    for i in 0..5u8 {
        let big = vec![b'a' + i; 250_000];
        store.put(format!("big{i}").as_str(), "blob", big).unwrap();
    }
    store.compact().unwrap();
    store.put("small", "k", "v").unwrap();
    store.snapshot().unwrap();
    store.put("small", "k", "w").unwrap();
    let base = store.compact().unwrap();
    store.close().unwrap();
    (fs, dir().join("snap").join(base.file.unwrap()))
}

/// The damaged `bytes` in place of `path`: the reader refuses it, and so does verify_dir
/// when asked.
fn assert_refused(fs: &FaultyFs, path: &Path, bytes: &[u8], what: &str, verify: bool) {
    replace_file(fs, path, bytes);
    match read_all(fs, path) {
        Err(Error::Corrupt { path: p, .. }) => assert_eq!(p, path, "{what}"),
        other => panic!("{what}: the reader gave {other:?}"),
    }
    if !verify {
        return;
    }
    let v = verify_dir(fs, dir()).unwrap();
    assert!(!v.is_intact(), "{what}: verify_dir found nothing");
    let check = v.snapshots.iter().find(|c| c.file == path).unwrap();
    assert!(check.error.is_some(), "{what}: {check:?}");
}

/// Cuts `path` at every byte in `cuts` and flips `bits(byte)` of every byte in `flips`;
/// `verify(i)` says whether the `i`th case is also run through verify_dir.
fn sweep(
    fs: &FaultyFs,
    path: &Path,
    cuts: &[usize],
    flips: &[usize],
    bits: impl Fn(usize) -> Vec<usize>,
    verify: impl Fn(usize) -> bool,
) {
    let good = fs.peek(path).unwrap();
    let entries = read_all(fs, path).unwrap();
    assert!(entries > 1);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut case = 0;
    for &cut in cuts {
        let what = format!("{name} cut to {cut} bytes");
        assert_refused(fs, path, &good[..cut], &what, verify(case));
        case += 1;
    }
    for &byte in flips {
        for bit in bits(byte) {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            let what = format!("{name} bit {bit} of byte {byte}");
            assert_refused(fs, path, &bad, &what, verify(case));
            case += 1;
        }
    }
    let mut longer = good.clone();
    longer.push(0);
    assert_refused(fs, path, &longer, &format!("{name} + 1 byte"), true);
    replace_file(fs, path, &good);
    assert_eq!(read_all(fs, path).unwrap(), entries);
    assert!(verify_dir(fs, dir()).unwrap().is_intact());
}

#[test]
fn every_cut_and_every_bit_flip_of_a_small_delta_is_refused() {
    let (fs, delta) = small_delta();
    let len = fs.peek(&delta).unwrap().len();
    assert!(len < 1024, "{len} bytes");
    let every: Vec<usize> = (0..len).collect();
    sweep(&fs, &delta, &every, &every, |_| (0..8).collect(), |_| true);
}

/// Decoding a chunk of 1 MiB takes a while in a debug build: the second chunk's framing,
/// the footer and the boundary between the chunks are swept byte by byte (the one-chunk
/// sweep above covers every other kind of byte), a few cases also through verify_dir.
#[test]
fn cuts_and_flips_in_the_second_chunk_and_footer_of_a_two_chunk_base_are_refused() {
    let (fs, base) = two_chunk_base();
    let r = SnapshotReader::open(&fs, &base).unwrap();
    assert_eq!(
        r.footer().chunks,
        2,
        "1.25 MB of values exceed one {MAX_CHUNK}-byte chunk"
    );
    let bytes = fs.peek(&base).unwrap();
    let len = bytes.len();
    let first_comp = u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize;
    let second = 32 + 12 + first_comp;
    let cuts = [
        second - 1,
        second,
        second + 1,
        second + 11,
        second + 12,
        len - 33,
        len - 32,
        len - 1,
    ];
    let mut flips: Vec<usize> = (second - 2..second + 14).collect();
    flips.extend(len - 32..len);
    flips.push((second + len) / 2);
    sweep(
        &fs,
        &base,
        &cuts,
        &flips,
        |b| vec![b % 8],
        |case| case % 10 == 0,
    );
}
