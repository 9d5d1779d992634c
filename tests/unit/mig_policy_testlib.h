/* mig_policy_testlib.h: what test_mig_policy.c and test_mig_xbzrle.c
 * share. */
#ifndef FERRY_MIG_POLICY_TESTLIB_H
#define FERRY_MIG_POLICY_TESTLIB_H

#include <stdbool.h>
#include <string.h>

#include "mig_policy.h"

/* Does why hold every one of the '|'-separated parts of want? */
static inline bool why_has(const char *why, const char *want)
{
	while (*want) {
		const char *end = strchr(want, '|');
		size_t n = end ? (size_t)(end - want) : strlen(want);
		char part[MIG_POLICY_WHY];
		if (n >= sizeof(part))
			return false;
		memcpy(part, want, n);
		part[n] = 0;
		if (!strstr(why, part))
			return false;
		want += end ? n + 1 : n;
	}
	return true;
}

#endif
