/* mig_cmds.c: the migration console commands, modelled on QEMU's monitor
 * (docs/migration.md): migrate, migrate_incoming, migrate_cancel,
 * migrate_set_capability, migrate_set_parameter, info migrate,
 * info migrate_capabilities, info migrate_parameters; and mig_poll. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "hv.h"
#include "mig.h"
#include "mig_cmds.h"
#include "mig_tcp.h"

int mig_streaming(void)
{
	return mig_src_active() || mig_dst_receiving();
}

int mig_busy(void)
{
	return mig_src_active() || mig_dst_busy();
}

int mig_refuse(void)
{
	if (!mig_busy())
		return 0;
	if (mig_stats.status == MIG_INDOUBT)
		printf("error: the migration %s %s is in-doubt and holds the guest; 'migrate_resolve resume' or "
		       "'migrate_resolve discard'\n", mig_stats.role == MIG_ROLE_SOURCE ? "to" : "from", mig_stats.peer);
	else
		printf("error: a migration %s %s owns the guest; wait for it or 'migrate_cancel'\n",
		       mig_stats.role == MIG_ROLE_SOURCE ? "to" : "from", mig_stats.peer);
	return 1;
}

int mig_poll(void)
{
	return mig_src_poll() | mig_dst_poll();
}

/* Refuse a second migration in either role. */
static int refuse_if_running(void)
{
	if (mig_stats.status == MIG_INDOUBT && (mig_src_active() || mig_dst_busy())) {
		printf("error: the migration %s %s is in-doubt; 'migrate_resolve resume' or 'migrate_resolve discard' first\n",
		       mig_stats.role == MIG_ROLE_SOURCE ? "to" : "from", mig_stats.peer);
		return -1;
	}
	if (mig_src_active()) {
		printf("error: a migration to %s is running; 'migrate_cancel' first\n", mig_stats.peer);
		return -1;
	}
	if (mig_dst_active()) {
		printf("error: an incoming migration on %s is %s; 'migrate_cancel' first\n", mig_stats.peer,
		       mig_dst_busy() ? "running" : "waiting");
		return -1;
	}
	if (mig_src_draining()) {
		printf("error: the migration to %s is still sending its last record; try again shortly\n",
		       mig_stats.peer);
		return -1;
	}
	return 0;
}

/* The one tcp:ADDR:PORT argument of migrate (listen 0) or
 * migrate_incoming (listen 1), when no migration runs and the network is
 * configured; else print why (usage: the command's usage line) and -1. */
static int parse_target(int argc, char **argv, int listen, const char *usage, uint32_t *ip, uint16_t *port)
{
	if (argc != 1) {
		printf("usage: %s\n", usage);
		return -1;
	}
	if (mig_tcp_parse_uri(argv[0], listen, ip, port) < 0 || refuse_if_running() < 0 || mig_tcp_require(1) < 0)
		return -1;
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	uint32_t ip;
	uint16_t port;
	if (parse_target(argc, argv, 0, "migrate tcp:ADDR:PORT", &ip, &port) < 0)
		return 1;
	if (mig_src_start(ip, port) < 0)
		return 1;
	printf("migration: connecting to %s\n", mig_stats.peer);
	return 0;
}

static int cmd_migrate_incoming(int argc, char **argv)
{
	uint32_t ip;
	uint16_t port;
	if (parse_target(argc, argv, 1, "migrate_incoming tcp:ADDR:PORT  (ADDR 0: any)", &ip, &port) < 0)
		return 1;
	if (ip && ip != mig_tcp_local_ip()) {
		printf("error: %s is not this instance's address\n", argv[0] + 4);
		return 1;
	}
	if (hv_guest()) {
		printf("error: a guest exists here; 'guest quit' before receiving one\n");
		return 1;
	}
	if (mig_dst_start(ip, port) < 0)
		return 1;
	printf("migration: listening on %s for one incoming guest\n", mig_stats.peer);
	return 0;
}

