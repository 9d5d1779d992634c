/* digest_vector.c: XXH3-128 with xxHash's inner loop for this target's
 * vector unit (SSE2 on x86-64). See digest_xxh.h. */
#define DIGEST_XXH(name) digest_vector_##name
#include "digest_xxh.h"
