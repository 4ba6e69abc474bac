/* verdict: see verdict.h. */
#include "verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "text.h"

static void fail(struct verdict *v, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct verdict *v, const char *reason, const char *fmt, ...)
{
    char text[sizeof(v->detail) + 1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    v->success = false;
    v->reason = reason;
    text_utf8_copy(v->detail, sizeof(v->detail), text, strlen(text)); /* cut at a boundary */
}

/* " (exit code N; stderr: ...)": the stderr tail made valid UTF-8. */
static void exit_context(const struct verdict_facts *f, char *buf, size_t len)
{
    size_t tl = 0;
    const char *tail = f->stderr_data ? output_tail(f->stderr_data, f->stderr_len,
                                                    VERDICT_STDERR_LINES, VERDICT_STDERR_BYTES, &tl)
                                      : "";
    char safe[VERDICT_STDERR_BYTES * 3 + 4]; /* each byte may become U+FFFD */
    text_utf8_copy(safe, sizeof(safe), tail, tl);
    if (tl)
        snprintf(buf, len, " (exit code %lld; stderr: %s)", f->exit_code, safe);
    else
        snprintf(buf, len, " (exit code %lld)", f->exit_code);
}

void verdict_decide(const struct verdict_facts *f, struct verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (f->missing) {
        fail(v, VERDICT_MISSING, "%s", f->missing);
        return;
    }
    if (f->timed_out) {
        if (f->unstarted)
            fail(v, VERDICT_TIMEOUT, "the container was not started within its %lld s", f->limit_s);
        else
            fail(v, VERDICT_TIMEOUT, "the correction ran longer than %lld s and was killed",
                 f->limit_s);
        return;
    }
    char ctx[1500];
    exit_context(f, ctx, sizeof(ctx));
    if (f->oom) {
        fail(v, VERDICT_OOM, "the container ran out of memory (limit %lld bytes)%s", f->memory,
             ctx);
        return;
    }
    if (f->out_too_large) {
        fail(v, OUTPUT_REASON_TOO_LARGE, "stdout is larger than %zu bytes", f->max_output);
        return;
    }
    if (f->has_response || !f->parse_err) {
        v->success = f->has_response;
        if (!v->success) /* a caller's mistake: no response and no reason */
            fail(v, OUTPUT_REASON_NO_RESPONSE, "no response");
        return;
    }
    char why[600];
    msg_error_text(f->parse_err, why, sizeof(why));
    if (f->output_lost) {
        fail(v, VERDICT_OUTPUT_LOST,
             "the correction finished while the Docker engine was unavailable, and what it "
             "printed then was lost; in what was kept, %s%s",
             why, ctx);
        return;
    }
    if (f->log_rotated) {
        fail(v, OUTPUT_REASON_TOO_LARGE,
             "more output than the container's log keeps (%zu bytes of stdout and stderr "
             "together, CORRECTION_LOG_SIZE): the response may have been pushed out; in what was "
             "kept, %s%s",
             f->log_bytes, why, ctx);
        return;
    }
    if (f->exit_code == 137 && f->memory > 0) {
        /* The engine loses a few OOM kills under load (the kernel's event is read after the
         * container's cgroup is gone): say what SIGKILL may mean, without claiming it. */
        fail(v, VERDICT_KILLED,
             "killed by SIGKILL before printing a response; the engine reported no out-of-memory "
             "kill, but a process that reaches its memory limit (%lld bytes) is ended this way "
             "too%s",
             f->memory, ctx);
        return;
    }
    if (f->exit_code == 137 || f->exit_code == 143) {
        fail(v, VERDICT_KILLED, "killed by a signal before printing a response%s", ctx);
        return;
    }
    fail(v, f->parse_err->reason, "%s%s", f->parse_err->detail, ctx);
}
