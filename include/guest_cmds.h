/* guest_cmds.h: the console's guest, dirty-log and info guest/dirty commands. */
#ifndef FERRY_GUEST_CMDS_H
#define FERRY_GUEST_CMDS_H

/* Register the commands. Requires hv_init. */
void guest_cmds_init(void);

/* Register `guest bench` (guest_bench.c); called by guest_cmds_init. */
void guest_bench_init(void);

#endif
