#include "exercise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* O_NONBLOCK: a FIFO must not hang us. */
#define READ_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define DIR_FLAGS (O_PATH | O_DIRECTORY | O_CLOEXEC)

/* Bounds of the walk without openat2: as the kernel's (40 links), and a depth no real upload
 * folder reaches. */
#define WALK_MAX_LINKS 40
#define WALK_MAX_DEPTH 256

/* openat2 answers EAGAIN when a rename or a mount raced a ".." it resolved: tried again. */
#define OPENAT2_TRIES 8

static int force_walk;

void exercise_force_walk(int on)
{
    force_walk = on;
}

/* When path is dir (n bytes) followed by '/' or its end: 1 and *ret_rel, the rest without
 * its leading slashes. */
static int prefix_of(const char *path, const char *dir, size_t n, const char **ret_rel)
{
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        n = 0; /* "/" (refused as EXERCISE_DIR by the starter, but meaningful here) */
    else if (strncmp(path, dir, n) != 0 || (path[n] != '/' && path[n] != '\0'))
        return 0;
    const char *rel = path + n;
    while (*rel == '/')
        rel++;
    *ret_rel = rel;
    return 1;
}

/* The part of the absolute path below dir (as written, or with its symlinks resolved):
 * 0 and *ret_rel (pointing into path), or -EPERM. */
static int split_beneath(const char *path, const char *dir, const char **ret_rel)
{
    char real[PATH_MAX];
    if (path[0] != '/')
        return -EPERM;
    if (prefix_of(path, dir, strlen(dir), ret_rel))
        return 0;
    if (realpath(dir, real) && prefix_of(path, real, strlen(real), ret_rel))
        return 0;
    return -EPERM;
}

/* openat2's RESOLVE_BENEATH by hand: one component at a time from the directory reached so
 * far, never following a link in the kernel (O_NOFOLLOW); a symlink's text is read and
 * resolved here, the same way (absolute: refused, ".." never above dirfd). Every directory
 * crossed is held open, so swapping one for a symlink meanwhile changes nothing. The last
 * component is opened with flags. The fd, or -EXDEV (escapes), -ELOOP, -ENAMETOOLONG, or
 * openat's error. */
