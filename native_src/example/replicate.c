/*
 * replicate.c - two session-ha stores in one process, each in its own temporary directory,
 * replicating to each other by passing frames and acks as plain bytes (the transport between
 * real regions is yours: a socket, a queue, ...). Then it checks that they are consistent:
 * equal digest roots, and every checksum on disk verifies.
 *
 *   cc -std=c11 -Inative_src/include native_src/example/replicate.c \
 *      -Ltarget/debug -lsession_ha_ffi -Wl,-rpath,$PWD/target/debug -o replicate
 *   ./replicate
 */
#define _XOPEN_SOURCE 700
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "session_ha.h"
#include "../support/tmpdir.h"

#define STR(s) (const uint8_t *)(s), strlen(s)

/* Prints why the last call failed and returns 0, or returns 1 when rc is SHA_OK. */
static int ok(sha_status rc, const char *what)
{
    if (rc == SHA_OK)
        return 1;
    char msg[512];
    size_t needed;
    if (sha_last_error(msg, sizeof msg, &needed) != SHA_OK)
        msg[0] = '\0';
    fprintf(stderr, "%s: %s: %s\n", what, sha_status_name(rc), msg);
    return 0;
}

/* Sends everything `from` has for `to` and passes each ack back; returns the number of
 * frames sent, or -1 on a failure. */
static int sync_once(sha_store *from, sha_store *to, uint64_t to_id)
{
    int frames = 0;
    for (;;) {
        sha_buf frame = {0}, ack = {0}, none = {0};
        if (!ok(sha_frame_for(from, to_id, &frame), "frame_for"))
            return -1;
        if (frame.len == 0)
            return frames; /* nothing more to send */
        /* ... the frame's bytes travel to the other region ... */
        int good = ok(sha_receive(to, frame.ptr, frame.len, &ack), "receive frame") &&
                   /* ... and the ack travels back: acks are messages too ... */
                   ok(sha_receive(from, ack.ptr, ack.len, &none), "receive ack");
        sha_buf_free(&frame);
        sha_buf_free(&ack);
        sha_buf_free(&none);
        if (!good)
            return -1;
        frames++;
    }
}

static void print_digest(const char *region, const sha_digest *d)
{
    printf("  %-10s digest root ", region);
    for (size_t i = 0; i < sizeof d->bytes; i++)
        printf("%02x", d->bytes[i]);
    printf("\n");
}

static int run(const char *east_dir, const char *west_dir)
{
    sha_store *east = NULL, *west = NULL;
    sha_options o;
    int good = 0;
    sha_options_init(&o);

    o.region = "us-east-1";
    if (!ok(sha_open(east_dir, &o, &east), "open us-east-1"))
        goto out;
    o.region = "us-west-2";
    if (!ok(sha_open(west_dir, &o, &west), "open us-west-2"))
        goto out;

    uint64_t east_id, west_id;
    if (!ok(sha_id(east, &east_id), "id") || !ok(sha_id(west, &west_id), "id") ||
        !ok(sha_add_peer(east, west_id, "us-west-2"), "add_peer") ||
        !ok(sha_add_peer(west, east_id, "us-east-1"), "add_peer"))
        goto out;

    /* Each region writes; some writes touch the same session concurrently. */
    if (!ok(sha_put(east, STR("session-1"), STR("user"), STR("alice")), "put") ||
        !ok(sha_counter_add(east, STR("session-1"), STR("requests"), 3), "counter_add") ||
        !ok(sha_counter_add(west, STR("session-1"), STR("requests"), 4), "counter_add") ||
        !ok(sha_set_add(west, STR("session-1"), STR("roles"), STR("admin")), "set_add") ||
        !ok(sha_put(west, STR("session-2"), STR("user"), STR("bob")), "put") ||
        !ok(sha_touch(west, STR("session-2"), 30 * 60 * 1000), "touch"))
        goto out;

    int to_west = sync_once(east, west, west_id);
    int to_east = sync_once(west, east, east_id);
    if (to_west < 0 || to_east < 0)
        goto out;
    printf("shipped %d frame(s) east->west, %d west->east\n", to_west, to_east);

    int64_t requests = 0;
    if (!ok(sha_counter_get(east, STR("session-1"), STR("requests"), &requests), "counter_get"))
        goto out;
    char user[16];
    size_t len = 0;
    if (!ok(sha_get_field(east, STR("session-2"), STR("user"), (uint8_t *)user, sizeof user - 1,
                          &len),
            "get_field"))
        goto out;
    user[len] = '\0';
    printf("us-east-1 sees session-1 requests=%" PRId64 ", session-2 user=%s\n", requests, user);

    /* Consistency: equal digest roots, then every checksum on disk. */
    sha_digest de, dw;
    if (!ok(sha_digest_root(east, &de), "digest_root") ||
        !ok(sha_digest_root(west, &dw), "digest_root"))
        goto out;
    print_digest("us-east-1", &de);
    print_digest("us-west-2", &dw);
    if (memcmp(&de, &dw, sizeof de) != 0 || requests != 7) {
        fprintf(stderr, "stores did not converge\n");
        goto out;
    }
    sha_store *stores[2] = {east, west};
    for (int i = 0; i < 2; i++) {
        bool intact = false;
        sha_buf report = {0};
        if (!ok(sha_verify(stores[i], &intact, &report), "verify"))
            goto out;
        if (!intact)
            fprintf(stderr, "verify found damage: %s\n", (const char *)report.ptr);
        sha_buf_free(&report);
        if (!intact)
            goto out;
    }
    printf("consistent: equal digest roots, both stores verify intact\n");
    good = 1;

out:
    if (east != NULL && !ok(sha_close(east), "close"))
        good = 0;
    if (west != NULL && !ok(sha_close(west), "close"))
        good = 0;
    return good;
}

int main(void)
{
    char east_dir[512], west_dir[512];
    if (tmpdir_make(east_dir, sizeof east_dir) != 0 || tmpdir_make(west_dir, sizeof west_dir) != 0) {
        perror("temporary directory");
        return 1;
    }
    int good = run(east_dir, west_dir);
    tmpdir_remove(east_dir);
    tmpdir_remove(west_dir);
    return good ? 0 : 1;
}
