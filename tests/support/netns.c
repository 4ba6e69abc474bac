/* netns: see netns.h. */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define IP "/sbin/ip"
#define PYTHON "/usr/bin/python3"

static struct ct_netns *live_ns; /* for the exit handler */

static const char *support_file(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s", ct_receiver_script());
    char *slash = strrchr(path, '/');
    snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path), "%s", name);
    return path;
}

/* Runs ip with args (NULL-terminated); its exit status (-1 when it did not end in 10 s). */
static int run_ip(const char *log, const char *const *args)
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = IP;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    pid_t pid = ct_spawn(IP, argv, NULL, log);
    int status = -1;
    if (ct_wait_exit(pid, 10000, &status) < 0) {
        ct_kill(pid, SIGKILL);
        ct_wait_exit(pid, 5000, NULL);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void must_ip(const struct ct_netns *ns, const char *const *args)
{
    if (run_ip(ns->log, args) != 0)
        fail_msg("ip %s %s %s ... failed (see %s)", args[0], args[1] ? args[1] : "",
                 args[1] && args[2] ? args[2] : "", ns->log);
}

static void remove_etc(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/hosts", dir);
    unlink(path);
    rmdir(dir);
}

/* SIGKILL to every process in the namespace (ip netns pids). */
static void kill_inside(const char *log, const char *name)
{
    char out[600];
    snprintf(out, sizeof(out), "%s.pids", log);
    unlink(out);
    run_ip(out, (const char *[]){"netns", "pids", name, NULL});
    char *s = ct_read_file(out, NULL);
    for (char *p = s, *end; p && *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 1)
            kill((pid_t)pid, SIGKILL);
    }
    free(s);
    unlink(out);
}

