/* exercise: reading a submission file safely. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define EXERCISE_REASON_NOT_FOUND "file not found"
#define EXERCISE_REASON_TOO_LARGE "file too large"
#define EXERCISE_REASON_NOT_ALLOWED "file not allowed"
#define EXERCISE_REASON_UNREADABLE "file unreadable"

/* Reads the regular file at path, at most max_bytes. When dir is not NULL, the path with
 * every symlink resolved must lie inside dir (itself resolved). The read blocks, but it is
 * bounded by max_bytes and done on a local file. 0 and a malloc'd *ret_buf (NULL when the
 * file is empty) or -ENOENT/-EFBIG/-EPERM/-EIO/-ENOMEM with err set (a fault of the job). */
int exercise_read(const char *path, const char *dir, uint64_t max_bytes, void **ret_buf,
                  size_t *ret_len, struct msg_error *err);
