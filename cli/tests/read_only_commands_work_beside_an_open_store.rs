//! `inspect`, `verify` and `recover` take no lock: they answer while the store is open.

mod common;

use common::*;
use session_ha::Store;

#[test]
fn read_only_commands_work_beside_an_open_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (live, _) = Store::open(&dir, config()).unwrap();
    fill(&live, 0, 4);
    for cmd in ["inspect", "verify", "recover"] {
        let out = run(&[cmd.as_ref(), dir.as_os_str()]);
        assert_eq!(code(&out), 0, "{cmd}: {}{}", stdout(&out), stderr(&out));
    }
    let v = json_of(&run(&[
        "inspect".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
    ]));
    assert_eq!(v.at("state/sessions").num(), 4.0);
    live.put(b"s9".to_vec(), "k", "v").unwrap();
    live.close().unwrap();
}
