/*
 * session_ha.h - the C interface of session-ha.
 *
 * session-ha keeps session state as CRDTs in a directory (write-ahead log plus incremental,
 * checksummed snapshots) and replicates it between regions. This header is the whole C API;
 * link against libsession_ha_ffi (the cdylib .so or the staticlib .a) built from the `ffi/`
 * crate. A Rust unit test in ffi/ checks every declaration here against the library's
 * exports, so the two cannot drift apart.
 *
 * Conventions
 * - Every function returns a sha_status; SHA_OK is 0. On any other code, sha_last_error()
 *   gives a sentence saying why (per thread). No panic or exception ever crosses into C:
 *   an internal panic is reported as SHA_ERR_PANIC.
 * - Every pointer is checked. A required pointer that is NULL gives SHA_ERR_NULL. Byte
 *   strings are (const uint8_t *ptr, size_t len) pairs of arbitrary bytes; ptr may be NULL
 *   only when len is 0 (the empty string).
 * - Results come back one of two ways:
 *   - copied into a buffer you provide (buf, cap), with the size it needs in *needed; when it
 *     does not fit the call returns SHA_ERR_BUFFER_TOO_SMALL, copies nothing and still sets
 *     *needed (pass buf = NULL, cap = 0 to ask for the size);
 *   - or allocated by the library in a sha_buf, which you give back with sha_buf_free().
 *     Output sha_bufs are emptied at the start of every call, so freeing one is always
 *     correct, whatever the call returned.
 * - A sha_store handle may be used from any number of threads at once. After sha_close(),
 *   every call with that handle returns SHA_ERR_CLOSED: handles are opaque tokens that are
 *   never reused and never dereferenced, so use after close is always detected.
 * - Writes (sha_put, sha_counter_add, ...) return once their log record is durable under the
 *   store's fsync policy.
 */
#ifndef SESSION_HA_H
#define SESSION_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; compare with sha_version() at run time. */
#define SHA_VERSION "0.1.0"

