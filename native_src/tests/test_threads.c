/* test_threads.c - one handle shared by many threads, per-thread last errors, and closing a
 * handle while other threads are calling with it. */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"

#define THREADS 4
#define WRITES 50

typedef struct worker {
    sha_store *store;
    int index;
    int failures;
    sha_status last;
    long calls;
} worker;

static void *write_sessions(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < WRITES; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%d-s%d", w->index, i);
        if (sha_put(w->store, STR(id), STR("owner"), STR(id)) != SHA_OK)
            w->failures++;
        if (sha_counter_add(w->store, STR("shared"), STR("n"), 1) != SHA_OK)
            w->failures++;
    }
    return NULL;
}

static void test_threads_share_one_handle(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.store = f.store, .index = i};
        CHECK(pthread_create(&t[i], NULL, write_sessions, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(w[i].failures == 0);
    }
    int64_t n = 0;
    CHECK_RC(sha_counter_get(f.store, STR("shared"), STR("n"), &n), SHA_OK);
    CHECK(n == THREADS * WRITES);
    char buf[32];
    size_t len = 0;
    CHECK_RC(sha_get_field(f.store, STR("t3-s49"), STR("owner"), (uint8_t *)buf, sizeof buf, &len),
             SHA_OK);
    CHECK(len == 6 && memcmp(buf, "t3-s49", 6) == 0);
    fixture_close(&f);
}

typedef struct erring {
    sha_store *store;
    pthread_barrier_t *barrier;
    int bad_ttl;
    char message[256];
} erring;

static void *fail_then_read(void *arg)
{
    erring *e = arg;
    if (e->bad_ttl)
        sha_touch(e->store, STR("s"), 0);
    else
        sha_put(e->store, STR("s"), NULL, 0, STR("v"));
    /* Both threads have failed before either reads its message. */
    pthread_barrier_wait(e->barrier);
    size_t needed = 0;
    if (sha_last_error(e->message, sizeof e->message, &needed) != SHA_OK)
        e->message[0] = '\0';
    return NULL;
}

static void test_each_thread_reads_its_own_last_error(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    pthread_barrier_t barrier;
    CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
    erring a = {.store = f.store, .barrier = &barrier, .bad_ttl = 1};
    erring b = {.store = f.store, .barrier = &barrier, .bad_ttl = 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, fail_then_read, &a) == 0);
    CHECK(pthread_create(&tb, NULL, fail_then_read, &b) == 0);
    CHECK(pthread_join(ta, NULL) == 0);
    CHECK(pthread_join(tb, NULL) == 0);
    CHECK(strstr(a.message, "invalid ttl") != NULL);
    CHECK(strstr(b.message, "key of 0 bytes") != NULL);
    pthread_barrier_destroy(&barrier);
    fixture_close(&f);
}

static void *call_until_refused(void *arg)
{
    worker *w = arg;
    for (;;) {
        char id[32];
        snprintf(id, sizeof id, "t%d-%ld", w->index, w->calls % 100);
        sha_status rc = sha_put(w->store, STR(id), STR("k"), STR("v"));
        if (rc == SHA_OK) {
            uint8_t buf[8];
            size_t len = 0;
            rc = sha_get_field(w->store, STR(id), STR("k"), buf, sizeof buf, &len);
        }
        w->calls++;
        if (rc != SHA_OK) {
            w->last = rc;
            return NULL;
        }
    }
}

static void test_closing_while_other_threads_call_fails_their_calls_cleanly(void)
{
    fixture f;
    if (!fixture_open(&f, "us-east-1"))
        return;
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.store = f.store, .index = i};
        CHECK(pthread_create(&t[i], NULL, call_until_refused, &w[i]) == 0);
    }
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK_RC(sha_close(f.store), SHA_OK);
    f.store = NULL;
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(w[i].calls > 0);
        CHECK_RC(w[i].last, SHA_ERR_CLOSED);
    }
    fixture_close(&f);
}

int main(void)
{
    RUN(test_threads_share_one_handle);
    RUN(test_each_thread_reads_its_own_last_error);
    RUN(test_closing_while_other_threads_call_fails_their_calls_cleanly);
    return check_summary();
}
