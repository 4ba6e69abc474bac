#include "lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lines_init(struct lines *l, size_t max)
{
    l->len = 0;
    l->max = max;
    l->buf = malloc(max ? max : 1);
    return l->buf ? 0 : -ENOMEM;
}

void lines_free(struct lines *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = 0;
}

int lines_feed(struct lines *l, const char *data, size_t len, lines_cb on_line, void *ud)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (take > l->max - l->len)
            return -EFBIG;
        memcpy(l->buf + l->len, data, take);
        l->len += take;
        if (!nl)
            break;
        size_t line_len = l->len;
        l->len = 0; /* before the callback: it may free l */
        int r = on_line(l->buf, line_len, ud);
        if (r != 0)
            return r;
        data = nl + 1;
        len -= take + 1;
    }
    return 0;
}

void lines_keep(struct lines *l, const char *data, size_t len)
{
    size_t room = l->max - l->len;
    size_t take = len < room ? len : room;
    memcpy(l->buf + l->len, data, take);
    l->len += take;
}
