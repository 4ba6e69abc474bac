#include "msg.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ids.h"
#include "text.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

void msg_error_set(struct msg_error *err, const char *reason, const char *fmt, ...)
{
    if (!err)
        return;
    /* Details quote outside text, often cut at a byte count ("%.300s"): made valid UTF-8 here,
     * once, so that every error can enter JSON and logs. */
    char tmp[2 * sizeof(err->detail)];
    text_utf8_copy(err->reason, sizeof(err->reason), reason, strlen(reason));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    text_utf8_copy(err->detail, sizeof(err->detail), tmp,
                   (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

const char *msg_error_text(const struct msg_error *err, char *buf, size_t len)
{
    snprintf(buf, len, "%s - %s", err->reason, err->detail);
    return buf;
}

/* Parses a JSON object of at most max_len bytes. */
static json_t *load_object(const void *body, size_t len, size_t max_len, struct msg_error *err,
                           int *ret_errno)
{
    *ret_errno = -EINVAL;
    if (len > max_len) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE,
                      "message of %zu bytes exceeds the limit of %zu", len, max_len);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root && json_error_code(&je) == json_error_out_of_memory) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "out of memory");
        *ret_errno = -ENOMEM;
        return NULL;
    }
    if (!root) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "not valid JSON: %s at line %d column %d",
                      je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "expected a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

/* work_id: absent/null, a string, or a number. *ret gets a new reference or NULL. */
static int take_work_id(json_t *root, json_t **ret, struct msg_error *err)
{
    json_t *w = json_object_get(root, "work_id");
    if (!w || json_is_null(w)) {
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(w) && !json_is_number(w)) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE,
                      "field 'work_id' must be a string or a number");
        return -EINVAL;
    }
    if (json_is_string(w) && json_string_length(w) > MSG_MAX_WORK_ID_BYTES) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "field 'work_id' is longer than %d bytes",
                      MSG_MAX_WORK_ID_BYTES);
        return -EINVAL;
    }
    *ret = json_incref(w);
    return 0;
}

/* A required (or optional) string field without control characters, 1..max_len bytes. */
static int take_string(json_t *root, const char *field, bool required, size_t max_len, char **ret,
                       struct msg_error *err)
{
    json_t *v = json_object_get(root, field);
    if (!v || json_is_null(v)) {
        if (!required) {
            *ret = NULL;
            return 0;
        }
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "missing field '%s'", field);
        return -EINVAL;
    }
    if (!json_is_string(v)) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "field '%s' must be a string", field);
        return -EINVAL;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "field '%s' is empty", field);
        return -EINVAL;
    }
    if (n > max_len) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "field '%s' is longer than %zu bytes", field,
                      max_len);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            msg_error_set(err, MSG_REASON_INVALID_MESSAGE,
                          "field '%s' contains a control character", field);
            return -EINVAL;
        }
    }
    char *copy = strdup(s);
    if (!copy) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "out of memory");
        return -ENOMEM;
    }
    *ret = copy;
    return 0;
}

void msg_work_id_text(const json_t *work_id, char *buf, size_t len)
{
    buf[0] = '\0';
    if (json_is_string(work_id)) {
        snprintf(buf, len, "%s", json_string_value(work_id));
    } else if (work_id) {
        char *w = json_dumps(work_id, JSON_ENCODE_ANY | JSON_COMPACT);
        if (w)
            snprintf(buf, len, "%s", w);
        free(w);
    }
}

