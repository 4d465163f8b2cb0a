/* test_api.c - what each call does when used as documented. */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_version_matches_the_header(void)
{
    CHECK(strcmp(sha_version(), SHA_VERSION) == 0);
}

static void test_status_names_name_the_codes(void)
{
    CHECK(strcmp(sha_status_name(SHA_OK), "SHA_OK") == 0);
    CHECK(strcmp(sha_status_name(SHA_ERR_LOCKED), "SHA_ERR_LOCKED") == 0);
    CHECK(strcmp(sha_status_name(SHA_ERR_BAD_FRAME), "SHA_ERR_BAD_FRAME") == 0);
    CHECK(strcmp(sha_status_name(-1), "SHA_ERR_UNKNOWN") == 0);
    CHECK(strcmp(sha_status_name(1000), "SHA_ERR_UNKNOWN") == 0);
}

static void test_options_init_fills_the_defaults(void)
{
    sha_options o;
    memset(&o, 0xab, sizeof o);
    CHECK_RC(sha_options_init(&o), SHA_OK);
    CHECK(o.size == sizeof(sha_options));
    CHECK(o.fsync == SHA_FSYNC_EVERY_MS && o.fsync_every_ms == 10);
    CHECK(o.recovery == SHA_RECOVERY_STRICT);
    CHECK(o.region == NULL);
    CHECK(o.snapshot_interval_ms == 60000 && o.tick_interval_ms == 200);
    CHECK(o.segment_size == 64u << 20);
}

static void test_open_with_the_default_options_runs_and_closes(void)
{
    char dir[512];
    CHECK(tmpdir_make(dir, sizeof dir) == 0);
    sha_options o;
    sha_options_init(&o);
    o.region = "eu-west-1";
    sha_store *s = NULL;
    REQUIRE_RC(sha_open(dir, &o, &s), SHA_OK);
    CHECK(s != NULL);
    CHECK_RC(sha_put(s, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_close(s), SHA_OK);
    CHECK(tmpdir_remove(dir) == 0);
}

static void test_put_and_get_keep_binary_values_exactly(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    const uint8_t value[] = {0, 1, 2, 0xff, 0, 'x'};
    const uint8_t key[] = {'k', 0, 'k'};
    CHECK_RC(sha_put(f.store, STR("s1"), key, sizeof key, value, sizeof value), SHA_OK);
    uint8_t buf[16];
    size_t len = 0;
    CHECK_RC(sha_get_field(f.store, STR("s1"), key, sizeof key, buf, sizeof buf, &len), SHA_OK);
    CHECK(len == sizeof value && memcmp(buf, value, len) == 0);
    /* An empty value is a value, and NULL with length 0 is the empty string. */
    CHECK_RC(sha_put(f.store, STR("s1"), STR("empty"), NULL, 0), SHA_OK);
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("empty"), NULL, 0, &len), SHA_OK);
    CHECK(len == 0);
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("nope"), buf, sizeof buf, &len),
             SHA_ERR_NOT_FOUND);
    CHECK_RC(sha_get_field(f.store, STR("s2"), STR("user"), buf, sizeof buf, &len),
             SHA_ERR_NOT_FOUND);
    fixture_close(&f);
}

static void test_delete_removes_one_field(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    uint8_t buf[16];
    size_t len = 0;
    CHECK_RC(sha_put(f.store, STR("s1"), STR("a"), STR("1")), SHA_OK);
    CHECK_RC(sha_put(f.store, STR("s1"), STR("b"), STR("2")), SHA_OK);
    CHECK_RC(sha_delete(f.store, STR("s1"), STR("a")), SHA_OK);
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("a"), buf, sizeof buf, &len),
             SHA_ERR_NOT_FOUND);
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("b"), buf, sizeof buf, &len), SHA_OK);
    fixture_close(&f);
}

