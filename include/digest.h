/* digest.h: the whole-memory digest of the migration stream, XXH3-128 with
 * seed 0 (xxHash 0.8, header-only, inlined; two builds of it, below).
 * Streaming: digesting pages one by one in page-number order gives the
 * same value as digesting the concatenated memory at once, so guest frames
 * need not be contiguous.
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
 * allocation. codec/digest_xxh.h checks at compile time that it is large
 * enough. */
#define DIGEST_STATE_BYTES 640
struct digest_state {
	_Alignas(64) unsigned char opaque[DIGEST_STATE_BYTES];
	unsigned char impl; /* the enum digest_impl that digest_init used */
};

/* Which build of xxHash's inner loop computes digests: its vector code
 * (SSE2 on x86-64; the default) or its scalar code. The digests are the
 * same; the speed is not, and which is faster depends on the machine:
 * under QEMU's TCG, whose SSE instructions are emulated one helper call at
 * a time, the scalar loop is 2.5 times as fast; on hardware SSE2 wins.
 * The kernel times both at boot and keeps the faster (kernel/mig_pick.c).
 * The choice applies to digests started after it. */
enum digest_impl { DIGEST_IMPL_VECTOR, DIGEST_IMPL_SCALAR, DIGEST_IMPL_COUNT };
int digest_set_impl(enum digest_impl impl); /* 0, or -1 for an unknown impl */
enum digest_impl digest_get_impl(void);
const char *digest_impl_name(enum digest_impl impl);

/* digest_buf with the given implementation (to compare them). */
struct digest128 digest_buf_impl(enum digest_impl impl, const void *buf, size_t len);

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
