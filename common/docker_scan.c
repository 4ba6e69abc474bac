/* docker_scan: a container list (GET /containers/json) read without building a tree of
 * every container: only each one's Id and State reach the caller. Pure. */
#include "docker.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct scan {
    const char *p, *end;
};

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* After a member or an element: 1 at ',' (more follow), 0 at `close`, else -EBADMSG. */
static int scan_sep(struct scan *s, char close)
{
    scan_ws(s);
    if (s->p >= s->end)
        return -EBADMSG;
    char c = *s->p++;
    return c == ',' ? 1 : c == close ? 0 : -EBADMSG;
}

/* A string at s->p (the opening quote): its raw contents in *str and *len; *escaped when it holds
 * a backslash escape. */
static int scan_string(struct scan *s, const char **str, size_t *len, bool *escaped)
{
    if (s->p >= s->end || *s->p != '"')
        return -EBADMSG;
    const char *start = ++s->p;
    *escaped = false;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\') {
            *escaped = true;
            if (++s->p >= s->end)
                return -EBADMSG;
        }
        s->p++;
    }
    if (s->p >= s->end)
        return -EBADMSG;
    *str = start;
    *len = (size_t)(s->p - start);
    s->p++;
    return 0;
}

/* Skips one value of any kind; depth bounds the nesting. */
static int scan_skip(struct scan *s, int depth)
{
    scan_ws(s);
    if (s->p >= s->end || depth > 64)
        return -EBADMSG;
    char c = *s->p;
    if (c == '"') {
        const char *str;
        size_t len;
        bool esc;
        return scan_string(s, &str, &len, &esc);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                const char *k;
                size_t kl;
                bool esc;
                scan_ws(s);
                if (scan_string(s, &k, &kl, &esc) < 0)
                    return -EBADMSG;
                scan_ws(s);
                if (s->p >= s->end || *s->p++ != ':')
                    return -EBADMSG;
            }
            if (scan_skip(s, depth + 1) < 0)
                return -EBADMSG;
            scan_ws(s);
            if (s->p >= s->end)
                return -EBADMSG;
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            if (*s->p++ == close)
                return 0;
            return -EBADMSG;
        }
    }
    /* numbers, true, false, null */
    const char *start = s->p;
    while (s->p < s->end &&
           (isalnum((unsigned char)*s->p) || *s->p == '-' || *s->p == '+' || *s->p == '.'))
        s->p++;
    return s->p > start ? 0 : -EBADMSG;
}

int docker_scan_list(const char *body, size_t len, docker_scan_fn fn, void *userdata)
{
    struct scan s = {body, body + len};
    scan_ws(&s);
    if (s.p >= s.end || *s.p++ != '[')
        return -EBADMSG;
    scan_ws(&s);
    if (s.p < s.end && *s.p == ']')
        return 0;
    for (;;) {
        scan_ws(&s);
        if (s.p >= s.end || *s.p++ != '{')
            return -EBADMSG;
        const char *id = NULL, *state = NULL;
        size_t id_len = 0, state_len = 0;
        scan_ws(&s);
        if (s.p < s.end && *s.p == '}') {
            s.p++;
        } else {
            for (;;) {
                const char *k;
                size_t kl;
                bool esc;
                scan_ws(&s);
                if (scan_string(&s, &k, &kl, &esc) < 0)
                    return -EBADMSG;
                scan_ws(&s);
                if (s.p >= s.end || *s.p++ != ':')
                    return -EBADMSG;
                scan_ws(&s);
                bool want_id = kl == 2 && memcmp(k, "Id", 2) == 0;
                bool want_state = kl == 5 && memcmp(k, "State", 5) == 0;
                if ((want_id || want_state) && s.p < s.end && *s.p == '"') {
                    const char *v;
                    size_t vl;
                    if (scan_string(&s, &v, &vl, &esc) < 0)
                        return -EBADMSG;
                    if (!esc && want_id) {
                        id = v;
                        id_len = vl;
                    } else if (!esc) {
                        state = v;
                        state_len = vl;
                    }
                } else if (scan_skip(&s, 1) < 0) {
                    return -EBADMSG;
                }
                int more = scan_sep(&s, '}');
                if (more < 0)
                    return more;
                if (!more)
                    break;
            }
        }
        fn(id, id_len, state, state_len, userdata);
        int more = scan_sep(&s, ']');
        if (more <= 0)
            return more;
    }
}
