/* mig_priv.h: what the engine's files (kernel/mig/) share among
 * themselves: the outgoing stream, the decision log, the endings, the
 * region hashes of verification after the switch-over. Not for use
 * outside kernel/mig/. */
#ifndef FERRY_MIG_PRIV_H
#define FERRY_MIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mig_engine.h"
#include "mig_env.h"

/* A fresh migration id (never 0). */
uint64_t mig_new_id(void);

/* An outgoing stream: the writer fills buf, mig_out_push hands TCP what
 * it has room for and, once all of it went, starts the buffer over. Both
 * roles write through one (the source its whole stream, the destination
 * its replies). */
struct mig_out {
	struct stream_writer w;
	uint8_t *buf;
	size_t cap;
	size_t sent; /* bytes of buf TCP took */
	struct mig_rate *rate; /* max-bandwidth on what TCP takes (NULL: none) */
};
void mig_out_init(struct mig_out *o, uint8_t *buf, size_t cap);
void mig_out_push(struct mig_out *o);
bool mig_out_pending(const struct mig_out *o); /* written, not yet taken by TCP */
/* The last records before a close (a verdict, CANCEL, ERROR) must all
 * reach TCP first. Push; while bytes remain and the link is open and has
 * not been stuck MIG_STALL_TIMEOUT_NS since t0, return true (call again
 * next pass; *moved says whether this call handed anything over). Else
 * end the connection, closed once everything went (lwIP still sends what
 * it queued) or reset, and return false. */
bool mig_out_drain(struct mig_out *o, uint64_t t0, bool *moved);

/* GO to the verdict, at most: both ends hash the guest after GO (the
 * destination in 3 ms steps between its guest's slices), so the bound
 * grows with the guest: 120 s and 1 s per 16 MiB. */
#ifndef MIG_SIM_SCALE
#define MIG_SIM_SCALE 1 /* the simulator's scaled build: the pages a page stands for */
#endif
static inline uint64_t mig_verify_deadline_ns(uint64_t guest_bytes)
{
	return (120ull + ((guest_bytes * MIG_SIM_SCALE) >> 24)) * 1000000000ull;
}

/* Record a decision of the current round ("round N: " is prefixed). */
void mig_decide(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Mark the migration in-doubt (why) and print what the operator can do. */
void mig_in_doubt(const char *why);

/* Mark the migration finished (status, why) and print one line saying so. */
void mig_finish(enum mig_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Guest memory hashed region by region for REGION_DIGEST (mig_verify.c).
 * The source hashes its stopped copy (protect false); the destination
 * hashes the copy its guest already runs on (protect true: every region is
 * write-protected at begin and hashed at the latest at the guest's first
 * write into it, so each hash is of the memory as it was at begin). */
struct mig_regions {
	struct hv_vm *vm;
	uint64_t n;                   /* regions */
	struct stream_region_hash *h; /* h[r]: valid once r is done */
	uint64_t *done;               /* bitmap of hashed regions */
	uint64_t ndone, next;
	bool protect;
	uint64_t at_write;            /* regions hashed at a guest write */
	uint64_t at_write_ns;         /* the guest's time spent waiting on those */
	uint64_t hash_ns;             /* time spent hashing */
	uint64_t t0, done_ns;         /* begin; ns from begin to the last hash */
};
/* Returns 0, or -1 out of memory (nothing kept). */
int mig_regions_begin(struct mig_regions *m, struct hv_vm *vm, bool protect);
/* Hash regions for about budget_ns. Returns 1 when all are done (every
 * region writable again), 0 while some remain, -1 when a page is missing. */
int mig_regions_step(struct mig_regions *m, uint64_t budget_ns);
/* How many regions from `from` on are hashed, in a row. */
uint64_t mig_regions_ready(const struct mig_regions *m, uint64_t from);
/* Unprotect what is still protected and free (any time). */
void mig_regions_end(struct mig_regions *m);
/* Free after the guest was destroyed (its tables are gone). */
void mig_regions_forget(struct mig_regions *m);

#endif
