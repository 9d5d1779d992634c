/* digest_priv.h: the XXH3 variants behind digest.c's dispatch (each one
 * compiled from digest_xxh.h in its own file). */
#ifndef FERRY_DIGEST_PRIV_H
#define FERRY_DIGEST_PRIV_H

#include "digest.h"

void digest_vector_init(struct digest_state *st);
void digest_vector_update(struct digest_state *st, const void *buf, size_t len);
struct digest128 digest_vector_final(const struct digest_state *st);
struct digest128 digest_vector_buf(const void *buf, size_t len);

void digest_scalar_init(struct digest_state *st);
void digest_scalar_update(struct digest_state *st, const void *buf, size_t len);
struct digest128 digest_scalar_final(const struct digest_state *st);
struct digest128 digest_scalar_buf(const void *buf, size_t len);

#endif /* FERRY_DIGEST_PRIV_H */
