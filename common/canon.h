/* canon: JSON serialized the RFC 8785 way (JCS), so callback bodies can be signed and
 * compared byte for byte: object keys sorted by their UTF-16 code units, no whitespace,
 * strings escaped as JSON.stringify does, numbers as ECMAScript prints them (shortest form
 * that reads back exactly; 2.0 is "2", 0.1 is "0.1", 1e21 is "1e+21"). */
#pragma once
#include <jansson.h>
#include <stddef.h>

/* malloc'd, NUL-terminated; NULL on ENOMEM or a value JSON cannot hold (NaN, infinity). */
char *canon_dump(const json_t *value);

/* One number in ECMAScript form into buf (at least 32 bytes). 0 or -EINVAL (not finite). */
int canon_number(double x, char *buf, size_t len);
