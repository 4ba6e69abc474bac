/* fifo.h: an intrusive first-in first-out list. The node lives inside the queued object (one
 * node per list the object can be in); FIFO_ENTRY gets the object back from its node. Nothing
 * is allocated; a node is in at most one list at a time, which fifo_queued tells.
 *
 *   struct job { struct fifo_node in_line; ... };
 *   struct fifo line = FIFO_INIT;
 *   fifo_push(&line, &job->in_line);
 *   struct job *first = fifo_empty(&line) ? NULL
 *                     : FIFO_ENTRY(fifo_pop(&line), struct job, in_line);
 */
#ifndef CT_FIFO_H
#define CT_FIFO_H

#include <stdbool.h>
#include <stddef.h>

struct fifo_node {
    struct fifo_node *next;
    bool queued;
};

struct fifo {
    struct fifo_node *head, *tail;
};

#define FIFO_INIT                                                                                  \
    {                                                                                              \
        NULL, NULL                                                                                 \
    }
/* The object of type `type` whose member `member` is the node `node` (not NULL; evaluated
 * once). */
#define FIFO_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline bool fifo_empty(const struct fifo *q)
{
    return q->head == NULL;
}

static inline bool fifo_queued(const struct fifo_node *n)
{
    return n->queued;
}

/* Appends n (not queued) at the tail. */
static inline void fifo_push(struct fifo *q, struct fifo_node *n)
{
    n->next = NULL;
    n->queued = true;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

/* Takes the head off; NULL when empty. */
static inline struct fifo_node *fifo_pop(struct fifo *q)
{
    struct fifo_node *n = q->head;
    if (!n)
        return NULL;
    q->head = n->next;
    if (!q->head)
        q->tail = NULL;
    n->next = NULL;
    n->queued = false;
    return n;
}

/* Takes n out wherever it is in q; false when it was not queued in q. */
static inline bool fifo_remove(struct fifo *q, struct fifo_node *n)
{
    if (!n->queued)
        return false;
    struct fifo_node *prev = NULL;
    for (struct fifo_node *i = q->head; i; prev = i, i = i->next) {
        if (i != n)
            continue;
        if (prev)
            prev->next = n->next;
        else
            q->head = n->next;
        if (q->tail == n)
            q->tail = prev;
        n->next = NULL;
        n->queued = false;
        return true;
    }
    return false;
}

#endif
