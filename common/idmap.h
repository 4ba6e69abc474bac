/* idmap: a hash map from string keys (container ids, job ids) to pointers. O(1) average per
 * operation; grows by doubling. Keys are copied; values are not owned. */
#pragma once
#include <stddef.h>

typedef struct idmap idmap;

idmap *idmap_new(void);
void idmap_free(idmap *m); /* values are left to the caller */
size_t idmap_size(const idmap *m);
void *idmap_get(const idmap *m, const char *key);
/* 0, -EEXIST (key present: nothing changed), -ENOMEM. */
int idmap_put(idmap *m, const char *key, void *value);
/* The removed value, or NULL when absent. */
void *idmap_del(idmap *m, const char *key);
/* Calls fn for each entry; fn may not add or remove entries. */
void idmap_each(const idmap *m, void (*fn)(const char *key, void *value, void *ud), void *ud);
/* Collects up to n values into out; returns how many. For iterating while changing the map. */
size_t idmap_values(const idmap *m, void **out, size_t n);
