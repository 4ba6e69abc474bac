/* registry: image references, registry credentials, the image allowlist, pull failures. */
#include "registry.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

#define DOCKER_HUB_SERVER "https://index.docker.io/v1/"

static bool has_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return true;
    return false;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* ---- references ---------------------------------------------------------------------------- */

/* Docker Hub under one of its names ("index.docker.io" is how older clients wrote it). */
static bool is_hub_host(const char *s, size_t len)
{
    static const char *const hub[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
    for (size_t i = 0; i < sizeof(hub) / sizeof(hub[0]); i++)
        if (strlen(hub[i]) == len && strncasecmp(s, hub[i], len) == 0)
            return true;
    return false;
}

static bool is_host_component(const char *s, size_t len)
{
    return memchr(s, '.', len) || memchr(s, ':', len) ||
           (len == 9 && memcmp(s, "localhost", 9) == 0);
}

int registry_ref_parse(const char *ref, struct registry_ref *ret)
{
    struct registry_ref r = {0};
    size_t len, name_len;
    const char *at, *slash, *colon, *first_slash;

    if (!ref)
        return -EINVAL;
    len = strlen(ref);
    if (len == 0 || len > REGISTRY_MAX_REF || has_blank(ref, len))
        return -EINVAL;
    at = strchr(ref, '@');
    name_len = at ? (size_t)(at - ref) : len;
    if (at) {
        if (at[1] == '\0' || strchr(at + 1, '@') || strchr(at + 1, '/'))
            return -EINVAL;
        snprintf(r.tag, sizeof(r.tag), "%s", at + 1);
        r.has_digest = true;
    }
    /* A tag is after the last ':' of the last path component. */
    slash = memrchr(ref, '/', name_len);
    colon = memrchr(slash ? slash : ref, ':', name_len - (size_t)(slash ? slash - ref : 0));
    if (colon) {
        size_t tag_len = name_len - (size_t)(colon - ref) - 1;
        if (tag_len == 0)
            return -EINVAL;
        if (!r.has_digest)
            snprintf(r.tag, sizeof(r.tag), "%.*s", (int)tag_len, colon + 1);
        name_len = (size_t)(colon - ref);
    } else if (!r.has_digest) {
        snprintf(r.tag, sizeof(r.tag), "latest");
    }
    if (name_len == 0)
        return -EINVAL;
    /* No empty path component: no leading, trailing or double '/'. */
    if (ref[0] == '/' || ref[name_len - 1] == '/')
        return -EINVAL;
    for (size_t i = 1; i < name_len; i++)
        if (ref[i] == '/' && ref[i - 1] == '/')
            return -EINVAL;
    snprintf(r.name, sizeof(r.name), "%.*s", (int)name_len, ref);
    first_slash = memchr(ref, '/', name_len);
    if (first_slash && is_host_component(ref, (size_t)(first_slash - ref)) &&
        !is_hub_host(ref, (size_t)(first_slash - ref)))
        snprintf(r.host, sizeof(r.host), "%.*s", (int)(first_slash - ref), ref);
    else
        snprintf(r.host, sizeof(r.host), "%s", REGISTRY_DOCKER_HUB);
    *ret = r;
    return 0;
}

/* ---- credentials --------------------------------------------------------------------------- */

struct cred {
    char *host; /* normalized: host[:port], REGISTRY_DOCKER_HUB for Docker Hub */
    char *username;
    char *password;
};

struct registry_creds {
    struct cred *v;
    size_t n;
};

registry_creds *registry_creds_new(void)
{
    return calloc(1, sizeof(registry_creds));
}

size_t registry_creds_count(const registry_creds *c)
{
    return c ? c->n : 0;
}

static void cred_clear(struct cred *e)
{
    free(e->host);
    wipe_free(e->username);
    wipe_free(e->password);
    memset(e, 0, sizeof(*e));
}

void registry_creds_free(registry_creds *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        cred_clear(&c->v[i]);
    free(c->v);
    free(c);
}

/* "https://registry.example:5000/v1/" -> "registry.example:5000"; Docker Hub's aliases ->
 * REGISTRY_DOCKER_HUB. malloc'd; NULL when nothing is left or on ENOMEM. */
static char *normalize_host(const char *key)
{
    const char *p = key, *end;

    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    end = strchr(p, '/');
    if (!end)
        end = p + strlen(p);
    if (end == p)
        return NULL;
    if (is_hub_host(p, (size_t)(end - p)))
        return strdup(REGISTRY_DOCKER_HUB);
    return strndup(p, (size_t)(end - p));
}

static const struct cred *cred_find(const registry_creds *c, const char *host)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (strcasecmp(c->v[i].host, host) == 0)
            return &c->v[i];
    return NULL;
}

