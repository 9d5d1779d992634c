/* mig.h: the live-migration engine as the rest of ferry sees it: the
 * console commands (migrate, migrate_incoming, migrate_cancel, info
 * migrate, migrate_set_capability/parameter) and one poll per main-loop
 * pass. The source and destination run as state machines from mig_poll,
 * so the console stays usable during a migration (docs/migration.md). */
#ifndef FERRY_MIG_H
#define FERRY_MIG_H

/* Register the migration commands. Requires net_init. Once. */
void mig_init(void);

/* Advance a running migration (either role). Returns non-zero when it
 * did work (the main loop then does not halt). */
int mig_poll(void);

/* Non-zero while a migration owns the guest (source: from `migrate` to
 * its end, in-doubt included; destination: from a connection to its end:
 * receiving, READY, verifying a guest that runs, in-doubt). Guest commands
 * that would pull the guest from under it refuse then. */
int mig_busy(void);

/* Non-zero while the stream flows (the source from `migrate` to its end,
 * the destination receiving up to END): the guest then gets short slices,
 * so the network is serviced often. Not while the destination verifies
 * a guest that already runs there: that guest gets its full slices. */
int mig_streaming(void);

/* For those commands: when mig_busy(), print why they must wait and
 * return non-zero; else 0. */
int mig_refuse(void);

#endif
