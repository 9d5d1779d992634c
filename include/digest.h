/* digest.h: the whole-memory digest of the migration stream, XXH3-128 with
 * seed 0 (xxHash 0.8, header-only, inlined). Streaming: digesting pages one
 * by one in page-number order gives the same value as digesting the
 * concatenated memory at once, so guest frames need not be contiguous.
 */
#ifndef FERRY_DIGEST_H
#define FERRY_DIGEST_H

#include <stddef.h>
#include <stdint.h>

struct digest128 {
	uint64_t low64;
	uint64_t high64;
};

/* Opaque streaming state (an XXH3_state_t inside); embed it anywhere, no
 * allocation. digest.c checks at compile time that it is large enough. */
#define DIGEST_STATE_BYTES 640
struct digest_state {
	_Alignas(64) unsigned char opaque[DIGEST_STATE_BYTES];
};

/* Start a digest. */
void digest_init(struct digest_state *st);

/* Add len bytes. */
void digest_update(struct digest_state *st, const void *buf, size_t len);

/* The digest of everything added since digest_init; st stays usable. */
struct digest128 digest_final(const struct digest_state *st);

/* One-shot digest of a buffer. */
struct digest128 digest_buf(const void *buf, size_t len);

/* Two digests equal? */
static inline int digest_equal(struct digest128 a, struct digest128 b)
{
	return a.low64 == b.low64 && a.high64 == b.high64;
}

#endif /* FERRY_DIGEST_H */
