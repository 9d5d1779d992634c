/* dirtylog.h: which guest pages were written since the last look, from
 * the hardware's dirty bits (EPT leaf bit 9, NPT or PTE D bit), one
 * interface over the three backends (hv.h). Also the exactness test.
 *
 * Order of use: dirtylog_start, then any number of dirtylog_harvest,
 * then dirtylog_stop (hv_guest_destroy stops it too). */
#ifndef FERRY_DIRTYLOG_H
#define FERRY_DIRTYLOG_H

#include <stdint.h>

#include "hv.h"

struct dirtylog_stats {
	int active;
	uint64_t harvests;
	uint64_t last_pages;   /* pages dirty in the last harvest */
	uint64_t last_ns;      /* cost of the last harvest (walk + flushes) */
	uint64_t last_entries; /* table entries the last harvest examined */
	uint64_t last_at_ns;   /* clock_ns of the last harvest */
	uint64_t prev_at_ns;   /* clock_ns of the one before (for pages/s) */
};

/* Clear every accessed and dirty bit of vm's stage-2 tables and flush its
 * translations: from here on a set D bit means "written since". */
void dirtylog_start(struct hv_vm *vm);

/* Test-and-clear: set bit (gpa >> 12) in bitmap (vm->npages bits, the
 * caller's, never cleared here) for every page written since the last
 * harvest, plus pages ferry itself wrote into guest memory. Translations
 * are flushed before this returns, so contents read afterwards are at
 * least as new as the log says. Returns the number of pages newly set.
 * Logging must be active (else returns 0 and sets nothing). */
uint64_t dirtylog_harvest(struct hv_vm *vm, uint64_t *bitmap);

void dirtylog_stop(struct hv_vm *vm);

/* Record that ferry wrote guest page pfn itself (not through the guest's
 * mappings, so no hardware bit saw it). */
void dirtylog_note_host_write(struct hv_vm *vm, uint64_t pfn);

void dirtylog_get_stats(struct dirtylog_stats *s);

/* HC_TEST_SYNC from the dirtytest workload: check round `round` (0 = the
 * first call) and post the next order. Returns 0, or -1 when no test is
 * running (the guest gets HC_EINVAL). */
int dirtylog_test_sync(struct hv_vm *vm, uint64_t round);

/* Register `dirtylog ...` and `info dirty`. */
void dirtylog_cmds_init(void);

#endif
