#include "runset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char id[RUNSET_ID_MAX + 1];
    uint64_t seq; /* when it was counted */
};

struct runset {
    struct entry *v;
    size_t n, cap;
    struct entry gone[RUNSET_GONE_MAX]; /* the last exits, a ring; seq 0: unused */
    size_t gone_next;
    uint64_t seq; /* a clock of the calls, for "before" and "after" */
};

int runset_new(runset **ret)
{
    runset *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return -ENOMEM;
    *ret = rs;
    return 0;
}

void runset_free(runset *rs)
{
    if (!rs)
        return;
    free(rs->v);
    free(rs);
}

size_t runset_count(const runset *rs)
{
    return rs->n;
}

static bool valid_id(const char *id)
{
    size_t len = id ? strnlen(id, RUNSET_ID_MAX + 1) : 0;
    return len > 0 && len <= RUNSET_ID_MAX;
}

static struct entry *find(const runset *rs, const char *id)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].id, id) == 0)
            return &rs->v[i];
    return NULL;
}

/* The seq of id's last exit in the ring, or 0. */
static uint64_t gone_seq(const runset *rs, const char *id)
{
    uint64_t best = 0;
    for (size_t i = 0; i < RUNSET_GONE_MAX; i++)
        if (rs->gone[i].seq > best && strcmp(rs->gone[i].id, id) == 0)
            best = rs->gone[i].seq;
    return best;
}

static int reserve(struct entry **v, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    struct entry *p = realloc(*v, c * sizeof(*p));
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

static int add(runset *rs, const char *id)
{
    if (find(rs, id))
        return 0;
    int r = reserve(&rs->v, &rs->cap, rs->n + 1);
    if (r < 0)
        return r;
    struct entry *e = &rs->v[rs->n++];
    memcpy(e->id, id, strlen(id) + 1);
    e->seq = ++rs->seq;
    return 0;
}

int runset_started(runset *rs, const char *id)
{
    if (!valid_id(id))
        return -EINVAL;
    if (gone_seq(rs, id) != 0)
        return 0; /* its exit came first */
    return add(rs, id);
}

int runset_start_event(runset *rs, const char *id)
{
    if (!valid_id(id))
        return -EINVAL;
    return add(rs, id);
}

void runset_gone(runset *rs, const char *id)
{
    if (!valid_id(id))
        return;
    struct entry *e = find(rs, id);
    if (e)
        *e = rs->v[--rs->n];
    struct entry *g = &rs->gone[rs->gone_next];
    rs->gone_next = (rs->gone_next + 1) % RUNSET_GONE_MAX;
    memcpy(g->id, id, strlen(id) + 1);
    g->seq = ++rs->seq;
}

uint64_t runset_list_asked(runset *rs)
{
    return ++rs->seq;
}

int runset_list_answer(runset *rs, uint64_t ticket, const char *const *ids, size_t n)
{
    struct entry *v = NULL;
    size_t len = 0, cap = 0;
    int r = reserve(&v, &cap, n + rs->n);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        const char *id = ids[i];
        if (!valid_id(id))
            continue;
        struct entry *cur = find(rs, id);
        if (!cur && gone_seq(rs, id) > ticket)
            continue; /* it went away after the list was asked for */
        bool dup = false;
        for (size_t k = 0; k < len && !dup; k++)
            dup = strcmp(v[k].id, id) == 0;
        if (dup)
            continue;
        memcpy(v[len].id, id, strlen(id) + 1);
        v[len++].seq = cur ? cur->seq : ticket;
    }
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->v[i].seq <= ticket)
            continue; /* counted before the list was asked: the list knows better */
        bool listed = false;
        for (size_t k = 0; k < len && !listed; k++)
            listed = strcmp(v[k].id, rs->v[i].id) == 0;
        if (!listed)
            v[len++] = rs->v[i];
    }
    free(rs->v);
    rs->v = v;
    rs->n = len;
    rs->cap = cap;
    return 0;
}
