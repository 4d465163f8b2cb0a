/* test_errors.c - every error path: NULL for every pointer parameter of every function, too
 * small buffers, malformed frames, a locked directory, use after close, bad options. */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_null_arguments_of_the_library_calls(void)
{
    char buf[8];
    size_t needed = 0;
    CHECK_RC(sha_last_error(buf, sizeof buf, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_last_error(NULL, 8, &needed), SHA_ERR_NULL);
    CHECK_RC(sha_buf_free(NULL), SHA_ERR_NULL);
    CHECK_RC(sha_options_init(NULL), SHA_ERR_NULL);
    CHECK_RC(sha_close(NULL), SHA_ERR_NULL);
    /* The last error names the argument. */
    CHECK_RC(sha_options_init(NULL), SHA_ERR_NULL);
    char msg[128];
    CHECK_RC(sha_last_error(msg, sizeof msg, &needed), SHA_OK);
    CHECK(strcmp(msg, "argument `opts` is null") == 0 && needed == strlen(msg) + 1);
}

static void test_null_arguments_of_open(void)
{
    char dir[512];
    CHECK(tmpdir_make(dir, sizeof dir) == 0);
    sha_options o = test_options("us-east-1");
    sha_store *s = (sha_store *)&o; /* anything but NULL: open must reset it */
    CHECK_RC(sha_open(NULL, &o, &s), SHA_ERR_NULL);
    CHECK(s == NULL);
    CHECK_RC(sha_open(dir, NULL, &s), SHA_ERR_NULL);
    CHECK_RC(sha_open(dir, &o, NULL), SHA_ERR_NULL);
    o.region = NULL;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_NULL);
    CHECK(s == NULL);
    CHECK(tmpdir_remove(dir) == 0);
}