int msg_validate_callback(const char *url, struct msg_error *err)
{
    if (!url || !*url) {
        msg_error_set(err, MSG_REASON_INVALID_CALLBACK, "empty callback URL");
        return -EINVAL;
    }
    if (strlen(url) > MSG_MAX_URL_BYTES) {
        msg_error_set(err, MSG_REASON_INVALID_CALLBACK, "callback URL longer than %d bytes",
                      MSG_MAX_URL_BYTES);
        return -EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            msg_error_set(err, MSG_REASON_INVALID_CALLBACK,
                          "callback URL contains a space or control character");
            return -EINVAL;
        }
    }
    /* The scheme first: curl would accept (and guess) others. */
    /* Quoted redacted: its credentials never reach a log or a parked message's header. */
    char shown[256];
    text_redact_url(shown, sizeof(shown), url);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        msg_error_set(err, MSG_REASON_INVALID_CALLBACK,
                      "callback '%s' is not an http or https URL", shown);
        return -EINVAL;
    }
    int r = 0;
    CURLU *u = curl_url();
    char *host = NULL;
    if (!u) {
        msg_error_set(err, MSG_REASON_INVALID_CALLBACK, "out of memory");
        return -ENOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        msg_error_set(err, MSG_REASON_INVALID_CALLBACK, "callback '%s' is not a valid URL",
                      shown);
        r = -EINVAL;
    }
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

int msg_validate_param(const char *s, struct msg_error *err)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        msg_error_set(err, MSG_REASON_INVALID_PARAM, "'%.100s' is not NAME=VALUE", s);
        return -EINVAL;
    }
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        msg_error_set(err, MSG_REASON_INVALID_PARAM,
                      "'%.100s': a variable name must start with a letter or '_'", s);
        return -EINVAL;
    }
    for (const char *p = s; p < eq; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_')) {
            msg_error_set(err, MSG_REASON_INVALID_PARAM,
                          "'%.100s': a variable name may hold only letters, digits and '_'", s);
            return -EINVAL;
        }
    }
    return 0;
}

static int take_params(json_t *root, struct pending_job *job, struct msg_error *err)
{
    json_t *p = json_object_get(root, "params");
    if (!p || json_is_null(p))
        return 0;
    if (!json_is_array(p)) {
        msg_error_set(err, MSG_REASON_INVALID_PARAM, "field 'params' must be an array of strings");
        return -EINVAL;
    }
    size_t n = json_array_size(p);
    if (n > MSG_MAX_PARAMS) {
        msg_error_set(err, MSG_REASON_INVALID_PARAM, "more than %d params", MSG_MAX_PARAMS);
        return -EINVAL;
    }
    if (n == 0)
        return 0;
    job->params = calloc(n, sizeof(char *));
    if (!job->params)
        return -ENOMEM;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(p, i);
        if (!json_is_string(e)) {
            msg_error_set(err, MSG_REASON_INVALID_PARAM, "params[%zu] must be a string", i);
            return -EINVAL;
        }
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        if (strlen(s) != len) {
            msg_error_set(err, MSG_REASON_INVALID_PARAM, "params[%zu] contains a NUL character", i);
            return -EINVAL;
        }
        total += len;
        if (total > MSG_MAX_PARAM_BYTES) {
            msg_error_set(err, MSG_REASON_INVALID_PARAM, "params exceed %d bytes in all",
                          MSG_MAX_PARAM_BYTES);
            return -EINVAL;
        }
        if (msg_validate_param(s, err) < 0)
            return -EINVAL;
        job->params[i] = strdup(s);
        if (!job->params[i])
            return -ENOMEM;
        job->n_params = i + 1;
    }
    return 0;
}

static int check_image(const char *image, struct msg_error *err)
{
    for (const char *p = image; *p; p++) {
        if (isspace((unsigned char)*p) || *p == '"' || *p == '\\') {
            msg_error_set(err, MSG_REASON_INVALID_MESSAGE,
                          "field 'image' is not an image reference: '%.100s'", image);
            return -EINVAL;
        }
    }
    return 0;
}

/* The fields the running and finished messages end with: callback (required) and job_id. */
static int take_tail(json_t *root, char **callback, char **job_id, struct msg_error *err)
{
    int r = take_string(root, "callback", true, MSG_MAX_URL_BYTES, callback, err);
    if (r == 0)
        r = take_string(root, "job_id", false, MSG_MAX_JOB_ID_BYTES, job_id, err);
    return r;
}

/* A parser's return: 0, -ENOMEM (ours), or -EINVAL (the message's). */
static int parse_status(int r)
{
    return r == 0 ? 0 : r == -ENOMEM ? -ENOMEM : -EINVAL;
}

