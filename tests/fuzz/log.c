/* Fuzz target: log_kv, through which outside text (work ids, Docker and receiver messages,
 * stderr tails) reaches the logs. The input is "<value>\n--\n<value>": two values of a line.
 *
 * Invariants, on the line written (stderr is a temporary file during the call):
 * - it is one line: ends in its only '\n', at most 8192 bytes, valid UTF-8 without NUL;
 * - unless the line was cut at its bound, each value reads back (logfmt: bare, or quoted with
 *   \" \\ \n \r \t \xHH) to exactly the bytes given, and the keys are where they should be;
 * - nothing leaks (ASan). */
#include <unistd.h>

#include "fuzz.h"
#include "log.h"

/* Reads the line as logfmt (key=value pairs, a value bare or quoted with \" \\ \n \r \t
 * \xHH) and unescapes the value of key into out: its length, or -1 when key is not there. */
static long read_value(const char *line, size_t len, const char *key, char *out)
{
    const char *p = line, *end = line + len - 1; /* without the '\n' */
    while (p < end) {
        const char *k = p, *eq = memchr(p, '=', (size_t)(end - p));
        FUZZ_CHECK(eq);
        bool want = (size_t)(eq - k) == strlen(key) && memcmp(k, key, strlen(key)) == 0;
        long n = 0;
        p = eq + 1;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                char c = *p;
                if (c == '\\') {
                    p++;
                    FUZZ_CHECK(p < end);
                    switch (*p) {
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'x': {
                        unsigned v;
                        FUZZ_CHECK(end - p > 2 && sscanf(p + 1, "%2x", &v) == 1);
                        c = (char)v;
                        p += 2;
                        break;
                    }
                    default:
                        FUZZ_CHECK(*p == '"' || *p == '\\');
                        c = *p;
                    }
                }
                if (want)
                    out[n++] = c;
            }
            FUZZ_CHECK(p < end); /* the closing quote */
            p++;
        } else {
            for (; p < end && *p != ' '; p++)
                if (want)
                    out[n++] = *p;
        }
        if (want)
            return n;
        FUZZ_CHECK(p == end || *p == ' ');
        if (p < end)
            p++;
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *tmp;
    static int saved = -1;
    if (!tmp) {
        tmp = tmpfile();
        saved = dup(STDERR_FILENO);
        FUZZ_CHECK(tmp && saved >= 0);
    }
    const uint8_t *a, *b;
    size_t al, bl;
    fuzz_split(data, size, &a, &al, &b, &bl);
    char *v1 = fuzz_strndup(a, al), *v2 = fuzz_strndup(b, bl);

    FUZZ_CHECK(ftruncate(fileno(tmp), 0) == 0);
    rewind(tmp);
    fflush(stderr);
    FUZZ_CHECK(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    log_kv(LOG_ERROR, "fuzz", "work_id", v1, "skipped", (const char *)NULL, "error", v2, NULL);
    fflush(stderr);
    FUZZ_CHECK(dup2(saved, STDERR_FILENO) >= 0);

    static char line[16384], out[16384];
    rewind(tmp);
    size_t n = fread(line, 1, sizeof(line), tmp);
    FUZZ_CHECK(n >= 1 && n <= 8192 && line[n - 1] == '\n');
    FUZZ_CHECK(memchr(line, '\n', n) == line + n - 1);
    FUZZ_CHECK(fuzz_utf8_valid(line, n) && !memchr(line, '\0', n));
    if (n < 8192 - 8) { /* not cut */
        FUZZ_CHECK(read_value(line, n, "skipped", out) == -1);
        long k = read_value(line, n, "work_id", out);
        FUZZ_CHECK(k == (long)strlen(v1) && memcmp(out, v1, (size_t)k) == 0);
        k = read_value(line, n, "error", out);
        FUZZ_CHECK(k == (long)strlen(v2) && memcmp(out, v2, (size_t)k) == 0);
    }
    free(v1);
    free(v2);
    return 0;
}
