/* synthetic [MIB] [SECONDS]: the load of the original XBZRLE patch, and of
 * ferry's built-in synthetic workload, as a Linux program: over a buffer of
 * MIB MiB (default 16), pass after pass, add one to every 1024th byte (four
 * bytes a page, so every page is dirty each pass and each changes by four
 * bytes: XBZRLE's best case). Once a second it prints
 *   synthetic: pass N, P passes/s
 * With SECONDS it stops after that long. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "guest_util.h"

#define STRIDE 1024 /* bytes between the bytes changed */

int main(int argc, char **argv)
{
	unsigned long mib = 16, seconds = 0;
	uint64_t pass = 0, last_pass = 0;
	double start, last;
	volatile unsigned char *mem;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 3) {
		fprintf(stderr, "usage: synthetic [MIB] [SECONDS]\n");
		return 2;
	}
	if (argc >= 2)
		mib = guest_arg("synthetic", "MIB", argv[1], 1, 1UL << 20);
	if (argc == 3)
		seconds = guest_arg("synthetic", "SECONDS", argv[2], 1, 1UL << 30);
	uint64_t size = (uint64_t)mib << 20;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("synthetic: mmap");
		return 1;
	}
	printf("synthetic: %lu MiB, +1 every %d bytes\n", mib, STRIDE);
	start = last = guest_now();
	for (;;) {
		for (uint64_t off = 0; off < size; off += STRIDE)
			mem[off]++;
		pass++;
		double now = guest_now();
		if (now - last >= 1.0) {
			printf("synthetic: pass %llu, %.0f passes/s\n", (unsigned long long)pass,
			       (double)(pass - last_pass) / (now - last));
			last = now;
			last_pass = pass;
		}
		if (seconds && now - start >= (double)seconds)
			return 0;
	}
}