/* Status codes. Values are stable: never renumbered, only appended. */
typedef enum sha_status {
    SHA_OK = 0,
    /* A required pointer was NULL, or a byte-string pointer was NULL with a length. */
    SHA_ERR_NULL = 1,
    /* A caller buffer is too small; *needed holds the size required. */
    SHA_ERR_BUFFER_TOO_SMALL = 2,
    /* The session, field or counter asked for does not exist. */
    SHA_ERR_NOT_FOUND = 3,
    /* A panic was caught inside the library; the call did not complete. */
    SHA_ERR_PANIC = 4,
    /* The handle was never returned by sha_open. */
    SHA_ERR_INVALID_HANDLE = 5,
    /* An error this build has no dedicated code for (see sha_last_error). */
    SHA_ERR_UNKNOWN = 6,
    /* The codes below mirror the library's error kinds one to one. */
    /* A session id is empty or longer than the limit (256 bytes). */
    SHA_ERR_INVALID_SESSION_ID = 16,
    /* A field, counter or set key is empty or longer than the limit (256 bytes). */
    SHA_ERR_INVALID_KEY = 17,
    /* A value or set element is larger than the limit (256 KiB). */
    SHA_ERR_TOO_LARGE = 18,
    /* The session would hold more entries than allowed. */
    SHA_ERR_TOO_MANY_FIELDS = 19,
    /* The session would hold more bytes than allowed. */
    SHA_ERR_SESSION_TOO_LARGE = 20,
    /* The session was ended or has expired; it never comes back. */
    SHA_ERR_ENDED = 21,
    /* A counter would leave the range of int64_t. */
    SHA_ERR_COUNTER_OVERFLOW = 22,
    /* A TTL of zero, or one whose deadline does not fit the clock. */
    SHA_ERR_INVALID_TTL = 23,
    /* A replication or digest message was rejected; the store is unchanged. */
    SHA_ERR_BAD_FRAME = 24,
    /* A message came from a replica removed from membership for good. */
    SHA_ERR_REMOVED_REPLICA = 25,
    /* A message carries this replica's own id (two regions with one name?). */
    SHA_ERR_OWN_FRAME = 26,
    /* A peer id this store does not know (see sha_add_peer). */
    SHA_ERR_UNKNOWN_PEER = 27,
    /* An I/O call failed. */
    SHA_ERR_IO = 28,
    /* The disk is full; acknowledged data is intact, writes are refused until reopened. */
    SHA_ERR_NO_SPACE = 29,
    /* Bytes on disk failed verification; they are never served. */
    SHA_ERR_CORRUPT = 30,
    /* Acknowledged data is gone for good (every fallback was tried). */
    SHA_ERR_DATA_LOSS = 31,
    /* An earlier write or fsync failed; every write is refused until the store is reopened. */
    SHA_ERR_POISONED = 32,
    /* The directory is open elsewhere (in this process or another). */
    SHA_ERR_LOCKED = 33,
    /* The handle was closed (or is being closed by another thread). */
    SHA_ERR_CLOSED = 34,
    /* An argument or option is outside what the call accepts. */
    SHA_ERR_INVALID_ARGUMENT = 35,
    /* The store may hold state older than its peers have collected (restored from a backup,
     * or recovery lost the end of its log): reads and writes are refused until it has caught
     * up with a peer. */
    SHA_ERR_CATCHING_UP = 36,
    /* The store's lock could not be had within the calling thread's budget. */
    SHA_ERR_BUSY = 37,
    /* A message's MAC is missing, unexpected, under an unknown key, or wrong; nothing changed. */
    SHA_ERR_UNAUTHENTICATED = 38,
    /* A message from a replica that is not a member (see sha_add_peer); nothing changed. */
    SHA_ERR_NOT_A_MEMBER = 39,
    /* A frame whose number was already taken from its sender (a replay); nothing changed. */
    SHA_ERR_REPLAYED_FRAME = 40,
    /* A frame with stamps too far ahead of this store's clock: held back, sent again later. */
    SHA_ERR_CLOCK_AHEAD = 41,
    /* A frame key or auth_key_file that cannot be used. */
    SHA_ERR_AUTH_KEY = 42,
    /* A file is encrypted under a key that is not configured (no encryption_key_file, or one
     * without that key); nothing was changed. sha_last_error names the file and key id. */
    SHA_ERR_MISSING_KEY = 43,
    /* Encrypted bytes pass their checksums but fail authentication: altered on purpose.
     * Never served; nothing was changed. */
    SHA_ERR_TAMPERED = 44,
    /* The key file cannot be read or is not one (sha_last_error names the file and line,
     * never its content). */
    SHA_ERR_BAD_KEY_FILE = 45
} sha_status;

/* An open store. Opaque: only pointers to it exist. */
typedef struct sha_store sha_store;

/* Bytes allocated by the library; give them back with sha_buf_free(). ptr is NULL when len
 * is 0. Text results (JSON) are followed by a NUL byte that len does not count, so ptr can
 * be printed as a C string. */
typedef struct sha_buf {
    uint8_t *ptr;
    size_t len;
} sha_buf;

/* A 128-bit digest, most significant byte first (its hex spelling is the one status JSON
 * shows). Two stores with equal digest roots hold the same live state. */
typedef struct sha_digest {
    uint8_t bytes[16];
} sha_digest;

/* sha_options.fsync: fsync every batch before it counts as durable. */
#define SHA_FSYNC_ALWAYS 0
/* sha_options.fsync: fsync at most every fsync_every_ms ms (a crash loses at most that). */
#define SHA_FSYNC_EVERY_MS 1
/* sha_options.fsync: leave write-back to the OS (a power cut loses what it had not written). */
#define SHA_FSYNC_NEVER 2
/* sha_options.recovery: refuse to open a directory damaged beyond every fallback. */
#define SHA_RECOVERY_STRICT 0
/* sha_options.recovery: move a damaged directory aside (never deleted) and start empty, to be
 * refilled by peers. Only for a replica whose peers hold the data. */
#define SHA_RECOVERY_REBUILD_FROM_PEERS 1