static int cmd_migrate_cancel(int argc, char **argv)
{
	(void)argv;
	if (argc) {
		printf("usage: migrate_cancel\n");
		return 1;
	}
	if (mig_src_active())
		return mig_src_cancel() < 0;
	if (mig_dst_active())
		return mig_dst_cancel() < 0;
	printf("error: no migration is running\n");
	return 1;
}

static int cmd_migrate_resolve(int argc, char **argv)
{
	bool resume = argc == 1 && strcmp(argv[0], "resume") == 0;
	if (argc != 1 || (!resume && strcmp(argv[0], "discard") != 0)) {
		printf("usage: migrate_resolve resume|discard\n");
		return 1;
	}
	if (mig_stats.status != MIG_INDOUBT) {
		printf("error: no migration is in-doubt\n");
		return 1;
	}
	int rc = mig_stats.role == MIG_ROLE_SOURCE ? mig_src_resolve(resume) : mig_dst_resolve(resume);
	return rc < 0;
}

static int cmd_info_migrate(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const struct mig_stats *m = &mig_stats;
	static const char *const xbzrle_names[] = { "off", "on", "auto" };
	printf("capabilities: xbzrle: %s\n", xbzrle_names[mig_params.xbzrle]);
	if (m->role == MIG_ROLE_NONE) {
		printf("Migration status: none\n");
		return 0;
	}
	const char *role = m->role == MIG_ROLE_SOURCE ? "to" : "from";
	printf("Migration status: %s (%s %s)\n", mig_status_name(m->status),
	       m->role == MIG_ROLE_DEST && m->status == MIG_SETUP ? "listening on" : role, m->peer);
	if (m->status == MIG_FAILED || m->status == MIG_CANCELLED || m->status == MIG_COMPLETED)
		printf("result: %s\n", m->why);
	if (m->status == MIG_INDOUBT) {
		printf("in-doubt: %s\n", m->why);
		printf("resolve: the guest is stopped here and may run on %s; check there with 'info migrate', then\n"
		       "  'migrate_resolve resume' (run it here) or 'migrate_resolve discard' (drop it here)\n", m->peer);
	}
	if (m->role == MIG_ROLE_DEST && m->status == MIG_SETUP) {
		if (m->attempts && m->why[0])
			printf("last connection: %s\nconnections: %llu\n", m->why, (unsigned long long)m->attempts);
		return 0;
	}
	if (m->mig_id)
		printf("migration id: %016llx\n", (unsigned long long)m->mig_id);
	uint64_t end = m->end_ns ? m->end_ns : clock_ns();
	printf("total time: %llu ms\n", (unsigned long long)((end - m->start_ns) / 1000000));
	if (m->status == MIG_COMPLETED && m->role == MIG_ROLE_SOURCE) {
		uint64_t ms = m->downtime_ns / 1000000;
		printf("downtime: %llu ms", (unsigned long long)ms);
		if (ms > m->downtime_limit_ms)
			printf(" (over the %llu ms limit)", (unsigned long long)m->downtime_limit_ms);
		printf("\n");
	}
	uint64_t pages = m->role == MIG_ROLE_SOURCE ? m->duplicate + m->normal + m->xbzrle_pages + m->skipped
						    : m->pages_applied;
	if (end > m->start_ns)
		printf("pages per second: %llu\n", (unsigned long long)(pages * 1000000000ull / (end - m->start_ns)));
	if (m->role == MIG_ROLE_SOURCE && m->final_written_ns) {
		/* Where the downtime went, each time counted from the stop. */
		printf("switch-over: final pass %llu pages (%llu kbytes) written by +%llu ms",
		       (unsigned long long)m->final_pages, (unsigned long long)(m->final_bytes >> 10),
		       (unsigned long long)(m->final_written_ns / 1000000));
		if (m->acked_ns)
			printf(", acknowledged with the CPU state by +%llu ms", (unsigned long long)(m->acked_ns / 1000000));
		if (m->digest_done_ns)
			printf(", digest done here by +%llu ms", (unsigned long long)(m->digest_done_ns / 1000000));
		if (m->ready_ns)
			printf(", READY at +%llu ms", (unsigned long long)(m->ready_ns / 1000000));
		if (m->go_ns)
			printf(", GO at +%llu ms", (unsigned long long)(m->go_ns / 1000000));
		if (m->downtime_ns)
			printf(", COMMIT (running there) at +%llu ms", (unsigned long long)(m->downtime_ns / 1000000));
		printf("\n");
	}
	if (m->role == MIG_ROLE_SOURCE && m->verify_after && m->regions) {
		printf("verification: %llu regions hashed here in %llu ms", (unsigned long long)m->regions,
		       (unsigned long long)(m->verify_hash_ns / 1000000));
		if (m->verified_ns)
			printf(", VERIFIED at +%llu ms", (unsigned long long)(m->verified_ns / 1000000));
		printf("\n");
	}
	if (m->role == MIG_ROLE_SOURCE && m->stop_ns)
		printf("remaining at stop: %llu pages\n", (unsigned long long)m->stop_pages);
	printf("setup: %llu ms\n", (unsigned long long)(m->setup_ns / 1000000));
	if (m->role == MIG_ROLE_SOURCE && !m->verify_after)
		printf("digests: %llu ms estimated (in the pause)%s", (unsigned long long)(m->digest_estimate_ns / 1000000),
		       m->digest_ns ? "" : "\n");
	if (m->role == MIG_ROLE_SOURCE && m->digest_ns)
		printf(", %llu ms here\n", (unsigned long long)(m->digest_ns / 1000000));
	printf("transferred ram: %llu kbytes\n", (unsigned long long)(m->transferred >> 10));
	printf("total ram: %llu kbytes\n", (unsigned long long)(m->total_bytes >> 10));
	if (m->role == MIG_ROLE_DEST) {
		if (m->pages_applied)
			printf("pages applied: %llu\n", (unsigned long long)m->pages_applied);
		if (m->resumed_ns)
			printf("switch-over: guest resumed here +%llu ms after the final pass's first record\n",
			       (unsigned long long)(m->resumed_ns / 1000000));
		if (m->regions)
			printf("verification: %llu regions, hashed in %llu ms (%llu at a guest write, which waited %llu ms),"
			       " last at +%llu ms after GO\n",
			       (unsigned long long)m->regions, (unsigned long long)(m->verify_hash_ns / 1000000),
			       (unsigned long long)m->regions_at_write, (unsigned long long)(m->at_write_ns / 1000000),
			       (unsigned long long)(m->verify_done_ns / 1000000));
		if (m->mismatch[0])
			printf("verification: %s\n", m->mismatch);
		if (m->attempts > 1)
			printf("connections: %llu\n", (unsigned long long)m->attempts);
		return 0;
	}
	printf("remaining ram: %llu kbytes\n", (unsigned long long)(m->remaining >> 10));
	printf("duplicate: %llu pages\n", (unsigned long long)m->duplicate);
	printf("skipped: %llu pages\n", (unsigned long long)m->skipped);
	printf("normal: %llu pages\n", (unsigned long long)m->normal);
	printf("normal bytes: %llu kbytes\n", (unsigned long long)(m->normal * 4));
	printf("dirty sync count: %llu\n", (unsigned long long)m->dirty_sync_count);
	printf("dirty pages rate: %llu pages/s\n", (unsigned long long)m->dirty_pages_rate);
	printf("rounds: %llu%s%s\n", (unsigned long long)m->rounds, m->stop_reason ? ", stopped: " : "",
	       m->stop_reason ? m->stop_reason : "");
	printf("mbps: %.2f\n", m->mbps);
	if (m->status == MIG_ACTIVE && m->expected_downtime_ns && m->expected_downtime_ns != UINT64_MAX)
		printf("expected downtime: %llu ms\n", (unsigned long long)(m->expected_downtime_ns / 1000000));
	if (m->status == MIG_ACTIVE && m->throttle)
		printf("cpu throttle percentage: %u\n", m->throttle);
	if (m->xbzrle_used || m->xbzrle_on) {
		printf("xbzrle: %s\n", m->xbzrle_on ? "on" : "off (was on)");
		printf("cache size: %llu bytes\n", (unsigned long long)m->cache_size);
		if (m->xbzrle_on)
			printf("cache in use: %llu bytes\n", (unsigned long long)m->cache_now);
		printf("cache held at most: %llu bytes\n", (unsigned long long)m->cache_peak);
		printf("xbzrle transferred: %llu kbytes\n", (unsigned long long)(m->xbzrle_bytes >> 10));
		printf("xbzrle pages: %llu pages\n", (unsigned long long)m->xbzrle_pages);
		printf("xbzrle cache miss: %llu pages\n", (unsigned long long)m->xbzrle_cache_miss);
		printf("xbzrle cache miss rate: %.2f\n",
		       m->xbzrle_lookups ? (double)m->xbzrle_cache_miss / (double)m->xbzrle_lookups : 0.0);
		printf("xbzrle encoding rate: %.2f\n",
		       m->xbzrle_bytes ? (double)m->xbzrle_pages * 4096 / (double)m->xbzrle_bytes : 0.0);
		printf("xbzrle overflow: %llu pages\n", (unsigned long long)m->xbzrle_overflow);
	}
	if (m->nlog) {
		uint64_t first = m->nlog > MIG_LOG_KEPT ? m->nlog - MIG_LOG_KEPT : 0;
		printf("decisions:%s\n", first ? " (the earliest dropped)" : "");
		for (uint64_t i = first; i < m->nlog; i++)
			printf("  %s\n", m->log[i % MIG_LOG_KEPT]);
	}
	return 0;
}

