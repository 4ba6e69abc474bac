#include "idmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated */
};

struct idmap {
    struct entry **buckets;
    size_t n_buckets; /* a power of two */
    size_t size;
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

idmap *idmap_new(void)
{
    idmap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n_buckets = 64;
    m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void idmap_free(idmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct entry *e = m->buckets[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

size_t idmap_size(const idmap *m)
{
    return m->size;
}

static struct entry **find(const idmap *m, const char *key, uint64_t h)
{
    struct entry **pp = &m->buckets[h & (m->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
            return pp;
    return pp;
}

void *idmap_get(const idmap *m, const char *key)
{
    struct entry **pp = find(m, key, hash_key(key));
    return *pp ? (*pp)->value : NULL;
}

static int grow(idmap *m)
{
    size_t n = m->n_buckets * 2;
    struct entry **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct entry *e = m->buckets[i];
        while (e) {
            struct entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
    return 0;
}

int idmap_put(idmap *m, const char *key, void *value)
{
    uint64_t h = hash_key(key);
    if (*find(m, key, h))
        return -EEXIST;
    if (m->size + 1 > m->n_buckets && grow(m) < 0)
        return -ENOMEM;
    size_t len = strlen(key);
    struct entry *e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return -ENOMEM;
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->value = value;
    struct entry **slot = &m->buckets[h & (m->n_buckets - 1)];
    e->next = *slot;
    *slot = e;
    m->size++;
    return 0;
}

void *idmap_del(idmap *m, const char *key)
{
    struct entry **pp = find(m, key, hash_key(key));
    struct entry *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->size--;
    return v;
}

void idmap_each(const idmap *m, void (*fn)(const char *, void *, void *), void *ud)
{
    for (size_t i = 0; i < m->n_buckets; i++)
        for (struct entry *e = m->buckets[i]; e; e = e->next)
            fn(e->key, e->value, ud);
}

size_t idmap_values(const idmap *m, void **out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_buckets && k < n; i++)
        for (struct entry *e = m->buckets[i]; e && k < n; e = e->next)
            out[k++] = e->value;
    return k;
}
