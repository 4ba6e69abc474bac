/* callback: see callback.h. */
#include "callback.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

enum callback_outcome callback_outcome(const struct callback_attempt *a)
{
    bool refused = a->refused && *a->refused;
    if (refused && !a->connected && a->opened == 0 && a->status == 0)
        return CALLBACK_REFUSED;
    if (a->status >= 200 && a->status < 300)
        return CALLBACK_DELIVERED;
    if (a->status == 410)
        return CALLBACK_GONE;
    return CALLBACK_RETRY;
}

void callback_error_text(const struct callback_attempt *a, uint64_t timeout_ms, const char *url,
                         char *buf, size_t len)
{
    if (!len)
        return;
    if (a->status > 0)
        snprintf(buf, len, "HTTP %ld", a->status);
    else if (a->err == -ETIMEDOUT)
        snprintf(buf, len, "no answer within %llu ms", (unsigned long long)timeout_ms);
    else if (a->err_detail) /* outside text */
        text_utf8_copy(buf, len, a->err_detail, strlen(a->err_detail));
    else
        snprintf(buf, len, "%s", strerror(a->err < 0 ? -a->err : EIO));
    if (url)
        callback_scrub(buf, len, url);
    if (a->refused && *a->refused && !a->connected) { /* another address failed otherwise */
        char tail[256];
        snprintf(tail, sizeof(tail), " (refused: %s)", a->refused);
        size_t l = strlen(buf);
        text_utf8_copy(buf + l, len - l, tail, strlen(tail)); /* cut at a boundary */
    }
}

void callback_scrub(char *text, size_t len, const char *url)
{
    size_t ul = strlen(url);
    if (ul < 8 || len == 0)
        return;
    char out[1024], part[1024];
    size_t o = 0;
    for (const char *t = text; *t && o + 1 < sizeof(out);) {
        size_t m = 0;
        while (m < ul && t[m] && t[m] == url[m])
            m++;
        if (m >= 8) {
            char prefix[1024];
            snprintf(prefix, sizeof(prefix), "%.*s", (int)m, url);
            text_redact_url(part, sizeof(part), prefix);
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", part);
            if (o >= sizeof(out))
                o = sizeof(out) - 1;
            t += m;
        } else {
            out[o++] = *t++;
        }
    }
    out[o] = '\0';
    text_utf8_copy(text, len, out, o);
}
