#include "webhook.h"

#include "canon.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int webhook_parse_secret(const char *secret, unsigned char *key, size_t *key_len)
{
    if (!secret)
        return -EINVAL;
    if (strncmp(secret, "whsec_", 6) == 0)
        secret += 6;
    size_t n = strlen(secret);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > WEBHOOK_MAX_SECRET)
        return -EINVAL;
    unsigned char buf[WEBHOOK_MAX_SECRET + 3];
    int out = EVP_DecodeBlock(buf, (const unsigned char *)secret, (int)n);
    if (out < 0)
        return -EINVAL;
    /* EVP_DecodeBlock counts the padding as zero bytes: take them off. */
    if (n >= 1 && secret[n - 1] == '=')
        out--;
    if (n >= 2 && secret[n - 2] == '=')
        out--;
    if (out <= 0)
        return -EINVAL;
    memcpy(key, buf, (size_t)out);
    *key_len = (size_t)out;
    return 0;
}

int webhook_sign(const unsigned char *key, size_t key_len, const char *id, int64_t timestamp,
                 const void *body, size_t body_len, char *sig, size_t sig_len)
{
    char prefix[256];
    int n = snprintf(prefix, sizeof(prefix), "%s.%lld.", id, (long long)timestamp);
    if (n < 0 || (size_t)n >= sizeof(prefix))
        return -EINVAL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char *msg = malloc((size_t)n + body_len);
    if (!msg)
        return -ENOMEM;
    memcpy(msg, prefix, (size_t)n);
    if (body_len)
        memcpy(msg + n, body, body_len);
    unsigned char *ok =
        HMAC(EVP_sha256(), key, (int)key_len, msg, (size_t)n + body_len, mac, &mac_len);
    free(msg);
    if (!ok)
        return -EIO;
    if (sig_len < 3 + 4 * ((mac_len + 2) / 3) + 1)
        return -ENOSPC;
    memcpy(sig, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)sig + 3, mac, (int)mac_len);
    return 0;
}

char *webhook_body(const struct finished_msg *m)
{
    json_t *o;
    if (m->error) {
        o = json_pack("{s:b,s:s}", "success", 0, "error",
                      json_is_string(m->correction_data) ? json_string_value(m->correction_data)
                                                         : "unknown error");
    } else {
        o = json_deep_copy(m->correction_data);
        if (o)
            json_object_del(o, "work_id");
    }
    if (!o)
        return NULL;
    if (m->work_id && json_object_set(o, "work_id", m->work_id) < 0) {
        json_decref(o);
        return NULL;
    }
    char *s = canon_dump(o);
    json_decref(o);
    return s;
}
