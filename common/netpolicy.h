/* netpolicy: which callback destinations may be contacted. Checked on the resolved address,
 * just before connecting, so a DNS answer cannot sneak past it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct netpolicy {
    bool deny_private;  /* also loopback and private ranges */
    char **allow_hosts; /* NULL: any host; else exact names or "*.suffix" */
    size_t n_allow;
};

/* "a.example,*.b.example" -> allow_hosts. 0, -EINVAL or -ENOMEM. */
int netpolicy_parse_allow(const char *list, struct netpolicy *p);
void netpolicy_free(struct netpolicy *p);
bool netpolicy_host_allowed(const struct netpolicy *p, const char *host);
/* NULL when the address may be contacted, else why not. Always refused: unspecified
 * (0.0.0.0/8, ::), link-local (169.254/16, fe80::/10: cloud metadata), multicast and
 * broadcast. With deny_private also loopback (127/8, ::1) and private ranges (10/8,
 * 172.16/12, 192.168/16, 100.64/10, fc00::/7). IPv4-mapped IPv6 is judged as IPv4. */
const char *netpolicy_check_addr(const struct netpolicy *p, const struct sockaddr *sa);
