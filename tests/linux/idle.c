/* idle [SECONDS]: checks the guest's timers. Sleeps with nanosleep
 * towards deadlines one second apart on CLOCK_MONOTONIC and prints
 *   idle: tick N at T.TTT s
 * at each (T: CLOCK_MONOTONIC, about the time since the guest booted). The
 * ticks should be 1.000 s apart; a stalled or racing guest clock, a lost
 * timer interrupt or a migration's downtime shows in T. With SECONDS it
 * stops after that many ticks. */
#include <stdio.h>

#include "guest_util.h"

int main(int argc, char **argv)
{
	unsigned long seconds = 0;
	double start;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2) {
		fprintf(stderr, "usage: idle [SECONDS]\n");
		return 2;
	}
	if (argc == 2)
		seconds = guest_arg("idle", "SECONDS", argv[1], 1, 1UL << 30);
	start = guest_now();
	printf("idle: start at %.3f s\n", start);
	for (unsigned long n = 1; !seconds || n <= seconds; n++) {
		double left = start + (double)n - guest_now();

		if (left > 0) {
			struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };

			nanosleep(&ts, NULL);
		}
		printf("idle: tick %lu at %.3f s\n", n, guest_now());
	}
	return 0;
}