int registry_creds_add_json(registry_creds *c, const char *json, size_t len, const char *source,
                            struct ct_error *err)
{
    json_error_t jerr;
    json_t *root;
    const char *key;
    json_t *val;
    struct cred *added = NULL;
    size_t n_added = 0, n;
    int r = -EINVAL;

    if (!c || !json)
        return -EINVAL;
    /* jansson's message quotes the text near the error, which may be a password: only the
     * position is reported. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ct_error_set(err, -EINVAL, "invalid %s: not valid JSON (line %d, column %d)", source,
                            jerr.line, jerr.column);
    if (!json_is_object(root)) {
        ct_error_set(err, -EINVAL,
                     "invalid %s: expected an object {\"host:port\": {\"username\": ..., "
                     "\"password\": ...}}",
                     source);
        goto out;
    }
    n = json_object_size(root);
    added = calloc(n ? n : 1, sizeof(*added));
    if (!added) {
        r = ct_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    json_object_foreach(root, key, val)
    {
        struct cred *e = &added[n_added];
        json_t *user = json_object_get(val, "username");
        json_t *pass = json_object_get(val, "password");
        const char *k;
        json_t *v;

        if (has_blank(key, strlen(key)) || !(e->host = normalize_host(key))) {
            ct_error_set(err, -EINVAL, "invalid %s: \"%.100s\" is not a registry host", source,
                         key);
            goto out;
        }
        n_added++;
        if (!json_is_object(val) || !json_is_string(user) || !*json_string_value(user) ||
            !json_is_string(pass)) {
            ct_error_set(
                err, -EINVAL,
                "invalid %s: \"%.100s\" needs {\"username\": \"...\", \"password\": \"...\"}",
                source, key);
            goto out;
        }
        json_object_foreach(val, k, v)
        {
            if (strcmp(k, "username") != 0 && strcmp(k, "password") != 0) {
                ct_error_set(err, -EINVAL, "invalid %s: \"%.100s\": unknown field \"%.40s\"",
                             source, key, k);
                goto out;
            }
        }
        if (cred_find(c, e->host)) {
            ct_error_set(err, -EINVAL, "invalid %s: registry \"%.100s\" is given twice", source,
                         e->host);
            goto out;
        }
        for (size_t i = 0; i + 1 < n_added; i++) {
            if (strcasecmp(added[i].host, e->host) == 0) {
                ct_error_set(err, -EINVAL, "invalid %s: registry \"%.100s\" is given twice", source,
                             e->host);
                goto out;
            }
        }
        e->username = strdup(json_string_value(user));
        e->password = strdup(json_string_value(pass));
        if (!e->username || !e->password) {
            r = ct_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
    }
    if (n_added > 0) {
        struct cred *v = realloc(c->v, (c->n + n_added) * sizeof(*v));
        if (!v) {
            r = ct_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        memcpy(v + c->n, added, n_added * sizeof(*v));
        c->v = v;
        c->n += n_added;
        n_added = 0; /* owned by c now */
    }
    r = 0;
out:
    for (size_t i = 0; i < n_added; i++)
        cred_clear(&added[i]);
    free(added);
    json_decref(root);
    return r;
}

char *registry_base64url(const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

int registry_auth_header(const registry_creds *c, const char *host, char **ret)
{
    const struct cred *e = host ? cred_find(c, host) : NULL;
    json_t *obj;
    char *text, *auth;

    if (!e) {
        *ret = NULL;
        return 1;
    }
    obj = json_pack("{s:s, s:s, s:s}", "username", e->username, "password", e->password,
                    "serveraddress",
                    strcmp(e->host, REGISTRY_DOCKER_HUB) == 0 ? DOCKER_HUB_SERVER : e->host);
    if (!obj)
        return -ENOMEM;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return -ENOMEM;
    auth = registry_base64url(text, strlen(text));
    wipe_free(text);
    if (!auth)
        return -ENOMEM;
    *ret = auth;
    return 0;
}

void registry_auth_free(char *auth)
{
    wipe_free(auth);
}

/* ---- allowlist ----------------------------------------------------------------------------- */

struct registry_allowlist {
    char **patterns;
    size_t n;
};

void registry_allowlist_free(registry_allowlist *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->patterns[i]);
    free(a->patterns);
    free(a);
}

size_t registry_allowlist_count(const registry_allowlist *a)
{
    return a ? a->n : 0;
}

int registry_allowlist_parse(const char *list, const char *source, registry_allowlist **ret,
                             struct ct_error *err)
{
    registry_allowlist *a = calloc(1, sizeof(*a));
    size_t cap = 1;
    int r = -ENOMEM;

