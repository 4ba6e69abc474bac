/* webhook: Standard Webhooks 1.0 signatures and the callback body of CONTRACT.md. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define WEBHOOK_MAX_SECRET 256

/* "whsec_<base64>" (the prefix is optional) -> key bytes. 0 or -EINVAL. */
int webhook_parse_secret(const char *secret, unsigned char *key, size_t *key_len);

/* "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>" into sig (NUL-terminated).
 * 0, -ENOSPC (sig too small) or -EIO. */
int webhook_sign(const unsigned char *key, size_t key_len, const char *id, int64_t timestamp,
                 const void *body, size_t body_len, char *sig, size_t sig_len);

/* The callback body: {"work_id":..., <every property of the response>} on success, or
 * {"success":false,"work_id":...,"error":"<reason> - <detail>"} on error, serialized as
 * canon.h says (RFC 8785); work_id always the message's (left out when it has none). malloc'd
 * or NULL. */
char *webhook_body(const struct finished_msg *m);
