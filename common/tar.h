/* tar: tar streams for the Docker archive API, built in memory with libarchive. */
#pragma once
#include <stddef.h>

/* A ustar stream holding one regular file at `path` (relative, e.g. "tmp/exercise") with
 * `mode`, preceded by entries for its parent folders (mode 01777 for "tmp", 0755 otherwise),
 * so extraction at "/" creates them when the image lacks them. *ret_buf is malloc'd.
 * 0, -EINVAL, -ENOMEM or -EIO. */
int tar_single_file(const char *path, const void *data, size_t len, unsigned mode, void **ret_buf,
                    size_t *ret_len);
