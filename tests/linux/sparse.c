/* sparse MIB RATE [SECONDS]: a steady page-dirtying load for live migration.
 * Maps MIB MiB and writes one random byte at a random offset about RATE
 * times per millisecond of the guest's monotonic clock (in bursts, sleeping
 * when ahead), so the pages dirtied per second track RATE (until RATE
 * nears the number of pages). Once a second it prints
 *   sparse: W writes/s
 * With SECONDS it stops after that long. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "guest_util.h"

#define SLEEP_NS 1000000 /* ns to sleep when ahead of RATE: 1 ms */

/* xorshift64: cheap, and no libc state. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	unsigned long mib, rate, seconds = 0;
	uint64_t size, done = 0, last_done = 0, rng = 0x9e3779b97f4a7c15ull;
	double start, last;
	volatile unsigned char *mem;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: sparse MIB RATE [SECONDS]  (RATE: writes per ms)\n");
		return 2;
	}
	mib = guest_arg("sparse", "MIB", argv[1], 1, 1UL << 20);
	rate = guest_arg("sparse", "RATE", argv[2], 1, 1UL << 24);
	if (argc == 4)
		seconds = guest_arg("sparse", "SECONDS", argv[3], 1, 1UL << 30);
	size = (uint64_t)mib << 20;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("sparse: mmap");
		return 1;
	}
	printf("sparse: %lu MiB, %lu writes/ms\n", mib, rate);
	start = last = guest_now();
	for (;;) {
		double now = guest_now();
		uint64_t due = (uint64_t)((now - start) * 1000.0 * (double)rate);

		if (done >= due) {
			struct timespec ts = { 0, SLEEP_NS };

			nanosleep(&ts, NULL);
		}
		/* Catch up in bursts of at most one millisecond's worth. */
		for (uint64_t n = 0; done < due && n < rate; n++, done++) {
			uint64_t r = rng_next(&rng);

			mem[r % size] = (unsigned char)(r >> 56);
		}
		if (now - last >= 1.0) {
			printf("sparse: %.0f writes/s\n", (double)(done - last_done) / (now - last));
			last = now;
			last_done = done;
		}
		if (seconds && now - start >= (double)seconds)
			return 0;
	}
}
