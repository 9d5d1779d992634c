/* guest_cmds.h: the console's guest, dirty-log and info guest/dirty commands. */
#ifndef FERRY_GUEST_CMDS_H
#define FERRY_GUEST_CMDS_H

/* Register the commands. Requires hv_init. */
void guest_cmds_init(void);

#endif
