/* hostlist: see hostlist.h. */
#include "hostlist.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

/* One entry, [p, end) without blanks around it. */
static int parse_entry(const char *p, const char *end, int default_port, struct hostlist_node *node,
                       char *why, size_t whylen)
{
    const char *host = p, *host_end, *port = NULL;
    bool v6 = false;
    if (p < end && *p == '[') {
        v6 = true;
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end) {
            snprintf(why, whylen, "an IPv6 address without its closing ']'");
            return -EINVAL;
        }
        if (host_end + 1 < end) {
            if (host_end[1] != ':') {
                snprintf(why, whylen, "after ']' only \":port\" may follow");
                return -EINVAL;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end)
            port = host_end + 1;
        else
            host_end = end;
    }
    size_t n = (size_t)(host_end - host);
    if (n == 0) {
        snprintf(why, whylen, "an empty host");
        return -EINVAL;
    }
    if (n > HOSTLIST_HOST_MAX) {
        snprintf(why, whylen, "a host longer than %d bytes", HOSTLIST_HOST_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (v6 ? !v6_char(host[i]) : !name_char(host[i])) {
            snprintf(why, whylen, "\"%.*s\" is not a host name or address (IPv6 goes in [])",
                     (int)(n > 64 ? 64 : n), host);
            return -EINVAL;
        }
    }
    int portnum = default_port;
    if (port) {
        if (port == end || end - port > 5) {
            snprintf(why, whylen, "a port must be 1 to 65535");
            return -EINVAL;
        }
        portnum = 0;
        for (const char *q = port; q < end; q++) {
            if (*q < '0' || *q > '9') {
                snprintf(why, whylen, "a port must be 1 to 65535");
                return -EINVAL;
            }
            portnum = portnum * 10 + (*q - '0');
        }
    }
    if (portnum < 1 || portnum > 65535) {
        snprintf(why, whylen, "a port must be 1 to 65535");
        return -EINVAL;
    }
    memcpy(node->host, host, n);
    node->host[n] = '\0';
    node->port = portnum;
    return 0;
}

int hostlist_parse(const char *text, int default_port, struct hostlist *out, char *why,
                   size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (!text) {
        snprintf(why, whylen, "no host");
        return -EINVAL;
    }
    for (const char *next = text; next;) {
        const char *p;
        size_t len;
        next = text_list_item(next, &p, &len);
        const char *end = p + len;
        if (out->n == HOSTLIST_MAX) {
            snprintf(why, whylen, "more than %d hosts", HOSTLIST_MAX);
            return -EINVAL;
        }
        char entry_why[160];
        if (parse_entry(p, end, default_port, &out->node[out->n], entry_why, sizeof(entry_why)) <
            0) {
            snprintf(why, whylen, "entry %zu: %s", out->n + 1, entry_why);
            return -EINVAL;
        }
        out->n++;
    }
    return 0;
}

void hostlist_node_text(const struct hostlist_node *node, char *buf, size_t len)
{
    if (strchr(node->host, ':'))
        snprintf(buf, len, "[%s]:%d", node->host, node->port);
    else
        snprintf(buf, len, "%s:%d", node->host, node->port);
}
