/* mig_engine.c: what both roles of the engine share: its parameters and
 * statistics, the outgoing stream under max-bandwidth, the decision log,
 * and the endings (finished, in-doubt). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mig_priv.h"

struct mig_params mig_params = {
	.downtime_ms = MIG_DEFAULT_DOWNTIME_MS,
	.xbzrle_cache_bytes = MIG_DEFAULT_CACHE_BYTES,
	.max_iterations = MIG_POLICY_MAX_ROUNDS,
	.stall_iterations = MIG_POLICY_STALL_ROUNDS,
	.throttle_initial = 20,   /* QEMU's defaults */
	.throttle_increment = 10,
	.throttle_max = 99,
	.xbzrle = MIG_XBZRLE_AUTO,
	.zero_pages = true,
	.record_crc = true,
	.verify_after = true,
	.xbzrle_auto_fit = 1,
};

struct mig_stats mig_stats;

static const char *const status_names[] = {
	[MIG_NONE] = "none", [MIG_SETUP] = "setup", [MIG_ACTIVE] = "active",
	[MIG_COMPLETED] = "completed", [MIG_FAILED] = "failed", [MIG_CANCELLED] = "cancelled",
	[MIG_INDOUBT] = "in-doubt",
};

const char *mig_status_name(enum mig_status st)
{
	return (unsigned)st < sizeof(status_names) / sizeof(status_names[0]) && status_names[st] ? status_names[st]
												  : "?";
}

void mig_out_init(struct mig_out *o, uint8_t *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap;
	o->sent = 0;
	o->rate = NULL;
	stream_writer_init_buf(&o->w, buf, cap);
}

void mig_out_push(struct mig_out *o)
{
	size_t have = stream_writer_buffered(&o->w);
	size_t n = have - o->sent;
	if (n && o->rate)
		n = mig_rate_queue_full(o->rate, mig_tcp_unsent()) ? 0 : mig_rate_allow(o->rate, menv_now_ns(), n);
	if (n) {
		size_t took = mig_tcp_send(o->buf + o->sent, n);
		o->sent += took;
		if (o->rate)
			mig_rate_spend(o->rate, took);
	}
	mig_tcp_flush();
	if (o->sent == have && have) {
		stream_writer_set_buf(&o->w, o->buf, o->cap);
		o->sent = 0;
	}
}

bool mig_out_pending(const struct mig_out *o)
{
	return o->sent < stream_writer_buffered(&o->w);
}

bool mig_out_drain(struct mig_out *o, uint64_t t0, bool *moved)
{
	size_t before = o->sent;
	mig_out_push(o);
	*moved = o->sent != before;
	bool stuck = menv_now_ns() - t0 > MIG_STALL_TIMEOUT_NS;
	if (mig_out_pending(o) && mig_tcp_state() == MIG_TCP_OPEN && !stuck)
		return true;
	if (mig_out_pending(o))
		mig_tcp_abort();
	else
		mig_tcp_close();
	return false;
}

uint64_t mig_new_id(void)
{
	/* No entropy source yet: the machine's bits, the clock and a
	 * counter, mixed (splitmix64). Unique, not secret. */
	static uint64_t n;
	uint64_t z = menv_entropy() ^ (menv_now_ns() << 17) ^ (++n * 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

void mig_finish(enum mig_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(mig_stats.why, sizeof(mig_stats.why), fmt, ap);
	va_end(ap);
	mig_stats.status = st;
	mig_stats.end_ns = menv_now_ns();
	printf("\nmigration %s: %s\n", mig_status_name(st), mig_stats.why);
}

void mig_decide(const char *fmt, ...)
{
	char *e = mig_stats.log[mig_stats.nlog++ % MIG_LOG_KEPT];
	int k = snprintf(e, sizeof(mig_stats.log[0]), "round %llu: ", (unsigned long long)mig_stats.rounds);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e + k, sizeof(mig_stats.log[0]) - (size_t)k, fmt, ap);
	va_end(ap);
}

void mig_in_doubt(const char *why)
{
	snprintf(mig_stats.why, sizeof(mig_stats.why), "%s", why);
	mig_stats.status = MIG_INDOUBT;
	mig_stats.end_ns = menv_now_ns();
	printf("\nmigration in-doubt: %s\n"
	       "  the guest is stopped here and may run on %s; see 'info migrate' on both, then\n"
	       "  'migrate_resolve resume' (run it here) or 'migrate_resolve discard' (drop it here)\n",
	       why, mig_stats.peer);
}
