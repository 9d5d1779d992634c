/* test_mig_failover.c: the switch-over's failure paths on the simulator
 * (tests/sim/). Each test injects one fault at a chosen moment from the
 * step hook (the link falls silent, an operator cancels, a byte arrives
 * wrong, the final pass is slow, the link loses) and checks where the
 * guest ends up: before GO the source always takes it back and the
 * destination never runs it; past GO an end that cannot hear the other
 * keeps its copy stopped (in-doubt) until migrate_resolve; a NACK after
 * GO resumes the source's copy. Never two running copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define MS 1000000ull
#define SEC 1000000000ull
#define FLIP_GPA 0x5008ull
/* Past every deadline after GO: mig_verify_deadline_ns is 121 s for 16 MiB. */
#define PAST_DEADLINES (130 * SEC)

static struct sim_cfg base_cfg(uint64_t guest_mib, uint64_t rate)
{
	return (struct sim_cfg){
		.guest = { .bytes = guest_mib * MiB, .rate = rate, .zero_pct = 20, .seed = 11 },
		.link = { .rate = 100 * MiB, .latency_ns = 100000, .window = 1 * MiB },
		.cost = { .send = 400, .hash = 300, .write = 400, .encode = 1500, .harvest = 1 },
		.limit_ns = 400 * SEC,
	};
}

/* ---- the fault and what the hook watches ---- */

struct fx {
	bool (*when)(struct sim *s);      /* the moment (checked every step until it fires) */
	void (*act)(struct sim *s);       /* the fault */
	bool restore_at_end;              /* the link's rate comes back once the source has ended */
	bool freeze_at_stop;              /* the guest writes nothing once stopped (memory comparable) */
	bool fired;
	uint8_t *snap;                    /* the source's memory at its stop */
	uint64_t run_at_stop;             /* the source's guest run time at its stop */
};

static void hook(struct sim *s, void *arg)
{
	struct fx *f = arg;
	struct sim_end *a = &s->end[0];
	if (a->stats->stop_ns && !f->snap && a->has_guest) {
		f->snap = malloc(a->vm.size);
		assert_non_null(f->snap);
		memcpy(f->snap, a->mem, a->vm.size);
		f->run_at_stop = a->vm.run_ns;
		if (f->freeze_at_stop)
			s->cfg.guest.rate = 0;
	}
	if (!f->fired && f->when && f->when(s)) {
		f->fired = true;
		f->act(s);
	}
	if (f->fired && f->restore_at_end && a->stats->status != MIG_ACTIVE) {
		sim_pipe_set_rate(s->pipe[0], s->cfg.link.rate);
		sim_pipe_set_rate(s->pipe[1], s->cfg.link.rate);
		f->restore_at_end = false;
	}
}

/* The current test's fault and simulation: freed by teardown, also when
 * an assertion ends the test early (a copy of the engine left loaded
 * would hand its state to the next test's dlopen). */
static struct fx fx;
static struct sim *live;

static struct sim *start(struct sim_cfg *c, struct fx f)
{
	fx = f;
	struct sim *s = live = sim_new(c);
	assert_non_null(s);
	s->hook = hook;
	s->hook_arg = &fx;
	int rc = -1;
	SIM_AS(s, 1, rc = s->end[1].dst_start(0, 4444));
	assert_int_equal(rc, 0);
	rc = -1;
	SIM_AS(s, 0, rc = s->end[0].src_start(0x0200000a, 4444));
	assert_int_equal(rc, 0);
	return s;
}

static int teardown(void **st)
{
	(void)st;
	free(fx.snap);
	fx.snap = NULL;
	sim_free(live);
	live = NULL;
	return 0;
}

/* Step until done(s) (true) or the limit (false). */
static bool run_until(struct sim *s, bool (*done)(struct sim *s))
{
	while (s->now < s->cfg.limit_ns) {
		sim_step(s);
		if (done(s))
			return true;
	}
	return false;
}

static void run_for(struct sim *s, uint64_t ns)
{
	for (uint64_t t = s->now + ns; s->now < t;)
		sim_step(s);
}

/* The source is over (idle or draining) and the destination holds no
 * guest for it (idle, or listening again). */
