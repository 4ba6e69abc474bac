/* Fuzz target: common/registry.c, the starter's reading of image references (from jobs), of
 * registry credentials (DOCKER_REGISTRY_CREDENTIALS and its file), of ALLOWED_IMAGES, and of
 * pull failures (the engine's and registries' messages).
 *
 * Input: byte 0 picks the part; the rest is its text. Invariants:
 * - a parsed reference is rebuilt exactly from name, tag/digest; its name (without a ':' past
 *   the host) parses to itself on the same host;
 * - credentials: a second add of the same text is refused (hosts given twice) and adds nothing;
 *   each X-Registry-Auth header decodes (base64url, checked by a decoder written here) to the
 *   username and password given for its host; no error message holds a password (one with
 *   a character that no message text has, and that is not also a key);
 * - the allowlist ("<list>\n--\n<reference>"): parsed lists are not empty, every plain pattern
 *   (no glob character) that is a reference matches itself, and matching any reference
 *   terminates without crash;
 * - a pull failure is always one of the three faults;
 * - nothing leaks (ASan). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "registry.h"

static void check_ref(const char *s)
{
    struct registry_ref r;
    if (registry_ref_parse(s, &r) < 0)
        return;
    FUZZ_CHECK(r.name[0] && r.tag[0] && r.host[0]);
    char rebuilt[3 * REGISTRY_MAX_REF];
    if (r.has_digest) {
        const char *at = strchr(s, '@');
        FUZZ_CHECK(at && strcmp(at + 1, r.tag) == 0);
        size_t nl = strlen(r.name);
        FUZZ_CHECK(strncmp(s, r.name, nl) == 0 && (s + nl == at || s[nl] == ':'));
    } else {
        snprintf(rebuilt, sizeof(rebuilt), "%s:%s", r.name, r.tag);
        FUZZ_CHECK(strcmp(rebuilt, s) == 0 ||
                   (strcmp(r.tag, "latest") == 0 && strcmp(r.name, s) == 0));
    }
    /* The name alone is the same repository on the same host, unless it holds a ':' after
     * its host (Docker refuses such a name; the engine's answer then ends the job). */
    const char *slash = strchr(r.name, '/');
    if (!strchr(slash && strcmp(r.host, REGISTRY_DOCKER_HUB) != 0 ? slash : r.name, ':')) {
        struct registry_ref n;
        FUZZ_CHECK(registry_ref_parse(r.name, &n) == 0);
        FUZZ_CHECK(strcmp(n.name, r.name) == 0 && strcmp(n.host, r.host) == 0);
        FUZZ_CHECK(!n.has_digest && strcmp(n.tag, "latest") == 0);
    }
}

static int b64url_value(char c)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? strchr(tab, c) : NULL;
    return p ? (int)(p - tab) : -1;
}

/* Decodes base64url with padding; NULL when it is not that. */
static char *b64url_decode(const char *s, size_t *ret_len)
{
    size_t n = strlen(s);
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    FUZZ_CHECK(out);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' && i + 4 == n && k >= 2 ? 0 : b64url_value(s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
            free(out);
            return NULL;
        }
        unsigned x =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (char)(x >> 16);
        if (s[i + 2] != '=')
            out[o++] = (char)(x >> 8);
        if (s[i + 3] != '=')
            out[o++] = (char)x;
    }
    out[o] = '\0';
    *ret_len = o;
    return out;
}

/* Whether s occurs as (part of) any key in v: such a password may be echoed as a host name. */
static bool in_keys(const json_t *v, const char *s)
{
    const char *key;
    json_t *m;
    if (!json_is_object(v))
        return false;
    json_object_foreach((json_t *)v, key, m)
    {
        if (strstr(key, s) || in_keys(m, s))
            return true;
    }
    return false;
}

static void check_no_password(const json_t *root, const struct ct_error *err)
{
    const char *key;
    json_t *entry;
    if (!json_is_object(root))
        return;
    json_object_foreach((json_t *)root, key, entry)
    {
        const char *pw = json_string_value(json_object_get(entry, "password"));
        /* Only passwords with a character no message text has can be told from it. */
        if (pw && strpbrk(pw, "#$%&!~^|<>") && !in_keys(root, pw))
            FUZZ_CHECK(!strstr(err->msg, pw));
    }
}

