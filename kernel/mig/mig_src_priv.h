/* mig_src_priv.h: what the source's files share: its phases, its state,
 * and the steps one file takes for another. mig_src.c runs the state
 * machine (negotiation, passes, the reply stream), mig_src_rounds.c
 * decides between passes (harvest, convergence, XBZRLE, throttle, the
 * parameters that change during a migration), mig_src_switch.c carries
 * the guest past GO. Not for use outside kernel/mig_src*.c. */
#ifndef FERRY_MIG_SRC_PRIV_H
#define FERRY_MIG_SRC_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "mig_priv.h"
#include "pcache.h"
#include "stream.h"

/* The simulator's scaled runs (tests/sim/), where a page stands for
 * thousands, build the engine with a smaller batch and buffer. */
#ifndef SRC_BATCH
#define SRC_BATCH 64                     /* pages per PAGE_DATA / XBZRLE_PAGES record */
#endif
#ifndef SRC_OBUF_BYTES
#define SRC_OBUF_BYTES (2u << 20)        /* stream bytes buffered before TCP takes them */
#endif
#define SRC_CHUNK_MAX (SRC_BATCH * (STREAM_PAGE_SIZE + 64) + 8192) /* most one chunk writes */
#define SRC_CONNECT_TIMEOUT_NS (10ull * 1000000000)
#define SRC_READY_TIMEOUT_NS (30ull * 1000000000)   /* END written to READY: else cancel */
#define SRC_VERDICT_SLACK_NS (30ull * 1000000000)   /* see src_verdict_overdue */
#define SRC_DIGEST_SAMPLE 1024ull        /* pages hashed to estimate the digest's cost */
#define SRC_DIGEST_STEP 1024ull          /* pages hashed per poll in S_DIGEST (4 MiB) */
#define PAGE 4096u
#define SRC_CAPS (STREAM_CAP_XSAVE | STREAM_CAP_ITER_STATS) /* always offered */

/* S_FINAL: the guest is stopped, the last dirty pages go.
 * S_DIGEST (without verification after the switch-over): memory is hashed
 * a step per poll for the DIGEST before END.
 * S_READY: END is written; waiting for READY. Still ours to take back.
 * S_COMMITTING: GO is written (the point of no return); waiting for COMMIT
 * while the regions are hashed and their REGION_DIGESTs sent.
 * S_VERIFY: COMMIT came (the destination runs the guest); waiting for
 * VERIFIED or NACK.
 * S_INDOUBT: after GO the destination fell silent or the link failed: the
 * guest stays stopped here until migrate_resolve.
 * S_DRAIN: the migration has ended badly and the guest runs here again;
 * only the ERROR or CANCEL record (and the stream bytes queued ahead of
 * it) are still being handed to TCP before the connection closes. */
enum src_phase { S_IDLE, S_CONNECT, S_HELLO, S_BULK, S_ROUND, S_FINAL, S_DIGEST, S_READY, S_COMMITTING,
		 S_VERIFY, S_INDOUBT, S_DRAIN };

struct src_state {
	enum src_phase phase;
	struct hv_vm *vm;
	struct mig_out out;       /* the stream; out.buf is SRC_OBUF_BYTES */
	struct stream_reader *r;  /* the reply stream */
	uint64_t offered_codecs;
	uint64_t *bitmap;         /* dirty pages of this round, cleared as sent */
	size_t bitmap_bytes;
	uint64_t cursor;          /* next page to look at in this pass */
	uint64_t pending;         /* dirty pages of this pass not sent yet */
	struct pcache *cache;     /* reserved at `migrate` for xbzrle-cache-size; used while xon */
	bool xon;                 /* XBZRLE on for this pass */
	bool cache_fresh;         /* turned on at the last harvest: empty, every lookup missed */
	bool zero_ok, iter_ok;    /* the peer agreed to ZERO_PAGES, ITER_END */
	struct mig_xbz xbz;       /* XBZRLE's policy state */
	struct mig_throttle thr;  /* auto-converge */
	struct mig_rate rate;     /* max-bandwidth */
	struct mig_policy pol;
	struct mig_bw bw;
	uint64_t bw_t, bw_acked;  /* last bandwidth sample point */
	uint64_t harvest_t;       /* last harvest */
	uint64_t cache_hits0, cache_lookups0, cache_full0; /* the cache's counters at the last harvest */
	struct stream_iter_end it;
	uint64_t it_t0, it_bytes0;
	bool we_stopped;
	uint64_t phase_t0, progress_t, progress_acked;
	uint64_t tail_end;        /* stream bytes up to the CPU state (0: not written yet) */
	struct stream_digest_steps dg;  /* S_DIGEST */
	bool live;                /* verification after the switch-over agreed */
	struct mig_regions rg;    /* live: this copy's region hashes, from GO */
	uint64_t rg_sent;         /* regions sent in REGION_DIGEST records */
	uint64_t all_acked_t;     /* when they were all acknowledged (0: not yet) */
	/* the batch being filled */
	uint64_t raw_pfn[SRC_BATCH];
	const uint8_t *raw_page[SRC_BATCH];
	uint32_t nraw;
	uint64_t zero_pfn[SRC_BATCH];
	uint32_t nzero;
	struct stream_xbzrle_page xb[SRC_BATCH];
	uint32_t nxb;
	uint8_t *snap;            /* SRC_BATCH page snapshots */
	uint8_t *enc;             /* SRC_BATCH encodings */
	uint32_t nsnap;
};

/* The one migration this instance sends (zeroed at `migrate`). */
extern struct src_state mig_src;

/* ---- mig_src.c ---- */

/* A failure inside a step ended the migration (the guest runs again,
 * the last record may still be draining): the step must stop there. */
bool src_ended(void);
/* Free the migration's state; keep_out keeps the stream buffer for S_DRAIN. */
void src_release(bool keep_out);
/* Give the guest back: logging off, running again if we paused it. */
void src_resume_guest(void);
/* Fail (or cancel) before GO: tell the peer (ERROR werr, or CANCEL),
 * resume the guest, report why. */
void src_end_badly(enum mig_status st, uint32_t werr, bool cancel, const char *why);
void src_fail(uint32_t werr, const char *why);
/* Start pass iteration (0: the bulk pass) over dirty pages. */
void src_start_pass(uint32_t iteration, uint64_t dirty);

/* ---- mig_src_rounds.c ---- */

/* After a pre-copy pass: harvest, judge, decide, and start the next pass
 * or the final one. */
void src_next_round(void);
/* The row of `info migrate iterations` for the pass just ended. */
struct mig_row *src_add_row(void);
/* The guest gets pct per cent less of the CPU (0 lifts it). */
void src_set_throttle(uint32_t pct);
/* The parameters the policy reads, as they are now. */
void src_apply_params(void);
/* Reserve the XBZRLE cache for budget bytes (creating it). Returns 0, or
 * -1 with why, naming the bytes needed and free. */
int src_reserve_cache(uint64_t budget, char *why, size_t n);

/* ---- mig_src_switch.c ---- */

/* Write GO (the point of no return) and start hashing the regions. */
void src_send_go(void);
/* Hash regions and send their REGION_DIGESTs as they come. */
void src_send_regions(void);
/* Past GO and the destination cannot be heard: the guest stays stopped. */
void src_in_doubt(const char *why);
/* VERIFIED (or, without verification after the pause, COMMIT): done. */
void src_handed_over(const char *how);
/* A NACK after GO (or a CANCEL before COMMIT): the guest runs here again. */
void src_taken_back(const char *why);
/* All region hashes acknowledged long ago and still no verdict? */
bool src_verdict_overdue(uint64_t now);

#endif