static void test_null_arguments_of_session_calls(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_store *h = f.store;
    uint8_t buf[8];
    size_t needed = 0;
    int64_t v = 0;
    bool in = false;
    sha_buf out = {0};

    CHECK_RC(sha_put(NULL, STR("s"), STR("k"), STR("v")), SHA_ERR_NULL);
    CHECK_RC(sha_put(h, NULL, 1, STR("k"), STR("v")), SHA_ERR_NULL);
    CHECK_RC(sha_put(h, STR("s"), NULL, 1, STR("v")), SHA_ERR_NULL);
    CHECK_RC(sha_put(h, STR("s"), STR("k"), NULL, 1), SHA_ERR_NULL);

    CHECK_RC(sha_put(h, STR("s"), STR("k"), STR("v")), SHA_OK);
    CHECK_RC(sha_get_field(NULL, STR("s"), STR("k"), buf, sizeof buf, &needed), SHA_ERR_NULL);
    CHECK_RC(sha_get_field(h, NULL, 1, STR("k"), buf, sizeof buf, &needed), SHA_ERR_NULL);
    CHECK_RC(sha_get_field(h, STR("s"), NULL, 1, buf, sizeof buf, &needed), SHA_ERR_NULL);
    CHECK_RC(sha_get_field(h, STR("s"), STR("k"), NULL, sizeof buf, &needed), SHA_ERR_NULL);
    CHECK_RC(sha_get_field(h, STR("s"), STR("k"), buf, sizeof buf, NULL), SHA_ERR_NULL);

    CHECK_RC(sha_delete(NULL, STR("s"), STR("k")), SHA_ERR_NULL);
    CHECK_RC(sha_delete(h, NULL, 1, STR("k")), SHA_ERR_NULL);
    CHECK_RC(sha_delete(h, STR("s"), NULL, 1), SHA_ERR_NULL);
    CHECK_RC(sha_end(NULL, STR("s")), SHA_ERR_NULL);
    CHECK_RC(sha_end(h, NULL, 1), SHA_ERR_NULL);
    CHECK_RC(sha_touch(NULL, STR("s"), 1000), SHA_ERR_NULL);
    CHECK_RC(sha_touch(h, NULL, 1, 1000), SHA_ERR_NULL);
    CHECK_RC(sha_session_json(NULL, STR("s"), &out), SHA_ERR_NULL);
    CHECK_RC(sha_session_json(h, NULL, 1, &out), SHA_ERR_NULL);
    CHECK_RC(sha_session_json(h, STR("s"), NULL), SHA_ERR_NULL);

    CHECK_RC(sha_counter_add(NULL, STR("s"), STR("c"), 1), SHA_ERR_NULL);
    CHECK_RC(sha_counter_add(h, NULL, 1, STR("c"), 1), SHA_ERR_NULL);
    CHECK_RC(sha_counter_add(h, STR("s"), NULL, 1, 1), SHA_ERR_NULL);
    CHECK_RC(sha_counter_get(NULL, STR("s"), STR("c"), &v), SHA_ERR_NULL);
    CHECK_RC(sha_counter_get(h, NULL, 1, STR("c"), &v), SHA_ERR_NULL);
    CHECK_RC(sha_counter_get(h, STR("s"), NULL, 1, &v), SHA_ERR_NULL);
    CHECK_RC(sha_counter_get(h, STR("s"), STR("c"), NULL), SHA_ERR_NULL);

    CHECK_RC(sha_set_add(NULL, STR("s"), STR("k"), STR("e")), SHA_ERR_NULL);
    CHECK_RC(sha_set_add(h, NULL, 1, STR("k"), STR("e")), SHA_ERR_NULL);
    CHECK_RC(sha_set_add(h, STR("s"), NULL, 1, STR("e")), SHA_ERR_NULL);
    CHECK_RC(sha_set_add(h, STR("s"), STR("k"), NULL, 1), SHA_ERR_NULL);
    CHECK_RC(sha_set_remove(NULL, STR("s"), STR("k"), STR("e")), SHA_ERR_NULL);
    CHECK_RC(sha_set_remove(h, NULL, 1, STR("k"), STR("e")), SHA_ERR_NULL);
    CHECK_RC(sha_set_remove(h, STR("s"), NULL, 1, STR("e")), SHA_ERR_NULL);
    CHECK_RC(sha_set_remove(h, STR("s"), STR("k"), NULL, 1), SHA_ERR_NULL);
    CHECK_RC(sha_set_contains(NULL, STR("s"), STR("k"), STR("e"), &in), SHA_ERR_NULL);
    CHECK_RC(sha_set_contains(h, NULL, 1, STR("k"), STR("e"), &in), SHA_ERR_NULL);
    CHECK_RC(sha_set_contains(h, STR("s"), NULL, 1, STR("e"), &in), SHA_ERR_NULL);
    CHECK_RC(sha_set_contains(h, STR("s"), STR("k"), NULL, 1, &in), SHA_ERR_NULL);
    CHECK_RC(sha_set_contains(h, STR("s"), STR("k"), STR("e"), NULL), SHA_ERR_NULL);

    /* None of it changed the session. */
    sha_buf json = {0};
    CHECK_RC(sha_session_json(h, STR("s"), &json), SHA_OK);
    CHECK(buf_contains(&json, "{\"fields\":{\"aw==\":\"dg==\"},\"counters\":{},\"sets\":{}"));
    sha_buf_free(&json);
    fixture_close(&f);
}

static void test_null_with_length_zero_is_the_empty_string(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    CHECK_RC(sha_put(f.store, NULL, 0, STR("k"), STR("v")), SHA_ERR_INVALID_SESSION_ID);
    CHECK_RC(sha_put(f.store, STR("s"), NULL, 0, STR("v")), SHA_ERR_INVALID_KEY);
    CHECK_RC(sha_put(f.store, STR("s"), STR("k"), NULL, 0), SHA_OK);
    fixture_close(&f);
}