/* Namespaces "ctn<pid>-..." of test processes that no longer exist: a run killed outright. */
static void remove_stale(const char *log)
{
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid = 0;
        if (sscanf(e->d_name, "ctn%d-", &pid) != 1 || pid <= 0 || kill(pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        kill_inside(log, e->d_name);
        run_ip(log, (const char *[]){"netns", "delete", e->d_name, NULL});
        char dir[300];
        snprintf(dir, sizeof(dir), "/etc/netns/%s", e->d_name);
        remove_etc(dir);
    }
    if (d)
        closedir(d);
}

static void at_exit(void)
{
    if (live_ns)
        ct_netns_destroy(live_ns);
}

static bool file_exists(void *ud)
{
    return access(ud, F_OK) == 0;
}

static pid_t start_forwarder(struct ct_netns *ns, bool inside, const char *listen, const char *to)
{
    char ready[600], parent[24];
    snprintf(ready, sizeof(ready), "%s.%s.ready", ns->sock, inside ? "ns" : "root");
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    unlink(ready);
    char *argv[] = {PYTHON,     (char *)support_file("nsforward.py"),
                    "--listen", (char *)listen,
                    "--to",     (char *)to,
                    "--ready",  ready,
                    "--parent", parent,
                    NULL};
    pid_t pid = inside ? ct_netns_spawn(ns, PYTHON, argv, NULL, ns->log)
                       : ct_spawn(PYTHON, argv, NULL, ns->log);
    if (!inside)
        ct_track(pid);
    if (!ct_wait_until(file_exists, ready, 10000))
        fail_msg("the broker bridge did not start (see %s)", ns->log);
    unlink(ready);
    return pid;
}

void ct_netns_create(struct ct_netns *ns, const char *const *addrs, const char *hosts)
{
    static unsigned counter;
    memset(ns, 0, sizeof(*ns));
    snprintf(ns->name, sizeof(ns->name), "ctn%d-%u", (int)getpid(), counter++);
    snprintf(ns->etc_dir, sizeof(ns->etc_dir), "/etc/netns/%s", ns->name);
    snprintf(ns->log, sizeof(ns->log), "%s/netns-%s.log", ct_env("CT_TMP"), ns->name);
    snprintf(ns->sock, sizeof(ns->sock), "%s/netns-%s.amqp.sock", ct_env("CT_TMP"), ns->name);
    unlink(ns->log);
    if (access(IP, X_OK) != 0)
        fail_msg(IP " is missing: install iproute2 (tests/run.sh does)");
    remove_stale(ns->log);
    if (run_ip(ns->log, (const char *[]){"netns", "add", ns->name, NULL}) != 0)
        fail_msg("ip netns add %s failed (root and a kernel with network namespaces are "
                 "needed; see %s)",
                 ns->name, ns->log);
    ns->live = true;
    live_ns = ns;
    static bool registered;
    if (!registered && atexit(at_exit) == 0)
        registered = true;

    mkdir("/etc/netns", 0755);
    if (mkdir(ns->etc_dir, 0755) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", ns->etc_dir, strerror(errno));
    char path[256];
    snprintf(path, sizeof(path), "%s/hosts", ns->etc_dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(hosts, f) < 0 || fclose(f) != 0)
        fail_msg("cannot write %s", path);

    must_ip(ns, (const char *[]){"-n", ns->name, "link", "set", "lo", "up", NULL});
    ns->dummy = run_ip(ns->log, (const char *[]){"-n", ns->name, "link", "add", "d0", "type",
                                                 "dummy", NULL}) == 0;
    const char *dev = ns->dummy ? "d0" : "lo";
    if (ns->dummy)
        must_ip(ns, (const char *[]){"-n", ns->name, "link", "set", "d0", "up", NULL});
    for (size_t i = 0; addrs && addrs[i]; i++) {
        char cidr[80];
        bool v6 = strchr(addrs[i], ':') != NULL;
        snprintf(cidr, sizeof(cidr), "%s/%s", addrs[i], v6 ? "128" : "32");
        if (v6)
            must_ip(ns, (const char *[]){"-n", ns->name, "addr", "add", cidr, "dev", dev, "nodad",
                                         NULL});
        else
            must_ip(ns, (const char *[]){"-n", ns->name, "addr", "add", cidr, "dev", dev, NULL});
    }

    char unix_spec[600], tcp_spec[128], ns_tcp[64];
    snprintf(unix_spec, sizeof(unix_spec), "unix:%s", ns->sock);
    snprintf(tcp_spec, sizeof(tcp_spec), "tcp:%s:%s", ct_env("CT_RABBITMQ_HOST"),
             ct_env("CT_RABBITMQ_PORT"));
    snprintf(ns_tcp, sizeof(ns_tcp), "tcp:127.0.0.1:%d", CT_NETNS_AMQP_PORT);
    ns->fwd_root = start_forwarder(ns, false, unix_spec, tcp_spec);
    ns->fwd_ns = start_forwarder(ns, true, ns_tcp, unix_spec);
}

void ct_netns_destroy(struct ct_netns *ns)
{
    if (!ns->live)
        return;
    ns->live = false;
    if (live_ns == ns)
        live_ns = NULL;
    for (pid_t *p = &ns->fwd_ns; p; p = p == &ns->fwd_ns ? &ns->fwd_root : NULL) {
        if (*p > 0) {
            ct_terminate(*p, 5000);
            ct_untrack(*p);
            *p = 0;
        }
    }
    kill_inside(ns->log, ns->name); /* anything the test started there and did not stop */
    run_ip(ns->log, (const char *[]){"netns", "delete", ns->name, NULL});
    remove_etc(ns->etc_dir);
    unlink(ns->sock);
}

pid_t ct_netns_spawn(const struct ct_netns *ns, const char *path, char *const argv[],
                     char *const extra_env[], const char *log_path)
{
    char *args[64];
    size_t n = 0;
    args[n++] = IP;
    args[n++] = "netns";
    args[n++] = "exec";
    args[n++] = (char *)ns->name;
    args[n++] = (char *)path;
    for (size_t i = 1; argv[0] && argv[i] && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    pid_t pid = ct_spawn(IP, args, extra_env, log_path);
    ct_track(pid);
    return pid;
}

static bool port_written(void *ud)
{
    struct ct_receiver *r = ud;
    char *s = ct_read_file(r->port_file, NULL);
    r->port = s ? atoi(s) : 0;
    free(s);
    return r->port > 0;
}

void ct_netns_receiver_start(const struct ct_netns *ns, struct ct_receiver *r, const char *name,
                             int port)
{
    const char *tmp = ct_env("CT_TMP");
    snprintf(r->log, sizeof(r->log), "%s/receiver-%s.jsonl", tmp, name);
    snprintf(r->port_file, sizeof(r->port_file), "%s/receiver-%s.port", tmp, name);
    snprintf(r->out, sizeof(r->out), "%s/receiver-%s.out", tmp, name);
    unlink(r->log);
    unlink(r->port_file);
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    char *argv[] = {PYTHON,       (char *)ct_receiver_script(),
                    "serve",      "--log",
                    r->log,       "--port-file",
                    r->port_file, "--port",
                    port_s,       "--bind",
                    "::",         NULL};
    r->pid = ct_netns_spawn(ns, PYTHON, argv, NULL, r->out);
    if (!ct_wait_until(port_written, r, 10000))
        fail_msg("the receiver did not start in %s (see %s)", ns->name, r->out);
}