/* Options for sha_open. Always fill with sha_options_init() first, then set region and
 * change what you need: sha_open refuses a struct whose size field is not sizeof(sha_options). */
typedef struct sha_options {
    uint32_t size;                 /* sizeof(sha_options), set by sha_options_init */
    uint32_t fsync;                /* SHA_FSYNC_* (default SHA_FSYNC_EVERY_MS) */
    uint32_t fsync_every_ms;       /* for SHA_FSYNC_EVERY_MS (default 10) */
    uint32_t recovery;             /* SHA_RECOVERY_* (default SHA_RECOVERY_STRICT) */
    const char *region;            /* region name, UTF-8, required; must match the directory's */
    uint64_t snapshot_interval_ms; /* automatic incremental snapshots; 0: only sha_snapshot (default 60000) */
    uint64_t tick_interval_ms;     /* automatic maintenance; 0: only sha_tick (default 200) */
    uint64_t segment_size;         /* WAL segment size in bytes (default 64 MiB) */
    const char *auth_key_file;     /* one or two secrets, one per line, the first signing: every
                                      replication message is then authenticated (default NULL:
                                      messages carry no MAC and none may) */
    uint64_t max_clock_skew_ms;    /* frames stamped further ahead are held back; 0: no bound
                                      (default 60000) */
    const char *encryption_key_file; /* key file for encryption at rest; NULL: off (default) */
} sha_options;

/* ---- library ------------------------------------------------------------------------- */

/* The library's version, e.g. "0.1.0": a static string, never free it. */
const char *sha_version(void);

/* The name of a status code ("SHA_ERR_LOCKED"); "SHA_ERR_UNKNOWN" for a value that is not
 * one. A static string, never free it. */
const char *sha_status_name(int32_t code);

/* Copies this thread's last error message, NUL-terminated, into buf (cap bytes); *needed gets
 * its size including the NUL. The message is that of the most recent call on this thread that
 * did not return SHA_OK ("" before any); successful calls do not clear it, and this call never
 * changes it. SHA_ERR_BUFFER_TOO_SMALL when cap < *needed (buf may be NULL with cap 0). */
sha_status sha_last_error(char *buf, size_t cap, size_t *needed);

/* Frees a sha_buf the library returned and empties it (ptr NULL, len 0); an empty sha_buf is
 * SHA_OK. SHA_ERR_INVALID_ARGUMENT, freeing nothing, for a ptr this library did not return
 * or already freed (through a copy of the struct). */
sha_status sha_buf_free(sha_buf *buf);

/* ---- opening and closing ------------------------------------------------------------- */

/* Fills *opts with the defaults and a NULL region. */
sha_status sha_options_init(sha_options *opts);

/* Opens (recovering) or creates the store in directory dir (created if missing) and stores
 * its handle in *out (NULL on failure). The directory is locked while open: a second open of
 * it, in this process or another, fails with SHA_ERR_LOCKED. SHA_ERR_INVALID_ARGUMENT for bad
 * options or a directory that holds another region; SHA_ERR_CORRUPT / SHA_ERR_DATA_LOSS when
 * damage leaves nothing to recover from (under SHA_RECOVERY_STRICT). */
sha_status sha_open(const char *dir, const sha_options *opts, sha_store **out);

/* Closes a store: stops its background work, makes everything written durable, releases the
 * directory and frees the handle. The handle is invalid afterwards whatever this returns
 * (further calls with it return SHA_ERR_CLOSED, a second close included). Returns the failure
 * that poisoned the log, if one did. A call running on another thread meanwhile finishes or
 * fails with SHA_ERR_CLOSED. */
sha_status sha_close(sha_store *store);

/* ---- sessions: fields ---------------------------------------------------------------- */

/* Sets field key of session to value (any bytes, empty allowed), creating the session. */
sha_status sha_put(sha_store *store, const uint8_t *session, size_t session_len,
                   const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len);

