/* docker_endpoint: the pure part of the Docker client: its configuration from the
 * environment, DOCKER_HOST parsed into an endpoint, and the URL helpers its calls use. No I/O. */
#include "docker.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "text.h"

void docker_config_defaults(struct docker_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ms = DOCKER_DEFAULT_TIMEOUT_MS;
    cfg->max_response_bytes = DOCKER_DEFAULT_MAX_RESPONSE;
    cfg->max_calls = DOCKER_DEFAULT_MAX_CALLS;
}

int docker_config_from_env(struct docker_config *cfg, struct ct_error *err)
{
    const char *host = getenv("DOCKER_HOST");
    const char *tls = getenv("DOCKER_TLS_VERIFY");
    const char *cert = getenv("DOCKER_CERT_PATH");
    struct docker_endpoint ep;
    int r;

    if (host && !*host)
        host = NULL;
    if (cert && !*cert)
        cert = NULL;
    r = docker_endpoint_parse(host, tls && *tls, &ep, err);
    if (r < 0)
        return r;
    docker_endpoint_clear(&ep);
    cfg->host = host;
    cfg->tls_verify = tls && *tls;
    cfg->cert_path = cert;
    return 0;
}

static bool valid_hostname(const char *s, size_t len)
{
    if (len == 0)
        return false;
    if (s[0] == '[') { /* IPv6 literal */
        if (len < 3 || s[len - 1] != ']')
            return false;
        for (size_t i = 1; i < len - 1; i++)
            if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
                return false;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

int docker_endpoint_parse(const char *host, bool tls, struct docker_endpoint *ret,
                          struct ct_error *err)
{
    struct docker_endpoint ep = {0};
    const char *rest, *colon, *end;
    size_t hostlen;
    unsigned long port;

    if (!host || !*host)
        host = DOCKER_DEFAULT_HOST;
    if (strncmp(host, "unix://", 7) == 0) {
        rest = host + 7;
        if (rest[0] != '/')
            return ct_error_set(err, -EINVAL,
                                "DOCKER_HOST=%s: unix:// needs an absolute socket path", host);
        if (strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return ct_error_set(err, -EINVAL, "DOCKER_HOST=%s: socket path too long", host);
        ep.base_url = strdup("http://localhost");
        ep.unix_socket = strdup(rest);
        if (!ep.base_url || !ep.unix_socket)
            goto nomem;
        *ret = ep;
        return 0;
    }
    if (strncmp(host, "tcp://", 6) != 0)
        return ct_error_set(err, -EINVAL,
                            "DOCKER_HOST=%s: expected unix:///path or tcp://host:port", host);
    rest = host + 6;
    end = rest + strlen(rest);
    if (end > rest && end[-1] == '/')
        end--;
    if (memchr(rest, '/', (size_t)(end - rest)) || memchr(rest, '@', (size_t)(end - rest)))
        return ct_error_set(err, -EINVAL, "DOCKER_HOST=%s: expected tcp://host:port without a path",
                            host);
    /* The port is after the last ':' unless that ':' is inside an IPv6 literal. */
    colon = NULL;
    for (const char *p = rest; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon && rest[0] == '[' && memchr(colon, ']', (size_t)(end - colon)))
        colon = NULL;
    hostlen = (size_t)((colon ? colon : end) - rest);
    if (!valid_hostname(rest, hostlen))
        return ct_error_set(err, -EINVAL, "DOCKER_HOST=%s: invalid host name", host);
    if (colon) {
        char *num_end;
        const char *digits = colon + 1;

        if (digits == end || !isdigit((unsigned char)*digits))
            return ct_error_set(err, -EINVAL, "DOCKER_HOST=%s: invalid port", host);
        errno = 0;
        port = strtoul(digits, &num_end, 10);
        if (errno || num_end != end || port == 0 || port > 65535)
            return ct_error_set(err, -EINVAL, "DOCKER_HOST=%s: invalid port", host);
    } else {
        port = tls ? 2376 : 2375;
    }
    ep.base_url = text_printf("%s://%.*s:%lu", tls ? "https" : "http", (int)hostlen, rest, port);
    if (!ep.base_url)
        goto nomem;
    *ret = ep;
    return 0;
nomem:
    docker_endpoint_clear(&ep);
    return ct_error_set(err, -ENOMEM, "out of memory");
}

void docker_endpoint_clear(struct docker_endpoint *ep)
{
    if (!ep)
        return;
    free(ep->base_url);
    free(ep->unix_socket);
    ep->base_url = ep->unix_socket = NULL;
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *docker_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    char *out, *o;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += unreserved(*p) ? 1 : 3;
    out = malloc(n + 1);
    if (!out)
        return NULL;
    o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

char *docker_url_join(const char *base_url, const char *path)
{
    return docker_url_join_version(base_url, DOCKER_API_VERSION, path);
}

char *docker_url_join_version(const char *base_url, const char *version, const char *path)
{
    return text_printf("%s/%s%s", base_url, version, path);
}

char *docker_path_for(const char *prefix, const char *id, const char *suffix)
{
    char *enc = docker_url_encode(id), *s;

    if (!enc)
        return NULL;
    s = text_printf("%s%s%s", prefix, enc, suffix ? suffix : "");
    free(enc);
    return s;
}

int docker_query_add(char **path, const char *key, const char *value)
{
    char *enc = docker_url_encode(value), *s;

    if (!enc)
        return -ENOMEM;
    s = text_printf("%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', key, enc);
    free(enc);
    if (!s)
        return -ENOMEM;
    free(*path);
    *path = s;
    return 0;
}

/* The segment i of a path without its query ("" past the last), into buf. */
static const char *segment(const char *path, size_t i, char *buf, size_t len)
{
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/?");
        if (i == 0) {
            snprintf(buf, len, "%.*s", (int)n, p);
            return buf;
        }
        if (!n || p[n] != '/')
            break;
        p += n;
        i--;
    }
    buf[0] = '\0';
    return buf;
}

static size_t segments(const char *path)
{
    size_t n = 0;
    char buf[64];
    while (*segment(path, n, buf, sizeof(buf)))
        n++;
    return n;
}

const char *docker_api_label(const char *method, const char *path)
{
    static const char *const container_ops[] = {"start", "logs",   "archive", "kill",  "wait",
                                                "stop",  "attach", "top",     "stats", NULL};
    char a[64], b[64], last[64];
    size_t n = segments(path);
    segment(path, 0, a, sizeof(a));
    segment(path, 1, b, sizeof(b));
    segment(path, n ? n - 1 : 0, last, sizeof(last));
    bool get = strcmp(method, "GET") == 0;
    if (strcmp(a, "_ping") == 0)
        return "ping";
    if (n == 1 && strcmp(a, "version") == 0)
        return "version";
    if (n == 1 && strcmp(a, "info") == 0)
        return "info";
    if (n == 1 && strcmp(a, "events") == 0)
        return "events";
    if (strcmp(a, "containers") == 0) {
        if (n == 2 && strcmp(b, "create") == 0)
            return "containers/create";
        if (n == 2 && strcmp(b, "json") == 0)
            return "containers/list";
        if (n == 2 && strcmp(method, "DELETE") == 0)
            return "containers/delete";
        if (n == 3 && strcmp(last, "json") == 0)
            return "containers/inspect";
        if (n == 3 && strcmp(last, "archive") == 0)
            return strcmp(method, "HEAD") == 0 ? "containers/stat" : "containers/archive";
        for (size_t i = 0; n == 3 && container_ops[i]; i++)
            if (strcmp(last, container_ops[i]) == 0) {
                static const char *const labels[] = {
                    "containers/start",  "containers/logs", "containers/archive",
                    "containers/kill",   "containers/wait", "containers/stop",
                    "containers/attach", "containers/top",  "containers/stats"};
                return labels[i];
            }
        return "containers/other";
    }
    if (strcmp(a, "images") == 0) {
        if (n == 2 && strcmp(b, "create") == 0)
            return "images/create";
        if (n >= 3 && get && strcmp(last, "json") == 0)
            return "images/inspect";
        return "images/other";
    }
    if (strcmp(a, "networks") == 0)
        return get ? "networks/inspect" : "networks/other";
    return "other";
}
