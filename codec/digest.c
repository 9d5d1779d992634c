/* digest.c: XXH3-128 via xxHash's header-only implementation. See digest.h.
 *
 * xxHash 0.8.1 has no XXH_NO_STDLIB; it includes <stdlib.h> for malloc/free
 * (only XXH3_createState uses them, and we never call it), <string.h> for
 * memcpy/memset and <limits.h>, all of which newlib and gcc's freestanding
 * headers provide. XXH_DEBUGLEVEL stays 0 so <assert.h> is not pulled in.
 */
#include "digest.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

_Static_assert(sizeof(XXH3_state_t) <= DIGEST_STATE_BYTES, "digest_state too small");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "digest_state under-aligned");

static XXH3_state_t *digest_xxh(struct digest_state *st)
{
	return (XXH3_state_t *)(void *)st->opaque;
}

void digest_init(struct digest_state *st)
{
	XXH3_INITSTATE(digest_xxh(st));
	XXH3_128bits_reset(digest_xxh(st));
}

void digest_update(struct digest_state *st, const void *buf, size_t len)
{
	XXH3_128bits_update(digest_xxh(st), buf, len);
}

struct digest128 digest_final(const struct digest_state *st)
{
	XXH128_hash_t h = XXH3_128bits_digest((const XXH3_state_t *)(const void *)st->opaque);
	return (struct digest128){ .low64 = h.low64, .high64 = h.high64 };
}

struct digest128 digest_buf(const void *buf, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(buf, len);
	return (struct digest128){ .low64 = h.low64, .high64 = h.high64 };
}