/* Copies the value of field key of session into buf (cap bytes); *needed gets its length.
 * SHA_ERR_NOT_FOUND when the session (or the field) is absent, ended or expired;
 * SHA_ERR_BUFFER_TOO_SMALL when it does not fit (buf may be NULL with cap 0). */
sha_status sha_get_field(sha_store *store, const uint8_t *session, size_t session_len,
                         const uint8_t *key, size_t key_len, uint8_t *buf, size_t cap,
                         size_t *needed);

/* Deletes field key of session. */
sha_status sha_delete(sha_store *store, const uint8_t *session, size_t session_len,
                      const uint8_t *key, size_t key_len);

/* Ends session for good: it reads as absent everywhere once replicated, and no later or
 * late-arriving write brings it back (SHA_ERR_ENDED). */
sha_status sha_end(sha_store *store, const uint8_t *session, size_t session_len);

/* Extends session's life to at least ttl_ms from now; past its deadline it reads as absent
 * and never comes back. SHA_ERR_INVALID_TTL for 0. */
sha_status sha_touch(sha_store *store, const uint8_t *session, size_t session_len,
                     uint64_t ttl_ms);

/* The whole session as NUL-terminated JSON in *out (free with sha_buf_free). Keys, values and
 * set elements are base64 (standard alphabet, padded); counters exact integers:
 * {"fields":{"<key>":"<value>"},"counters":{"<key>":n},"sets":{"<key>":["<elem>"]},
 *  "expires_at_ms":n|null}. SHA_ERR_NOT_FOUND when absent, ended or expired. */
sha_status sha_session_json(sha_store *store, const uint8_t *session, size_t session_len,
                            sha_buf *out);

/* ---- sessions: counters and sets ----------------------------------------------------- */

/* Adds delta (negative to subtract) to counter key of session (a PN counter: concurrent adds
 * in different regions all count). */
sha_status sha_counter_add(sha_store *store, const uint8_t *session, size_t session_len,
                           const uint8_t *key, size_t key_len, int64_t delta);

/* Reads counter key of session into *value. SHA_ERR_NOT_FOUND when the session is absent,
 * ended or expired, or has no such counter. */
sha_status sha_counter_get(sha_store *store, const uint8_t *session, size_t session_len,
                           const uint8_t *key, size_t key_len, int64_t *value);

/* Adds elem to set key of session (add wins over a concurrent remove). */
sha_status sha_set_add(sha_store *store, const uint8_t *session, size_t session_len,
                       const uint8_t *key, size_t key_len, const uint8_t *elem,
                       size_t elem_len);

/* Removes elem from set key of session. */
sha_status sha_set_remove(sha_store *store, const uint8_t *session, size_t session_len,
                          const uint8_t *key, size_t key_len, const uint8_t *elem,
                          size_t elem_len);

/* Stores in *contains whether set key of session holds elem (false when the session or the
 * set is absent). */
sha_status sha_set_contains(sha_store *store, const uint8_t *session, size_t session_len,
                            const uint8_t *key, size_t key_len, const uint8_t *elem,
                            size_t elem_len, bool *contains);

/* ---- replication --------------------------------------------------------------------- */

/* Stores this replica's id in *id: what its peers pass to sha_add_peer. Stable across
 * restarts of the same directory. */
sha_status sha_id(sha_store *store, uint64_t *id);

/* Registers peer (its sha_id) of region (UTF-8): from now on this store keeps what the peer
 * lacks and sha_frame_for produces frames for it. */
sha_status sha_add_peer(sha_store *store, uint64_t peer, const char *region);

/* The next frame for peer in *frame (free with sha_buf_free): send its bytes to the peer,
 * whose sha_receive applies them and answers with an ack. SHA_OK with an empty *frame
 * (len 0) means nothing to send now: all is sent, or the window of unacknowledged frames is
 * full until an ack arrives. SHA_ERR_UNKNOWN_PEER for a peer never added. */
sha_status sha_frame_for(sha_store *store, uint64_t peer, sha_buf *frame);

