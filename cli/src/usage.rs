//! Help texts: the overview (`session-ha --help`) and one page per command
//! (`session-ha help CMD`, `session-ha CMD --help`).

/// The overview.
pub const OVERVIEW: &str = "\
session-ha: operator tool for session-ha store directories

Usage:
  session-ha [--json] [--key-file FILE] COMMAND ARGS...
  session-ha help [COMMAND]

Commands:
  inspect DIR        manifests, snapshot chain, WAL segments, sessions, versions
  verify DIR         check every file and checksum (read-only)
  recover DIR        what opening the store would do: a dry run, changes nothing
  export DIR FILE    write a self-verifying backup of a closed store
  restore FILE DIR   make a new store directory from a backup
  retire DIR REPLICA retire a region that will not come back from a closed store

Options:
  --json             print one JSON object on stdout (keys: cli/README.md)
  --key-file FILE    keys of an encrypted store or backup: one key per line as
                     64 hex digits, the first the current key (backups and
                     restored stores are written under it), the others older
                     keys still read; never printed
  -h, --help         show help (of a command: session-ha help COMMAND)
  -V, --version      show the version

inspect, verify and recover only read: they are safe beside a running node.
A progress line is drawn on stderr for long passes when stderr is a terminal
(never with --json).

Exit status:
  0  done: intact, recovery would succeed, backup or restore made and verified
  1  the answer is no: damage found, recovery would fail, the store is locked by
     a running node, the store or the backup is too damaged to read, or
     encrypted bytes fail authentication (altered)
  2  the command could not run: bad arguments, DIR is not a store, FILE or DIR
     exists already, a key it needs is not in --key-file, I/O errors
";

/// The help page of `command`, if it is one.
pub fn command(command: &str) -> Option<&'static str> {
    Some(match command {
        "inspect" => INSPECT,
        "verify" => VERIFY,
        "recover" => RECOVER,
        "export" => EXPORT,
        "restore" => RESTORE,
        "retire" => RETIRE,
        _ => return None,
    })
}

const INSPECT: &str = "\
Usage: session-ha inspect [--json] [--key-file FILE] DIR

Shows what the store directory DIR holds, without changing anything:
  - both manifest slots: generation, region, incarnation, the chain of base and
    delta snapshots (sizes, WAL sequence each covers), and wal_from
  - snapshot files on disk, those no manifest names (orphans) and temp files
  - WAL segments: name, first sequence number, size; .broken and temp files
  - the state opening the store would recover: sessions, version vector,
    digest root (the snapshot chain and WAL tail are loaded in memory)

Does not check every checksum: that is `session-ha verify DIR`.

Exit status: 0 shown, 2 DIR is not a store or cannot be read.
";

const VERIFY: &str = "\
Usage: session-ha verify [--json] [--key-file FILE] DIR

Reads every manifest slot, every snapshot file a manifest names (every chunk
and footer checksum) and every WAL record, and reports. Read-only: nothing is
modified, renamed, truncated or locked, so it can run beside a running node.

Problems are damage to acknowledged data. Warnings are what the next open
repairs by itself (a torn WAL tail from a crash, leftover temporary files).

Encrypted files: checksums cover the encrypted bytes, so without --key-file
damage is still found and each file whose key is missing is a warning naming
the key id; with it every authentication tag is checked too, and bytes that
pass their checksums but fail authentication (altered) are a problem.

Exit status: 0 intact (warnings allowed), 1 problems found (listed),
2 DIR is not a store or cannot be read.
";

const RECOVER: &str = "\
Usage: session-ha recover [--json] [--key-file FILE] DIR

A dry run of recovery: says which manifest generation opening the store would
recover from, which snapshots it would load, how many WAL records it would
replay, how many bytes of torn tail it would cut off (kept in a .broken file),
which generations it would have to skip and why, and why it would fail if it
would (an encrypted store without --key-file would: the key id is named).
Changes nothing.

Exit status: 0 recovery would succeed, 1 it would fail,
2 DIR is not a store or cannot be read.
";

const EXPORT: &str = "\
Usage: session-ha export [--json] [--key-file FILE] DIR FILE

Writes a consistent backup of the closed store in DIR to FILE (which must not
exist): every session and the replica's state at one cut, in the checksummed
snapshot format, read back whole before success is reported.

The store is opened the way a restarting node opens it (region from its
manifest, no maintenance, no snapshots): recovery runs, so a torn WAL tail is
cut off and kept in a .broken file. Nothing else in DIR changes.

An encrypted store needs --key-file; the backup is then encrypted under the
current key. A store that a running node holds is locked: export exits 1.
Back up a live store through the node: erlmcp_session_ha:backup/1 (Erlang)
or Store::backup (Rust).

Exit status: 0 written and verified, 1 locked or too damaged to open,
2 DIR is not a store, FILE exists, or I/O errors.
";

const RESTORE: &str = "\
Usage: session-ha restore [--json] [--key-file FILE] FILE DIR

Verifies the whole backup FILE, then makes a new store directory DIR from it
and verifies that. DIR must not exist or be empty: restore never overwrites.

The restored store is a new incarnation of the backup's region; the old
incarnation is retired from membership, and peers refill whatever is newer
than the backup. Start the node on DIR with the region shown. An encrypted
backup needs --key-file; the new store is then encrypted under the current key
(start the node with the same key file).

Exit status: 0 restored and verified, 1 the backup is damaged (nothing made)
or the new store does not verify, 2 FILE missing, DIR not empty, I/O errors.
";

const RETIRE: &str = "\
Usage: session-ha retire [--json] [--key-file FILE] DIR REPLICA

Retires REPLICA from the membership of the closed store in DIR, for good:
a region that will not come back and holds up tombstone collection on every
member. REPLICA is a replica id (16 hex digits, as the status and inspect
show it) or a region name (every member of that name).

The store is opened the way a restarting node opens it, the retirement is
logged and made durable, and the store is closed. The other members learn it
from this node's frames once it runs again, and collection resumes once
every remaining member has confirmed it. The retired replica's frames are
refused from then on; bring the region back on an empty directory.

On a running node use erlmcp_session_ha:retire_region/1 (Erlang),
sha_retire_replica (C) or Store::remove_member (Rust).

Exit status: 0 retired, 1 locked by a running node or no such member,
2 DIR is not a store or cannot be read.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::COMMANDS;

    #[test]
    fn every_command_has_a_page_that_shows_its_usage_line() {
        for (name, params) in COMMANDS {
            let page = command(name).unwrap();
            let usage = format!(
                "Usage: session-ha {name} [--json] [--key-file FILE] {}",
                params.join(" ")
            );
            assert!(page.starts_with(&usage), "{name}");
            assert!(OVERVIEW.contains(&format!("{name} {}", params.join(" "))));
        }
        assert_eq!(command("help"), None);
    }

    #[test]
    fn lines_fit_an_80_column_terminal() {
        for page in std::iter::once(OVERVIEW).chain(COMMANDS.iter().filter_map(|c| command(c.0))) {
            for line in page.lines() {
                assert!(line.chars().count() <= 80, "{line}");
            }
        }
    }
}
