/* mig_engine.h: the migration engine (kernel/mig/) as its users see it:
 * the parameters and capabilities it reads, the statistics it keeps, and
 * the entry points of the source (mig_src.c) and destination (mig_dst.c)
 * state machines. Its users are the console (kernel/mig_cmds.c,
 * kernel/mig_params.c) and, on the host, the simulator (tests/sim/). What
 * the engine takes from the machine it runs on is mig_env.h. */
#ifndef FERRY_MIG_ENGINE_H
#define FERRY_MIG_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "mig_policy.h"
#include "stream.h"
#include "stream_format.h"

#define MIG_DEFAULT_DOWNTIME_MS 300             /* QEMU's default limit */
#define MIG_DEFAULT_CACHE_BYTES (64ull << 20)   /* QEMU's default XBZRLE cache */
#define MIG_MAX_CACHE_BYTES (1ull << 30)        /* largest xbzrle-cache-size */
#define MIG_MAX_DOWNTIME_MS 2000000             /* QEMU's limit on downtime-limit */
#define MIG_STALL_TIMEOUT_NS (10ull * 1000000000) /* source: nothing acknowledged this long: the peer is gone */
#define MIG_POLL_BUDGET_NS 3000000ull           /* ns of migration work per main-loop pass */

/* MIG_INDOUBT: past GO, an end cannot know whether the other runs the
 * guest; its copy stays stopped until migrate_resolve. */
enum mig_status { MIG_NONE, MIG_SETUP, MIG_ACTIVE, MIG_COMPLETED, MIG_FAILED, MIG_CANCELLED, MIG_INDOUBT };
enum mig_role { MIG_ROLE_NONE, MIG_ROLE_SOURCE, MIG_ROLE_DEST };

/* What migrate_set_parameter and migrate_set_capability set
 * (mig_params.c). The source reads them at `migrate`; those marked live
 * take effect at once during a migration (mig_src_retune). */
struct mig_params {
	uint64_t downtime_ms;        /* downtime-limit (live) */
	uint64_t max_downtime_ms;    /* the source abandons the switch-over past this (0: no budget; live) */
	uint64_t x_flip_gpa;         /* debug: the destination flips this byte of its copy at GO (0: off) */
	uint64_t xbzrle_cache_bytes; /* xbzrle-cache-size (live: the cache is resized keeping its pages) */
	uint64_t max_bandwidth;      /* bytes/s handed to TCP, 0: unlimited (live) */
	uint64_t avail_switchover_bw; /* bytes/s the switch-over decision assumes, 0: measured (live) */
	uint64_t max_iterations;     /* pre-copy rounds after the bulk pass (live) */
	uint64_t stall_iterations;   /* rounds without a new low that count as stalled (live) */
	uint64_t throttle_initial, throttle_increment, throttle_max; /* auto-converge, % (live) */
	uint64_t fail_unconverged;   /* no-convergence: 0 switch over anyway (and report it), 1 fail */
	enum mig_xbzrle_mode xbzrle;
	bool zero_pages;             /* offer ZERO_PAGES records (else zero pages go raw) */
	bool record_crc;             /* offer CRC32C on every record */
	bool verify_after;           /* offer verification after the switch-over (else the digest is in the pause) */
	bool auto_converge;          /* throttle a guest that outruns the link (live) */
	uint64_t xbzrle_auto_fit;    /* x-xbzrle-auto-fit: auto sizes the cache to the dirty set and grows it
				      * (1), or takes the whole budget at once (0) */
};

/* The decisions of a migration, each with its reason, and a row per
 * pre-copy pass, for `info migrate` and `info migrate iterations`: the
 * last MIG_LOG_KEPT and MIG_ROWS_KEPT of them. */
#define MIG_LOG_KEPT 64
#define MIG_ROWS_KEPT 128
struct mig_row {
	uint32_t round;           /* 0: the bulk pass */
	uint32_t throttle;        /* % during the pass */
	uint64_t dirty;           /* pages the pass had to send */
	uint64_t zero, raw, xbzrle, skipped; /* how they went */
	uint64_t bytes;           /* stream bytes */
	uint64_t ns;              /* duration */
	uint64_t hits, lookups;   /* the cache's, over the pass */
	double bw;                /* bytes/s the decision after it used (0: unknown) */
	uint64_t expected_ns;     /* expected downtime judged after it (UINT64_MAX: unknown) */
	uint64_t cache;           /* the cache's budget during the pass (0: off) */
};