static void test_null_arguments_of_replication_calls(void)
{
    fixture a, b;
    if (!fixture_open(&a, "us-east-1") || !fixture_open(&b, "us-west-2"))
        return;
    make_peers(a.store, "us-east-1", b.store, "us-west-2");
    uint64_t idb = 0;
    sha_id(b.store, &idb);
    sha_buf out = {0};
    CHECK_RC(sha_id(NULL, &idb), SHA_ERR_NULL);
    CHECK_RC(sha_id(a.store, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_add_peer(NULL, 1, "r"), SHA_ERR_NULL);
    CHECK_RC(sha_add_peer(a.store, 1, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_frame_for(NULL, idb, &out), SHA_ERR_NULL);
    CHECK_RC(sha_frame_for(a.store, idb, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_receive(NULL, STR("x"), &out), SHA_ERR_NULL);
    CHECK_RC(sha_receive(b.store, NULL, 10, &out), SHA_ERR_NULL);
    CHECK_RC(sha_receive(b.store, STR("x"), NULL), SHA_ERR_NULL);
    CHECK_RC(sha_tick(NULL), SHA_ERR_NULL);
    CHECK_RC(sha_replication_status(NULL, &out), SHA_ERR_NULL);
    CHECK_RC(sha_replication_status(a.store, NULL), SHA_ERR_NULL);
    CHECK(out.ptr == NULL);
    fixture_close(&a);
    fixture_close(&b);
}

static void test_null_arguments_of_digest_and_durability_calls(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_store *h = f.store;
    sha_digest root;
    sha_buf out = {0};
    size_t count = 0;
    bool intact = false;
    CHECK_RC(sha_digest_root(NULL, &root), SHA_ERR_NULL);
    CHECK_RC(sha_digest_root(h, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_digest_summary(NULL, &out), SHA_ERR_NULL);
    CHECK_RC(sha_digest_summary(h, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_digest_compare(NULL, STR("x"), &out), SHA_ERR_NULL);
    CHECK_RC(sha_digest_compare(h, NULL, 4, &out), SHA_ERR_NULL);
    CHECK_RC(sha_digest_compare(h, STR("x"), NULL), SHA_ERR_NULL);
    CHECK_RC(sha_digest_diff(NULL, STR("x"), &out, &count), SHA_ERR_NULL);
    CHECK_RC(sha_digest_diff(h, NULL, 4, &out, &count), SHA_ERR_NULL);
    CHECK_RC(sha_digest_diff(h, STR("x"), NULL, &count), SHA_ERR_NULL);
    CHECK_RC(sha_digest_diff(h, STR("x"), &out, NULL), SHA_ERR_NULL);
    size_t frames = 0;
    CHECK_RC(sha_repair_frames(NULL, 1, STR("x"), &out, &frames), SHA_ERR_NULL);
    CHECK_RC(sha_repair_frames(h, 1, NULL, 4, &out, &frames), SHA_ERR_NULL);
    CHECK_RC(sha_repair_frames(h, 1, STR("x"), NULL, &frames), SHA_ERR_NULL);
    CHECK_RC(sha_repair_frames(h, 1, STR("x"), &out, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_snapshot(NULL, &out), SHA_ERR_NULL);
    CHECK_RC(sha_snapshot(h, NULL), SHA_ERR_NULL);
    CHECK_RC(sha_verify(NULL, &intact, &out), SHA_ERR_NULL);
    CHECK_RC(sha_verify(h, NULL, &out), SHA_ERR_NULL);
    CHECK_RC(sha_verify(h, &intact, NULL), SHA_ERR_NULL);
    CHECK(out.ptr == NULL);
    fixture_close(&f);
}

static void test_a_small_buffer_gets_the_needed_size_and_nothing_else(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    uint8_t buf[8] = {'#', '#', '#', '#', '#', '#', '#', '#'};
    size_t needed = 0;
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("user"), buf, 2, &needed),
             SHA_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 5);
    CHECK(buf[0] == '#' && buf[1] == '#');
    needed = 0;
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("user"), NULL, 0, &needed),
             SHA_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 5);
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("user"), buf, needed, &needed), SHA_OK);
    CHECK(memcmp(buf, "alice", 5) == 0 && buf[5] == '#');
    /* The message says how much was needed. */
    char msg[128];
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("user"), buf, 4, &needed),
             SHA_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(sha_last_error(msg, sizeof msg, &needed), SHA_OK);
    CHECK(strstr(msg, "needs 5 bytes") != NULL);
    fixture_close(&f);
}

static void test_a_small_buffer_for_the_last_error_gets_the_needed_size(void)
{
    CHECK_RC(sha_options_init(NULL), SHA_ERR_NULL);
    const char *want = "argument `opts` is null";
    char small[4] = {'#', '#', '#', '#'};
    size_t needed = 0;
    CHECK_RC(sha_last_error(small, sizeof small, &needed), SHA_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == strlen(want) + 1 && small[0] == '#');
    CHECK_RC(sha_last_error(NULL, 0, &needed), SHA_ERR_BUFFER_TOO_SMALL);
    char *exact = malloc(needed);
    CHECK_RC(sha_last_error(exact, needed, &needed), SHA_OK);
    CHECK(strcmp(exact, want) == 0);
    free(exact);
}

