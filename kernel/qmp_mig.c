/* qmp_mig.c: the migration commands of the console's JSON mode (QEMU's
 * names: migrate, migrate-incoming, migrate_cancel, query-migrate, the
 * capabilities and parameters and their queries), over the human
 * commands of kernel/mig_cmds.c and kernel/mig_params.c. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "mig_cmds.h"
#include "qmp.h"
#include "qmp_priv.h"

int qmp_migrate_cancel(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	return qmp_human_empty("migrate_cancel", w, err, n);
}

static int with_uri(const struct qmp_req *r, struct jw *w, char *err, size_t n, const char *cmd)
{
	static const char *const allowed[] = { "uri", NULL };
	char uri[96], cmdline[CONSOLE_LINE_MAX];
	if (qmp_args_only(r, allowed, err, n) < 0 || qmp_word_arg(r, "uri", true, uri, sizeof(uri), err, n) < 0)
		return -1;
	snprintf(cmdline, sizeof(cmdline), "%s %s", cmd, uri);
	return qmp_human_empty(cmdline, w, err, n);
}

int qmp_migrate(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	return with_uri(r, w, err, n, "migrate");
}

int qmp_migrate_incoming(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	return with_uri(r, w, err, n, "migrate_incoming");
}

/* ---- migration: its capabilities, parameters and state ---- */

static const struct {
	const char *name;
	size_t at; /* offset of the bool in struct mig_params (xbzrle: its mode) */
} caps[] = {
	{ "xbzrle", 0 },
	{ "zero-pages", offsetof(struct mig_params, zero_pages) },
	{ "record-crc", offsetof(struct mig_params, record_crc) },
	{ "verify-after", offsetof(struct mig_params, verify_after) },
	{ "auto-converge", offsetof(struct mig_params, auto_converge) },
};

int qmp_query_caps(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	jw_arr(w, "return");
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		jw_obj(w, NULL);
		jw_str(w, "capability", caps[i].name);
		if (i == 0) {
			jw_bool(w, "state", mig_params.xbzrle != MIG_XBZRLE_OFF);
			jw_str(w, "x-mode", mig_params.xbzrle == MIG_XBZRLE_AUTO ? "auto"
					    : mig_params.xbzrle == MIG_XBZRLE_ON ? "on" : "off");
		} else {
			jw_bool(w, "state", *(const bool *)((const char *)&mig_params + caps[i].at));
		}
		jw_end(w);
	}
	jw_end(w);
	return 0;
}

/* {"capabilities": [{"capability": NAME, "state": BOOL}, ...]}; ferry's
 * xbzrle also takes "x-mode": "auto". Checked whole before any is set. */
int qmp_set_caps(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	static const char *const allowed[] = { "capabilities", NULL };
	if (qmp_args_only(r, allowed, err, n) < 0)
		return -1;
	int a = qmp_arg_tok(r, "capabilities");
	if (a < 0 || r->tok[a].type != QMP_T_ARRAY) {
		snprintf(err, n, a < 0 ? "Parameter 'capabilities' is missing"
				       : "Invalid parameter type for 'capabilities', expected: array");
		return -1;
	}
	char cmds[8][CONSOLE_LINE_MAX];
	int ncmd = 0;
	for (int i = a + 1, m = 0; m < r->tok[a].size; m++) {
		if (r->tok[i].type != QMP_T_OBJECT || r->tok[i].size > 3 || ncmd == 8) {
			snprintf(err, n, "Invalid parameter type for 'capabilities[%d]', expected: MigrationCapabilityStatus", m);
			return -1;
		}
		/* The element as a request of its own, to read it by name. */
		struct qmp_req e = *r;
		e.args = i;
		static const char *const keys[] = { "capability", "state", "x-mode", NULL };
		char name[QMP_NAME_MAX], mode[8] = "";
		bool on = false;
		int gn = qmp_arg_str(&e, "capability", name, sizeof(name), err, n);
		int gs = qmp_arg_bool(&e, "state", &on, err, n);
		int gm = qmp_arg_str(&e, "x-mode", mode, sizeof(mode), err, n);
		if (qmp_args_only(&e, keys, err, n) < 0 || gn < 0 || gs < 0 || gm < 0)
			return -1;
		if (!gn || !gs) {
			snprintf(err, n, "Parameter 'capabilities[%d]' needs 'capability' and 'state'", m);
			return -1;
		}
		size_t c = 0;
		while (c < sizeof(caps) / sizeof(caps[0]) && strcmp(caps[c].name, name) != 0)
			c++;
		if (c == sizeof(caps) / sizeof(caps[0])) {
			snprintf(err, n, "Parameter 'capability' does not accept value '%s'", name);
			return -1;
		}
		if (gm && (c != 0 || strcmp(mode, "auto") != 0 || !on)) {
			snprintf(err, n, "'x-mode' is \"auto\" with state true, for xbzrle only");
			return -1;
		}
		snprintf(cmds[ncmd++], CONSOLE_LINE_MAX, "migrate_set_capability %s %s", name, gm ? "auto" : on ? "on" : "off");
		i = qmp_tok_next(r, i);
	}
	for (int k = 0; k < ncmd; k++)
		if (qmp_human(cmds[k], err, n) < 0)
			return -1;
	return qmp_empty_return(w);
}

