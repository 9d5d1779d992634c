/* digest_scalar.c: XXH3-128 with xxHash's scalar inner loop (XXH_SCALAR).
 * See digest_xxh.h. */
#define XXH_VECTOR 0 /* XXH_SCALAR, which xxhash.h names only after reading this */
#define DIGEST_XXH(name) digest_scalar_##name
#include "digest_xxh.h"