/* A real frame from a, and b before receiving anything. */
static void test_a_malformed_frame_is_refused_and_changes_nothing(void)
{
    fixture a, b;
    if (!fixture_open(&a, "us-east-1") || !fixture_open(&b, "us-west-2"))
        return;
    make_peers(a.store, "us-east-1", b.store, "us-west-2");
    uint64_t idb = 0;
    sha_id(b.store, &idb);
    CHECK_RC(sha_put(a.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    sha_buf frame = {0}, reply = {0}, status_before = {0}, status_after = {0};
    sha_digest before, after;
    CHECK_RC(sha_frame_for(a.store, idb, &frame), SHA_OK);
    CHECK(frame.len > 16);
    CHECK_RC(sha_digest_root(b.store, &before), SHA_OK);
    CHECK_RC(sha_replication_status(b.store, &status_before), SHA_OK);

    uint8_t *bad = malloc(frame.len);
    const uint8_t garbage[] = "definitely not a frame";
    CHECK_RC(sha_receive(b.store, garbage, sizeof garbage, &reply), SHA_ERR_BAD_FRAME);
    CHECK_RC(sha_receive(b.store, NULL, 0, &reply), SHA_ERR_BAD_FRAME);
    CHECK_RC(sha_receive(b.store, frame.ptr, frame.len / 2, &reply), SHA_ERR_BAD_FRAME);
    for (size_t i = 0; i < frame.len; i += 7) {
        memcpy(bad, frame.ptr, frame.len);
        bad[i] ^= 0x40;
        CHECK_RC(sha_receive(b.store, bad, frame.len, &reply), SHA_ERR_BAD_FRAME);
        CHECK(reply.ptr == NULL && reply.len == 0);
    }
    free(bad);

    CHECK_RC(sha_digest_root(b.store, &after), SHA_OK);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    uint8_t buf[8];
    size_t len = 0;
    CHECK_RC(sha_get_field(b.store, STR("s1"), STR("user"), buf, sizeof buf, &len),
             SHA_ERR_NOT_FOUND);
    CHECK_RC(sha_replication_status(b.store, &status_after), SHA_OK);
    /* Same status but for the clock reading and the refusal counts (every refusal counts). */
    const char *vb = strstr((const char *)status_before.ptr, "\"vv\"");
    const char *va = strstr((const char *)status_after.ptr, "\"vv\"");
    const char *tb = strstr((const char *)status_before.ptr, "\"trust\"");
    const char *ta = strstr((const char *)status_after.ptr, "\"trust\"");
    CHECK(vb != NULL && va != NULL && tb != NULL && ta != NULL && tb - vb == ta - va &&
          strncmp(vb, va, (size_t)(tb - vb)) == 0);
    const char *wb = strstr(tb, "\"wal\"");
    const char *wa = strstr(ta, "\"wal\"");
    CHECK(wb != NULL && wa != NULL && strcmp(wb, wa) == 0);
    CHECK(strstr(ta, "\"malformed\":0") == NULL);

    /* The store is not broken: the intact frame applies. */
    CHECK_RC(sha_receive(b.store, frame.ptr, frame.len, &reply), SHA_OK);
    CHECK(reply.len > 0);
    CHECK_RC(sha_get_field(b.store, STR("s1"), STR("user"), buf, sizeof buf, &len), SHA_OK);
    sha_buf_free(&frame);
    sha_buf_free(&reply);
    sha_buf_free(&status_before);
    sha_buf_free(&status_after);
    fixture_close(&a);
    fixture_close(&b);
}

static void test_a_malformed_digest_message_is_a_bad_frame(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_buf summary = {0}, out = {0};
    size_t count = 0;
    CHECK_RC(sha_digest_summary(f.store, &summary), SHA_OK);
    CHECK_RC(sha_digest_compare(f.store, summary.ptr, summary.len - 1, &out), SHA_ERR_BAD_FRAME);
    summary.ptr[0] ^= 1;
    CHECK_RC(sha_digest_compare(f.store, summary.ptr, summary.len, &out), SHA_ERR_BAD_FRAME);
    summary.ptr[0] ^= 1;
    /* A summary is not an entries or ids message. */
    CHECK_RC(sha_digest_diff(f.store, summary.ptr, summary.len, &out, &count), SHA_ERR_BAD_FRAME);
    size_t frames = 0;
    CHECK_RC(sha_repair_frames(f.store, 1, summary.ptr, summary.len, &out, &frames),
             SHA_ERR_BAD_FRAME);
    CHECK(out.ptr == NULL);
    sha_buf_free(&summary);
    fixture_close(&f);
}

static void test_a_second_open_of_a_directory_is_locked(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_options o = test_options("us-east-1");
    sha_store *second = NULL;
    CHECK_RC(sha_open(f.dir, &o, &second), SHA_ERR_LOCKED);
    CHECK(second == NULL);
    char msg[1024];
    size_t needed = 0;
    CHECK_RC(sha_last_error(msg, sizeof msg, &needed), SHA_OK);
    CHECK(strstr(msg, "locked") != NULL && strstr(msg, f.dir) != NULL);
    /* Once closed, the directory opens again. */
    CHECK_RC(sha_close(f.store), SHA_OK);
    f.store = NULL;
    CHECK_RC(sha_open(f.dir, &o, &second), SHA_OK);
    f.store = second;
    fixture_close(&f);
}

static void test_every_call_with_a_closed_handle_returns_closed(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_store *h = f.store;
    CHECK_RC(sha_put(h, STR("s1"), STR("k"), STR("v")), SHA_OK);
    CHECK_RC(sha_close(h), SHA_OK);
    f.store = NULL;
    uint8_t buf[8];
    size_t n = 0;
    int64_t v = 0;
    bool b = false;
    uint64_t id = 0;
    sha_digest root;
    sha_buf out = {0};
    CHECK_RC(sha_close(h), SHA_ERR_CLOSED);
    CHECK_RC(sha_put(h, STR("s1"), STR("k"), STR("v")), SHA_ERR_CLOSED);
    CHECK_RC(sha_get_field(h, STR("s1"), STR("k"), buf, sizeof buf, &n), SHA_ERR_CLOSED);
    CHECK_RC(sha_delete(h, STR("s1"), STR("k")), SHA_ERR_CLOSED);
    CHECK_RC(sha_end(h, STR("s1")), SHA_ERR_CLOSED);
    CHECK_RC(sha_touch(h, STR("s1"), 1000), SHA_ERR_CLOSED);
    CHECK_RC(sha_session_json(h, STR("s1"), &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_counter_add(h, STR("s1"), STR("c"), 1), SHA_ERR_CLOSED);
    CHECK_RC(sha_counter_get(h, STR("s1"), STR("c"), &v), SHA_ERR_CLOSED);
    CHECK_RC(sha_set_add(h, STR("s1"), STR("k"), STR("e")), SHA_ERR_CLOSED);
    CHECK_RC(sha_set_remove(h, STR("s1"), STR("k"), STR("e")), SHA_ERR_CLOSED);
    CHECK_RC(sha_set_contains(h, STR("s1"), STR("k"), STR("e"), &b), SHA_ERR_CLOSED);
    CHECK_RC(sha_id(h, &id), SHA_ERR_CLOSED);
    CHECK_RC(sha_add_peer(h, 1, "r"), SHA_ERR_CLOSED);
    CHECK_RC(sha_frame_for(h, 1, &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_receive(h, STR("x"), &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_tick(h), SHA_ERR_CLOSED);
    CHECK_RC(sha_replication_status(h, &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_digest_root(h, &root), SHA_ERR_CLOSED);
    CHECK_RC(sha_digest_summary(h, &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_digest_compare(h, STR("x"), &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_digest_diff(h, STR("x"), &out, &n), SHA_ERR_CLOSED);
    size_t frames = 0;
    CHECK_RC(sha_repair_frames(h, 1, STR("x"), &out, &frames), SHA_ERR_CLOSED);
    CHECK_RC(sha_snapshot(h, &out), SHA_ERR_CLOSED);
    CHECK_RC(sha_verify(h, &b, &out), SHA_ERR_CLOSED);
    CHECK(out.ptr == NULL);
    /* A new store never gets the old handle back. */
    sha_options o = test_options("us-east-1");
    sha_store *again = NULL;
    CHECK_RC(sha_open(f.dir, &o, &again), SHA_OK);
    CHECK(again != h);
    CHECK_RC(sha_put(h, STR("s1"), STR("k"), STR("v")), SHA_ERR_CLOSED);
    f.store = again;
    fixture_close(&f);
}

static void test_a_handle_never_opened_is_invalid(void)
{
    int not_a_store = 0;
    sha_store *fake = (sha_store *)&not_a_store;
    uint64_t id = 0;
    CHECK_RC(sha_id(fake, &id), SHA_ERR_INVALID_HANDLE);
    CHECK_RC(sha_put(fake, STR("s"), STR("k"), STR("v")), SHA_ERR_INVALID_HANDLE);
    CHECK_RC(sha_close(fake), SHA_ERR_INVALID_HANDLE);
    CHECK(not_a_store == 0);
}

static void test_freeing_a_buffer_twice_or_a_foreign_one_is_refused(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_buf json = {0};
    CHECK_RC(sha_replication_status(f.store, &json), SHA_OK);
    sha_buf copy = json;
    CHECK_RC(sha_buf_free(&json), SHA_OK);
    CHECK(json.ptr == NULL && json.len == 0);
    CHECK_RC(sha_buf_free(&json), SHA_OK); /* emptied: harmless */
    CHECK_RC(sha_buf_free(&copy), SHA_ERR_INVALID_ARGUMENT);
    uint8_t mine[4];
    sha_buf foreign = {mine, sizeof mine};
    CHECK_RC(sha_buf_free(&foreign), SHA_ERR_INVALID_ARGUMENT);
    fixture_close(&f);
}

static void test_bad_options_are_invalid_arguments(void)
{
    char dir[512];
    CHECK(tmpdir_make(dir, sizeof dir) == 0);
    sha_store *s = NULL;
    sha_options o = test_options("us-east-1");
    o.size = 8;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    o = test_options("us-east-1");
    o.fsync = 7;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    o = test_options("us-east-1");
    o.fsync = SHA_FSYNC_EVERY_MS;
    o.fsync_every_ms = 0;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    o = test_options("us-east-1");
    o.recovery = 9;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    o = test_options("");
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    o = test_options("\xff\xfe");
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    o = test_options("us-east-1");
    o.segment_size = 1;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    /* A directory holds one region. */
    o = test_options("us-east-1");
    REQUIRE_RC(sha_open(dir, &o, &s), SHA_OK);
    CHECK_RC(sha_close(s), SHA_OK);
    o = test_options("eu-west-1");
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK(tmpdir_remove(dir) == 0);
}

static void test_invalid_writes_name_their_reason(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    size_t big = 256 * 1024 + 1;
    uint8_t *value = calloc(big, 1);
    char long_id[300];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CHECK_RC(sha_put(f.store, STR("s"), STR("k"), value, big), SHA_ERR_TOO_LARGE);
    CHECK_RC(sha_put(f.store, STR(long_id), STR("k"), STR("v")), SHA_ERR_INVALID_SESSION_ID);
    CHECK_RC(sha_put(f.store, STR("s"), STR(long_id), STR("v")), SHA_ERR_INVALID_KEY);
    CHECK_RC(sha_set_add(f.store, STR("s"), STR(""), STR("e")), SHA_ERR_INVALID_KEY);
    sha_buf frame = {0};
    CHECK_RC(sha_frame_for(f.store, 42, &frame), SHA_ERR_UNKNOWN_PEER);
    CHECK(frame.ptr == NULL);
    free(value);
    fixture_close(&f);
}

int main(void)
{
    RUN(test_null_arguments_of_the_library_calls);
    RUN(test_null_arguments_of_open);
    RUN(test_null_arguments_of_session_calls);
    RUN(test_null_with_length_zero_is_the_empty_string);
    RUN(test_null_arguments_of_replication_calls);
    RUN(test_null_arguments_of_digest_and_durability_calls);
    RUN(test_a_small_buffer_gets_the_needed_size_and_nothing_else);
    RUN(test_a_small_buffer_for_the_last_error_gets_the_needed_size);
    RUN(test_a_malformed_frame_is_refused_and_changes_nothing);
    RUN(test_a_malformed_digest_message_is_a_bad_frame);
    RUN(test_a_second_open_of_a_directory_is_locked);
    RUN(test_every_call_with_a_closed_handle_returns_closed);
    RUN(test_a_handle_never_opened_is_invalid);
    RUN(test_freeing_a_buffer_twice_or_a_foreign_one_is_refused);
    RUN(test_bad_options_are_invalid_arguments);
    RUN(test_invalid_writes_name_their_reason);
    return check_summary();
}