/* The parameters as QEMU names them (and ferry's own, x-prefixed). */
static const struct {
	const char *name;
	size_t at; /* offset of the uint64_t in struct mig_params */
} params[] = {
	{ "downtime-limit", offsetof(struct mig_params, downtime_ms) },
	{ "max-bandwidth", offsetof(struct mig_params, max_bandwidth) },
	{ "avail-switchover-bandwidth", offsetof(struct mig_params, avail_switchover_bw) },
	{ "xbzrle-cache-size", offsetof(struct mig_params, xbzrle_cache_bytes) },
	{ "max-iterations", offsetof(struct mig_params, max_iterations) },
	{ "stall-iterations", offsetof(struct mig_params, stall_iterations) },
	{ "cpu-throttle-initial", offsetof(struct mig_params, throttle_initial) },
	{ "cpu-throttle-increment", offsetof(struct mig_params, throttle_increment) },
	{ "max-cpu-throttle", offsetof(struct mig_params, throttle_max) },
	{ "max-downtime", offsetof(struct mig_params, max_downtime_ms) },
};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

int qmp_query_params(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	jw_obj(w, "return");
	for (size_t i = 0; i < NPARAMS; i++)
		jw_u64(w, params[i].name, *(const uint64_t *)((const char *)&mig_params + params[i].at));
	jw_str(w, "no-convergence", mig_params.fail_unconverged ? "fail" : "switch-over");
	jw_end(w);
	return 0;
}

/* {"downtime-limit": 300, "max-bandwidth": 8388608, ...}: integers (the
 * human command's units: bytes, bytes a second, ms, %), no-convergence a
 * string. Each goes through migrate_set_parameter, which validates it; a
 * refusal stops there (those before it stay set, as QEMU's do not: said
 * in docs/console.md). */
int qmp_set_params(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	char name[QMP_NAME_MAX], cmdline[CONSOLE_LINE_MAX];
	for (int i = 0; qmp_arg_name(r, i, name, sizeof(name)); i++) {
		size_t p = 0;
		while (p < NPARAMS && strcmp(params[p].name, name) != 0)
			p++;
		if (p == NPARAMS && strcmp(name, "no-convergence") != 0) {
			snprintf(err, n, "Parameter '%s' is unexpected", name);
			return -1;
		}
	}
	for (int i = 0; qmp_arg_name(r, i, name, sizeof(name)); i++) {
		if (strcmp(name, "no-convergence") == 0) {
			char v[16];
			if (qmp_arg_str(r, name, v, sizeof(v), err, n) < 0)
				return -1;
			snprintf(cmdline, sizeof(cmdline), "migrate_set_parameter no-convergence %s", v);
		} else {
			uint64_t v;
			if (qmp_arg_u64(r, name, &v, err, n) < 0)
				return -1;
			snprintf(cmdline, sizeof(cmdline), "migrate_set_parameter %s %llu", name, (unsigned long long)v);
		}
		if (qmp_human(cmdline, err, n) < 0)
			return -1;
	}
	return qmp_empty_return(w);
}

