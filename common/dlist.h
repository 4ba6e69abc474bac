/* dlist.h: an intrusive doubly linked list of typed objects, newest first. The object has
 * `prev` and `next` members pointing to its own type; the list is a pointer to the first one
 * (NULL: empty). Pushing and unlinking are O(1); a loop over the list stays plain C:
 *
 *   struct job { struct job *prev, *next; ... };
 *   struct job *jobs = NULL;
 *   DLIST_PUSH(jobs, job);
 *   for (struct job *j = jobs, *next; j; j = next) { next = j->next; ... DLIST_UNLINK(jobs, j); }
 *
 * Macros, so that one piece of code serves every type: `head` and `x` are evaluated more
 * than once (pass plain lvalues). */
#ifndef CT_DLIST_H
#define CT_DLIST_H

/* Puts x (in no list) first in the list. */
#define DLIST_PUSH(head, x)                                                                        \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (x);                                                                    \
        (head) = (x);                                                                              \
    } while (0)

/* Takes x out of the list it is in; its prev and next are NULL afterwards. */
#define DLIST_UNLINK(head, x)                                                                      \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x)->prev;                                                           \
        (x)->prev = (x)->next = NULL;                                                              \
    } while (0)

#endif