static int cmd_info_iterations(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const struct mig_stats *m = &mig_stats;
	if (m->role != MIG_ROLE_SOURCE || !m->nrows) {
		printf("no pre-copy pass on record (the source keeps them)\n");
		return 0;
	}
	uint64_t first = m->nrows > MIG_ROWS_KEPT ? m->nrows - MIG_ROWS_KEPT : 0;
	if (first)
		printf("(the first %llu passes dropped)\n", (unsigned long long)first);
	printf("round    dirty     zero      raw   xbzrle  skipped    kbytes      ms  hit%%   MB/s  exp-ms thr%% cache-MiB\n");
	for (uint64_t i = first; i < m->nrows; i++) {
		const struct mig_row *r = &m->rows[i % MIG_ROWS_KEPT];
		char hit[24] = "-", exp[24] = "-";
		if (r->lookups)
			snprintf(hit, sizeof(hit), "%llu", (unsigned long long)(r->hits * 100 / r->lookups));
		if (r->expected_ns != UINT64_MAX)
			snprintf(exp, sizeof(exp), "%llu", (unsigned long long)(r->expected_ns / 1000000));
		printf("%5u %8llu %8llu %8llu %8llu %8llu %9llu %7llu %5s %6.1f %7s %4u %9llu\n", r->round,
		       (unsigned long long)r->dirty, (unsigned long long)r->zero, (unsigned long long)r->raw,
		       (unsigned long long)r->xbzrle, (unsigned long long)r->skipped, (unsigned long long)(r->bytes >> 10),
		       (unsigned long long)(r->ns / 1000000), hit, r->bw / 1e6, exp, r->throttle,
		       (unsigned long long)(r->cache >> 20));
	}
	return 0;
}

static const struct console_cmd mig_cmds[] = {
	{ "migrate", "tcp:ADDR:PORT", "live-migrate the guest to a ferry listening there", cmd_migrate },
	{ "migrate_incoming", "tcp:ADDR:PORT", "receive one guest on PORT (ADDR 0: any)", cmd_migrate_incoming },
	{ "migrate_cancel", "", "abandon the migration before GO (a source resumes its guest)", cmd_migrate_cancel },
	{ "migrate_resolve", "resume|discard", "end an in-doubt migration: run the guest here, or drop this copy",
	  cmd_migrate_resolve },
	{ "info migrate", "", "status, statistics and decisions of the current or last migration", cmd_info_migrate },
	{ "info migrate iterations", "", "a row per pre-copy pass of the current or last migration",
	  cmd_info_iterations },
};

void mig_init(void)
{
	console_register(mig_cmds, sizeof(mig_cmds) / sizeof(mig_cmds[0]));
	mig_params_init();
	mig_pick_codec();
}
