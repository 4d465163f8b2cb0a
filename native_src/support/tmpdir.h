/*
 * tmpdir.h - fresh temporary directories for the C example and tests, removed with all they
 * hold afterwards. Needs _XOPEN_SOURCE 700 (mkdtemp, nftw) defined before any include.
 */
#ifndef SHA_TMPDIR_H
#define SHA_TMPDIR_H

#if !defined(_XOPEN_SOURCE) || _XOPEN_SOURCE < 700
#error "define _XOPEN_SOURCE 700 before including tmpdir.h"
#endif

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Creates a new empty directory under $TMPDIR (or /tmp) and writes its path into buf.
 * Returns 0 on success. */
static inline int tmpdir_make(char *buf, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(buf, cap, "%s/session-ha-XXXXXX", base);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(buf) != NULL ? 0 : -1;
}

static inline int tmpdir_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a directory and everything under it. Returns 0 on success. */
static inline int tmpdir_remove(const char *path)
{
    return nftw(path, tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* SHA_TMPDIR_H */