static bool settled(struct sim *s)
{
	return !s->end[0].src_active() && !s->end[1].dst_busy();
}

static bool src_indoubt(struct sim *s) { return s->end[0].stats->status == MIG_INDOUBT; }
static bool both_indoubt(struct sim *s) { return src_indoubt(s) && s->end[1].stats->status == MIG_INDOUBT; }

static void print_end(const struct sim *s, const char *what)
{
	for (int i = 0; i < 2; i++) {
		const struct mig_stats *m = s->end[i].stats;
		printf("  %s: %s %s: %s\n", what, i ? "destination" : "source", s->end[i].status_name(m->status),
		       m->why);
	}
}

/* ---- the checks ---- */

static bool has(const char *text, const char *what)
{
	if (strstr(text, what))
		return true;
	printf("  \"%s\" does not say \"%s\"\n", text, what);
	return false;
}

/* The guest runs at the source, which never lost it; the destination
 * holds no copy and never ran one. */
static void assert_source_keeps(struct sim *s)
{
	assert_true(s->end[0].has_guest);
	assert_int_equal(s->end[0].vm.state, HV_VM_RUNNING);
	assert_false(s->end[1].has_guest);
	assert_int_equal(s->end[1].vm.run_ns, 0);
	assert_int_equal(s->both_running, 0);
}

/* The destination failed before GO and listens again (migrate_incoming
 * stays armed): no guest, nothing held. */
static void assert_dst_listens_again(struct sim *s)
{
	assert_true(s->end[1].dst_active());
	assert_false(s->end[1].dst_busy());
	assert_int_equal(s->end[1].stats->status, MIG_SETUP);
}

/* Every page of the source's copy (kept after it dropped it) equals the
 * destination's, and the CPU state is where the source's guest stopped. */
static void assert_same_memory(struct sim *s)
{
	assert_int_equal(sim_pages_differ(s), 0);
	assert_int_equal(s->end[1].cpu_rip, 0x100000 + s->end[0].writes);
}

/* ---- the faults ---- */

static void silence(struct sim *s)
{
	sim_pipe_set_rate(s->pipe[0], 0);
	sim_pipe_set_rate(s->pipe[1], 0);
}

static bool stopped_before_go(struct sim *s)
{
	return s->end[0].stats->stop_ns && !s->end[0].stats->go_ns;
}

static bool go_sent(struct sim *s) { return s->end[0].stats->go_ns != 0; }

static bool dst_runs(struct sim *s) { return s->end[1].has_guest && s->end[1].vm.state == HV_VM_RUNNING; }

static bool mid_precopy(struct sim *s)
{
	const struct mig_stats *m = s->end[0].stats;
	return m->status == MIG_ACTIVE && m->transferred > 4 * MiB && !m->stop_ns;
}

/* The destination has loaded the whole guest and sent READY; GO has not
 * gone (READY is still on the link). */
static bool dst_ready(struct sim *s)
{
	return s->end[1].stats->pages_applied && stopped_before_go(s);
}

static void dst_cancels(struct sim *s)
{
	int rc = -1;
	SIM_AS(s, 1, rc = s->end[1].dst_cancel());
	assert_int_equal(rc, 0);
}

static void src_cancels(struct sim *s)
{
	int rc = -1;
	SIM_AS(s, 0, rc = s->end[0].src_cancel());
	assert_int_equal(rc, 0);
}

/* 4 KiB/s: the CPU state alone (> 512 bytes of XSAVE) takes over 100 ms. */
static void slow_final_pass(struct sim *s)
{
	sim_pipe_set_rate(s->pipe[0], 4 * KiB);
}

/* ---- the tests ---- */

/* 1. Silence both ways after the stop, before GO: the source gives up at
 * its stall timeout and resumes its guest; the destination, with no END,
 * discards its half-built copy and listens again. */
