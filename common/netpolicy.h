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

/* NULL when the address may be contacted, else why not (a static string).
 *
 * Always refused, whatever the policy:
 * - the cloud metadata addresses listed in netpolicy.c ("cloud metadata address"): the
 *   instance metadata services of AWS (169.254.169.254, fd00:ec2::254, ECS 169.254.170.2,
 *   EKS Pod Identity 169.254.170.23 and fd00:ec2::23), GCP (fd20:ce::254), Azure (the
 *   WireServer 168.63.129.16), Alibaba (100.100.100.200), Oracle (192.0.0.192,
 *   fd00:c1::a9fe:a9fe), Scaleway (fd00:42::42) and the others on 169.254.169.254;
 * - unspecified (0.0.0.0/8, ::), link-local (169.254/16, fe80::/10), multicast and broadcast.
 * With deny_private also loopback (127/8, ::1) and private ranges (10/8, 172.16/12,
 * 192.168/16, 100.64/10, fc00::/7, fec0::/10).
 * An IPv6 address that carries an IPv4 address is judged as that IPv4 address: IPv4-mapped
 * (::ffff:0:0/96), IPv4-compatible (::/96), IPv4-translated (::ffff:0:0:0/96), NAT64
 * (64:ff9b::/96 and the local-use 64:ff9b:1::/48, last 32 bits) and 6to4 (2002::/16). */
const char *netpolicy_check_addr(const struct netpolicy *p, const struct sockaddr *sa);

/* The same for a host name as written in a URL (brackets allowed around IPv6): a literal
 * address (IPv4 in any form inet_aton takes: "2852039166" is 169.254.169.254) is judged by
 * netpolicy_check_addr; a name is refused when it is a known cloud metadata name
 * (metadata.google.internal, metadata.goog, instance-data.ec2.internal...: "cloud metadata
 * host name"), ignoring case and a trailing dot. NULL when nothing is known against it: a
 * name's addresses are still to be checked when connecting. */
const char *netpolicy_check_host(const struct netpolicy *p, const char *host);
