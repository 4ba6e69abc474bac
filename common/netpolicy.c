#include "netpolicy.h"

#include <arpa/inet.h>
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

/* The cloud metadata services, refused whatever CALLBACK_DENY_PRIVATE says: a callback that
 * reaches one hands the job's publisher the instance's credentials or its provisioning data.
 * Link-local ones are refused as link-local anyway; they are listed so the reason says what
 * they are. Sources (read 2025):
 * - 169.254.169.254: AWS EC2 IMDS, GCP (metadata.google.internal), Azure IMDS, Oracle OCI,
 *   DigitalOcean, Hetzner, OpenStack, Linode, IBM and most others (cloud-init's datasources,
 *   https://docs.cloud-init.io/en/latest/reference/datasources/).
 * - fd00:ec2::254: AWS IMDS over IPv6 (EC2 HttpProtocolIpv6, docs.aws.amazon.com
 *   AWSEC2/latest/APIReference/API_InstanceMetadataOptionsRequest.html; the AWS SDK's
 *   metadata_service/endpoint.js: "http://[fd00:ec2::254]").
 * - 169.254.170.2: AWS ECS task metadata and credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI).
 * - 169.254.170.23 and fd00:ec2::23: AWS EKS Pod Identity Agent (docs.aws.amazon.com
 *   eks/latest/userguide/pod-id-agent-setup.html).
 * - fd20:ce::254: GCP metadata server over IPv6 (IPv6-only VMs; listed by several SSRF guards).
 * - 168.63.129.16: Azure WireServer, a public address every Azure VM reaches (VM agent,
 *   goal state and certificates; learn.microsoft.com azure/virtual-network/
 *   what-is-ip-address-168-63-129-16).
 * - 100.100.100.200: Alibaba Cloud ECS metadata (alibabacloud.com help/en/ecs/user-guide/
 *   view-instance-metadata; cloud-init's AliYun datasource).
 * - 192.0.0.192: Oracle Cloud Infrastructure Classic metadata.
 * - fd00:c1::a9fe:a9fe: Oracle OCI metadata over IPv6 (as listed by other SSRF guards; not
 *   confirmed in Oracle's documentation, refused at no cost).
 * - 169.254.42.42 and fd00:42::42: Scaleway (cloud-init's Scaleway datasource).
 * - 169.254.0.23: Tencent Cloud (metadata.tencentyun.com).
 * IPv4 forms inside IPv6 (mapped, compatible, NAT64, 6to4) are unwrapped before this check. */
static const char *const metadata_v4[] = {
    "169.254.169.254", "169.254.170.2",   "169.254.170.23", "169.254.42.42",
    "169.254.0.23",    "100.100.100.200", "168.63.129.16",  "192.0.0.192",
};
static const char *const metadata_v6[] = {
    "fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254", "fd00:c1::a9fe:a9fe", "fd00:42::42",
};
/* Names that lead to a metadata service where the addresses above do not say it: Equinix
 * Metal's is on public addresses, and behind CALLBACK_PROXY the proxy resolves the name. */
static const char *const metadata_names[] = {
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
    "metadata.packet.net",
};

static const char *check_v4(const struct netpolicy *p, uint32_t a)
{
    for (size_t i = 0; i < sizeof(metadata_v4) / sizeof(metadata_v4[0]); i++) {
        struct in_addr m;
        if (inet_pton(AF_INET, metadata_v4[i], &m) == 1 && ntohl(m.s_addr) == a)
            return "cloud metadata address";
    }
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

static uint32_t v4_at(const uint8_t *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* The IPv4 address an IPv6 address carries, if any (see netpolicy.h). */
static bool embedded_v4(const uint8_t *b, uint32_t *v4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t compat[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, translated, 12) == 0 ||
        memcmp(b, compat, 12) == 0 || memcmp(b, nat64, 12) == 0 || memcmp(b, nat64_local, 6) == 0) {
        *v4 = v4_at(b + 12);
        return true;
    }
    if (b[0] == 0x20 && b[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
        *v4 = v4_at(b + 2);
        return true;
    }
    return false;
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
        static const uint8_t zero[16] = {0};
        static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        if (memcmp(b, zero, 16) == 0)
            return "unspecified address";
        if (memcmp(b, loop, 16) == 0)
            return p->deny_private ? "loopback address" : NULL;
        uint32_t v4;
        if (embedded_v4(b, &v4))
            return check_v4(p, v4);
        for (size_t i = 0; i < sizeof(metadata_v6) / sizeof(metadata_v6[0]); i++) {
            struct in6_addr m;
            if (inet_pton(AF_INET6, metadata_v6[i], &m) == 1 && memcmp(b, m.s6_addr, 16) == 0)
                return "cloud metadata address";
        }
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
            return "link-local address";
        if (b[0] == 0xff)
            return "multicast address";
        if (p->deny_private) {
            if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))
                return "private address";
        }
        return NULL;
    }
    return "unsupported address family";
}

const char *netpolicy_check_host(const struct netpolicy *p, const char *host)
{
    char buf[256];
    size_t len = strlen(host);
    if (len >= sizeof(buf))
        return NULL; /* longer than any name or literal below */
    memcpy(buf, host, len + 1);
    if (len > 0 && buf[len - 1] == '.')
        buf[--len] = '\0';
    if (len >= 2 && buf[0] == '[' && buf[len - 1] == ']') {
        buf[len - 1] = '\0';
        char *zone = strchr(buf + 1, '%'); /* fe80::1%eth0: the zone does not matter */
        if (zone)
            *zone = '\0';
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        if (inet_pton(AF_INET6, buf + 1, &in6.sin6_addr) == 1)
            return netpolicy_check_addr(p, (struct sockaddr *)&in6);
        return NULL;
    }
    struct sockaddr_in in = {.sin_family = AF_INET};
    if (inet_aton(buf, &in.sin_addr))
        return netpolicy_check_addr(p, (struct sockaddr *)&in);
    for (size_t i = 0; i < sizeof(metadata_names) / sizeof(metadata_names[0]); i++)
        if (strcasecmp(buf, metadata_names[i]) == 0)
            return "cloud metadata host name";
    return NULL;
}
