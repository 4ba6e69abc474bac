/* Fuzz target: common/netpolicy.c, which callback destinations may be contacted (the callback
 * URL is the job's; the address is what its host resolved to).
 *
 * Input: byte 0: bit 0 deny_private, bit 1 IPv6; bytes 1-16 the address (IPv4: the first 4);
 * the rest "<CALLBACK_ALLOW_HOSTS>\n--\n<host>". Invariants:
 * - netpolicy_check_addr refuses exactly the ranges of netpolicy.h, checked against a table
 *   of prefixes here (the cloud metadata addresses included); an IPv6 address that carries
 *   an IPv4 address (mapped, compatible, translated, NAT64, 6to4) is judged as that address;
 * - a parsed allow list holds the list's non-empty entries; a host is allowed exactly when it
 *   equals an entry, or ends in ".suffix" for an entry "*.suffix", ignoring case; without a
 *   list every host is allowed;
 * - nothing leaks (ASan). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "netpolicy.h"

struct range {
    const char *prefix;
    unsigned bits;
    bool private_only;
};

static const struct range v4_ranges[] = {
    {"169.254.169.254", 32, false}, {"169.254.170.2", 32, false}, {"169.254.170.23", 32, false},
    {"169.254.42.42", 32, false},   {"169.254.0.23", 32, false},  {"100.100.100.200", 32, false},
    {"168.63.129.16", 32, false},   {"192.0.0.192", 32, false},   {"0.0.0.0", 8, false},
    {"169.254.0.0", 16, false},     {"224.0.0.0", 4, false},      {"255.255.255.255", 32, false},
    {"127.0.0.0", 8, true},         {"10.0.0.0", 8, true},        {"172.16.0.0", 12, true},
    {"192.168.0.0", 16, true},      {"100.64.0.0", 10, true},
};
static const struct range v6_ranges[] = {
    {"::", 128, false},
    {"fd00:ec2::254", 128, false},
    {"fd00:ec2::23", 128, false},
    {"fd20:ce::254", 128, false},
    {"fd00:c1::a9fe:a9fe", 128, false},
    {"fd00:42::42", 128, false},
    {"fe80::", 10, false},
    {"ff00::", 8, false},
    {"::1", 128, true},
    {"fc00::", 7, true},
    {"fec0::", 10, true},
};
/* IPv6 prefixes whose addresses carry an IPv4 address, and where it sits. */
static const struct {
    const char *prefix;
    unsigned bits, at;
} v6_embedding[] = {
    {"::ffff:0:0", 96, 12}, {"::ffff:0:0:0", 96, 12}, {"::", 96, 12},
    {"64:ff9b::", 96, 12},  {"64:ff9b:1::", 48, 12},  {"2002::", 16, 2},
};

static bool in_prefix(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    for (unsigned i = 0; i < bits; i++) {
        unsigned byte = i / 8, bit = 7 - i % 8;
        if (((a[byte] >> bit) & 1) != ((net[byte] >> bit) & 1))
            return false;
    }
    return true;
}

static bool ref_refused(const uint8_t *a, bool v6, bool deny_private)
{
    if (v6) {
        uint8_t net[16];
        FUZZ_CHECK(inet_pton(AF_INET6, "::", net) == 1);
        bool special = in_prefix(a, net, 127); /* :: and ::1 are themselves, not IPv4 */
        for (size_t i = 0; !special && i < sizeof(v6_embedding) / sizeof(v6_embedding[0]); i++) {
            FUZZ_CHECK(inet_pton(AF_INET6, v6_embedding[i].prefix, net) == 1);
            if (in_prefix(a, net, v6_embedding[i].bits))
                return ref_refused(a + v6_embedding[i].at, false, deny_private);
        }
    }
    const struct range *r = v6 ? v6_ranges : v4_ranges;
    size_t n = v6 ? sizeof(v6_ranges) / sizeof(*r) : sizeof(v4_ranges) / sizeof(*r);
    for (size_t i = 0; i < n; i++) {
        uint8_t net[16];
        FUZZ_CHECK(inet_pton(v6 ? AF_INET6 : AF_INET, r[i].prefix, net) == 1);
        if ((!r[i].private_only || deny_private) && in_prefix(a, net, r[i].bits))
            return true;
    }
    return false;
}

static bool ref_host_allowed(const char *list, const char *host)
{
    char *copy = strdup(list), *save = NULL;
    bool ok = false;
    FUZZ_CHECK(copy);
    size_t hl = strlen(host);
    for (char *e = strtok_r(copy, ", ", &save); e && !ok; e = strtok_r(NULL, ", ", &save)) {
        if (e[0] == '*' && e[1] == '.') {
            size_t sl = strlen(e + 1);
            ok = hl > sl && strcasecmp(host + hl - sl, e + 1) == 0;
        } else {
            ok = strcasecmp(host, e) == 0;
        }
    }
    free(copy);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 17)
        return 0;
    bool deny_private = data[0] & 1, v6 = data[0] & 2;
    struct netpolicy p = {.deny_private = deny_private};

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        memcpy(in6->sin6_addr.s6_addr, data + 1, 16);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr.s_addr, data + 1, 4);
    }
    const char *why = netpolicy_check_addr(&p, (struct sockaddr *)&ss);
    FUZZ_CHECK((why != NULL) == ref_refused(data + 1, v6, deny_private));

    const uint8_t *a, *b;
    size_t al, bl;
    fuzz_split(data + 17, size - 17, &a, &al, &b, &bl);
    char *list = fuzz_strndup(a, al), *host = fuzz_strndup(b, bl);
    int r = netpolicy_parse_allow(list, &p);
    size_t entries = 0;
    {
        char *copy = strdup(list), *save = NULL;
        FUZZ_CHECK(copy);
        for (char *e = strtok_r(copy, ", ", &save); e; e = strtok_r(NULL, ", ", &save))
            entries++;
        free(copy);
    }
    if (!*list) {
        FUZZ_CHECK(r == 0 && !p.allow_hosts && netpolicy_host_allowed(&p, host));
    } else if (entries == 0) {
        FUZZ_CHECK(r == -EINVAL && !p.allow_hosts);
    } else {
        FUZZ_CHECK(r == 0 && p.n_allow == entries);
        for (size_t i = 0; i < p.n_allow; i++)
            FUZZ_CHECK(p.allow_hosts[i][0] && !strpbrk(p.allow_hosts[i], ", "));
        FUZZ_CHECK(netpolicy_host_allowed(&p, host) == ref_host_allowed(list, host));
    }
    netpolicy_free(&p);
    free(list);
    free(host);
    return 0;
}