/* Applies a message from a peer (a frame or an ack: acks are messages too) and, once what it
 * changed is durable, puts the reply in *reply (free with sha_buf_free): a frame is answered
 * with an ack to pass to the sender's sha_receive; an ack needs no reply (empty *reply).
 * Bytes that do not decode give SHA_ERR_BAD_FRAME and change nothing. */
sha_status sha_receive(sha_store *store, const uint8_t *bytes, size_t len, sha_buf *reply);

/* Runs maintenance now: expiry, resending what peers did not acknowledge in time (after a
 * lost frame), collecting stable tombstones. Also runs every tick_interval_ms. */
sha_status sha_tick(sha_store *store);

/* The store's status as NUL-terminated JSON in *out (free with sha_buf_free). Replica ids
 * are 16 hex digits, digests 32, version vectors objects from id to sequence number, times
 * Unix ms:
 * {"dir","incarnation","replica":{"id","name","now_ms","vv","durable_vv","boot","fence",
 *  "sessions","live_sessions",
 *  "digest_root","log_ops","log_bytes","tombstones_pending","stable","gaps","clock_skew_ms",
 *  "peers":[{"id","name","acked","pending_ops","lag_ms","lag_exact","behind_ops",
 *  "last_heard_ms","in_flight","state_transfer","clock_ahead_ms","reports_removed"}],
 *  "removed","expired_total","unknown_origins",
 *  "trust":{"authenticated","frame_key_ids","refused":{id:counts},"refused_other":counts,
 *  "retired":[{"id","region","unconfirmed_by","given_up_at"}],"collection_blocked_by","removed_by",
 *  "clock_jump_ms"}},
 *  "wal":{"last_seq","durable_seq","segments","bytes","failure"},
 *  "snapshot":{"generation","covers_seq","base","deltas","bytes","last_ok_ms","last_error"},
 *  "open":{"boot","clean_shutdown","bytes_cut","lost":[first,last],"reincarnated_from"},
 *  "tainted"}.
 * A peer is caught up when its pending_ops is 0. durable_vv is what a crash would keep;
 * fence, when not null, says why reads and writes are refused until the store caught up
 * with a peer (sha_lift_fence lifts it by hand); tainted, when not null, that the log failed
 * with writes in flight and nothing is served until the store is reopened. counts are
 * {"unauthenticated","not_member","removed","replayed","clock_ahead","malformed"}: messages
 * refused per claimed sender; collection_blocked_by names who holds up tombstone
 * collection (sha_retire_replica unblocks a member that will not come back). */
sha_status sha_replication_status(sha_store *store, sha_buf *out);

/* Lifts the catch-up fence by hand: for an operator who knows no peer is left to catch up
 * with, so this store's state is the best there is. SHA_OK when there was none. */
sha_status sha_lift_fence(sha_store *store);

/* ---- trust: hellos, keys, retirement ------------------------------------------------- */

/* This store's hello for the peers of transport node (UTF-8, how peers reach this store) in
 * *hello (free with sha_buf_free): send it to every peer, which opens it with sha_open_hello. */
sha_status sha_hello(sha_store *store, const char *node, sha_buf *hello);

/* Opens a peer's hello: once authenticated (and from neither this replica nor a retired one),
 * *info holds NUL-terminated JSON {"id","region","node","boot"} (free with sha_buf_free; id in
 * hex). It makes nobody a member: call sha_add_peer for a node you want. SHA_ERR_UNAUTHENTICATED,
 * SHA_ERR_BAD_FRAME, SHA_ERR_OWN_FRAME or SHA_ERR_REMOVED_REPLICA otherwise, each counted. */
sha_status sha_open_hello(sha_store *store, const uint8_t *bytes, size_t len, sha_buf *info);

/* Replaces the frame keys with those of the auth_key_file at path (a key rotation), or turns
 * authentication off when path is NULL. SHA_ERR_AUTH_KEY, keys unchanged, for a bad file. */
sha_status sha_set_auth_key_file(sha_store *store, const char *path);

/* Retires replica id for good (a region that will not come back): durable before this
 * returns, it replicates to every member; once every remaining member confirmed it, tombstone
 * collection stops waiting for it. Its frames are refused from then on. */
