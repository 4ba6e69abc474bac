#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <time.h>

#include "text.h"

static enum log_level current_level = LOG_INFO;
static const char *app_name;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    current_level = level;
}

enum log_level log_get_level(void)
{
    return current_level;
}

void log_set_app(const char *app)
{
    app_name = app;
}

int log_level_parse(const char *s, enum log_level *ret)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *ret = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *ret = LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
            return true;
    return false;
}

/* One log line being built: never past its size; cut rather than overflowed, at a character
 * boundary, and nothing is appended after a cut. */
struct line {
    char buf[8192];
    size_t pos;
    bool full;
};

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 1 - l->pos; /* one byte kept for the newline */
    if (l->full)
        return;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        l->full = true;
    }
    memcpy(l->buf + l->pos, s, n);
    l->pos += n;
}

static void put_value(struct line *l, const char *v)
{
    if (!needs_quotes(v)) {
        put(l, v, strlen(v));
        return;
    }
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(l, esc, 2);
        } else if (*p == '\n') {
            put(l, "\\n", 2);
        } else if (*p == '\r') {
            put(l, "\\r", 2);
        } else if (*p == '\t') {
            put(l, "\\t", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            int n = snprintf(esc, sizeof(esc), "\\x%02x", *p);
            put(l, esc, (size_t)n);
        } else if (*p < 0x80) {
            put(l, (const char *)p, 1);
        } else {
            /* Outside text may be anything: a whole UTF-8 character is kept, any other byte
             * is escaped, so that every line is valid UTF-8. */
            size_t n = text_utf8_char_len(p, strnlen((const char *)p, 4));
            if (n == 0) {
                int e = snprintf(esc, sizeof(esc), "\\x%02x", *p);
                put(l, esc, (size_t)e);
            } else {
                put(l, (const char *)p, n);
                p += n - 1;
            }
        }
    }
    put(l, "\"", 1);
}

void log_vkv(enum log_level level, const char *msg, va_list ap)
{
    if (level < current_level)
        return;
    struct line line = {.pos = 0};
    struct timespec ts;
    struct tm tm;
    char tbuf[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t tn = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(tbuf + tn, sizeof(tbuf) - tn, ".%03ldZ", ts.tv_nsec / 1000000);
    (void)n;
    put(&line, "ts=", 3);
    put(&line, tbuf, strlen(tbuf));
    put(&line, " level=", 7);
    put(&line, level_names[level], strlen(level_names[level]));
    if (app_name) {
        put(&line, " app=", 5);
        put_value(&line, app_name);
    }
    put(&line, " msg=", 5);
    put_value(&line, msg ? msg : "");
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *val = va_arg(ap, const char *);
        if (!val)
            continue;
        put(&line, " ", 1);
        put(&line, key, strlen(key));
        put(&line, "=", 1);
        put_value(&line, val);
    }
    line.buf[line.pos++] = '\n';
    /* One write per line so lines from concurrent processes do not interleave. */
    fwrite(line.buf, 1, line.pos, stderr);
    fflush(stderr);
}

void log_kv(enum log_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    log_vkv(level, msg, ap);
    va_end(ap);
}
