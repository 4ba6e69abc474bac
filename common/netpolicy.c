#include "netpolicy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int netpolicy_parse_allow(const char *list, struct netpolicy *p)
{
    p->allow_hosts = NULL;
    p->n_allow = 0;
    if (!list || !*list)
        return 0;
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int r = 0;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char **n = realloc(p->allow_hosts, (p->n_allow + 1) * sizeof(*n));
        if (!n) {
            r = -ENOMEM;
            break;
        }
        p->allow_hosts = n;
        if (!(p->allow_hosts[p->n_allow] = strdup(tok))) {
            r = -ENOMEM;
            break;
        }
        p->n_allow++;
    }
    free(copy);
    if (r == 0 && p->n_allow == 0)
        r = -EINVAL;
    if (r < 0)
        netpolicy_free(p);
    return r;
}

void netpolicy_free(struct netpolicy *p)
{
    for (size_t i = 0; i < p->n_allow; i++)
        free(p->allow_hosts[i]);
    free(p->allow_hosts);
    p->allow_hosts = NULL;
    p->n_allow = 0;
}

bool netpolicy_host_allowed(const struct netpolicy *p, const char *host)
{
    if (!p->allow_hosts)
        return true;
    size_t hl = strlen(host);
    for (size_t i = 0; i < p->n_allow; i++) {
        const char *a = p->allow_hosts[i];
        if (a[0] == '*' && a[1] == '.') {
            size_t sl = strlen(a + 1); /* ".suffix" */
            if (hl > sl && strcasecmp(host + hl - sl, a + 1) == 0)
                return true;
        } else if (strcasecmp(host, a) == 0) {
            return true;
        }
    }
    return false;
}

static const char *check_v4(const struct netpolicy *p, uint32_t a)
{
    if ((a >> 24) == 0)
        return "unspecified address";
    if ((a >> 16) == 0xa9fe)
        return "link-local address";
    if ((a >> 28) == 0xe)
        return "multicast address";
    if (a == 0xffffffffu)
        return "broadcast address";
    if (p->deny_private) {
        if ((a >> 24) == 127)
            return "loopback address";
        if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||
            (a >> 22) == (0x6440 >> 6))
            return "private address";
    }
    return NULL;
}

const char *netpolicy_check_addr(const struct netpolicy *p, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return check_v4(p, ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        const uint8_t *b = a->s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            uint32_t v4 =
                ((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) | ((uint32_t)b[14] << 8) | b[15];
            return check_v4(p, v4);
        }
        static const uint8_t zero[16] = {0};
        if (memcmp(b, zero, 16) == 0)
            return "unspecified address";
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
            return "link-local address";
        if (b[0] == 0xff)
            return "multicast address";
        if (p->deny_private) {
            static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
            if (memcmp(b, loop, 16) == 0)
                return "loopback address";
            if ((b[0] & 0xfe) == 0xfc)
                return "private address";
        }
        return NULL;
    }
    return "unsupported address family";
}