sha_status sha_retire_replica(sha_store *store, uint64_t id);

/* ---- digests: consistency and repair ------------------------------------------------- */

/* Stores the root of the store's digest tree in *root. */
sha_status sha_digest_root(sha_store *store, sha_digest *root);

/* Finding exactly the sessions that differ between stores A and B, wherever each runs:
 *   1. A: sha_digest_summary -> summary; send it to B.
 *   2. B: sha_digest_compare(summary) -> entries; send them back to A.
 *   3. A: sha_digest_diff(entries) -> ids (and their count; 0 means consistent).
 *   4. A: sha_repair_frames(B, ids) -> frames for B's sha_receive; and B's
 *      sha_repair_frames(A, ids) for A, to repair both directions.
 * The messages are checksummed; a damaged one is SHA_ERR_BAD_FRAME. */

/* Step 1: this store's digest summary in *summary (free with sha_buf_free). */
sha_status sha_digest_summary(sha_store *store, sha_buf *summary);

/* Step 2: the leaves where another store's summary differs from this store, with this store's
 * session digests in them, in *entries (free with sha_buf_free). */
sha_status sha_digest_compare(sha_store *store, const uint8_t *summary, size_t len,
                              sha_buf *entries);

/* Step 3: the ids of the sessions whose digests differ between this store and the one that
 * produced entries, in *ids (free with sha_buf_free), and how many in *count. The ids
 * message is: "SHDG", u16 version 1, u16 kind 3, u32 count, count x (u16 len, id bytes),
 * u32 crc32 (little endian). */
sha_status sha_digest_diff(sha_store *store, const uint8_t *entries, size_t len, sha_buf *ids,
                           size_t *count);

/* Step 4: frames for peer carrying this store's full state of the sessions in ids (or that
 * it lacks them), each within the frame budget, as a frame list in *frames (free with
 * sha_buf_free) and how many in *count; the peer's sha_receive merges each. A frame list is,
 * per frame, its length (u32, little endian) and its bytes; walk it with sha_next_frame. */
sha_status sha_repair_frames(sha_store *store, uint64_t peer, const uint8_t *ids, size_t len,
                             sha_buf *frames, size_t *count);

/* Takes the next frame of a frame list: *cursor and *left name what is left of the list
 * (start with frames.ptr, frames.len); on SHA_OK *frame and *frame_len name the frame,
 * inside the list's buffer, and *cursor and *left move past it. SHA_ERR_NOT_FOUND once the
 * list is used up, SHA_ERR_BAD_FRAME when what is left does not parse. */
sha_status sha_next_frame(const uint8_t **cursor, size_t *left, const uint8_t **frame,
                          size_t *frame_len);

/* ---- durability ---------------------------------------------------------------------- */

/* Takes an incremental snapshot now and describes it as NUL-terminated JSON in *report (free
 * with sha_buf_free): {"generation","file","base","sessions","gone","bytes","covers_seq",
 * "files_removed","wal_segments_removed","elapsed_ms"}. */
sha_status sha_snapshot(sha_store *store, sha_buf *report);

/* Reads back every manifest, snapshot chunk and WAL record and checks its checksum, changing
 * nothing. *intact is true when no acknowledged data is damaged; *report (free with
 * sha_buf_free) has the details as NUL-terminated JSON:
 * {"intact","generation","manifests":[{"file","bytes","entries","error","key_id",
 *  "checksums_only"}],"snapshots":[...],
 *  "orphans","wal":{"segments","records","first_seq","last_seq","broken_files","temp_files"},
 *  "problems":[...],"warnings":[...]}. Damage is reported here, not as an error code. With
 * encryption, files are authenticated with the store's keys (key_id: the key a file is
 * encrypted under; checksums_only: its key is not configured, so only checksums were
 * checked, and a warning names the key). */
sha_status sha_verify(sha_store *store, bool *intact, sha_buf *report);

#ifdef __cplusplus
}
#endif

#endif /* SESSION_HA_H */
