/* ids: job identities. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define IDS_UUID_LEN 36 /* without the NUL */

/* A random (version 4) UUID in canonical text form. 0 or -errno. */
int ids_uuid_random(char ret[IDS_UUID_LEN + 1]);
/* A name-based (version 5, SHA-1) UUID of data in our own namespace: the same bytes always
 * give the same id, so a redelivered message maps to the same job. */
void ids_uuid_from_bytes(const void *data, size_t len, char ret[IDS_UUID_LEN + 1]);
/* 1 if s is a canonical lower-case UUID, else 0. */
int ids_is_uuid(const char *s);
/* 1 if s is 64 lower-case hex digits (a full container id), else 0. */
int ids_is_container_id(const char *s);
/* A random number to spread retries out (jitter), never for an identity: the process's one
 * source of it (xorshift, seeded once from getrandom, else the clock). */
uint32_t ids_jitter(void);
