//! Snapshots: incremental (delta) and full (base, backup) snapshot files of a replica's
//! sessions, streamed in checksummed lz4 chunks; and the A/B manifest naming the live chain.
//! Formats are drawn in `format.rs`, `sealed.rs` (encrypted files) and `manifest.rs`;
//! `reader.rs` streams one file's verified entries, `read.rs` reads a whole file in one call,
//! `writer.rs` writes one.

mod format;
mod manifest;
mod read;
mod reader;
mod sealed;
mod writer;

pub use format::{Footer, Header, SnapEntry, SnapKind, SnapshotMeta, MAX_CHUNK, VERSION};
pub use manifest::{
    install as install_manifest, read_slots, Chain, Manifest, Slots, SnapRef, SLOTS,
};
pub use read::{read_snapshot, read_snapshot_pipelined, read_snapshot_with_keys};
pub use reader::SnapshotReader;
pub use writer::{SnapshotWriter, Written};
