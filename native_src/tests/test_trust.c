/* test_trust.c - the trust boundary from C: stores opened with an auth_key_file meet by
 * hello, replicate, refuse a stranger's and a forged message (counting them), rotate keys,
 * and retire a replica for good. */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

typedef struct node {
    fixture f;
    char key_file[600];
    uint64_t id;
} node;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 0;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* A store of region whose frame keys come from a file holding secret. */
static int node_open(node *n, const char *region, const char *secret)
{
    n->f.store = NULL;
    if (tmpdir_make(n->f.dir, sizeof n->f.dir) != 0)
        return 0;
    snprintf(n->key_file, sizeof n->key_file, "%s.auth", n->f.dir);
    CHECK(write_file(n->key_file, secret));
    sha_options o = test_options(region);
    o.auth_key_file = n->key_file;
    return CHECK_RC(sha_open(n->f.dir, &o, &n->f.store), SHA_OK) &&
           CHECK_RC(sha_id(n->f.store, &n->id), SHA_OK);
}

static void node_close(node *n)
{
    fixture_close(&n->f);
    remove(n->key_file);
}

/* from says hello to to, which opens it and makes from a peer. */
static int meet(node *from, node *to, const char *region)
{
    sha_buf hello = {0}, info = {0};
    int ok = CHECK_RC(sha_hello(from->f.store, "from@host", &hello), SHA_OK) &&
             CHECK_RC(sha_open_hello(to->f.store, hello.ptr, hello.len, &info), SHA_OK);
    CHECK(buf_contains(&info, "\"node\":\"from@host\""));
    ok = ok && CHECK_RC(sha_add_peer(to->f.store, from->id, region), SHA_OK);
    sha_buf_free(&hello);
    sha_buf_free(&info);
    return ok;
}

static void test_stores_with_one_key_file_meet_and_replicate(void)
{
    node a, b;
    if (!node_open(&a, "us-east-1", "a shared cluster secret\n") ||
        !node_open(&b, "us-west-2", "a shared cluster secret\n"))
        return;
    if (meet(&a, &b, "us-east-1") && meet(&b, &a, "us-west-2")) {
        CHECK_RC(sha_put(a.f.store, STR("s1"), STR("user"), STR("alice")), SHA_OK);
        CHECK(ship(a.f.store, b.f.store, b.id) >= 1);
        uint8_t v[8];
        size_t len = 0;
        CHECK_RC(sha_get_field(b.f.store, STR("s1"), STR("user"), v, sizeof v, &len), SHA_OK);
        CHECK(len == 5 && memcmp(v, "alice", 5) == 0);
        sha_buf st = {0};
        CHECK_RC(sha_replication_status(b.f.store, &st), SHA_OK);
        CHECK(buf_contains(&st, "\"authenticated\":true"));
        sha_buf_free(&st);
    }
    node_close(&a);
    node_close(&b);
}

