/* sim.h: the migration engine (kernel/mig/) on the host, against a
 * simulated guest, link and clock.
 *
 * Each end is its own copy of the engine: the same build loaded twice
 * (dlopen of two files), so each has its own statics, as two appliances
 * would. Both implement nothing themselves: mig_env.h and mig_tcp.h are
 * answered here (sim_env.c, sim_link.c), for whichever end is being
 * polled. One simulated clock; an end's clock moves on by the measured
 * cost of each page it touches (struct sim_costs), and it is polled again
 * only once the time its work took has passed.
 *
 * scale > 1 makes a page stand for scale pages (costs are charged that
 * many times; the caller scales sizes and rates): a 1 TiB guest becomes
 * a 1 GiB one with the same rounds, downtime and total time, except for
 * the engine's byte-sized constants (docs/migration.md says which). */
#ifndef FERRY_SIM_H
#define FERRY_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"
#include "mig/mig_engine.h"
#include "mig/mig_env.h"

struct sim_guest_cfg {
	uint64_t bytes;       /* guest memory (a multiple of 4 KiB) */
	uint64_t rate;        /* page writes a second while running unthrottled (0: idle) */
	uint64_t hot_first;   /* writes land uniformly in pages [hot_first, hot_first + hot_pages) */
	uint64_t hot_pages;   /* (0: all of memory) */
	uint32_t zero_pct;    /* per cent of pages left zero at boot */
	uint64_t seed;
};

struct sim_link_cfg {
	uint64_t rate;        /* bytes a second, each way */
	uint64_t latency_ns;  /* one way */
	uint64_t window;      /* the receiver's window and the sender's buffer, bytes */
	uint64_t loss_every;  /* bytes sent between losses (0: none); each stalls the link rto_ns */
	uint64_t rto_ns;
};

/* ns of one core per 4 KiB page (sim_costs_measure: this CPU's). */
struct sim_costs {
	double send;    /* zero check, copy into the stream, CRC32C */
	double hash;    /* XXH3-128 */
	double write;   /* the destination: CRC32C check and copy into place */
	double encode;  /* XBZRLE: snapshot, encode against the cached page */
	double harvest; /* the dirty log's test-and-clear, per guest page */
};

struct sim_cfg {
	struct sim_guest_cfg guest;
	struct sim_link_cfg link;
	struct sim_costs cost;  /* all 0: work takes no time */
	uint64_t scale;         /* pages a page stands for (0: 1) */
	uint64_t step_ns;       /* the clock's step (0: 100 us) */
	uint64_t limit_ns;      /* simulated time before sim_run gives up (0: 600 s) */
	const char *engine;     /* the engine's build: "libmigengine-scaled", a path with a '/' (NULL: libmigengine) */
};

/* One end: its copy of the engine, its guest, its side of the link. */
struct sim_end {
	int role;                 /* 0 source, 1 destination */
	void *dl;
	struct mig_params *params;
	struct mig_stats *stats;
	int (*src_start)(uint32_t, uint16_t);
	int (*src_poll)(void);
	int (*src_cancel)(void);
	int (*src_active)(void);
	int (*src_retune)(char *, size_t);
	int (*dst_start)(uint32_t, uint16_t);
	int (*dst_poll)(void);
	int (*dst_active)(void);
	int (*dst_busy)(void);
	int (*dst_cancel)(void);
	int (*src_resolve)(bool resume);
	int (*dst_resolve)(bool resume);
	const char *(*status_name)(enum mig_status);
	/* the guest */
	struct hv_vm vm;
	bool has_guest;
	uint8_t *mem;             /* kept after the engine destroys the guest */
	uint64_t *dirty;          /* the log: pages written since the last harvest */
	bool logging;
	double carry;             /* fractional writes owed */
	uint64_t rng;
	uint64_t writes;          /* page writes made */
	uint64_t cpu_rip;         /* the destination: the RIP its CPU state brought */
	/* the clock: now while polled; busy until its work is done */
	uint64_t now, busy_until;
	uint64_t lookups_charged; /* XBZRLE lookups already charged */
	double work_ns;           /* time charged */
	/* the transport */
	enum mig_tcp_state tcp;
	char why[80];
	bool closed;              /* this end closed its side */
	uint64_t bytes_alloc;     /* pages menv_alloc gave out, as bytes */
};