static void test_silent_before_go_source_resumes(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	c.limit_ns = 60 * SEC;
	struct sim *s = start(&c, (struct fx){ .when = stopped_before_go, .act = silence });
	assert_true(run_until(s, settled));
	print_end(s, "silent before GO");
	const struct mig_stats *m = s->end[0].stats;
	assert_true(fx.fired);
	assert_int_equal(m->status, MIG_FAILED);
	assert_true(has(m->why, "acknowledged nothing for 10 s"));
	assert_int_equal(m->go_ns, 0);
	assert_true(m->end_ns - m->stop_ns >= MIG_STALL_TIMEOUT_NS);
	assert_true(m->end_ns - m->stop_ns < MIG_STALL_TIMEOUT_NS + 1 * SEC);
	assert_source_keeps(s);
	/* The source's ERROR cannot leave (its window is full): it drains 10 s
	 * and resets, which the simulator delivers even on a silent link;
	 * else the destination's record timeout (30 s) would end it. */
	const char *dw = s->end[1].stats->why;
	assert_true(strstr(dw, "connection reset by peer") || has(dw, "no complete record for 30 s"));
	assert_dst_listens_again(s);
}

/* 2a. Silence both ways as GO is written: GO never arrives. Past GO the
 * source goes in-doubt with its guest stopped; the destination, READY and
 * without GO, goes in-doubt too, its copy stopped. No timer resumes
 * either (well past the verification deadline); the source cannot be
 * cancelled. Resolved: the source discards, the destination resumes. */
static void test_go_lost_both_in_doubt(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	struct sim *s = start(&c, (struct fx){ .when = go_sent, .act = silence });
	assert_true(run_until(s, both_indoubt));
	run_for(s, PAST_DEADLINES);
	print_end(s, "GO lost");
	struct sim_end *a = &s->end[0], *b = &s->end[1];
	assert_int_equal(a->stats->status, MIG_INDOUBT);
	assert_true(has(a->stats->why, "timeout"));
	assert_true(a->has_guest);
	assert_int_equal(a->vm.state, HV_VM_STOPPED);
	assert_int_equal(a->vm.run_ns, fx.run_at_stop); /* never ran since the stop */
	assert_int_equal(b->stats->status, MIG_INDOUBT);
	assert_true(has(b->stats->why, "no GO"));
	assert_true(b->has_guest);
	assert_int_equal(b->vm.state, HV_VM_STOPPED);
	assert_int_equal(b->vm.run_ns, 0);
	int rc = 0;
	SIM_AS(s, 0, rc = a->src_cancel());
	assert_int_equal(rc, -1);
	assert_int_equal(a->vm.state, HV_VM_STOPPED);
	SIM_AS(s, 0, rc = a->src_resolve(false));
	assert_int_equal(rc, 0);
	assert_int_equal(a->stats->status, MIG_COMPLETED);
	assert_false(a->has_guest);
	SIM_AS(s, 1, rc = b->dst_resolve(true));
	assert_int_equal(rc, 0);
	assert_int_equal(b->stats->status, MIG_COMPLETED);
	run_for(s, 10 * MS);
	assert_true(b->has_guest);
	assert_int_equal(b->vm.state, HV_VM_RUNNING);
	assert_same_memory(s);
	assert_int_equal(s->both_running, 0);
}

/* 2b. Silence both ways once the destination runs the guest: COMMIT never
 * reaches the source, which stays in-doubt with its guest stopped, past
 * every deadline; the destination keeps running. Discard at the source:
 * it drops its copy, and the destination's equals it. */
static void test_commit_lost_source_in_doubt(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	struct sim *s = start(&c, (struct fx){ .when = dst_runs, .act = silence });
	assert_true(run_until(s, src_indoubt));
	run_for(s, PAST_DEADLINES);
	print_end(s, "COMMIT lost");
	struct sim_end *a = &s->end[0], *b = &s->end[1];
	assert_int_equal(a->stats->status, MIG_INDOUBT);
	assert_true(has(a->stats->why, "timeout"));
	assert_int_equal(a->stats->downtime_ns, 0); /* COMMIT never came */
	assert_true(a->has_guest);
	assert_int_equal(a->vm.state, HV_VM_STOPPED);
	assert_int_equal(a->vm.run_ns, fx.run_at_stop);
	assert_true(a->src_active());
	assert_int_equal(b->stats->status, MIG_COMPLETED);
	assert_true(b->has_guest);
	assert_int_equal(b->vm.state, HV_VM_RUNNING);
	int rc = 0;
	SIM_AS(s, 1, rc = b->dst_resolve(false)); /* not in-doubt there: refused */
	assert_int_equal(rc, -1);
	assert_true(b->has_guest);
	SIM_AS(s, 0, rc = a->src_resolve(false));
	assert_int_equal(rc, 0);
	assert_int_equal(a->stats->status, MIG_COMPLETED);
	assert_true(has(a->stats->why, "dropped here"));
	assert_false(a->has_guest);
	assert_false(a->src_active());
	SIM_AS(s, 0, rc = a->src_resolve(true)); /* resolved once */
	assert_int_equal(rc, -1);
	assert_same_memory(s);
	assert_int_equal(s->both_running, 0);
}

