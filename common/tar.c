#include "tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Growable buffer that libarchive writes into. */
struct membuf {
    unsigned char *data;
    size_t len, cap;
    int failed;
};

static la_ssize_t membuf_write(struct archive *a, void *userdata, const void *buf, size_t n)
{
    (void)a;
    struct membuf *m = userdata;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 16384;
        while (cap < m->len + n)
            cap *= 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) {
            m->failed = 1;
            return -1;
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, buf, n);
    m->len += n;
    return (la_ssize_t)n;
}

static int write_entry(struct archive *a, const char *path, mode_t type, unsigned mode,
                       const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return -ENOMEM;
    int r = 0;
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, time(NULL), 0);
    if (archive_write_header(a, e) != ARCHIVE_OK)
        r = -EIO;
    else if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
        r = -EIO;
    archive_entry_free(e);
    return r;
}

int tar_single_file(const char *path, const void *data, size_t len, unsigned mode, void **ret_buf,
                    size_t *ret_len)
{
    if (!path || !*path || path[0] == '/' || strstr(path, "..") || (len && !data))
        return -EINVAL;
    struct membuf m = {0};
    int r = 0;
    struct archive *a = archive_write_new();
    if (!a)
        return -ENOMEM;
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, &m, NULL, membuf_write, NULL) != ARCHIVE_OK) {
        r = -EIO;
        goto out;
    }
    /* Parent folders first, so extraction creates what the image lacks. */
    char dir[4096];
    for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
        size_t n = (size_t)(slash - path);
        if (n == 0 || n >= sizeof(dir)) {
            r = -EINVAL;
            goto out;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
        unsigned dmode = strcmp(dir, "tmp") == 0 ? 01777 : 0755;
        r = write_entry(a, dir, AE_IFDIR, dmode, NULL, 0);
        if (r < 0)
            goto out;
    }
    r = write_entry(a, path, AE_IFREG, mode, data, len);
    if (r < 0)
        goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        r = -EIO;
        goto out;
    }
out:
    archive_write_free(a);
    if (r == 0 && m.failed)
        r = -ENOMEM;
    if (r < 0) {
        free(m.data);
        return r;
    }
    *ret_buf = m.data;
    *ret_len = m.len;
    return 0;
}