int qmp_query_migrate(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	const struct mig_stats *m = &mig_stats;
	jw_obj(w, "return");
	if (m->role == MIG_ROLE_NONE) {
		jw_end(w);
		return 0; /* QEMU: {} before any migration */
	}
	uint64_t end = m->end_ns ? m->end_ns : clock_ns();
	jw_str(w, "status", mig_status_name(m->status));
	jw_str(w, "x-role", m->role == MIG_ROLE_SOURCE ? "source" : "destination");
	jw_str(w, "x-peer", m->peer);
	if (m->why[0])
		jw_str(w, m->status == MIG_FAILED ? "error-desc" : "x-why", m->why);
	jw_u64(w, "total-time", (end - m->start_ns) / 1000000);
	jw_u64(w, "setup-time", m->setup_ns / 1000000);
	if (m->role == MIG_ROLE_SOURCE) {
		if (m->downtime_ns)
			jw_u64(w, "downtime", m->downtime_ns / 1000000);
		else if (m->expected_downtime_ns != UINT64_MAX)
			jw_u64(w, "expected-downtime", m->expected_downtime_ns / 1000000);
		jw_u64(w, "x-downtime-limit", m->downtime_limit_ms ? m->downtime_limit_ms : mig_params.downtime_ms);
		jw_u64(w, "cpu-throttle-percentage", m->throttle);
	}
	jw_obj(w, "ram");
	jw_u64(w, "transferred", m->transferred);
	jw_u64(w, "remaining", m->remaining);
	jw_u64(w, "total", m->total_bytes);
	jw_u64(w, "duplicate", m->duplicate);
	jw_u64(w, "normal", m->normal);
	jw_u64(w, "normal-bytes", m->normal * 4096);
	jw_u64(w, "dirty-pages-rate", m->dirty_pages_rate);
	jw_u64(w, "dirty-sync-count", m->dirty_sync_count);
	jw_i64(w, "mbps", (int64_t)m->mbps);
	jw_u64(w, "skipped", m->skipped);
	if (m->role == MIG_ROLE_DEST)
		jw_u64(w, "x-pages-applied", m->pages_applied);
	jw_end(w);
	if (m->xbzrle_used || m->cache_size) {
		jw_obj(w, "xbzrle-cache");
		jw_u64(w, "cache-size", m->cache_size);
		jw_u64(w, "bytes", m->xbzrle_bytes);
		jw_u64(w, "pages", m->xbzrle_pages);
		jw_u64(w, "cache-miss", m->xbzrle_cache_miss);
		jw_u64(w, "overflow", m->xbzrle_overflow);
		jw_u64(w, "x-lookups", m->xbzrle_lookups);
		jw_end(w);
	}
	jw_arr(w, "x-decisions");
	uint64_t first = m->nlog > MIG_LOG_KEPT ? m->nlog - MIG_LOG_KEPT : 0;
	for (uint64_t i = first; i < m->nlog; i++)
		jw_str(w, NULL, m->log[i % MIG_LOG_KEPT]);
	jw_end(w);
	jw_arr(w, "x-passes");
	first = m->nrows > MIG_ROWS_KEPT ? m->nrows - MIG_ROWS_KEPT : 0;
	for (uint64_t i = first; i < m->nrows; i++) {
		const struct mig_row *p = &m->rows[i % MIG_ROWS_KEPT];
		jw_obj(w, NULL);
		jw_u64(w, "pass", p->round);
		jw_u64(w, "dirty", p->dirty);
		jw_u64(w, "zero", p->zero);
		jw_u64(w, "raw", p->raw);
		jw_u64(w, "xbzrle", p->xbzrle);
		jw_u64(w, "bytes", p->bytes);
		jw_u64(w, "ms", p->ns / 1000000);
		jw_u64(w, "hits", p->hits);
		jw_u64(w, "lookups", p->lookups);
		jw_u64(w, "bandwidth", (uint64_t)p->bw);
		if (p->expected_ns != UINT64_MAX)
			jw_u64(w, "expected-downtime", p->expected_ns / 1000000);
		jw_u64(w, "throttle", p->throttle);
		jw_u64(w, "cache", p->cache);
		jw_end(w);
	}
	jw_end(w);
	jw_end(w);
	return 0;
}