int msg_pending_parse(const void *body, size_t len, size_t max_len, struct pending_job *ret,
                      struct msg_error *err)
{
    memset(ret, 0, sizeof(*ret));
    int lr;
    json_t *root = load_object(body, len, max_len, err, &lr);
    if (!root)
        return lr;
    int r = take_work_id(root, &ret->work_id, err);
    /* The callback first, so that a job with any other fault can still be reported. */
    char *cb = NULL;
    struct msg_error cb_err;
    int rc = take_string(root, "callback", true, MSG_MAX_URL_BYTES, &cb, &cb_err);
    if (rc == 0)
        rc = msg_validate_callback(cb, &cb_err);
    if (rc == 0)
        ret->callback = cb;
    else
        free(cb);
    if (r < 0)
        goto out;
    r = take_string(root, "image", true, MSG_MAX_IMAGE_BYTES, &ret->image, err);
    if (r == 0)
        r = check_image(ret->image, err);
    if (r == 0)
        r = take_string(root, "file", true, 4096, &ret->file, err);
    if (r == 0 && rc < 0) {
        *err = cb_err;
        r = rc;
    }
    if (r == 0)
        r = take_params(root, ret, err);
out:
    json_decref(root);
    if (r == -ENOMEM)
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "out of memory");
    return parse_status(r);
}

void msg_pending_free(struct pending_job *job)
{
    if (!job)
        return;
    json_decref(job->work_id);
    free(job->image);
    free(job->file);
    free(job->callback);
    for (size_t i = 0; i < job->n_params; i++)
        free(job->params[i]);
    free(job->params);
    memset(job, 0, sizeof(*job));
}

static int set_opt_string(json_t *o, const char *key, const char *v)
{
    if (!v)
        return 0;
    return json_object_set_new(o, key, json_string(v));
}

static char *dump(json_t *o)
{
    char *s = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    return s;
}

char *msg_running_serialize(const struct running_msg *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if ((m->work_id && json_object_set(o, "work_id", m->work_id) < 0) ||
        set_opt_string(o, "container_id", m->container_id) < 0 ||
        set_opt_string(o, "callback", m->callback) < 0 ||
        set_opt_string(o, "job_id", m->job_id) < 0) {
        json_decref(o);
        return NULL;
    }
    return dump(o);
}

int msg_running_parse(const void *body, size_t len, size_t max_len, struct running_msg *ret,
                      struct msg_error *err)
{
    struct running_msg m = {0};
    int lr;
    json_t *root = load_object(body, len, max_len, err, &lr);
    if (!root)
        return lr;
    int r = take_work_id(root, &m.work_id, err);
    if (r == 0) {
        const char *key = json_object_get(root, "container_id") ? "container_id" : "id";
        r = take_string(root, key, true, 64, &m.container_id, err);
        if (r == 0 && !ids_is_container_id(m.container_id)) {
            msg_error_set(err, MSG_REASON_INVALID_MESSAGE,
                          "field '%s' must be a 64-character container id", key);
            r = -EINVAL;
        }
    }
    if (r == 0)
        r = take_tail(root, &m.callback, &m.job_id, err);
    json_decref(root);
    if (r < 0)
        msg_running_free(&m);
    else
        *ret = m;
    return parse_status(r);
}

void msg_running_free(struct running_msg *m)
{
    if (!m)
        return;
    json_decref(m->work_id);
    free(m->container_id);
    free(m->callback);
    free(m->job_id);
    memset(m, 0, sizeof(*m));
}

char *msg_finished_serialize(const struct finished_msg *m)
{
    json_t *o = json_object();
    if (!o || !m->correction_data)
        goto fail;
    if ((m->work_id && json_object_set(o, "work_id", m->work_id) < 0) ||
        json_object_set_new(o, "error", json_boolean(m->error)) < 0 ||
        json_object_set(o, "correction_data", m->correction_data) < 0 ||
        set_opt_string(o, "callback", m->callback) < 0 ||
        set_opt_string(o, "job_id", m->job_id) < 0)
        goto fail;
    return dump(o);
fail:
    json_decref(o);
    return NULL;
}

