/* config: configuration from environment variables, validated at start.
 *
 * Every getter reads one variable; when it is unset or empty it stores the default. On a
 * bad value it returns -EINVAL and writes a message naming the variable into the config_err
 * buffer (which the daemon prints before exiting). Outputs are untouched on failure. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A row of --help: variable, default as shown, description. With prog NULL, only the rows. */
struct config_doc {
    const char *name;
    const char *def;
    const char *help;
};
void config_print_help(const char *prog, const char *summary, const struct config_doc *docs,
                       size_t n);

int config_str(const char *name, const char *def, const char **ret, struct ct_error *err);
/* true/yes/1/y/s/si/on and false/no/0/n/off, any case. */
int config_bool(const char *name, bool def, bool *ret, struct ct_error *err);
int config_parse_bool(const char *s, bool *ret);
int config_uint(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                struct ct_error *err);
/* Sizes: "1048576", "512k", "512m", "1g" (binary units, also "512MiB", "512MB"). */
int config_bytes(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                 struct ct_error *err);
int config_parse_bytes(const char *s, uint64_t *ret);
/* Durations in ms: "180" (seconds), "500ms", "30s", "2m", "1h". */
int config_duration_ms(const char *name, uint64_t def_ms, uint64_t min_ms, uint64_t max_ms,
                       uint64_t *ret, struct ct_error *err);
int config_parse_duration_ms(const char *s, uint64_t *ret);
/* A decimal number of CPUs ("1", "0.5", "2.25") as nano-CPUs (1e9 per CPU). */
int config_nanocpus(const char *name, uint64_t def, uint64_t *ret, struct ct_error *err);
int config_parse_nanocpus(const char *s, uint64_t *ret);
