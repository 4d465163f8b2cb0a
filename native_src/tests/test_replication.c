/* test_replication.c - two stores in one process replicating by passing frames and acks,
 * and finding and repairing differences by digest. */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <string.h>

#include "check.h"

typedef struct pair {
    fixture a, b;
    uint64_t ida, idb;
} pair;

static int pair_open(pair *p, int peers)
{
    if (!fixture_open(&p->a, "us-east-1") || !fixture_open(&p->b, "us-west-2"))
        return 0;
    if (peers && !make_peers(p->a.store, "us-east-1", p->b.store, "us-west-2"))
        return 0;
    return CHECK_RC(sha_id(p->a.store, &p->ida), SHA_OK) &&
           CHECK_RC(sha_id(p->b.store, &p->idb), SHA_OK);
}

static void pair_close(pair *p)
{
    fixture_close(&p->a);
    fixture_close(&p->b);
}

static int roots_equal(sha_store *a, sha_store *b)
{
    sha_digest ra, rb;
    return CHECK_RC(sha_digest_root(a, &ra), SHA_OK) && CHECK_RC(sha_digest_root(b, &rb), SHA_OK) &&
           memcmp(&ra, &rb, sizeof ra) == 0;
}

static void test_frames_and_acks_make_two_stores_converge(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    CHECK_RC(sha_put(p.a.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_counter_add(p.a.store, STR("s1"), STR("hits"), 2), SHA_OK);
    CHECK_RC(sha_counter_add(p.b.store, STR("s1"), STR("hits"), 3), SHA_OK);
    CHECK_RC(sha_set_add(p.b.store, STR("s1"), STR("roles"), STR("admin")), SHA_OK);
    CHECK(!roots_equal(p.a.store, p.b.store));
    CHECK(ship(p.a.store, p.b.store, p.idb) >= 1);
    CHECK(ship(p.b.store, p.a.store, p.ida) >= 1);
    CHECK(roots_equal(p.a.store, p.b.store));
    int64_t hits = 0;
    CHECK_RC(sha_counter_get(p.a.store, STR("s1"), STR("hits"), &hits), SHA_OK);
    CHECK(hits == 5);
    CHECK_RC(sha_counter_get(p.b.store, STR("s1"), STR("hits"), &hits), SHA_OK);
    CHECK(hits == 5);
    bool admin = false;
    CHECK_RC(sha_set_contains(p.a.store, STR("s1"), STR("roles"), STR("admin"), &admin), SHA_OK);
    CHECK(admin);
    sha_buf ja = {0}, jb = {0};
    CHECK_RC(sha_session_json(p.a.store, STR("s1"), &ja), SHA_OK);
    CHECK_RC(sha_session_json(p.b.store, STR("s1"), &jb), SHA_OK);
    CHECK(ja.ptr && jb.ptr && strcmp((char *)ja.ptr, (char *)jb.ptr) == 0);
    sha_buf_free(&ja);
    sha_buf_free(&jb);
    pair_close(&p);
}

static void test_acks_leave_nothing_pending_and_nothing_to_send(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    sha_buf frame = {0}, status = {0};
    CHECK_RC(sha_frame_for(p.a.store, p.idb, &frame), SHA_OK);
    CHECK(frame.ptr == NULL && frame.len == 0);
    CHECK_RC(sha_put(p.a.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_replication_status(p.a.store, &status), SHA_OK);
    CHECK(buf_contains(&status, "\"pending_ops\":1,"));
    sha_buf_free(&status);
    CHECK(ship(p.a.store, p.b.store, p.idb) == 1);
    CHECK_RC(sha_replication_status(p.a.store, &status), SHA_OK);
    CHECK(buf_contains(&status, "\"pending_ops\":0,"));
    CHECK(buf_contains(&status, "\"in_flight\":0,"));
    sha_buf_free(&status);
    CHECK_RC(sha_frame_for(p.a.store, p.idb, &frame), SHA_OK);
    CHECK(frame.len == 0);
    pair_close(&p);
}

static void test_a_frame_delivered_twice_is_refused_the_second_time(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    CHECK_RC(sha_counter_add(p.a.store, STR("s1"), STR("n"), 1), SHA_OK);
    sha_buf frame = {0}, ack1 = {0}, ack2 = {0};
    CHECK_RC(sha_frame_for(p.a.store, p.idb, &frame), SHA_OK);
    CHECK_RC(sha_receive(p.b.store, frame.ptr, frame.len, &ack1), SHA_OK);
    CHECK_RC(sha_receive(p.b.store, frame.ptr, frame.len, &ack2), SHA_ERR_REPLAYED_FRAME);
    CHECK(ack2.len == 0);
    int64_t n = 0;
    CHECK_RC(sha_counter_get(p.b.store, STR("s1"), STR("n"), &n), SHA_OK);
    CHECK(n == 1);
    sha_buf none = {0};
    CHECK_RC(sha_receive(p.a.store, ack1.ptr, ack1.len, &none), SHA_OK);
    /* An ack delivered twice is harmless (it claims nothing new). */
    CHECK_RC(sha_receive(p.a.store, ack1.ptr, ack1.len, &none), SHA_OK);
    CHECK(none.len == 0);
    CHECK(roots_equal(p.a.store, p.b.store));
    sha_buf_free(&frame);
    sha_buf_free(&ack1);
    sha_buf_free(&ack2);
    pair_close(&p);
}

static void test_a_store_refuses_its_own_frame(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    CHECK_RC(sha_put(p.a.store, STR("s1"), STR("k"), STR("v")), SHA_OK);
    sha_buf frame = {0}, reply = {0};
    CHECK_RC(sha_frame_for(p.a.store, p.idb, &frame), SHA_OK);
    CHECK_RC(sha_receive(p.a.store, frame.ptr, frame.len, &reply), SHA_ERR_OWN_FRAME);
    CHECK(reply.ptr == NULL);
    sha_buf_free(&frame);
    pair_close(&p);
}

/* Runs the digest comparison between a and b; returns the number of differing sessions and
 * leaves their ids (from a's side) in *ids. */
static size_t digest_diff(sha_store *a, sha_store *b, sha_buf *ids)
{
    sha_buf summary = {0}, entries = {0};
    size_t count = (size_t)-1;
    CHECK_RC(sha_digest_summary(a, &summary), SHA_OK);
    CHECK_RC(sha_digest_compare(b, summary.ptr, summary.len, &entries), SHA_OK);
    CHECK_RC(sha_digest_diff(a, entries.ptr, entries.len, ids, &count), SHA_OK);
    sha_buf_free(&summary);
    sha_buf_free(&entries);
    return count;
}

/* Whether the ids message holds the id (a u16 length followed by its bytes). */
static int ids_hold(const sha_buf *ids, const char *id)
{
    size_t n = strlen(id);
    for (size_t i = 0; i + 2 + n <= ids->len; i++) {
        if (ids->ptr[i] == (uint8_t)n && ids->ptr[i + 1] == 0 && memcmp(ids->ptr + i + 2, id, n) == 0)
            return 1;
    }
    return 0;
}

static void test_digest_diff_names_exactly_the_differing_sessions(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    sha_buf ids = {0};
    CHECK(digest_diff(p.a.store, p.b.store, &ids) == 0);
    sha_buf_free(&ids);
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        CHECK_RC(sha_put(p.a.store, STR(id), STR("k"), STR("v")), SHA_OK);
    }
    ship(p.a.store, p.b.store, p.idb);
    CHECK(digest_diff(p.a.store, p.b.store, &ids) == 0);
    sha_buf_free(&ids);
    /* Changes that were not shipped: one session on each side. */
    CHECK_RC(sha_put(p.a.store, STR("s3"), STR("k"), STR("changed")), SHA_OK);
    CHECK_RC(sha_put(p.b.store, STR("only-b"), STR("k"), STR("v")), SHA_OK);
    CHECK(digest_diff(p.a.store, p.b.store, &ids) == 2);
    CHECK(ids_hold(&ids, "only-b") && ids_hold(&ids, "s3") && !ids_hold(&ids, "s4"));
    sha_buf_free(&ids);
    CHECK(digest_diff(p.b.store, p.a.store, &ids) == 2);
    sha_buf_free(&ids);
    pair_close(&p);
}

/* Applies every frame of a frame list to store; returns how many were accepted. */
static size_t receive_all(sha_store *store, const sha_buf *list)
{
    const uint8_t *cursor = list->ptr, *frame = NULL;
    size_t left = list->len, len = 0, n = 0;
    while (sha_next_frame(&cursor, &left, &frame, &len) == SHA_OK) {
        sha_buf ack = {0};
        if (sha_receive(store, frame, len, &ack) == SHA_OK)
            n++;
        sha_buf_free(&ack);
    }
    CHECK(left == 0);
    return n;
}

static void test_repair_frames_make_differing_stores_equal(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    /* Written on each side and never shipped: only a repair can reconcile them. */
    CHECK_RC(sha_put(p.a.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
    CHECK_RC(sha_put(p.b.store, STR("s2"), STR("user"), STR("bob")), SHA_OK);
    sha_buf ids = {0}, to_b = {0}, to_a = {0};
    CHECK(digest_diff(p.a.store, p.b.store, &ids) == 2);
    size_t nb = 0, na = 0;
    CHECK_RC(sha_repair_frames(p.a.store, p.idb, ids.ptr, ids.len, &to_b, &nb), SHA_OK);
    CHECK_RC(sha_repair_frames(p.b.store, p.ida, ids.ptr, ids.len, &to_a, &na), SHA_OK);
    CHECK(nb == 1 && na == 1);
    CHECK(receive_all(p.b.store, &to_b) == nb);
    CHECK(receive_all(p.a.store, &to_a) == na);
    CHECK(roots_equal(p.a.store, p.b.store));
    sha_buf_free(&ids);
    CHECK(digest_diff(p.a.store, p.b.store, &ids) == 0);
    uint8_t buf[8];
    size_t len = 0;
    CHECK_RC(sha_get_field(p.a.store, STR("s2"), STR("user"), buf, sizeof buf, &len), SHA_OK);
    CHECK(len == 3 && memcmp(buf, "bob", 3) == 0);
    sha_buf_free(&ids);
    sha_buf_free(&to_a);
    sha_buf_free(&to_b);
    pair_close(&p);
}

static void test_replicated_stores_verify_intact_after_a_snapshot(void)
{
    pair p;
    if (!pair_open(&p, 1))
        return;
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "session-%d", i);
        CHECK_RC(sha_put(p.a.store, STR(id), STR("user"), STR(id)), SHA_OK);
        CHECK_RC(sha_counter_add(p.b.store, STR(id), STR("n"), i), SHA_OK);
    }
    ship(p.a.store, p.b.store, p.idb);
    ship(p.b.store, p.a.store, p.ida);
    CHECK(roots_equal(p.a.store, p.b.store));
    sha_buf report = {0};
    bool intact = false;
    CHECK_RC(sha_snapshot(p.b.store, &report), SHA_OK);
    sha_buf_free(&report);
    CHECK_RC(sha_verify(p.a.store, &intact, &report), SHA_OK);
    CHECK(intact);
    sha_buf_free(&report);
    CHECK_RC(sha_verify(p.b.store, &intact, &report), SHA_OK);
    CHECK(intact);
    sha_buf_free(&report);
    pair_close(&p);
}

int main(void)
{
    RUN(test_frames_and_acks_make_two_stores_converge);
    RUN(test_acks_leave_nothing_pending_and_nothing_to_send);
    RUN(test_a_frame_delivered_twice_is_refused_the_second_time);
    RUN(test_a_store_refuses_its_own_frame);
    RUN(test_digest_diff_names_exactly_the_differing_sessions);
    RUN(test_repair_frames_make_differing_stores_equal);
    RUN(test_replicated_stores_verify_intact_after_a_snapshot);
    return check_summary();
}