char *msg_finished_error_serialize(json_t *work_id, const char *job_id, const char *callback,
                                   const char *text)
{
    /* The text quotes outside bytes (stderr, Docker's messages): valid UTF-8 and bounded
     * here, so that the error form always serializes. */
    char *t = text_utf8_dup(text, strlen(text), MSG_MAX_ERROR_TEXT_BYTES);
    struct finished_msg m = {
        .work_id = work_id,
        .error = true,
        .correction_data = t ? json_string(t) : NULL,
        .callback = (char *)callback,
        .job_id = (char *)job_id,
    };
    free(t);
    char *s = msg_finished_serialize(&m);
    json_decref(m.correction_data);
    return s;
}

/* The error form of text for m's job, cut as needed to fit max_bytes (JSON escapes may make
 * a text up to six times its size). */
static char *error_form_fit(const struct finished_msg *m, const char *text, size_t max_bytes,
                            size_t *ret_len)
{
    size_t keep = strlen(text);
    char *cut = strdup(text);
    if (!cut)
        return NULL;
    for (;;) {
        text_utf8_truncate(cut, keep);
        char *s = msg_finished_error_serialize(m->work_id, m->job_id, m->callback, cut);
        if (!s)
            break;
        size_t len = strlen(s);
        if (len <= max_bytes) {
            free(cut);
            *ret_len = len;
            return s;
        }
        free(s);
        if (keep == 0) {
            errno = E2BIG; /* max_bytes below MSG_MIN_MESSAGE_BYTES */
            break;
        }
        keep /= 2;
    }
    free(cut);
    return NULL;
}

char *msg_finished_serialize_fit(const struct finished_msg *m, size_t max_bytes, size_t *ret_len)
{
    size_t len;
    char *s = msg_finished_serialize(m);
    if (!s)
        return NULL;
    len = strlen(s);
    if (len > max_bytes) {
        char text[256];
        free(s);
        if (m->error && json_is_string(m->correction_data)) {
            s = error_form_fit(m, json_string_value(m->correction_data), max_bytes, &len);
        } else {
            snprintf(text, sizeof(text),
                     "%s - the result is %zu bytes once serialized, over the limit of %zu bytes "
                     "of a queue message",
                     MSG_REASON_OUTPUT_TOO_LARGE, len, max_bytes);
            s = error_form_fit(m, text, max_bytes, &len);
        }
        if (!s)
            return NULL;
    }
    if (ret_len)
        *ret_len = len;
    return s;
}

int msg_finished_parse(const void *body, size_t len, size_t max_len, struct finished_msg *ret,
                       struct msg_error *err)
{
    struct finished_msg m = {0};
    int lr;
    json_t *root = load_object(body, len, max_len, err, &lr);
    if (!root)
        return lr;
    int r = take_work_id(root, &m.work_id, err);
    if (r == 0) {
        json_t *e = json_object_get(root, "error");
        if (!json_is_boolean(e)) {
            msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "field 'error' must be true or false");
            r = -EINVAL;
        } else {
            m.error = json_is_true(e);
        }
    }
    if (r == 0) {
        json_t *d = json_object_get(root, "correction_data");
        if (m.error ? !json_is_string(d) : !json_is_object(d)) {
            msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "field 'correction_data' must be %s",
                          m.error ? "a string" : "an object");
            r = -EINVAL;
        } else {
            m.correction_data = json_incref(d);
        }
    }
    if (r == 0)
        r = take_tail(root, &m.callback, &m.job_id, err);
    json_decref(root);
    if (r < 0)
        msg_finished_free(&m);
    else
        *ret = m;
    return parse_status(r);
}

void msg_finished_free(struct finished_msg *m)
{
    if (!m)
        return;
    json_decref(m->work_id);
    json_decref(m->correction_data);
    free(m->callback);
    free(m->job_id);
    memset(m, 0, sizeof(*m));
}
