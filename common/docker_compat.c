/* docker_compat: see docker_compat.h. */
#include "docker_compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Docker's name of a container action and Podman's, where they differ. */
static const struct {
    const char *docker, *podman;
} action_names[] = {
    {"die", "died"},
    {"destroy", "remove"},
};

#define N_ACTION_NAMES (sizeof(action_names) / sizeof(action_names[0]))

static bool array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* "event": each Docker name with Podman's beside it. 0 or -ENOMEM. */
static int widen_events(json_t *events)
{
    size_t n = json_array_size(events);
    for (size_t i = 0; i < n; i++) {
        const char *e = json_string_value(json_array_get(events, i));
        for (size_t k = 0; e && k < N_ACTION_NAMES; k++) {
            if (strcmp(e, action_names[k].docker) != 0 || array_has(events, action_names[k].podman))
                continue;
            if (json_array_append_new(events, json_string(action_names[k].podman)) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* "label": only "key=value" ones. 0 or -ENOMEM. */
static int engine_labels(json_t *f)
{
    json_t *labels = json_object_get(f, "label");
    json_t *kept = json_array();
    size_t i;
    json_t *v;

    if (!kept)
        return -ENOMEM;
    json_array_foreach(labels, i, v)
    {
        if (json_is_string(v) && strchr(json_string_value(v), '=') &&
            json_array_append(kept, v) < 0) {
            json_decref(kept);
            return -ENOMEM;
        }
    }
    if (json_array_size(kept) == 0) {
        json_decref(kept);
        json_object_del(f, "label");
        return 0;
    }
    return json_object_set_new(f, "label", kept) < 0 ? -ENOMEM : 0;
}

int docker_compat_events_filters(json_t *filters, json_t **ret)
{
    json_t *f;

    if (!filters) {
        *ret = NULL;
        return 0;
    }
    f = json_deep_copy(filters);
    if (!f)
        return -ENOMEM;
    json_t *events = json_object_get(f, "event");
    if ((json_is_array(events) && widen_events(events) < 0) ||
        (json_object_get(f, "label") && engine_labels(f) < 0)) {
        json_decref(f);
        return -ENOMEM;
    }
    *ret = f;
    return 0;
}

static bool has_label(json_t *attrs, const char *label)
{
    const char *eq = strchr(label, '=');
    if (!eq)
        return json_object_get(attrs, label) != NULL;
    size_t klen = (size_t)(eq - label);
    const char *k;
    json_t *v;
    json_object_foreach(attrs, k, v)
    {
        if (strlen(k) == klen && memcmp(k, label, klen) == 0 && json_is_string(v) &&
            strcmp(json_string_value(v), eq + 1) == 0)
            return true;
    }
    return false;
}

bool docker_compat_event_wanted(json_t *event, json_t *filters)
{
    json_t *labels = json_object_get(filters, "label");
    json_t *attrs = json_object_get(json_object_get(event, "Actor"), "Attributes");
    size_t i;
    json_t *v;

    json_array_foreach(labels, i, v)
    {
        if (json_is_string(v) && !has_label(attrs, json_string_value(v)))
            return false;
    }
    return true;
}

static void rename_action(json_t *event, const char *field)
{
    const char *a = json_string_value(json_object_get(event, field));
    for (size_t k = 0; a && k < N_ACTION_NAMES; k++) {
        if (strcmp(a, action_names[k].podman) == 0) {
            json_object_set_new(event, field, json_string(action_names[k].docker));
            return;
        }
    }
}

void docker_compat_event_normalize(json_t *event)
{
    const char *type = json_string_value(json_object_get(event, "Type"));
    if (type && strcmp(type, "container") != 0)
        return; /* a volume's or a network's "remove" is not a container's "destroy" */
    rename_action(event, "Action");
    rename_action(event, "status");
    const char *a = json_string_value(json_object_get(event, "Action"));
    json_t *attrs = json_object_get(json_object_get(event, "Actor"), "Attributes");
    json_t *code = json_object_get(attrs, "containerExitCode");
    if (a && strcmp(a, "die") == 0 && code && !json_object_get(attrs, "exitCode"))
        json_object_set(attrs, "exitCode", code);
}

long docker_compat_status(long status, json_t *json, bool create)
{
    static const char *const conflicts[] = {"that name is already in use",
                                            "container state improper"};
    const char *cause = json_string_value(json_object_get(json, "cause"));

    if (status != 500 || !cause)
        return status;
    for (size_t i = 0; i < sizeof(conflicts) / sizeof(conflicts[0]); i++)
        if (strcmp(cause, conflicts[i]) == 0)
            return 409;
    if (strstr(cause, "invalid reference format"))
        return 400; /* an image name that is not one: Docker's 400 */
    if (create && strcmp(cause, "network not found") == 0)
        return 400; /* a setting the engine cannot use, as Docker's 400s to a create */
    return status;
}

static bool says_podman(const char *name)
{
    return name && strncmp(name, "Podman", 6) == 0;
}

enum docker_engine docker_compat_engine(json_t *version)
{
    size_t i;
    json_t *c;

    json_array_foreach(json_object_get(version, "Components"), i, c)
    {
        if (says_podman(json_string_value(json_object_get(c, "Name"))))
            return DOCKER_ENGINE_PODMAN;
    }
    if (says_podman(
            json_string_value(json_object_get(json_object_get(version, "Platform"), "Name"))))
        return DOCKER_ENGINE_PODMAN;
    return DOCKER_ENGINE_DOCKER;
}

const char *docker_compat_engine_name(enum docker_engine e)
{
    return e == DOCKER_ENGINE_PODMAN ? "Podman" : "Docker";
}

/* "1.41" or "v1.41" as major and minor; false when it is not that. */
static bool parse_version(const char *s, unsigned *major, unsigned *minor)
{
    char *end;

    if (!s)
        return false;
    if (*s == 'v')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long a = strtoul(s, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long b = strtoul(end + 1, &end, 10);
    if (*end || a > 99 || b > 999)
        return false;
    *major = (unsigned)a;
    *minor = (unsigned)b;
    return true;
}

void docker_compat_api_version(json_t *version, const char *preferred, char *buf, size_t len)
{
    unsigned pa, pb, ea, eb;
    const char *engine = json_string_value(json_object_get(version, "ApiVersion"));

    if (parse_version(preferred, &pa, &pb) && parse_version(engine, &ea, &eb) &&
        (ea < pa || (ea == pa && eb < pb)))
        snprintf(buf, len, "v%u.%u", ea, eb);
    else
        snprintf(buf, len, "%s", preferred);
}

/* Docker's max-size ("64k", "10m", "1g", "100", k = 1024): bytes, or 0 when it is not one. */
static unsigned long long log_size(const char *s)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return 0;
    unsigned long long n = strtoull(s, &end, 10);
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end || n == 0 || n > (1ull << 40) >> shift)
        return 0;
    return n << shift;
}

/* nproc at the pids limit, when there are Ulimits without one (see below). 0 or -ENOMEM. */
static int add_nproc(json_t *hc)
{
    json_t *ulimits = json_object_get(hc, "Ulimits");
    json_t *pids = json_object_get(hc, "PidsLimit");
    size_t i;
    json_t *u;

    if (!json_is_array(ulimits) || json_array_size(ulimits) == 0 || !json_is_integer(pids) ||
        json_integer_value(pids) <= 0)
        return 0;
    json_array_foreach(ulimits, i, u)
    {
        const char *name = json_string_value(json_object_get(u, "Name"));
        if (name && strcmp(name, "nproc") == 0)
            return 0;
    }
    /* Podman (4.3) takes a body's Ulimits instead of containers.conf's default_ulimits, not
     * with them, and then gives the container nproc=1048576 of its own: on a host whose hard
     * limit is lower (a service started under a lower limit, without CAP_SYS_RESOURCE) every
     * start fails with "error setting rlimit type 7: operation not permitted", as if the
     * starter's settings were refused. An nproc of the container's pids limit lets the
     * container do what its pids cgroup lets it do already (256 by default: below the hard
     * limit of any host that runs the service). Root in the container is exempt from nproc; for
     * a non-root user of the image, the kernel counts the processes of that user in every
     * container of a rootful engine together, so such containers share the allowance.
     * Docker gives a container the engine's own nproc: it gets no such entry. */
    json_t *entry = json_pack("{s:s, s:O, s:O}", "Name", "nproc", "Soft", pids, "Hard", pids);
    return entry && json_array_append_new(ulimits, entry) == 0 ? 0 : -ENOMEM;
}

/* One json-file log of max-size x max-file, when both are given. 0 or -ENOMEM. */
static int one_log_file(json_t *hc)
{
    json_t *lc = json_object_get(hc, "LogConfig");
    json_t *opts = json_object_get(lc, "Config");
    const char *type = json_string_value(json_object_get(lc, "Type"));
    unsigned long long size = log_size(json_string_value(json_object_get(opts, "max-size")));
    const char *files_s = json_string_value(json_object_get(opts, "max-file"));
    char *end;

    if (!type || strcmp(type, "json-file") != 0 || !size || !files_s || *files_s < '1' ||
        *files_s > '9')
        return 0;
    unsigned long files = strtoul(files_s, &end, 10);
    if (*end || files < 2 || files > 100)
        return 0;
    /* Podman keeps one log file and empties it when it reaches max-size (max-file is ignored):
     * Docker's files rotate, so the log always holds the last (max-file - 1) x max-size of
     * output, and a response followed by more than max-size of stderr was gone. One file of
     * max-size x max-file takes the same room at most, and keeps every output up to that
     * whole (what the completer reads: a response and the stderr after it); past it, Podman
     * empties it and the start of the output is lost, as with Docker past its files. */
    char v[32];
    snprintf(v, sizeof(v), "%llu", size * files);
    return json_object_set_new(opts, "max-size", json_string(v)) == 0 ? 0 : -ENOMEM;
}

int docker_compat_create_config(json_t *config, json_t **ret)
{
    *ret = NULL;
    json_t *copy = json_deep_copy(config);
    if (!copy)
        return -ENOMEM;
    json_t *hc = json_object_get(copy, "HostConfig");
    if (add_nproc(hc) < 0 || one_log_file(hc) < 0) {
        json_decref(copy);
        return -ENOMEM;
    }
    if (json_equal(copy, config)) {
        json_decref(copy);
        return 0;
    }
    *ret = copy;
    return 0;
}

bool docker_compat_limits_ignored(json_t *info)
{
    const char *cg = json_string_value(json_object_get(info, "CgroupVersion"));
    return json_is_true(json_object_get(info, "Rootless")) && cg && strcmp(cg, "1") == 0;
}

static bool positive(json_t *hc, const char *key)
{
    json_t *v = json_object_get(hc, key);
    return json_is_integer(v) && json_integer_value(v) > 0;
}

bool docker_compat_create_refused(json_t *config, bool limits_ignored, char *buf, size_t len)
{
    json_t *hc = json_object_get(config, "HostConfig");
    if (limits_ignored &&
        (positive(hc, "Memory") || positive(hc, "NanoCpus") || positive(hc, "PidsLimit"))) {
        /* A correction without its limits could take the host's memory and CPUs and fork
         * without end: refused, as a setting of every container the engine cannot apply. */
        snprintf(buf, len,
                 "resource limits are not supported by this engine: rootless Podman on cgroup v1 "
                 "ignores the containers' memory, CPU and pids limits (run it rootful, or on "
                 "cgroup v2 with the controllers delegated to the user)");
        return true;
    }
    const char *rt = json_string_value(json_object_get(hc, "Runtime"));
    if (!rt || !*rt)
        return false;
    /* Podman 4.3's compatible API reads no HostConfig.Runtime: the container would run under
     * the engine's default runtime, less isolated than asked. Refused as Docker refuses a
     * runtime it does not have (the starter then names CORRECTION_RUNTIME); Podman's runtime
     * is set in its containers.conf ([engine] runtime). */
    snprintf(buf, len,
             "Unknown runtime specified %.64s: Podman's Docker-compatible API ignores "
             "HostConfig.Runtime (set [engine] runtime in the engine's containers.conf instead)",
             rt);
    return true;
}
