/* Fuzz target: docker_scan_list, the completer's reading of GET /containers/json without a
 * JSON tree (the answer is the engine's, but names, labels and commands in it are the jobs').
 *
 * Invariants:
 * - every Id and State reported lies inside the body;
 * - against jansson as the reference: when the body is an array of objects (unique keys, and
 *   nested at most 60 deep, the scanner's bound being 64), the scan succeeds, reports one
 *   entry per object, in order, and each Id/State it reports is that object's string (it
 *   leaves out one written with an escape);
 * - the entries go into an idmap as the completer does, which keeps them all;
 * - nothing leaks (ASan). */
#include <errno.h>
#include <string.h>

#include "docker.h"
#include "fuzz.h"
#include "idmap.h"
#include "ids.h"

struct entry {
    const char *id, *state;
    size_t id_len, state_len;
};

struct ctx {
    const char *body;
    size_t len;
    struct entry *v;
    size_t n;
    idmap *present;
    size_t stored;
};

static void on_entry(const char *id, size_t id_len, const char *state, size_t state_len, void *ud)
{
    struct ctx *x = ud;
    FUZZ_CHECK(!id || (id >= x->body && id_len <= x->len && id + id_len <= x->body + x->len));
    FUZZ_CHECK(!state ||
               (state >= x->body && state_len <= x->len && state + state_len <= x->body + x->len));
    FUZZ_CHECK(id || id_len == 0);
    FUZZ_CHECK(state || state_len == 0);
    struct entry *v = realloc(x->v, (x->n + 1) * sizeof(*v));
    FUZZ_CHECK(v);
    x->v = v;
    x->v[x->n++] = (struct entry){id, state, id_len, state_len};

    char cid[65]; /* as the completer */
    if (!id || id_len != 64)
        return;
    memcpy(cid, id, 64);
    cid[64] = '\0';
    if (!ids_is_container_id(cid))
        return;
    if (idmap_put(x->present, cid, x) == 0)
        x->stored++;
}

static int depth(const json_t *v)
{
    int d = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int k = depth(json_array_get(v, i));
            d = k > d ? k : d;
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            int k = depth(m);
            d = k > d ? k : d;
        }
    }
    return d + 1;
}

/* The scanner's report for one key against the tree's value. */
static void check_field(const json_t *want, const char *got, size_t got_len)
{
    if (got) {
        FUZZ_CHECK(json_is_string(want));
        FUZZ_CHECK(json_string_length(want) == got_len);
        FUZZ_CHECK(memcmp(json_string_value(want), got, got_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    /* The answer in an exact-size buffer (as http.c keeps it, plus its NUL). */
    char *body = fuzz_strndup(data, size);
    struct ctx x = {.body = body, .len = size, .present = idmap_new()};
    FUZZ_CHECK(x.present);
    int r = docker_scan_list(body, size, on_entry, &x);
    FUZZ_CHECK(r == 0 || r == -EBADMSG);
    FUZZ_CHECK(idmap_size(x.present) == x.stored);

    json_t *tree = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
    /* (jansson lets a NUL byte pass between tokens; JSON has none, nor does the engine send
     * one) */
    bool list = json_is_array(tree) && depth(tree) <= 60 && !memchr(body, '\0', size);
    for (size_t i = 0; list && i < json_array_size(tree); i++)
        list = json_is_object(json_array_get(tree, i));
    if (list) {
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(x.n == json_array_size(tree));
        for (size_t i = 0; i < x.n; i++) {
            json_t *o = json_array_get(tree, i);
            check_field(json_object_get(o, "Id"), x.v[i].id, x.v[i].id_len);
            check_field(json_object_get(o, "State"), x.v[i].state, x.v[i].state_len);
        }
    }
    json_decref(tree);
    idmap_free(x.present);
    free(x.v);
    free(body);
    return 0;
}