    if (!a)
        return ct_error_set(err, -ENOMEM, "out of memory");
    for (const char *p = list; p && *p; p++)
        cap += *p == ',';
    a->patterns = calloc(cap, sizeof(char *));
    if (!a->patterns)
        goto nomem;
    for (const char *p = list && *list ? list : NULL; p;) {
        const char *s;
        size_t len;
        p = text_list_item(p, &s, &len);
        const char *e = s + len;
        if (e > s) {
            if (has_blank(s, (size_t)(e - s)) || (size_t)(e - s) > REGISTRY_MAX_REF) {
                r = ct_error_set(err, -EINVAL, "invalid %s: bad pattern \"%.*s\"", source,
                                 (int)((e - s) < 100 ? (e - s) : 100), s);
                goto fail;
            }
            a->patterns[a->n] = strndup(s, (size_t)(e - s));
            if (!a->patterns[a->n])
                goto nomem;
            a->n++;
        }
    }
    if (a->n == 0) {
        r = ct_error_set(err, -EINVAL,
                         "invalid %s: no pattern (a comma-separated list such as "
                         "\"registry.example/*,correction-*\")",
                         source);
        goto fail;
    }
    *ret = a;
    return 0;
nomem:
    r = ct_error_set(err, -ENOMEM, "out of memory");
fail:
    registry_allowlist_free(a);
    return r;
}

static bool pattern_match(const char *pat, const char *ref)
{
    size_t plen = strlen(pat);
    char buf[REGISTRY_MAX_REF + 1];

    if (fnmatch(pat, ref, FNM_PATHNAME) == 0)
        return true;
    if (plen < 2 || strcmp(pat + plen - 2, "/*") != 0)
        return false;
    /* A pattern "<prefix>/" + "*": the prefix pattern against every prefix of ref that ends
     * before a '/', with something after that '/'. */
    snprintf(buf, sizeof(buf), "%.*s", (int)(plen - 2), pat);
    char *prefix = strdup(buf);
    bool ok = false;
    if (!prefix)
        return false;
    for (const char *s = strchr(ref, '/'); s && !ok; s = strchr(s + 1, '/')) {
        if (s[1] == '\0')
            break;
        snprintf(buf, sizeof(buf), "%.*s", (int)(s - ref), ref);
        ok = fnmatch(prefix, buf, FNM_PATHNAME) == 0;
    }
    free(prefix);
    return ok;
}

/* The pattern names a tag or a digest (a ':' in its last component, or an '@'). */
static bool pattern_has_tag(const char *pat)
{
    const char *slash = strrchr(pat, '/');
    return strchr(pat, '@') || strchr(slash ? slash : pat, ':');
}

bool registry_allowlist_match(const registry_allowlist *a, const char *ref)
{
    struct registry_ref r;
    char with_tag[REGISTRY_MAX_REF + 16];
    bool bare;

    if (!a || registry_ref_parse(ref, &r) < 0)
        return false;
    /* Neither tag nor digest: ":latest" is implied. */
    bare = !r.has_digest && strcmp(r.name, ref) == 0;
    snprintf(with_tag, sizeof(with_tag), "%s:latest", ref);
    for (size_t i = 0; i < a->n; i++) {
        const char *pat = a->patterns[i];
        if (pattern_match(pat, ref) || (bare && pattern_match(pat, with_tag)) ||
            (!pattern_has_tag(pat) && pattern_match(pat, r.name)))
            return true;
    }
    return false;
}

/* ---- pull failures ------------------------------------------------------------------------- */

static bool contains_any(const char *s, const char *const *needles)
{
    for (; *needles; needles++)
        if (strcasestr(s, *needles))
            return true;
    return false;
}

enum registry_pull_fault registry_pull_classify(int err, long status, const char *message)
{
    static const char *const denied[] = {"unauthorized",
                                         "authentication required",
                                         "no basic auth credentials",
                                         "access denied",
                                         "denied:",
                                         "incorrect username or password",
                                         "forbidden",
                                         NULL};
    static const char *const missing[] = {"manifest unknown", "name unknown",
                                          "repository does not exist", "not found", NULL};
    /* a layer the registry lists but cannot serve: its fault, not the image name's (Docker
     * says "unknown blob"; Podman "reading blob ...: Error fetching blob: invalid status code
     * from registry 404 (Not Found)", which the missing rules below would take) */
    static const char *const lost_blob[] = {"reading blob", "fetching blob", NULL};
    const char *m = message ? message : "";

    if (err != 0 || contains_any(m, lost_blob))
        return REGISTRY_PULL_INFRA;
    if (status == 401 || status == 403 || contains_any(m, denied))
        return REGISTRY_PULL_DENIED;
    if (status >= 400 && status < 500)
        return REGISTRY_PULL_NOT_FOUND;
    if (contains_any(m, missing))
        return REGISTRY_PULL_NOT_FOUND;
    return REGISTRY_PULL_INFRA;
}
