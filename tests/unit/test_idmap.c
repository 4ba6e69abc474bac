#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "idmap.h"

static void count(const char *key, void *value, void *ud)
{
    (void)key;
    (void)value;
    (*(size_t *)ud)++;
}

static void test_idmap(void **state)
{
    (void)state;
    idmap *m = idmap_new();
    assert_non_null(m);
    char key[80];
    static int values[20000];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "%064d", i);
        values[i] = i;
        assert_int_equal(idmap_put(m, key, &values[i]), 0);
    }
    assert_int_equal(idmap_size(m), 20000);
    assert_int_equal(idmap_put(m, key, &values[0]), -EEXIST);
    for (int i = 0; i < 20000; i += 7) {
        snprintf(key, sizeof(key), "%064d", i);
        int *v = idmap_get(m, key);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    assert_null(idmap_get(m, "absent"));
    for (int i = 0; i < 20000; i += 2) {
        snprintf(key, sizeof(key), "%064d", i);
        assert_ptr_equal(idmap_del(m, key), &values[i]);
    }
    assert_null(idmap_del(m, "absent"));
    assert_int_equal(idmap_size(m), 10000);
    snprintf(key, sizeof(key), "%064d", 2);
    assert_null(idmap_get(m, key));
    snprintf(key, sizeof(key), "%064d", 3);
    assert_non_null(idmap_get(m, key));
    size_t n = 0;
    idmap_each(m, count, &n);
    assert_int_equal(n, 10000);
    void *out[16];
    assert_int_equal(idmap_values(m, out, 16), 16);
    idmap_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_idmap)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