/* 3. The destination's operator cancels during the bulk pass: the source
 * hears CANCEL, fails, and its guest never stopped. */
static void test_dst_cancel_in_precopy(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	struct sim *s = start(&c, (struct fx){ .when = mid_precopy, .act = dst_cancels });
	assert_true(run_until(s, settled));
	print_end(s, "destination cancels");
	const struct mig_stats *m = s->end[0].stats;
	assert_true(fx.fired);
	assert_int_equal(m->status, MIG_FAILED);
	assert_true(has(m->why, "the destination answered CANCEL"));
	assert_int_equal(m->stop_ns, 0);
	assert_source_keeps(s);
	assert_int_equal(s->end[1].stats->status, MIG_CANCELLED);
	assert_false(s->end[1].dst_active()); /* the operator's cancel ends migrate_incoming */
}

/* 4. A byte flipped at the destination at GO: its verification finds the
 * region, it stops and drops its copy and NACKs; the source resumes its
 * own, whose memory is as it was at the stop. The destination's copy
 * differs from it in that byte only. */
static void test_flipped_byte_nack_source_resumes(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	struct sim *s = start(&c, (struct fx){ .freeze_at_stop = true });
	s->end[1].params->x_flip_gpa = FLIP_GPA;
	assert_true(s->end[0].params->verify_after && s->end[1].params->verify_after);
	assert_true(run_until(s, settled));
	print_end(s, "flipped byte");
	struct sim_end *a = &s->end[0], *b = &s->end[1];
	assert_int_equal(b->params->x_flip_gpa, 0); /* it was flipped */
	assert_true(a->stats->go_ns && a->stats->downtime_ns); /* past GO, COMMIT came */
	assert_int_equal(a->stats->verified_ns, 0);
	assert_int_equal(a->stats->status, MIG_FAILED);
	assert_true(has(a->stats->why, "NACK"));
	assert_true(has(a->stats->why, "the guest runs here again"));
	assert_true(has(b->stats->why, "NACK"));
	assert_true(has(b->stats->mismatch, "1 of 8 regions differ"));
	assert_true(has(b->stats->mismatch, ": 0 (0x0)"));
	assert_true(b->vm.run_ns > 0); /* it ran from GO to the verdict */
	assert_true(a->has_guest);
	assert_int_equal(a->vm.state, HV_VM_RUNNING);
	assert_false(b->has_guest);
	assert_int_equal(b->vm.state, HV_VM_STOPPED);
	assert_int_equal(s->both_running, 0);
	assert_dst_listens_again(s);
	/* the source's memory is what it was at the stop */
	assert_non_null(fx.snap);
	assert_memory_equal(a->mem, fx.snap, a->vm.size);
	/* the destination's copy: the flipped byte, nothing else */
	b->mem[FLIP_GPA] ^= 0x01;
	assert_memory_equal(b->mem, fx.snap, a->vm.size);
}

/* 5. max-downtime 100 ms and a final pass at 4 KiB/s: the source cancels
 * the switch-over at the budget, before GO, and resumes its guest; the
 * destination (the link back to speed) drops its copy at the CANCEL. */
static void test_max_downtime_source_takes_back(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	c.limit_ns = 60 * SEC;
	struct sim *s = start(&c, (struct fx){ .when = stopped_before_go, .act = slow_final_pass,
						.restore_at_end = true });
	s->end[0].params->max_downtime_ms = 100;
	assert_true(run_until(s, settled));
	print_end(s, "max-downtime");
	const struct mig_stats *m = s->end[0].stats;
	assert_true(fx.fired);
	assert_int_equal(m->status, MIG_FAILED);
	assert_true(has(m->why, "downtime budget exceeded"));
	assert_int_equal(m->go_ns, 0);
	assert_true(m->end_ns - m->stop_ns > 100 * MS);
	assert_true(m->end_ns - m->stop_ns <= 105 * MS);
	assert_source_keeps(s);
	assert_true(has(s->end[1].stats->why, "the source sent CANCEL"));
	assert_dst_listens_again(s);
}

