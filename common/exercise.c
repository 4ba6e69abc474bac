#include "exercise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int path_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return 1;
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int exercise_read(const char *path, const char *dir, uint64_t max_bytes, void **ret_buf,
                  size_t *ret_len, struct msg_error *err)
{
    char real[PATH_MAX], realdir[PATH_MAX];
    unsigned char *buf = NULL;
    int fd = -1, r;

    if (!realpath(path, real)) {
        r = -errno;
        if (r == -ENOENT || r == -ENOTDIR)
            msg_error_set(err, EXERCISE_REASON_NOT_FOUND, "%.300s does not exist", path);
        else
            msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s: %s", path, strerror(-r));
        return r == -ENOTDIR ? -ENOENT : r;
    }
    if (dir) {
        if (!realpath(dir, realdir)) {
            msg_error_set(err, EXERCISE_REASON_NOT_ALLOWED, "EXERCISE_DIR %.200s: %s", dir,
                          strerror(errno));
            return -EPERM;
        }
        if (!path_inside(real, realdir)) {
            msg_error_set(err, EXERCISE_REASON_NOT_ALLOWED, "%.300s is outside EXERCISE_DIR", path);
            return -EPERM;
        }
    }
    /* O_NONBLOCK: a FIFO must not hang us; O_NOFOLLOW: the resolved path has no links left,
     * so one appearing now is a race we refuse. */
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        r = -errno;
        if (r == -ENOENT)
            msg_error_set(err, EXERCISE_REASON_NOT_FOUND, "%.300s does not exist", path);
        else
            msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s: %s", path, strerror(-r));
        return r == -ENOENT ? r : -EIO;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s: %s", path, strerror(errno));
        r = -EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s is not a regular file", path);
        r = -EIO;
        goto out;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        msg_error_set(err, EXERCISE_REASON_TOO_LARGE, "%.300s has %lld bytes, the limit is %llu",
                      path, (long long)st.st_size, (unsigned long long)max_bytes);
        r = -EFBIG;
        goto out;
    }
    /* Read one byte more than the size, to notice a file that grows while we read. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = malloc(cap);
    if (!buf) {
        msg_error_set(err, EXERCISE_REASON_UNREADABLE, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s: %s", path, strerror(errno));
            r = -EIO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s changed while being read", path);
            r = -EIO;
            goto out;
        }
    }
    if (len == 0) {
        free(buf);
        buf = NULL;
    }
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
    r = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return r;
}
