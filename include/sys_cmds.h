/* sys_cmds.h: console commands about ferry and the machine itself
 * (info version/mem/cpus/uptime, debug ...). */
#ifndef FERRY_SYS_CMDS_H
#define FERRY_SYS_CMDS_H

#include <stdint.h>

/* Register the commands. */
void sys_cmds_init(void);

/* Print the one-line banner with firmware and ferry init times. */
void sys_print_banner(uint64_t tsc_entry, uint64_t tsc_exit);

#endif
