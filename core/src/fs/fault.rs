//! What [`FaultyFs`](super::FaultyFs) counts and injects: the kinds of calls ([`Op`]), the
//! failures ([`Fault`], [`Repeat`]), and the bookkeeping that decides which call fails. No
//! byte layout: faults are plans, matched against a running count of calls.
//!
//! ```text
//!  call ──► total index, index within its Op ──► first rule (op or any, nth, once/from then on)
//!           that matches ──► its Fault, applied by the caller
//! ```

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::faulty_state::Model;

/// The kinds of calls `FaultyFs` counts and can fail (see [`FaultyFs`](super::FaultyFs)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    /// [`Vfs::create`](super::Vfs::create).
    Create,
    /// [`Vfs::open_append`](super::Vfs::open_append).
    OpenAppend,
    /// [`Vfs::open_read`](super::Vfs::open_read).
    OpenRead,
    /// [`Vfs::read_file`](super::Vfs::read_file).
    ReadFile,
    /// [`Vfs::file_len`](super::Vfs::file_len).
    FileLen,
    /// [`Vfs::exists`](super::Vfs::exists).
    Exists,
    /// [`Vfs::rename`](super::Vfs::rename).
    Rename,
    /// [`Vfs::remove_file`](super::Vfs::remove_file).
    Remove,
    /// [`Vfs::list_dir`](super::Vfs::list_dir).
    ListDir,
    /// [`Vfs::create_dir_all`](super::Vfs::create_dir_all).
    CreateDir,
    /// [`Vfs::sync_dir`](super::Vfs::sync_dir).
    SyncDir,
    /// [`Vfs::lock_dir`](super::Vfs::lock_dir).
    Lock,
    /// [`VfsFile::append`](super::VfsFile::append).
    Append,
    /// [`VfsFile::read_at`](super::VfsFile::read_at).
    ReadAt,
    /// [`VfsFile::sync_data`](super::VfsFile::sync_data).
    SyncData,
    /// [`VfsFile::set_len`](super::VfsFile::set_len).
    SetLen,
    /// [`VfsFile::size`](super::VfsFile::size).
    Size,
}

/// What an injected failure does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// Fails with `ENOSPC` (raw os error 28), changing nothing.
    NoSpace,
    /// Fails with `EIO` (raw os error 5), changing nothing.
    Eio,
    /// An append writes the first half of its buffer, then fails with `ENOSPC`.
    /// Other calls behave as [`Fault::NoSpace`].
    TornThenNoSpace,
    /// An append writes the first half of its buffer, then fails with `EIO`.
    /// Other calls behave as [`Fault::Eio`].
    TornThenEio,
}

/// Whether a fault fires once or keeps firing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Repeat {
    /// Only the chosen call fails.
    Once,
    /// The chosen call and every later matching call fail (a disk that stays full or broken).
    FromThenOn,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    pub(super) op: Option<Op>,
    pub(super) nth: u64,
    pub(super) fault: Fault,
    pub(super) repeat: Repeat,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) model: Model,
    /// State of the seeded sequence `Vfs::entropy` returns.
    pub(super) entropy: u64,
    pub(super) total: u64,
    pub(super) per_op: HashMap<Op, u64>,
    pub(super) log: Vec<(Op, PathBuf)>,
    pub(super) rules: Vec<Rule>,
    pub(super) fired: u64,
}

impl State {
    /// Counts a call and says which fault, if any, it must suffer.
    pub(super) fn begin(&mut self, op: Op, path: &Path) -> Option<Fault> {
        let any_index = self.total;
        self.total += 1;
        let count = self.per_op.entry(op).or_insert(0);
        let op_index = *count;
        *count += 1;
        self.log.push((op, path.to_path_buf()));
        let hit = self.rules.iter().find(|r| {
            let index = match r.op {
                None => any_index,
                Some(o) if o == op => op_index,
                Some(_) => return false,
            };
            match r.repeat {
                Repeat::Once => index == r.nth,
                Repeat::FromThenOn => index >= r.nth,
            }
        });
        let fault = hit.map(|r| r.fault);
        if fault.is_some() {
            self.fired += 1;
        }
        fault
    }
}

pub(super) fn fault_error(f: Fault) -> io::Error {
    match f {
        Fault::NoSpace | Fault::TornThenNoSpace => io::Error::from_raw_os_error(28),
        Fault::Eio | Fault::TornThenEio => io::Error::from_raw_os_error(5),
    }
}
