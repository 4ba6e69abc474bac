/* exercise: reading (and deleting) a submission file safely.
 *
 * With a folder (EXERCISE_DIR), the path a job names must be the folder's path (as configured,
 * or with its symlinks resolved) followed by a path that the kernel resolves beneath the folder:
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from a descriptor of the folder, so no "..",
 * absolute symlink, relative symlink leading out, or /proc magic link can take it outside, and a
 * component swapped for a symlink while we resolve cannot either (the kernel resolves the path
 * once, holding each directory it crosses). Where the kernel lacks openat2 (ENOSYS, or EPERM
 * from a seccomp filter that does not know it), the same is done by hand: one component at a
 * time with openat(O_NOFOLLOW) from the directory reached so far, each symlink read with
 * readlinkat and resolved the same way (absolute ones refused, ".." never above the folder).
 * The file is then read from that descriptor; nothing is ever opened again by name. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "msg.h"

#define EXERCISE_REASON_NOT_FOUND "file not found"
#define EXERCISE_REASON_TOO_LARGE "file too large"
#define EXERCISE_REASON_NOT_ALLOWED "file not allowed"
#define EXERCISE_REASON_UNREADABLE "file unreadable"

/* Which file was read: a later delete removes the name only while it is still that file. */
struct exercise_id {
    uint64_t dev, ino;
};

/* Reads the regular file at path, at most max_bytes. dir NULL: any path the process can read
 * (ALLOW_ANY_EXERCISE_PATH; the submit tool). Else path must be absolute and lie beneath dir,
 * as the header says. The read blocks, but it is bounded by max_bytes and done on a local
 * file. 0 and a malloc'd *ret_buf (NULL when the file is empty), *ret_len and, when ret_id is
 * not NULL, *ret_id; or -ENOENT ("file not found"), -EFBIG ("file too large"), -EPERM ("file
 * not allowed": outside dir), -EIO ("file unreadable"), -ENOMEM, with err set (a fault of the
 * job). */
int exercise_read_id(const char *path, const char *dir, uint64_t max_bytes, void **ret_buf,
                     size_t *ret_len, struct exercise_id *ret_id, struct msg_error *err);
int exercise_read(const char *path, const char *dir, uint64_t max_bytes, void **ret_buf,
                  size_t *ret_len, struct msg_error *err);

/* Deletes the submission at path (DELETE_EXERCISE_FILE): its parent folder is resolved as
 * exercise_read resolves the file (beneath dir when dir is not NULL), and the last component
 * is unlinked relative to it (unlinkat), only while it is still the file read (id, not
 * following a symlink). 0; -ENOENT (gone already); -ESTALE (the name is another file now: left
 * alone); -EPERM (outside dir, or not a file name); another negative errno. */
int exercise_delete(const char *path, const char *dir, const struct exercise_id *id);

/* For a bind mount of the submission (the starter's EXERCISE_MODE=bind): the engine resolves
 * the path once more when it mounts it, following links, so the path must reach the file with
 * no link at all. path must be absolute and lie beneath dir (as for exercise_read), the part
 * below dir plain (no empty, "." or ".." component) and every component a real folder or, the
 * last, not a symlink; the kernel checks it as exercise_read's resolution does
 * (openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or a walk opening each component with
 * O_NOFOLLOW). 0, *ret_rel (pointing into path: its part below dir) and *ret_st (of what was
 * reached, which may be anything but a symlink: the caller checks type, size and mode); -ELOOP
 * (a link on the way, or the path is not plain), -EPERM (not beneath dir), -ENOENT, or another
 * negative errno. Nothing is logged and no err is set: the caller falls back to
 * exercise_read, whose answer is then the job's. */
int exercise_stat_plain(const char *path, const char *dir, const char **ret_rel,
                        struct stat *ret_st);

/* For tests: true makes every resolution beneath a folder use the component-by-component walk,
 * as on a kernel without openat2. Not thread-safe; the daemons never call it. */
void exercise_force_walk(int on);
