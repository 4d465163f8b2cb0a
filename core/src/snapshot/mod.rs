//! Snapshots: incremental (delta) and full (base, backup) snapshot files of a replica's
//! sessions, streamed in checksummed lz4 chunks; and the A/B manifest naming the live chain.
//! Formats are drawn in `format.rs`, `sealed.rs` (encrypted files) and `manifest.rs`.

mod format;
mod manifest;
mod reader;
mod sealed;
mod writer;

pub use format::{Footer, Header, SnapEntry, SnapKind, SnapshotMeta, MAX_CHUNK, VERSION};
pub use manifest::{
    install as install_manifest, read_slots, Chain, Manifest, Slots, SnapRef, SLOTS,
};
pub use reader::{read_snapshot, read_snapshot_pipelined, read_snapshot_with_keys, SnapshotReader};
pub use writer::{SnapshotWriter, Written};
