//! Encryption at rest: the key ring an operator configures, the per-file cipher that seals
//! WAL record bodies and snapshot chunks with AES-256-GCM, and the cipher block that every
//! encrypted file carries in its header. It owns no file of its own; the WAL and the snapshot
//! formats place the block and call the cipher (their module docs draw where).
//!
//! ```text
//!  key file      64 hex chars per line; first line = current key (every new file), the
//!                others = older keys still accepted for reading (rotation); blank lines and
//!                '#' comments allowed
//!  key id        first 8 bytes of blake3::derive_key(KEY_ID_CONTEXT, master key)
//!  file key      blake3::derive_key(FILE_KEY_CONTEXT, master key ‖ salt)
//!  salt          16 bytes of the file system's entropy, fresh for every file created
//!  cipher block  (32 bytes, after the file's own header)
//!    0 key_id 8 │ 8 salt 16 │ 24 reserved u32 = 0 │ 28 crc32 of the file header and bytes 0..28
//!  nonce         96 bits, a per-file counter laid out by each format (record seq, chunk index)
//! ```
//!
//! Nonce uniqueness: a file key exists for one file, and every file is written by exactly one
//! writer, once, front to back (the WAL starts a new segment at every open when encryption is
//! on; a snapshot is a new temp file with a new salt at every attempt), and the counter only
//! grows within a writer. So no (file key, nonce) pair is ever used twice; the argument and
//! the test that checks it are in `docs/DECISIONS.md`.
//!
//! The checksums stay, computed over the ciphertext: a reader without the key still tells
//! damaged bytes (a checksum fails) from a key it lacks ([`crate::Error::MissingKey`]); a reader with
//! the key also checks the GCM tag, and a tag that fails under good checksums is
//! [`crate::Error::Tampered`]. Key bytes are never logged, printed or put in an error.

mod block;
mod cipher;
mod keyring;

pub use block::{CipherBlock, CIPHER_BLOCK_LEN};
pub use cipher::{FileCipher, NonceLog, TAG_LEN};
pub use keyring::{KeyId, KeyRing, MASTER_KEY_LEN};
