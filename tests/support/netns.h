/* netns: a private network namespace for tests whose traffic must not leave the machine even
 * if the code under test fails (the notifier's address policy: a metadata address reached by
 * name must be refused, and if it is not, the request lands on a test receiver, never on a
 * real metadata service).
 *
 * The namespace holds lo and, when the kernel has the dummy driver, a dummy interface d0 (no
 * link anywhere); the test's addresses go on d0 (lo otherwise: the namespace has no other
 * interface, so no route leaves it either way). /etc/netns/<name>/hosts is the namespace's
 * /etc/hosts (ip netns exec bind-mounts it): the resolver the test controls. The broker of the
 * root namespace is reached from inside at 127.0.0.1:5672 through two forwarders joined by a
 * Unix socket in CT_TMP (tests/support/nsforward.py).
 *
 * Needs root and iproute2 (tests/run.sh installs it). Everything is removed by
 * ct_netns_destroy, by an exit handler if the test exits without it, and, for a run killed
 * outright, by the next ct_netns_create (namespaces of processes that no longer exist). */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "support.h"

struct ct_netns {
    char name[64];
    char etc_dir[128]; /* /etc/netns/<name> */
    char sock[512];    /* the broker bridge's Unix socket */
    char log[512];     /* output of ip and of the forwarders */
    pid_t fwd_root, fwd_ns;
    bool dummy; /* addresses on d0 (else on lo) */
    bool live;
};

/* The broker's port inside the namespace (on 127.0.0.1). */
#define CT_NETNS_AMQP_PORT 5672

/* Creates the namespace with addrs (NULL-terminated: IPv4 as /32, IPv6 as /128 nodad) and
 * hosts as its /etc/hosts (whole file text), and starts the broker bridge. Fails the test
 * when it cannot. */
void ct_netns_create(struct ct_netns *ns, const char *const *addrs, const char *hosts);
/* Stops the bridge, deletes the namespace and /etc/netns/<name>. Idempotent; kill what you
 * started inside first (ct_kill_tracked). */
void ct_netns_destroy(struct ct_netns *ns);
/* ct_spawn inside the namespace (ip netns exec <name> path argv[1..]; the pid is the
 * program's: ip execs it). Tracked. */
pid_t ct_netns_spawn(const struct ct_netns *ns, const char *path, char *const argv[],
                     char *const extra_env[], const char *log_path);
/* A receiver (tests/support/receiver.py) inside the namespace on [::]:port (every address of
 * the namespace, IPv4 too); its requests log each one's local address ("local"). */
void ct_netns_receiver_start(const struct ct_netns *ns, struct ct_receiver *r, const char *name,
                             int port);
