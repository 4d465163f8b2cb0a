/*
 * check.h - the C tests' framework: CHECK macros that record a failure and go on, one
 * function per behaviour run by RUN(), and a final "N passed, M failed" line. Plus the
 * fixtures every test file uses: a store in a fresh temporary directory.
 */
#ifndef SHA_CHECK_H
#define SHA_CHECK_H

#include <stdio.h>
#include <string.h>

#include "session_ha.h"
#include "../support/tmpdir.h"

static int check_failures; /* in the test running now */
static int tests_passed;
static int tests_failed;

/* The bytes of a C string literal or variable, as a (pointer, length) pair. */
#define STR(s) (const uint8_t *)(s), strlen(s)

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

static inline int check_rc(sha_status got, sha_status want, const char *call, const char *file,
                    int line)
{
    if (got == want)
        return 1;
    char msg[1024] = "";
    size_t needed = 0;
    if (sha_last_error(msg, sizeof msg, &needed) != SHA_OK)
        snprintf(msg, sizeof msg, "(message of %zu bytes)", needed);
    fprintf(stderr, "  %s:%d: %s returned %s, expected %s: %s\n", file, line, call,
            sha_status_name(got), sha_status_name(want), msg);
    check_failures++;
    return 0;
}

/* Checks that a call returns the status expected (printing the last error if not). */
#define CHECK_RC(call, want) check_rc((call), (want), #call, __FILE__, __LINE__)

/* As CHECK_RC, and ends the test function when it fails. */
#define REQUIRE_RC(call, want)                                                             \
    do {                                                                                   \
        if (!CHECK_RC(call, want))                                                         \
            return;                                                                        \
    } while (0)

#define RUN(test) run_test(#test, test)

static inline void run_test(const char *name, void (*test)(void))
{
    check_failures = 0;
    test();
    if (check_failures == 0) {
        tests_passed++;
    } else {
        tests_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    }
}

/* Prints the summary line; the exit status for main. */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}

/* ---- fixtures ---------------------------------------------------------------------- */

/* Options for tests: no fsync wait, no background maintenance or snapshots (tests call
 * sha_tick and sha_snapshot themselves), so runs are fast and deterministic. */
static inline sha_options test_options(const char *region)
{
    sha_options o;
    sha_options_init(&o);
    o.region = region;
    o.fsync = SHA_FSYNC_NEVER;
    o.tick_interval_ms = 0;
    o.snapshot_interval_ms = 0;
    return o;
}

typedef struct fixture {
    char dir[512];
    sha_store *store;
} fixture;

/* A store of region in a fresh temporary directory. Returns 1 on success. */
static inline int fixture_open(fixture *f, const char *region)
{
    f->store = NULL;
    if (tmpdir_make(f->dir, sizeof f->dir) != 0) {
        fprintf(stderr, "  cannot make a temporary directory\n");
        check_failures++;
        return 0;
    }
    sha_options o = test_options(region);
    return CHECK_RC(sha_open(f->dir, &o, &f->store), SHA_OK);
}

/* Closes the store (if still open) and removes its directory. */
static inline void fixture_close(fixture *f)
{
    if (f->store != NULL)
        CHECK_RC(sha_close(f->store), SHA_OK);
    f->store = NULL;
    if (f->dir[0] != '\0')
        CHECK(tmpdir_remove(f->dir) == 0);
    f->dir[0] = '\0';
}

/* Makes a and b peers of each other. */
static inline int make_peers(sha_store *a, const char *a_region, sha_store *b, const char *b_region)
{
    uint64_t ida = 0, idb = 0;
    return CHECK_RC(sha_id(a, &ida), SHA_OK) && CHECK_RC(sha_id(b, &idb), SHA_OK) &&
           CHECK_RC(sha_add_peer(a, idb, b_region), SHA_OK) &&
           CHECK_RC(sha_add_peer(b, ida, a_region), SHA_OK);
}

/* Ships every frame from -> to (whose id is to_id), passing each ack back to from. Returns
 * the number of frames shipped, -1 on a failure. */
static inline int ship(sha_store *from, sha_store *to, uint64_t to_id)
{
    for (int frames = 0; frames < 1000; frames++) {
        sha_buf frame = {0}, ack = {0}, none = {0};
        int ok = CHECK_RC(sha_frame_for(from, to_id, &frame), SHA_OK);
        if (ok && frame.len == 0)
            return frames;
        ok = ok && CHECK_RC(sha_receive(to, frame.ptr, frame.len, &ack), SHA_OK) &&
             CHECK_RC(sha_receive(from, ack.ptr, ack.len, &none), SHA_OK);
        CHECK(ack.len > 0 && none.len == 0);
        sha_buf_free(&frame);
        sha_buf_free(&ack);
        sha_buf_free(&none);
        if (!ok)
            return -1;
    }
    return -1;
}

/* Whether a NUL-terminated JSON buffer contains needle. */
static inline int buf_contains(const sha_buf *b, const char *needle)
{
    return b->ptr != NULL && strstr((const char *)b->ptr, needle) != NULL;
}

#endif /* SHA_CHECK_H */
