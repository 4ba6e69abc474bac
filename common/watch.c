/* watch: see watch.h. */
#include "watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "schedule.h"

#define WATCH_DEFAULT_MAX_PENDING 1024

struct pending {
    char action[16]; /* "start", "die", "destroy", "oom"...: a longer one matches none of them */
    char id[65];
};

struct watch {
    uv_loop_t *loop;
    docker *d;
    struct watch_config cfg; /* cfg.actions and cfg.label are not kept: see filters */
    json_t *filters;         /* type=container, the actions, the label */
    docker_events *events;   /* the open stream, or NULL */
    uv_timer_t retry_timer;  /* reopening */
    uv_timer_t turn_timer;   /* the next loop turn: pending events and on_list */
    uv_timer_t list_timer;   /* the periodic on_list */
    unsigned failures;       /* opens in a row without an event */
    int64_t last_event_s;
    struct pending *pending;
    size_t n_pending, cap_pending;
    bool list_due; /* on_list is due (opened, or events dropped) */
    bool closing;  /* watch_close was called: no callback any more */
    int handles;   /* timers not closed yet */
};

static void open_stream(watch *w);

static void on_retry_timer(uv_timer_t *t)
{
    open_stream(t->data);
}

static void schedule_open(watch *w)
{
    uv_timer_start(&w->retry_timer, on_retry_timer,
                   schedule_events_retry_ms(w->failures++, ids_jitter()), 0);
}

static void on_turn(uv_timer_t *t);

static void next_turn(watch *w)
{
    if (!uv_is_active((uv_handle_t *)&w->turn_timer))
        uv_timer_start(&w->turn_timer, on_turn, 0, 0);
}

/* Hands over what waited: the events in their order, then the list if one is due. A callback may
 * close the watch: nothing is touched after that but the flag (the memory lives until the timers
 * are closed, on a later turn). */
static void on_turn(uv_timer_t *t)
{
    watch *w = t->data;
    struct pending *list = w->pending;
    size_t n = w->n_pending;
    w->pending = NULL;
    w->n_pending = w->cap_pending = 0;
    for (size_t i = 0; i < n && !w->closing; i++)
        w->cfg.on_event(list[i].action, list[i].id, w->cfg.userdata);
    free(list);
    if (w->list_due && !w->closing) {
        w->list_due = false;
        w->cfg.on_list(w->cfg.userdata);
    }
}

static void on_list_timer(uv_timer_t *t)
{
    watch *w = t->data;
    w->cfg.on_list(w->cfg.userdata);
}

/* Called from inside libcurl's write callback: queued for the next turn. */
static void on_stream_event(json_t *ev, void *ud)
{
    watch *w = ud;
    json_int_t t = json_integer_value(json_object_get(ev, "time"));
    if (t > w->last_event_s)
        w->last_event_s = t;
    const char *action, *id;
    if (docker_event_container(ev, &action, &id) < 0)
        return;
    w->failures = 0; /* the stream works */
    if (w->n_pending == w->cap_pending) {
        size_t cap = w->cap_pending ? w->cap_pending * 2 : 16;
        if (cap > w->cfg.max_pending)
            cap = w->cfg.max_pending;
        struct pending *p = cap > w->cap_pending ? realloc(w->pending, cap * sizeof(*p)) : NULL;
        if (!p) {
            w->list_due = true; /* bounded (or out of memory): a list finds what this said */
            next_turn(w);
            return;
        }
        w->pending = p;
        w->cap_pending = cap;
    }
    struct pending *pe = &w->pending[w->n_pending++];
    snprintf(pe->action, sizeof(pe->action), "%s", action);
    snprintf(pe->id, sizeof(pe->id), "%s", id);
    next_turn(w);
}

static void on_stream_end(const struct docker_result *res, void *ud)
{
    watch *w = ud;
    w->events = NULL;
    if (w->closing)
        return;
    schedule_open(w);
    if (w->cfg.on_end)
        w->cfg.on_end(res->message && *res->message ? res->message : "the stream ended",
                      w->cfg.userdata);
}

static void open_stream(watch *w)
{
    if (w->closing || w->events)
        return;
    int64_t since = w->cfg.resume ? w->last_event_s : (int64_t)time(NULL);
    if (docker_events_start(w->d, since, w->filters, on_stream_event, on_stream_end, w,
                            &w->events) < 0) {
        w->events = NULL;
        schedule_open(w);
        return;
    }
    w->list_due = true; /* whatever happened before it opened, a list finds */
    next_turn(w);
}

/* {"type":["container"], "event":[actions...], "label":[label]}, or NULL for want of memory. */
static json_t *events_filters(const struct watch_config *cfg)
{
    json_t *f = json_pack("{s:[s]}", "type", "container");
    if (f && cfg->label && json_object_set_new(f, "label", json_pack("[s]", cfg->label)) < 0) {
        json_decref(f);
        return NULL;
    }
    if (!f || !cfg->actions)
        return f;
    json_t *actions = json_array();
    if (!actions || json_object_set_new(f, "event", actions) < 0) {
        json_decref(f);
        return NULL;
    }
    for (size_t i = 0; cfg->actions[i]; i++) {
        if (json_array_append_new(actions, json_string(cfg->actions[i])) < 0) {
            json_decref(f);
            return NULL;
        }
    }
    return f;
}

int watch_start(uv_loop_t *loop, docker *d, const struct watch_config *cfg, watch **ret)
{
    if (!loop || !d || !cfg || !cfg->on_event || !cfg->on_list || !ret)
        return -EINVAL;
    watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->d = d;
    w->cfg = *cfg;
    w->cfg.actions = NULL;
    w->cfg.label = NULL;
    w->filters = events_filters(cfg);
    if (!w->filters) {
        free(w);
        return -ENOMEM;
    }
    if (!w->cfg.max_pending)
        w->cfg.max_pending = WATCH_DEFAULT_MAX_PENDING;
    w->last_event_s = (int64_t)time(NULL);
    uv_timer_init(loop, &w->retry_timer);
    uv_timer_init(loop, &w->turn_timer);
    uv_timer_init(loop, &w->list_timer);
    w->retry_timer.data = w->turn_timer.data = w->list_timer.data = w;
    w->handles = 3;
    *ret = w;
    if (cfg->list_interval_ms)
        uv_timer_start(&w->list_timer, on_list_timer, cfg->list_interval_ms, cfg->list_interval_ms);
    open_stream(w);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    watch *w = h->data;
    if (--w->handles > 0)
        return;
    json_decref(w->filters);
    free(w);
}

void watch_close(watch *w)
{
    if (!w || w->closing)
        return;
    w->closing = true;
    if (w->events)
        docker_events_stop(w->events);
    w->events = NULL;
    free(w->pending);
    w->pending = NULL;
    w->n_pending = w->cap_pending = 0;
    uv_close((uv_handle_t *)&w->retry_timer, on_closed);
    uv_close((uv_handle_t *)&w->turn_timer, on_closed);
    uv_close((uv_handle_t *)&w->list_timer, on_closed);
}
