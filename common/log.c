#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <time.h>

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

/* Appends to buf at *pos, never past len - 1; the line is cut rather than overflowed. */
static void put(char *buf, size_t len, size_t *pos, const char *s, size_t n)
{
    if (*pos >= len - 1)
        return;
    size_t room = len - 1 - *pos;
    if (n > room)
        n = room;
    memcpy(buf + *pos, s, n);
    *pos += n;
}

static void put_value(char *buf, size_t len, size_t *pos, const char *v)
{
    if (!needs_quotes(v)) {
        put(buf, len, pos, v, strlen(v));
        return;
    }
    put(buf, len, pos, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(buf, len, pos, esc, 2);
        } else if (*p == '\n') {
            put(buf, len, pos, "\\n", 2);
        } else if (*p == '\r') {
            put(buf, len, pos, "\\r", 2);
        } else if (*p == '\t') {
            put(buf, len, pos, "\\t", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            int n = snprintf(esc, sizeof(esc), "\\x%02x", *p);
            put(buf, len, pos, esc, (size_t)n);
        } else {
            put(buf, len, pos, (const char *)p, 1);
        }
    }
    put(buf, len, pos, "\"", 1);
}

void log_vkv(enum log_level level, const char *msg, va_list ap)
{
    if (level < current_level)
        return;
    char line[8192];
    size_t pos = 0;
    struct timespec ts;
    struct tm tm;
    char tbuf[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t tn = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(tbuf + tn, sizeof(tbuf) - tn, ".%03ldZ", ts.tv_nsec / 1000000);
    (void)n;
    put(line, sizeof(line), &pos, "ts=", 3);
    put(line, sizeof(line), &pos, tbuf, strlen(tbuf));
    put(line, sizeof(line), &pos, " level=", 7);
    put(line, sizeof(line), &pos, level_names[level], strlen(level_names[level]));
    if (app_name) {
        put(line, sizeof(line), &pos, " app=", 5);
        put_value(line, sizeof(line), &pos, app_name);
    }
    put(line, sizeof(line), &pos, " msg=", 5);
    put_value(line, sizeof(line), &pos, msg ? msg : "");
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *val = va_arg(ap, const char *);
        if (!val)
            continue;
        put(line, sizeof(line), &pos, " ", 1);
        put(line, sizeof(line), &pos, key, strlen(key));
        put(line, sizeof(line), &pos, "=", 1);
        put_value(line, sizeof(line), &pos, val);
    }
    line[pos++] = '\n';
    /* One write per line so lines from concurrent processes do not interleave. */
    fwrite(line, 1, pos, stderr);
    fflush(stderr);
}

void log_kv(enum log_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    log_vkv(level, msg, ap);
    va_end(ap);
}