static void check_creds(const char *text, size_t len)
{
    registry_creds *c = registry_creds_new();
    FUZZ_CHECK(c);
    struct ct_error err = {0};
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    int r = registry_creds_add_json(c, text, len, "CT_FUZZ_CREDENTIALS", &err);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(registry_creds_count(c) == 0);
        FUZZ_CHECK(strstr(err.msg, "CT_FUZZ_CREDENTIALS"));
        check_no_password(root, &err);
    } else {
        size_t n = registry_creds_count(c);
        FUZZ_CHECK(json_is_object(root) && n == json_object_size(root));
        if (n > 0) {
            err = (struct ct_error){0};
            FUZZ_CHECK(registry_creds_add_json(c, text, len, "CT_FUZZ_CREDENTIALS", &err) ==
                       -EINVAL);
            FUZZ_CHECK(registry_creds_count(c) == n);
            FUZZ_CHECK(strstr(err.msg, "given twice"));
            check_no_password(root, &err);
        }
        const char *key;
        json_t *entry;
        json_object_foreach(root, key, entry)
        {
            /* The host as an image reference names it. */
            char ref[REGISTRY_MAX_REF + 8];
            const char *h = key;
            if (strncasecmp(h, "https://", 8) == 0)
                h += 8;
            else if (strncasecmp(h, "http://", 7) == 0)
                h += 7;
            snprintf(ref, sizeof(ref), "%.*s/x", (int)strcspn(h, "/"), h);
            struct registry_ref rr;
            if (registry_ref_parse(ref, &rr) < 0 || strcmp(rr.host, REGISTRY_DOCKER_HUB) == 0)
                continue;
            char *auth = NULL;
            FUZZ_CHECK(registry_auth_header(c, rr.host, &auth) == 0 && auth);
            size_t dl;
            char *dec = b64url_decode(auth, &dl);
            FUZZ_CHECK(dec);
            json_t *a = json_loadb(dec, dl, 0, NULL);
            FUZZ_CHECK(json_is_object(a));
            FUZZ_CHECK(
                json_equal(json_object_get(a, "username"), json_object_get(entry, "username")));
            FUZZ_CHECK(
                json_equal(json_object_get(a, "password"), json_object_get(entry, "password")));
            json_decref(a);
            free(dec);
            registry_auth_free(auth);
        }
    }
    char *none = (char *)"x";
    FUZZ_CHECK(registry_auth_header(c, "no such registry", &none) == 1 && !none);
    json_decref(root);
    registry_creds_free(c);
}

static void check_allowlist(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t al, bl;
    fuzz_split(data, size, &a, &al, &b, &bl);
    char *list = fuzz_strndup(a, al), *ref = fuzz_strndup(b, bl);
    registry_allowlist *allow = NULL;
    struct ct_error err = {0};
    int r = registry_allowlist_parse(list, "ALLOWED_IMAGES", &allow, &err);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL && strstr(err.msg, "ALLOWED_IMAGES") && !allow);
    } else {
        FUZZ_CHECK(registry_allowlist_count(allow) >= 1);
        (void)registry_allowlist_match(allow, ref);
        /* Every plain pattern that is a reference matches itself. */
        char *copy = strdup(list), *save = NULL;
        FUZZ_CHECK(copy);
        for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            while (*p == ' ' || *p == '\t')
                p++;
            size_t n = strlen(p);
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                p[--n] = '\0';
            struct registry_ref rr;
            if (strpbrk(p, "*?[\\") || registry_ref_parse(p, &rr) < 0)
                continue;
            FUZZ_CHECK(registry_allowlist_match(allow, p));
        }
        free(copy);
        registry_allowlist_free(allow);
    }
    free(list);
    free(ref);
}

static void check_classify(const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    static const int errs[] = {0, -ETIMEDOUT, -ECONNREFUSED, -EIO};
    long status = (long)(data[1] | data[2] << 8) % 600;
    char *msg = fuzz_strndup(data + 3, size - 3);
    enum registry_pull_fault f = registry_pull_classify(errs[data[0] & 3], status, msg);
    FUZZ_CHECK(f == REGISTRY_PULL_NOT_FOUND || f == REGISTRY_PULL_DENIED ||
               f == REGISTRY_PULL_INFRA);
    if (errs[data[0] & 3])
        FUZZ_CHECK(f == REGISTRY_PULL_INFRA);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 1)
        return 0;
    char *s = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        check_ref(s);
        break;
    case 1:
        check_creds(s, size - 1);
        break;
    case 2:
        check_allowlist(data + 1, size - 1);
        break;
    case 3:
        check_classify(data + 1, size - 1);
        break;
    }
    free(s);
    return 0;
}
