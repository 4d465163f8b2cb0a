/* test_encryption.c - encryption at rest through sha_options.encryption_key_file: written
 * encrypted (no plaintext in any file), reopened with the key, refused with
 * SHA_ERR_MISSING_KEY without it or with a key file that lacks it (the directory untouched),
 * SHA_ERR_BAD_KEY_FILE for a file that is not a key file, and verified with the key. */
#define _XOPEN_SOURCE 700
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char KEY_A[] = "# current key\n"
                            "8c1f0b7a2e4d6c9b0a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5c7b\n";
static const char KEY_B[] = "1111111111111111111111111111111111111111111111111111111111111111\n";
static const char SECRET[] = "plaintext-secret-value";

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 0;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Set by find_secret: a file under the directory walked holds SECRET. */
static int secret_found;

static int find_secret(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || st->st_size <= 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t len = (size_t)st->st_size;
    char *buf = malloc(len);
    if (buf != NULL && fread(buf, 1, len, f) == len) {
        size_t n = strlen(SECRET);
        for (size_t i = 0; i + n <= len; i++)
            if (memcmp(buf + i, SECRET, n) == 0)
                secret_found = 1;
    }
    free(buf);
    fclose(f);
    return 0;
}

static void test_an_encrypted_store_round_trips_and_needs_its_key(void)
{
    char base[512], dir[600], key_a[600], key_b[600], bad[600];
    if (tmpdir_make(base, sizeof base) != 0) {
        CHECK(0);
        return;
    }
    snprintf(dir, sizeof dir, "%s/store", base);
    snprintf(key_a, sizeof key_a, "%s/a.key", base);
    snprintf(key_b, sizeof key_b, "%s/b.key", base);
    snprintf(bad, sizeof bad, "%s/bad.key", base);
    CHECK(write_file(key_a, KEY_A) && write_file(key_b, KEY_B) && write_file(bad, "nope\n"));

    sha_options o = test_options("us-east-1");
    o.encryption_key_file = key_a;
    sha_store *s = NULL;
    REQUIRE_RC(sha_open(dir, &o, &s), SHA_OK);
    CHECK_RC(sha_put(s, STR("s1"), STR("token"), STR(SECRET)), SHA_OK);
    sha_buf report = {0};
    CHECK_RC(sha_snapshot(s, &report), SHA_OK);
    CHECK_RC(sha_buf_free(&report), SHA_OK);
    CHECK_RC(sha_put(s, STR("s2"), STR("token"), STR(SECRET)), SHA_OK);
    bool intact = false;
    CHECK_RC(sha_verify(s, &intact, &report), SHA_OK);
    CHECK(intact);
    CHECK(report.ptr != NULL && strstr((const char *)report.ptr, "\"checksums_only\":false") != NULL);
    CHECK_RC(sha_buf_free(&report), SHA_OK);
    CHECK_RC(sha_close(s), SHA_OK);

    secret_found = 0;
    CHECK(nftw(base, find_secret, 16, FTW_PHYS) == 0);
    CHECK(!secret_found);

    char msg[1024];
    size_t needed = 0;
    sha_options plain = test_options("us-east-1");
    s = NULL;
    CHECK_RC(sha_open(dir, &plain, &s), SHA_ERR_MISSING_KEY);
    CHECK(s == NULL);
    CHECK_RC(sha_last_error(msg, sizeof msg, &needed), SHA_OK);
    CHECK(strstr(msg, "not configured") != NULL && strstr(msg, dir) != NULL);

    o.encryption_key_file = key_b;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_MISSING_KEY);
    o.encryption_key_file = bad;
    CHECK_RC(sha_open(dir, &o, &s), SHA_ERR_BAD_KEY_FILE);
    CHECK_RC(sha_last_error(msg, sizeof msg, &needed), SHA_OK);
    CHECK(strstr(msg, "line 1") != NULL && strstr(msg, "nope") == NULL);
    CHECK(strcmp(sha_status_name(SHA_ERR_TAMPERED), "SHA_ERR_TAMPERED") == 0);

    o.encryption_key_file = key_a;
    REQUIRE_RC(sha_open(dir, &o, &s), SHA_OK);
    uint8_t buf[64];
    size_t len = 0;
    CHECK_RC(sha_get_field(s, STR("s1"), STR("token"), buf, sizeof buf, &len), SHA_OK);
    CHECK(len == strlen(SECRET) && memcmp(buf, SECRET, len) == 0);
    CHECK_RC(sha_get_field(s, STR("s2"), STR("token"), buf, sizeof buf, &len), SHA_OK);
    CHECK_RC(sha_close(s), SHA_OK);
    CHECK(tmpdir_remove(base) == 0);
}

int main(void)
{
    RUN(test_an_encrypted_store_round_trips_and_needs_its_key);
    return check_summary();
}
