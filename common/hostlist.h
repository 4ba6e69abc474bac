/* hostlist: RABBITMQ_HOST as a list of broker nodes, "host", "host:port" or "[v6]:port",
 * separated by commas (blanks around an entry are ignored). An entry without a port takes the
 * default port (RABBITMQ_PORT). Pure: tests/unit/test_hostlist.c.
 *
 * Bounds: at most HOSTLIST_MAX entries; a host of at most HOSTLIST_HOST_MAX bytes of letters,
 * digits and "-._" (a name or an IPv4 address), or an IPv6 address in brackets (hex digits,
 * ":" and "."); a port of 1 to 65535. Anything else is refused with a reason. */
#pragma once
#include <stddef.h>

#define HOSTLIST_MAX 16
#define HOSTLIST_HOST_MAX 253

struct hostlist_node {
    char host[HOSTLIST_HOST_MAX + 1]; /* without the brackets of an IPv6 address */
    int port;
};

struct hostlist {
    struct hostlist_node node[HOSTLIST_MAX];
    size_t n;
};

/* 0, or -EINVAL with why (at most whylen bytes) set. */
int hostlist_parse(const char *text, int default_port, struct hostlist *out, char *why,
                   size_t whylen);

/* "host:port" ("[v6]:port"), for logs. */
void hostlist_node_text(const struct hostlist_node *node, char *buf, size_t len);