/* 6. A link that loses every 3 MiB (each loss stalls it 200 ms) still
 * completes: the same memory, the CPU where it stopped. */
static void test_lossy_link_completes(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(32, 5000);
	c.link.loss_every = 3 * MiB;
	c.link.rto_ns = 200 * MS;
	c.limit_ns = 120 * SEC;
	struct sim *s = live = sim_new(&c);
	assert_non_null(s);
	assert_int_equal(sim_migrate(s), 0);
	print_end(s, "lossy link");
	const struct mig_stats *m = s->end[0].stats;
	assert_int_equal(m->status, MIG_COMPLETED);
	assert_int_equal(s->end[1].stats->status, MIG_COMPLETED);
	assert_true(m->verified_ns != 0);
	assert_false(s->end[0].has_guest);
	assert_true(s->end[1].has_guest);
	assert_int_equal(s->end[1].vm.state, HV_VM_RUNNING);
	assert_int_equal(s->both_running, 0);
	assert_same_memory(s);
	/* the losses happened: each stalled the link 200 ms */
	uint64_t losses = m->transferred / (3 * MiB);
	assert_true(losses >= 10);
	assert_true(m->end_ns - m->start_ns >= losses * 200 * MS);
}

/* 7a. The source's operator cancels during pre-copy: the destination drops
 * its half-built copy at the CANCEL and listens again. */
static void test_src_cancel_in_precopy(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	struct sim *s = start(&c, (struct fx){ .when = mid_precopy, .act = src_cancels });
	assert_true(run_until(s, settled));
	print_end(s, "source cancels in pre-copy");
	const struct mig_stats *m = s->end[0].stats;
	assert_true(fx.fired);
	assert_int_equal(m->status, MIG_CANCELLED);
	assert_true(has(m->why, "cancelled by the operator"));
	assert_int_equal(m->stop_ns, 0);
	assert_source_keeps(s);
	assert_true(has(s->end[1].stats->why, "the source sent CANCEL"));
	assert_dst_listens_again(s);
}

/* 7b. The source's operator cancels with its guest stopped and the
 * destination's copy loaded and READY (READY still on its way): the
 * source resumes, the destination discards the READY copy at the CANCEL
 * (not in-doubt: it never got GO). */
static void test_src_cancel_at_ready(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 2000);
	struct sim *s = start(&c, (struct fx){ .when = dst_ready, .act = src_cancels });
	assert_true(run_until(s, settled));
	print_end(s, "source cancels at READY");
	const struct mig_stats *m = s->end[0].stats;
	assert_true(fx.fired);
	assert_int_equal(m->status, MIG_CANCELLED);
	assert_true(has(m->why, "cancelled by the operator"));
	assert_true(m->stop_ns != 0);
	assert_int_equal(m->go_ns, 0);
	assert_true(s->end[0].vm.run_ns > fx.run_at_stop); /* it ran again after the stop */
	assert_source_keeps(s);
	assert_true(has(s->end[1].stats->why, "the source sent CANCEL"));
	assert_dst_listens_again(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_silent_before_go_source_resumes, teardown),
		cmocka_unit_test_teardown(test_go_lost_both_in_doubt, teardown),
		cmocka_unit_test_teardown(test_commit_lost_source_in_doubt, teardown),
		cmocka_unit_test_teardown(test_dst_cancel_in_precopy, teardown),
		cmocka_unit_test_teardown(test_flipped_byte_nack_source_resumes, teardown),
		cmocka_unit_test_teardown(test_max_downtime_source_takes_back, teardown),
		cmocka_unit_test_teardown(test_lossy_link_completes, teardown),
		cmocka_unit_test_teardown(test_src_cancel_in_precopy, teardown),
		cmocka_unit_test_teardown(test_src_cancel_at_ready, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
