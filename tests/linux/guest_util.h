/* guest_util.h: what the Linux guest's test programs share: the monotonic
 * clock in seconds and strict parsing of their numeric arguments. Each
 * program is one static binary built on the host (gcc -static). */
#ifndef GUEST_UTIL_H
#define GUEST_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC (since the guest booted, roughly). */
static inline double guest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses arg (named what, for the message) as a decimal in [min, max].
 * Returns the value; on anything else prints "PROG: WHAT must be MIN..MAX,
 * got 'ARG'" to stderr and exits with status 2. */
static inline unsigned long guest_arg(const char *prog, const char *what, const char *arg,
				      unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
		fprintf(stderr, "%s: %s must be %lu..%lu, got '%s'\n", prog, what, min, max, arg);
		exit(2);
	}
	return v;
}

#endif