/* The statistics of the current (or last) migration, QEMU's names. */
struct mig_stats {
	enum mig_role role;
	enum mig_status status;
	uint64_t mig_id;          /* the HELLO's */
	bool verify_after;        /* verification after the switch-over agreed */
	char peer[24];
	char why[200];            /* failed / cancelled / in-doubt: why */
	uint64_t attempts;        /* destination: connections since migrate_incoming */
	uint64_t start_ns, end_ns;
	uint64_t setup_ns;        /* connect + negotiation */
	uint64_t stop_ns;         /* source: when the guest stopped (0: not yet) */
	/* source, the switch-over: the pages dirty at the stop (the final
	 * harvest's count, what the final pass has to send); the pages the
	 * final pass wrote (its own count, page by page) and its stream bytes;
	 * and when (ns after stop_ns) its last page was written, the stream
	 * up to the CPU state was acknowledged, and the digest was done */
	uint64_t stop_pages;
	uint64_t final_pages, final_bytes;
	uint64_t final_written_ns, acked_ns, digest_done_ns;
	uint64_t downtime_ns;     /* source: stop to COMMIT (the destination runs it) */
	uint64_t downtime_limit_ms; /* source: downtime-limit at the stop */
	uint64_t ready_ns, go_ns; /* source: READY came, GO went (ns after stop_ns) */
	uint64_t verified_ns;     /* source: VERIFIED came (ns after stop_ns) */
	uint64_t regions;         /* regions hashed for REGION_DIGEST */
	uint64_t verify_hash_ns;  /* time hashing them here */
	uint64_t verify_done_ns;  /* destination: GO to the last region hashed */
	uint64_t regions_at_write; /* destination: regions hashed at a guest write */
	uint64_t at_write_ns;     /* destination: the guest's time spent waiting on those hashes */
	char mismatch[200];       /* destination: the regions that differed */
	uint64_t digest_ns;       /* source: hashing all memory at switch-over (its steps' sum) */
	uint64_t digest_estimate_ns; /* one whole digest (the ends hash at once), estimated at setup (taken off the limit) */
	uint64_t total_bytes;     /* guest memory */
	uint64_t transferred;     /* stream bytes handed to TCP */
	uint64_t remaining;       /* bytes still to send in this pass (estimate) */
	uint64_t expected_downtime_ns; /* source: the policy's estimate at the last judgment (UINT64_MAX: unknown) */
	uint64_t duplicate;       /* zero pages */
	uint64_t normal;          /* raw pages */
	uint64_t skipped;         /* dirty but unchanged (XBZRLE length 0) */
	uint64_t dirty_sync_count;
	uint64_t dirty_pages_rate; /* pages/s at the last sync */
	uint64_t rounds;          /* pre-copy rounds after the bulk pass */
	double mbps;              /* last bandwidth estimate, 10^6 bits/s */
	const char *stop_reason;  /* converged, max-rounds, stalled */
	bool xbzrle_on;
	bool xbzrle_used;         /* XBZRLE was on in some round */
	uint64_t xbzrle_pages, xbzrle_bytes, xbzrle_overflow, xbzrle_cache_miss, xbzrle_lookups;
	uint64_t cache_size;      /* the budget (xbzrle-cache-size, reserved) */
	uint64_t cache_now;       /* the cache's size now (auto: grown in steps up to the budget) */
	uint64_t cache_peak;      /* most bytes the page cache held (pcache_bytes_used) */
	/* the negotiation (both roles): what the last HELLO_ACK agreed */
	bool agreed;
	uint32_t agreed_caps, agreed_codecs;
	/* source: the policy's record */
	uint32_t throttle;        /* % now */
	uint64_t nlog;            /* decisions made (the last MIG_LOG_KEPT kept) */
	char log[MIG_LOG_KEPT][MIG_POLICY_WHY + 16];
	uint64_t nrows;           /* passes ended (the last MIG_ROWS_KEPT kept) */
	struct mig_row rows[MIG_ROWS_KEPT];
	/* destination */
	uint64_t pages_applied;
	uint64_t resumed_ns;      /* the final pass's first record read to COMMIT and resume (0: unknown) */
};

extern struct mig_params mig_params;
extern struct mig_stats mig_stats;

/* Start a migration of the running (or stopped) guest to ip:port.
 * Returns 0 (running in the background), or -1 after printing why. */
int mig_src_start(uint32_t ip, uint16_t port);
int mig_src_poll(void);
/* Operator cancel: tell the peer, resume the guest. Before GO only:
 * returns -1 after printing why past it. */
int mig_src_cancel(void);
/* In-doubt only: resume the guest here, or drop this copy. -1: not in-doubt. */
int mig_src_resolve(bool resume);
int mig_dst_resolve(bool resume);
int mig_src_active(void);	/* from `migrate` to the end */
bool mig_src_has_cache(void);	/* an XBZRLE cache is reserved (and, after the HELLO_ACK, agreed) */
int mig_src_draining(void);	/* ended; its last record still going to TCP */

/* Listen on ip:port for one incoming migration. Returns 0, or -1 after
 * printing why. */
int mig_dst_start(uint32_t ip, uint16_t port);
int mig_dst_poll(void);
/* Operator cancel: stop listening, or abandon the incoming guest (before
 * GO only: returns -1 after printing why past it). */
int mig_dst_cancel(void);
int mig_dst_active(void);	/* listening or receiving */
int mig_dst_busy(void);		/* from a connection to its end: a guest is being built, run or held */
int mig_dst_receiving(void);	/* the stream flows, up to END */

/* A parameter changed during a migration: apply what is live. Returns 0,
 * or -1 with why (the xbzrle cache could not grow: the caller puts the old
 * value back). Nothing to do when no migration runs here; once the guest
 * is stopped (the final pass on, in-doubt included) only max-bandwidth. */
int mig_src_retune(char *why, size_t n);

/* The name `info migrate` gives a status ("active", "completed", ...). */
const char *mig_status_name(enum mig_status st);

#endif