static void test_a_stranger_and_a_forged_frame_are_refused_and_counted(void)
{
    node a, b, m;
    if (!node_open(&a, "us-east-1", "a shared cluster secret\n") ||
        !node_open(&b, "us-west-2", "a shared cluster secret\n") ||
        !node_open(&m, "mallory", "some other secret here\n"))
        return;
    if (meet(&a, &b, "us-east-1") && meet(&b, &a, "us-west-2")) {
        /* A hello under another key is refused. */
        sha_buf hello = {0}, info = {0};
        CHECK_RC(sha_hello(m.f.store, "m@host", &hello), SHA_OK);
        CHECK_RC(sha_open_hello(b.f.store, hello.ptr, hello.len, &info), SHA_ERR_UNAUTHENTICATED);
        sha_buf_free(&hello);
        /* A frame with one bit of its tag flipped is refused, and b is unchanged. */
        CHECK_RC(sha_put(a.f.store, STR("s1"), STR("k"), STR("v")), SHA_OK);
        sha_buf frame = {0}, ack = {0}, none = {0};
        CHECK_RC(sha_frame_for(a.f.store, b.id, &frame), SHA_OK);
        if (frame.len > 0) {
            frame.ptr[frame.len - 1] ^= 1;
            CHECK(sha_receive(b.f.store, frame.ptr, frame.len, &ack) != SHA_OK);
            frame.ptr[frame.len - 1] ^= 1;
            size_t len = 0;
            CHECK_RC(sha_get_field(b.f.store, STR("s1"), STR("k"), NULL, 0, &len),
                     SHA_ERR_NOT_FOUND);
            /* The genuine frame applies; the same bytes again are a replay. */
            CHECK_RC(sha_receive(b.f.store, frame.ptr, frame.len, &ack), SHA_OK);
            CHECK_RC(sha_receive(a.f.store, ack.ptr, ack.len, &none), SHA_OK);
            sha_buf again = {0};
            CHECK_RC(sha_receive(b.f.store, frame.ptr, frame.len, &again), SHA_ERR_REPLAYED_FRAME);
        }
        sha_buf_free(&frame);
        sha_buf_free(&ack);
        sha_buf st = {0};
        CHECK_RC(sha_replication_status(b.f.store, &st), SHA_OK);
        CHECK(buf_contains(&st, "\"replayed\":1"));
        CHECK(buf_contains(&st, "\"unauthenticated\":1"));
        sha_buf_free(&st);
    }
    node_close(&a);
    node_close(&b);
    node_close(&m);
}

static void test_a_rotation_and_a_retirement(void)
{
    node a, b;
    if (!node_open(&a, "us-east-1", "the old cluster secret\n") ||
        !node_open(&b, "us-west-2", "the old cluster secret\n"))
        return;
    if (meet(&a, &b, "us-east-1") && meet(&b, &a, "us-west-2")) {
        /* b accepts the new key beside the old; a signs with the new one. */
        CHECK(write_file(b.key_file, "the old cluster secret\nthe new cluster secret\n"));
        CHECK_RC(sha_set_auth_key_file(b.f.store, b.key_file), SHA_OK);
        CHECK(write_file(a.key_file, "the new cluster secret\nthe old cluster secret\n"));
        CHECK_RC(sha_set_auth_key_file(a.f.store, a.key_file), SHA_OK);
        CHECK_RC(sha_put(a.f.store, STR("s2"), STR("k"), STR("v")), SHA_OK);
        CHECK(ship(a.f.store, b.f.store, b.id) >= 1);
        /* A file that cannot be used changes nothing. */
        CHECK(write_file(a.key_file, "short\n"));
        CHECK_RC(sha_set_auth_key_file(a.f.store, a.key_file), SHA_ERR_AUTH_KEY);
        CHECK_RC(sha_put(a.f.store, STR("s3"), STR("k"), STR("v")), SHA_OK);
        CHECK(ship(a.f.store, b.f.store, b.id) >= 1);
        /* b retires a: a's frames are refused from then on. */
        CHECK_RC(sha_retire_replica(b.f.store, a.id), SHA_OK);
        CHECK_RC(sha_put(a.f.store, STR("s4"), STR("k"), STR("v")), SHA_OK);
        sha_buf frame = {0}, ack = {0};
        CHECK_RC(sha_frame_for(a.f.store, b.id, &frame), SHA_OK);
        CHECK_RC(sha_receive(b.f.store, frame.ptr, frame.len, &ack), SHA_ERR_REMOVED_REPLICA);
        sha_buf_free(&frame);
        sha_buf st = {0};
        CHECK_RC(sha_replication_status(b.f.store, &st), SHA_OK);
        CHECK(buf_contains(&st, "\"retired\":[{"));
        sha_buf_free(&st);
    }
    node_close(&a);
    node_close(&b);
}

int main(void)
{
    RUN(test_stores_with_one_key_file_meet_and_replicate);
    RUN(test_a_stranger_and_a_forged_frame_are_refused_and_counted);
    RUN(test_a_rotation_and_a_retirement);
    return check_summary();
}
