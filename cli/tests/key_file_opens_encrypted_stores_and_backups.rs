//! `--key-file`: `verify`, `recover`, `inspect`, `export` and `restore` read an encrypted
//! store with the key file; without it `verify` still checks every checksum and names the
//! missing key as a warning (exit 0), `recover` says opening would fail for want of that key
//! (exit 1), and `export`/`restore` refuse with `missing_key` and a hint (exit 2), making
//! nothing. A key file that is not one is `bad_key_file` (exit 2), its content never shown.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::*;
use session_ha::{KeyRing, Store, StoreConfig};

const KEY: &str = "7f3a9c0e5b2d4f6819a0c3e5b7d9f1e2a4c6e8f0b2d4f6a8c0e2a4c6e8f0b2d4";

fn encrypted_store(dir: &Path, key_file: &Path) -> String {
    std::fs::write(key_file, format!("# test key\n{KEY}\n")).unwrap();
    let keys = KeyRing::from_file(key_file).unwrap();
    let config = StoreConfig {
        encryption: Some(keys.clone()),
        ..config()
    };
    let (store, _) = Store::open(dir, config).unwrap();
    fill(&store, 0, 4);
    store.snapshot().unwrap();
    fill(&store, 4, 3);
    store.close().unwrap();
    keys.current_id().to_string()
}

#[test]
fn every_command_reads_an_encrypted_store_with_the_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = (tmp.path().join("store"), tmp.path().join("keys"));
    let id = encrypted_store(&dir, &key);
    let k = key.as_os_str();

    let out = run(&["verify".as_ref(), "--key-file".as_ref(), k, dir.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(!stdout(&out).contains(&id), "{}", stdout(&out));
    let out = run(&[
        "recover".as_ref(),
        dir.as_os_str(),
        "--key-file".as_ref(),
        k,
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = run(&[
        "--json".as_ref(),
        "inspect".as_ref(),
        "--key-file".as_ref(),
        k,
        dir.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let backup = tmp.path().join("backup");
    let out = run(&[
        "export".as_ref(),
        "--key-file".as_ref(),
        k,
        dir.as_os_str(),
        backup.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"user-1"),
        "the backup holds plaintext"
    );

    let restored = tmp.path().join("restored");
    let out = run(&["restore".as_ref(), backup.as_os_str(), restored.as_os_str()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&id) && stderr(&out).contains("--key-file"),
        "{}",
        stderr(&out)
    );
    assert!(!restored.exists());
    let out = run(&[
        "restore".as_ref(),
        "--key-file".as_ref(),
        k,
        backup.as_os_str(),
        restored.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    let out = run(&[
        "verify".as_ref(),
        "--key-file".as_ref(),
        k,
        restored.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn without_the_key_file_damage_still_shows_and_the_missing_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = (tmp.path().join("store"), tmp.path().join("keys"));
    let id = encrypted_store(&dir, &key);

    let out = run(&["verify".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let out = run(&["recover".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let out = run(&[
        "export".as_ref(),
        dir.as_os_str(),
        tmp.path().join("b").as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("missing_key") || stderr(&out).contains(&id));
    assert!(!tmp.path().join("b").exists());

    // A flipped byte in the middle of the base is damage, found without the key.
    let base = files_in(&dir, "snap", ".base").remove(0);
    flip(&base, 80);
    let out = run(&["verify".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("checksum mismatch"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_bad_key_file_is_refused_without_showing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = (tmp.path().join("store"), tmp.path().join("keys"));
    encrypted_store(&dir, &key);
    std::fs::write(&key, "secretsecret\n").unwrap();
    let out = run(&[
        "--json".as_ref(),
        "verify".as_ref(),
        "--key-file".as_ref(),
        key.as_os_str(),
        dir.as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("bad_key_file") && all.contains("line 1"),
        "{all}"
    );
    assert!(!all.contains("secretsecret"), "{all}");
}