static int walk_beneath(int dirfd, const char *rel, int flags)
{
    int stack[WALK_MAX_DEPTH];
    size_t depth = 0;
    char bufs[2][PATH_MAX];
    int cur = 0, r;
    unsigned links = 0;
    char name[NAME_MAX + 1];

    if (strlen(rel) >= PATH_MAX)
        return -ENAMETOOLONG;
    snprintf(bufs[0], PATH_MAX, "%s", rel);
    const char *p = bufs[0];
    for (;;) {
        int top = depth ? stack[depth - 1] : dirfd;
        while (*p == '/')
            p++;
        if (!*p) {
            /* The path ends at a directory: that directory, opened as asked. */
            r = openat(top, ".", flags);
            r = r < 0 ? -errno : r;
            goto out;
        }
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *next = p + len;
        bool trailing = *next == '/';
        while (*next == '/')
            next++;
        bool last = *next == '\0';
        if (len > NAME_MAX) {
            r = -ENAMETOOLONG;
            goto out;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (strcmp(name, ".") == 0) {
            p = next;
            continue;
        }
        if (strcmp(name, "..") == 0) {
            if (depth == 0) {
                r = -EXDEV;
                goto out;
            }
            close(stack[--depth]);
            p = next;
            continue;
        }
        int fd = last ? openat(top, name, flags | O_NOFOLLOW | (trailing ? O_DIRECTORY : 0))
                      : openat(top, name, DIR_FLAGS | O_NOFOLLOW);
        if (fd >= 0 && last) {
            r = fd;
            goto out;
        }
        if (fd >= 0) {
            if (depth == WALK_MAX_DEPTH) {
                close(fd);
                r = -ENAMETOOLONG;
                goto out;
            }
            stack[depth++] = fd;
            p = next;
            continue;
        }
        int e = errno;
        if (e != ELOOP && e != ENOTDIR) {
            r = -e;
            goto out;
        }
        /* A symlink (O_NOFOLLOW refused it), or not a directory at all. */
        char target[PATH_MAX];
        ssize_t n = readlinkat(top, name, target, sizeof(target) - 1);
        if (n < 0) {
            r = -e;
            goto out;
        }
        target[n] = '\0';
        if (++links > WALK_MAX_LINKS) {
            r = -ELOOP;
            goto out;
        }
        if (target[0] == '/') {
            r = -EXDEV;
            goto out;
        }
        /* The rest of the path becomes the link's text, then what followed the link. */
        int w = *next ? snprintf(bufs[!cur], PATH_MAX, "%s/%s", target, next)
                      : snprintf(bufs[!cur], PATH_MAX, "%s%s", target, trailing ? "/" : "");
        if (w < 0 || w >= PATH_MAX) {
            r = -ENAMETOOLONG;
            goto out;
        }
        cur = !cur;
        p = bufs[cur];
    }
out:
    while (depth > 0)
        close(stack[--depth]);
    return r;
}

/* rel (relative) opened with flags beneath dirfd: the fd or a negative errno (-EXDEV: it
 * leads outside; -ELOOP: a magic link, or too many links). */
static int open_beneath(int dirfd, const char *rel, int flags)
{
    if (!force_walk) {
        struct open_how how = {.flags = (uint64_t)flags,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        int e = EAGAIN;
        for (int i = 0; i < OPENAT2_TRIES && (e == EAGAIN || e == EINTR); i++) {
            long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
            if (fd >= 0)
                return (int)fd;
            e = errno;
        }
        /* ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that does not know openat2
         * (a plain open of ours never answers EPERM otherwise). The walk is as safe. */
        if (e != ENOSYS && e != EPERM)
            return -e;
    }
    return walk_beneath(dirfd, rel, flags);
}

/* Opens path (beneath dir when dir is set) with flags: the fd, or a negative errno with err
 * set; the errno is the one exercise_read returns. */
static int open_submission(const char *path, const char *dir, int flags, struct msg_error *err)
{
    const char *rel;
    int fd;
    if (!dir) {
        fd = open(path, flags);
        fd = fd < 0 ? -errno : fd;
    } else if (split_beneath(path, dir, &rel) < 0) {
        msg_error_set(err, EXERCISE_REASON_NOT_ALLOWED, "%.300s is not in EXERCISE_DIR", path);
        return -EPERM;
    } else {
        int dfd = open(dir, DIR_FLAGS);
        if (dfd < 0) {
            msg_error_set(err, EXERCISE_REASON_NOT_ALLOWED, "EXERCISE_DIR %.200s: %s", dir,
                          strerror(errno));
            return -EPERM;
        }
        fd = *rel ? open_beneath(dfd, rel, flags) : -EISDIR;
        close(dfd);
    }
    if (fd >= 0)
        return fd;
    switch (fd) {
    case -ENOENT:
    case -ENOTDIR:
        msg_error_set(err, EXERCISE_REASON_NOT_FOUND, "%.300s does not exist", path);
        return -ENOENT;
    case -EXDEV:
        msg_error_set(err, EXERCISE_REASON_NOT_ALLOWED, "%.300s leads outside EXERCISE_DIR", path);
        return -EPERM;
    case -ELOOP:
        if (dir) {
            msg_error_set(err, EXERCISE_REASON_NOT_ALLOWED,
                          "%.300s: a link to a process's file, or too many links", path);
            return -EPERM;
        }
        break;
    case -EISDIR:
        msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s is not a regular file", path);
        return -EIO;
    case -ENOMEM:
        msg_error_set(err, EXERCISE_REASON_UNREADABLE, "out of memory");
        return -ENOMEM;
    }
    msg_error_set(err, EXERCISE_REASON_UNREADABLE, "%.300s: %s", path, strerror(-fd));
    return -EIO;
}

int exercise_read_id(const char *path, const char *dir, uint64_t max_bytes, void **ret_buf,
                     size_t *ret_len, struct exercise_id *ret_id, struct msg_error *err)
{
    unsigned char *buf = NULL;
    int r;
    int fd = open_submission(path, dir, READ_FLAGS, err);
    if (fd < 0)
        return fd;
    /* From here on, only the descriptor: what the name points to now no longer matters. */
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
    if (ret_id) {
        ret_id->dev = (uint64_t)st.st_dev;
        ret_id->ino = (uint64_t)st.st_ino;
    }
    buf = NULL;
    r = 0;
out:
    free(buf);
    close(fd);
    return r;
}

int exercise_read(const char *path, const char *dir, uint64_t max_bytes, void **ret_buf,
                  size_t *ret_len, struct msg_error *err)
{
    return exercise_read_id(path, dir, max_bytes, ret_buf, ret_len, NULL, err);
}

int exercise_delete(const char *path, const char *dir, const struct exercise_id *id)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int pfd;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return -EPERM;
    if (dir) {
        /* The folder holding the name, resolved as the file was: beneath dir. */
        const char *rel;
        if (split_beneath(path, dir, &rel) < 0 || !*rel)
            return -EPERM;
        const char *rslash = strrchr(rel, '/');
        snprintf(parent, sizeof(parent), "%.*s", rslash ? (int)(rslash - rel) : 0, rel);
        int dfd = open(dir, DIR_FLAGS);
        if (dfd < 0)
            return -errno;
        if (!*parent) {
            pfd = dfd;
        } else {
            pfd = open_beneath(dfd, parent, DIR_FLAGS);
            close(dfd);
        }
    } else {
        size_t plen = slash ? (size_t)(slash - path) : 0;
        if (plen >= sizeof(parent))
            return -ENAMETOOLONG;
        if (!slash)
            snprintf(parent, sizeof(parent), ".");
        else if (plen == 0)
            snprintf(parent, sizeof(parent), "/");
        else
            snprintf(parent, sizeof(parent), "%.*s", (int)plen, path);
        pfd = open(parent, DIR_FLAGS);
        pfd = pfd < 0 ? -errno : pfd;
    }
    if (pfd < 0)
        return pfd == -EXDEV || pfd == -ELOOP ? -EPERM : pfd;
    struct stat st;
    int r = 0;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        r = -errno;
    else if (id && ((uint64_t)st.st_dev != id->dev || (uint64_t)st.st_ino != id->ino))
        r = -ESTALE;
    else if (unlinkat(pfd, name, 0) < 0)
        r = -errno;
    close(pfd);
    return r;
}

/* True when rel is a plain relative path: non-empty components, none "." or "..". */
static bool plain_rel(const char *rel)
{
    if (!*rel)
        return false;
    for (const char *p = rel;;) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!p[len])
            return true;
        p += len + 1;
    }
}

