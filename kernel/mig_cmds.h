/* mig_cmds.h: what the migration console's files share (mig_cmds.c,
 * mig_params.c, mig_pick.c): the engine's entry points (mig/mig_engine.h)
 * and the console's own. */
#ifndef FERRY_MIG_CMDS_H
#define FERRY_MIG_CMDS_H

#include "mig/mig_engine.h"

/* Register migrate_set_parameter, migrate_set_capability and their
 * info commands (mig_params.c). */
void mig_params_init(void);

/* Time the digest, record CRC and XBZRLE builds and keep the fastest of
 * each (mig_pick.c; once, at boot); print the choices and rates. */
void mig_pick_codec(void);
void mig_pick_print(void);

#endif
