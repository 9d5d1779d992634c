/* stamp MIB [SECONDS]: the guest half of a dirty-logging check (after the
 * KVM selftests' dirty_log_test). Maps MIB MiB and, pass after pass, checks
 * that every page still holds the previous pass's stamp, then writes this
 * pass's: the pass number in the page's first word and the page's own
 * index in its second (so a page that lands at another address is caught
 * too). A page migrated stale, lost or misplaced shows as
 *   stamp: MISMATCH page P want X got Y     (pass numbers), or
 *   stamp: MISMATCH page P holds page Q     (misplaced),
 * at most MAX_REPORTS lines a pass. Once a second it prints
 *   stamp: pass N errors E
 * (N passes done, E mismatches so far). With SECONDS it stops after that
 * long, prints "stamp: done passes N errors E" and exits 1 if E > 0. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "guest_util.h"

#define PAGE 4096
#define MAX_REPORTS 8 /* mismatch lines per pass, so a bad run cannot flood the console */

int main(int argc, char **argv)
{
	unsigned long mib, seconds = 0, pages, errors = 0;
	uint64_t pass;
	double start, next_report;
	unsigned char *mem;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: stamp MIB [SECONDS]\n");
		return 2;
	}
	mib = guest_arg("stamp", "MIB", argv[1], 1, 1UL << 20);
	if (argc == 3)
		seconds = guest_arg("stamp", "SECONDS", argv[2], 1, 1UL << 30);
	pages = mib * (1024 * 1024 / PAGE);
	/* Fresh anonymous memory reads as zero: pass 0's stamp. */
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("stamp: mmap");
		return 1;
	}
	printf("stamp: %lu MiB, %lu pages\n", mib, pages);
	start = guest_now();
	next_report = start + 1.0;
	for (pass = 1;; pass++) {
		unsigned reports = 0;

		for (unsigned long p = 0; p < pages; p++) {
			volatile uint64_t *w = (volatile uint64_t *)(mem + p * PAGE);
			uint64_t got = w[0], idx = w[1];

			if (got != pass - 1 || (pass > 1 && idx != p)) {
				errors++;
				if (reports++ < MAX_REPORTS) {
					if (got != pass - 1)
						printf("stamp: MISMATCH page %lu want %llu got %llu\n", p,
						       (unsigned long long)(pass - 1), (unsigned long long)got);
					else
						printf("stamp: MISMATCH page %lu holds page %llu\n", p,
						       (unsigned long long)idx);
				}
			}
			w[0] = pass;
			w[1] = p;
		}
		double now = guest_now();
		if (now >= next_report) {
			printf("stamp: pass %llu errors %lu\n", (unsigned long long)pass, errors);
			while (next_report <= now)
				next_report += 1.0;
		}
		if (seconds && now - start >= (double)seconds) {
			printf("stamp: done passes %llu errors %lu\n", (unsigned long long)pass, errors);
			return errors ? 1 : 0;
		}
	}
}