static void test_an_ended_session_never_comes_back(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_buf json = {0};
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_end(f.store, STR("s1")), SHA_OK);
    CHECK_RC(sha_session_json(f.store, STR("s1"), &json), SHA_ERR_NOT_FOUND);
    CHECK(json.ptr == NULL && json.len == 0);
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("bob")), SHA_ERR_ENDED);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("n"), 1), SHA_ERR_ENDED);
    fixture_close(&f);
}

static void test_touch_sets_an_expiry(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_buf json = {0};
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_session_json(f.store, STR("s1"), &json), SHA_OK);
    CHECK(buf_contains(&json, "\"expires_at_ms\":null"));
    CHECK_RC(sha_buf_free(&json), SHA_OK);
    CHECK_RC(sha_touch(f.store, STR("s1"), 60000), SHA_OK);
    CHECK_RC(sha_session_json(f.store, STR("s1"), &json), SHA_OK);
    CHECK(buf_contains(&json, "\"expires_at_ms\":1") && !buf_contains(&json, "null"));
    CHECK_RC(sha_buf_free(&json), SHA_OK);
    CHECK_RC(sha_touch(f.store, STR("s1"), 0), SHA_ERR_INVALID_TTL);
    fixture_close(&f);
}

static void test_counters_add_up_both_ways(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    int64_t v = 0;
    CHECK_RC(sha_counter_get(f.store, STR("s1"), STR("hits"), &v), SHA_ERR_NOT_FOUND);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("hits"), 5), SHA_OK);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("hits"), -7), SHA_OK);
    CHECK_RC(sha_counter_get(f.store, STR("s1"), STR("hits"), &v), SHA_OK);
    CHECK(v == -2);
    CHECK_RC(sha_counter_get(f.store, STR("s1"), STR("other"), &v), SHA_ERR_NOT_FOUND);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("big"), INT64_MAX), SHA_OK);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("big"), 1), SHA_ERR_COUNTER_OVERFLOW);
    CHECK_RC(sha_counter_get(f.store, STR("s1"), STR("big"), &v), SHA_OK);
    CHECK(v == INT64_MAX);
    fixture_close(&f);
}

static void test_sets_add_remove_and_answer_contains(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    bool in = true;
    CHECK_RC(sha_set_contains(f.store, STR("s1"), STR("roles"), STR("admin"), &in), SHA_OK);
    CHECK(!in);
    CHECK_RC(sha_set_add(f.store, STR("s1"), STR("roles"), STR("admin")), SHA_OK);
    CHECK_RC(sha_set_add(f.store, STR("s1"), STR("roles"), STR("dev")), SHA_OK);
    CHECK_RC(sha_set_contains(f.store, STR("s1"), STR("roles"), STR("admin"), &in), SHA_OK);
    CHECK(in);
    CHECK_RC(sha_set_remove(f.store, STR("s1"), STR("roles"), STR("admin")), SHA_OK);
    CHECK_RC(sha_set_contains(f.store, STR("s1"), STR("roles"), STR("admin"), &in), SHA_OK);
    CHECK(!in);
    CHECK_RC(sha_set_contains(f.store, STR("s1"), STR("roles"), STR("dev"), &in), SHA_OK);
    CHECK(in);
    fixture_close(&f);
}

static void test_session_json_is_the_whole_view_in_base64(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("n"), 3), SHA_OK);
    CHECK_RC(sha_set_add(f.store, STR("s1"), STR("tags"), STR("a\"b")), SHA_OK);
    sha_buf json = {0};
    CHECK_RC(sha_session_json(f.store, STR("s1"), &json), SHA_OK);
    const char *want = "{\"fields\":{\"dXNlcg==\":\"YWxpY2U=\"},\"counters\":{\"bg==\":3},"
                       "\"sets\":{\"dGFncw==\":[\"YSJi\"]},\"expires_at_ms\":null}";
    CHECK(json.ptr != NULL && strcmp((const char *)json.ptr, want) == 0);
    CHECK(json.len == strlen(want));
    CHECK_RC(sha_buf_free(&json), SHA_OK);
    fixture_close(&f);
}