int exercise_stat_plain(const char *path, const char *dir, const char **ret_rel,
                        struct stat *ret_st)
{
    const char *rel;
    struct stat st;
    int r = split_beneath(path, dir, &rel);
    if (r < 0)
        return r;
    if (!plain_rel(rel))
        return -ELOOP;
    int dfd = open(dir, DIR_FLAGS);
    if (dfd < 0)
        return -errno;
    int fd = -ENOSYS;
    if (!force_walk) {
        struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                               .resolve =
                                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        int e = EAGAIN;
        for (int i = 0; i < OPENAT2_TRIES && (e == EAGAIN || e == EINTR); i++) {
            long f = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
            if (f >= 0) {
                fd = (int)f;
                break;
            }
            e = errno;
            fd = -e;
        }
        if (fd == -EPERM)
            fd = -ENOSYS; /* a seccomp filter that does not know openat2 */
    }
    if (fd == -ENOSYS) {
        /* By hand: every component opened without following a link; no ".." to handle. */
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf)) {
            close(dfd);
            return -ENAMETOOLONG;
        }
        int cur = dfd;
        char *save = NULL;
        char *tok = strtok_r(buf, "/", &save);
        while (tok) {
            char *next = strtok_r(NULL, "/", &save);
            int f =
                openat(cur, tok, next ? DIR_FLAGS | O_NOFOLLOW : O_PATH | O_NOFOLLOW | O_CLOEXEC);
            int e = errno;
            if (cur != dfd)
                close(cur);
            if (f < 0) {
                cur = -1;
                fd = e == ENOTDIR && next ? -ELOOP : -e; /* a symlink to a folder: ENOTDIR */
                break;
            }
            cur = f;
            tok = next;
        }
        if (cur >= 0)
            fd = cur;
    }
    close(dfd);
    if (fd < 0)
        return fd == -EXDEV ? -EPERM : fd;
    r = fstat(fd, &st) < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    if (S_ISLNK(st.st_mode))
        return -ELOOP; /* the last component (O_PATH | O_NOFOLLOW opens the link itself) */
    *ret_rel = rel;
    *ret_st = st;
    return 0;
}