struct sim_pipe;

struct sim {
	struct sim_cfg cfg;
	uint64_t now;
	struct sim_end end[2];
	struct sim_pipe *pipe[2]; /* [0] source to destination, [1] back */
	int cur;                  /* the end being polled (-1: none) */
	uint16_t listen_port;
	bool listening;
	uint64_t connect_at;      /* the source's connect reaches the listener (0: none pending) */
	uint16_t connect_port;
	uint64_t both_running;    /* steps in which both guests ran: must stay 0 */
	uint64_t dst_resumed_at;  /* when the destination's guest first ran (0: not yet) */
	uint64_t steps;
	/* called every step before the ends are polled (a test's mid-run changes) */
	void (*hook)(struct sim *s, void *arg);
	void *hook_arg;
};

/* The current simulation (the environment's functions answer for it). */
extern struct sim *sim_current;

/* Load both ends, boot the source's guest (running, memory filled from
 * the seed). NULL after printing why. */
struct sim *sim_new(const struct sim_cfg *cfg);
void sim_free(struct sim *s);

/* The destination listens, the source migrates to it; run until both
 * ended (or limit_ns). Returns 0 when they did, -1 at the limit. */
int sim_migrate(struct sim *s);
/* One step of the clock: the guests, the link, the ends. */
void sim_step(struct sim *s);
/* Both ends are done: the source ended, the destination holds no
 * connection (it may listen again), nothing in flight. */
bool sim_done(const struct sim *s);

/* Pages where the destination's memory differs from the source's (kept
 * after the source dropped its copy); UINT64_MAX: their sizes differ. */
uint64_t sim_pages_differ(struct sim *s);
/* Page pfn of an end's guest memory (kept after the guest is gone). */
uint8_t *sim_mem(struct sim *s, int end, uint64_t pfn);

/* This CPU's per-page costs, measured with the codec: the fastest of
 * 7 passes (some 50 ms). */
void sim_costs_measure(struct sim_costs *c);

/* ---- sim_link.c ---- */
struct sim_pipe *sim_pipe_new(const struct sim_link_cfg *cfg);
void sim_pipe_free(struct sim_pipe *p);
/* Move the pipe's bytes on to time now. */
void sim_pipe_step(struct sim_pipe *p, uint64_t now);
uint64_t sim_pipe_in_flight(const struct sim_pipe *p); /* sent, not yet consumed */
uint64_t sim_pipe_moved(const struct sim_pipe *p);     /* bytes that arrived */
/* Change the pipe's rate from now on (0: the link carries nothing). */
void sim_pipe_set_rate(struct sim_pipe *p, uint64_t rate);
/* Call an end's engine function as that end (its clock, its link); the
 * expression's value is lost: assign inside (SIM_AS(s, 0, rc = f())). */
#define SIM_AS(s, i, call) ((s)->cur = (i), (s)->end[i].now = (s)->now, (call), (s)->cur = -1)
/* An end that is not connected drops what arrives for it. */
void sim_pipe_drop(struct sim_pipe *p);
/* A pending connect reaches the listener (or is refused) once due. */
void sim_link_connect_step(struct sim *s);

/* ---- sim_env.c ---- */
/* The source's guest writes for step_ns (throttled as the engine set). */
void sim_guest_run(struct sim *s, struct sim_end *e, uint64_t step_ns);
void sim_guest_boot(struct sim_end *e, const struct sim_guest_cfg *g);

#endif
