/* log: one logfmt line per event on stderr.
 *
 *   log_kv(LOG_INFO, "job started", "work_id", wid, "container_id", cid, NULL);
 *
 * prints `ts=... level=info msg="job started" work_id=... container_id=...`. Values are
 * quoted and escaped when needed; a NULL value is skipped with its key. Never pass secrets. */
#pragma once
#include <stdarg.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug", "info", "warn"/"warning", "error" (any case). 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret);
/* The name of the process in every line (`app=`); not copied, keep it alive. */
void log_set_app(const char *app);
/* key/value pairs of strings, terminated by NULL. */
void log_kv(enum log_level level, const char *msg, ...) __attribute__((sentinel));
void log_vkv(enum log_level level, const char *msg, va_list ap);
