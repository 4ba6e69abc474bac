/* The two list helpers. common/fifo.h: order, removal from the head, middle and tail, and an
 * object in two lists. common/dlist.h: newest first, unlinking the first, a middle one and the
 * last, and unlinking while walking the list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dlist.h"
#include "fifo.h"

struct item {
    int id;
    struct fifo_node a, b;
};

static int pop_id(struct fifo *q)
{
    struct fifo_node *n = fifo_pop(q);
    return n ? FIFO_ENTRY(n, struct item, a)->id : -1;
}

static void test_order(void **state)
{
    (void)state;
    struct fifo q = FIFO_INIT;
    struct item it[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    assert_true(fifo_empty(&q));
    assert_int_equal(pop_id(&q), -1);
    for (int i = 0; i < 3; i++)
        fifo_push(&q, &it[i].a);
    assert_true(fifo_queued(&it[1].a));
    assert_int_equal(pop_id(&q), 0);
    assert_false(fifo_queued(&it[0].a));
    fifo_push(&q, &it[0].a); /* back in, at the tail */
    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 2);
    assert_int_equal(pop_id(&q), 0);
    assert_true(fifo_empty(&q));
}

static void test_remove(void **state)
{
    (void)state;
    struct fifo q = FIFO_INIT;
    struct item it[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    for (int i = 0; i < 4; i++)
        fifo_push(&q, &it[i].a);
    assert_true(fifo_remove(&q, &it[1].a)); /* middle */
    assert_false(fifo_remove(&q, &it[1].a));
    assert_true(fifo_remove(&q, &it[3].a)); /* tail: a push goes after the new tail */
    fifo_push(&q, &it[3].a);
    assert_true(fifo_remove(&q, &it[0].a)); /* head */
    assert_int_equal(pop_id(&q), 2);
    assert_int_equal(pop_id(&q), 3);
    assert_true(fifo_empty(&q));
    assert_null(q.tail);
    fifo_push(&q, &it[2].a); /* the only one, removed: empty again */
    assert_true(fifo_remove(&q, &it[2].a));
    assert_true(fifo_empty(&q));
    assert_null(q.tail);
}

static void test_two_lists(void **state)
{
    (void)state;
    struct fifo qa = FIFO_INIT, qb = FIFO_INIT;
    struct item x = {.id = 7}, y = {.id = 8};
    fifo_push(&qa, &x.a);
    fifo_push(&qb, &y.b);
    fifo_push(&qb, &x.b);
    assert_false(fifo_remove(&qa, &y.a)); /* not in qa */
    assert_true(fifo_remove(&qb, &x.b));
    assert_true(fifo_queued(&x.a));
    struct item *first = FIFO_ENTRY(fifo_pop(&qb), struct item, b);
    assert_int_equal(first->id, 8);
    assert_int_equal(pop_id(&qa), 7);
}

struct node {
    int id;
    struct node *prev, *next;
};

/* The ids from the head, as a number (3, 1, 2 -> 312); 0 for an empty list. Checks the back
 * links on the way. */
static int ids(const struct node *head)
{
    int v = 0;
    const struct node *prev = NULL;
    for (const struct node *n = head; n; prev = n, n = n->next) {
        assert_ptr_equal(n->prev, prev);
        v = v * 10 + n->id;
    }
    return v;
}

static void test_dlist(void **state)
{
    (void)state;
    struct node *head = NULL;
    struct node n[4] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    assert_int_equal(ids(head), 0);
    for (int i = 0; i < 4; i++)
        DLIST_PUSH(head, &n[i]);
    assert_int_equal(ids(head), 4321);
    DLIST_UNLINK(head, &n[3]); /* the first */
    assert_null(n[3].prev);
    assert_null(n[3].next);
    assert_int_equal(ids(head), 321);
    DLIST_UNLINK(head, &n[1]); /* a middle one */
    assert_int_equal(ids(head), 31);
    DLIST_UNLINK(head, &n[0]); /* the last */
    assert_int_equal(ids(head), 3);
    DLIST_PUSH(head, &n[1]);
    assert_int_equal(ids(head), 23);
    DLIST_UNLINK(head, &n[2]);
    DLIST_UNLINK(head, &n[1]);
    assert_null(head);
}

static void test_dlist_unlink_while_walking(void **state)
{
    (void)state;
    struct node *head = NULL;
    struct node n[5] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}, {.id = 5}};
    for (int i = 0; i < 5; i++)
        DLIST_PUSH(head, &n[i]);
    for (struct node *x = head, *next; x; x = next) {
        next = x->next;
        if (x->id % 2)
            DLIST_UNLINK(head, x);
    }
    assert_int_equal(ids(head), 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_two_lists),
        cmocka_unit_test(test_dlist),
        cmocka_unit_test(test_dlist_unlink_while_walking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