static void test_writes_survive_a_reopen(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    uint64_t id_before = 0, id_after = 0;
    CHECK_RC(sha_id(f.store, &id_before), SHA_OK);
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_counter_add(f.store, STR("s1"), STR("n"), 9), SHA_OK);
    CHECK_RC(sha_close(f.store), SHA_OK);
    sha_options o = test_options("us-east-1");
    f.store = NULL;
    REQUIRE_RC(sha_open(f.dir, &o, &f.store), SHA_OK);
    char buf[16];
    size_t len = 0;
    int64_t n = 0;
    CHECK_RC(sha_get_field(f.store, STR("s1"), STR("user"), (uint8_t *)buf, sizeof buf, &len),
             SHA_OK);
    CHECK(len == 5 && memcmp(buf, "alice", 5) == 0);
    CHECK_RC(sha_counter_get(f.store, STR("s1"), STR("n"), &n), SHA_OK);
    CHECK(n == 9);
    CHECK_RC(sha_id(f.store, &id_after), SHA_OK);
    CHECK(id_before == id_after && id_before != 0);
    fixture_close(&f);
}

static void test_snapshot_then_verify_finds_everything_intact(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    sha_buf report = {0};
    bool intact = false;
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_snapshot(f.store, &report), SHA_OK);
    CHECK(buf_contains(&report, "\"generation\":") && buf_contains(&report, "\"sessions\":1"));
    CHECK_RC(sha_buf_free(&report), SHA_OK);
    CHECK_RC(sha_put(f.store, STR("s2"), STR("user"), STR("bob")), SHA_OK);
    CHECK_RC(sha_verify(f.store, &intact, &report), SHA_OK);
    CHECK(intact);
    CHECK(buf_contains(&report, "{\"intact\":true,") && buf_contains(&report, "\"problems\":[]"));
    CHECK_RC(sha_buf_free(&report), SHA_OK);
    fixture_close(&f);
}

static void test_status_json_describes_the_store(void)
{
    fixture f;
    if (!fixture_open(&f, "ap-south-1"))
        return;
    sha_buf json = {0};
    CHECK_RC(sha_put(f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_add_peer(f.store, 0x1234, "eu-central-1"), SHA_OK);
    CHECK_RC(sha_replication_status(f.store, &json), SHA_OK);
    CHECK(json.len == strlen((const char *)json.ptr));
    CHECK(buf_contains(&json, "\"name\":\"ap-south-1\""));
    CHECK(buf_contains(&json, "\"live_sessions\":1"));
    CHECK(buf_contains(&json, "\"id\":\"0000000000001234\",\"name\":\"eu-central-1\""));
    CHECK(buf_contains(&json, "\"pending_ops\":1"));
    CHECK(buf_contains(&json, "\"wal\":{\"last_seq\":"));
    CHECK(buf_contains(&json, "\"failure\":null"));
    CHECK(buf_contains(&json, "\"expired_total\":0,"));
    CHECK_RC(sha_buf_free(&json), SHA_OK);
    fixture_close(&f);
}

int main(void)
{
    RUN(test_version_matches_the_header);
    RUN(test_status_names_name_the_codes);
    RUN(test_options_init_fills_the_defaults);
    RUN(test_open_with_the_default_options_runs_and_closes);
    RUN(test_put_and_get_keep_binary_values_exactly);
    RUN(test_delete_removes_one_field);
    RUN(test_an_ended_session_never_comes_back);
    RUN(test_touch_sets_an_expiry);
    RUN(test_counters_add_up_both_ways);
    RUN(test_sets_add_remove_and_answer_contains);
    RUN(test_session_json_is_the_whole_view_in_base64);
    RUN(test_writes_survive_a_reopen);
    RUN(test_snapshot_then_verify_finds_everything_intact);
    RUN(test_status_json_describes_the_store);
    return check_summary();
}
