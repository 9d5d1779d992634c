/* digest_xxh.h: one XXH3-128 variant, for codec/digest_scalar.c and
 * codec/digest_vector.c (private to digest*.c). The including file sets
 * XXH_VECTOR (xxHash's inner-loop choice) and DIGEST_XXH(name), the
 * variant's function names; xxHash, inlined, then gives the four
 * functions below. See digest.c.
 *
 * xxHash 0.8.1 has no XXH_NO_STDLIB; it includes <stdlib.h> for malloc/free
 * (only XXH3_createState uses them, and we never call it), <string.h> for
 * memcpy/memset and <limits.h>, all of which newlib and gcc's freestanding
 * headers provide. XXH_DEBUGLEVEL stays 0 so <assert.h> is not pulled in. */
#include "digest.h"
#include "digest_priv.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

_Static_assert(sizeof(XXH3_state_t) <= DIGEST_STATE_BYTES, "digest_state too small");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "digest_state under-aligned");

static XXH3_state_t *xxh_state(struct digest_state *st)
{
	return (XXH3_state_t *)(void *)st->opaque;
}

void DIGEST_XXH(init)(struct digest_state *st)
{
	XXH3_INITSTATE(xxh_state(st));
	XXH3_128bits_reset(xxh_state(st));
}

void DIGEST_XXH(update)(struct digest_state *st, const void *buf, size_t len)
{
	XXH3_128bits_update(xxh_state(st), buf, len);
}

struct digest128 DIGEST_XXH(final)(const struct digest_state *st)
{
	XXH128_hash_t h = XXH3_128bits_digest((const XXH3_state_t *)(const void *)st->opaque);
	return (struct digest128){ .low64 = h.low64, .high64 = h.high64 };
}

struct digest128 DIGEST_XXH(buf)(const void *buf, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(buf, len);
	return (struct digest128){ .low64 = h.low64, .high64 = h.high64 };
}
