/* qmp_cmds.c: the console's machine interface, shaped like QEMU's QMP
 * (docs/console.md, "JSON mode"). `mode json` switches the console over:
 * a greeting, then one JSON object a line in each direction: requests
 * answered by {"return": ...} or {"error": ...} (the request's "id"
 * echoed), and events ({"event": ..., "data": ..., "timestamp": ...}) as
 * things happen. {"execute": "human"} switches back.
 *
 * While the console is in JSON mode the human text ferry prints by itself
 * (the engine's "migration completed", a guest's exit) is not written: it
 * would break the stream. Events say the same. A command's own text is
 * captured: human-monitor-command returns it, and a failing command's
 * "error:" line becomes the error's desc. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "hv.h"
#include "mig.h"
#include "mig_cmds.h"
#include "qmp.h"
#include "qmp_priv.h"
#include "serial.h"
#include "version.h"

#define QMP_CAPTURE_MAX 16384 /* bytes of a command's text kept for its answer */
#define QMP_OUT_MAX 24576     /* bytes of one answer or event */

enum qmp_state { QMP_OFF, QMP_GREETED, QMP_READY };

static enum qmp_state state;
static char line[QMP_LINE_MAX];
static size_t len;
static bool overflow;
static char capture[QMP_CAPTURE_MAX];
static size_t captured;
static bool capturing;
static char out[QMP_OUT_MAX];

/* What the last event reported, to see what changed. */
static struct {
	enum mig_status mig;
	uint64_t passes;
	int guest; /* -1 none, else enum hv_vm_state */
} seen;

/* ---- output ---- */

static void sink(const char *s, size_t n)
{
	if (!capturing)
		return; /* ferry's own human text: not in JSON mode */
	size_t k = n < sizeof(capture) - 1 - captured ? n : sizeof(capture) - 1 - captured;
	memcpy(capture + captured, s, k);
	captured += k;
	capture[captured] = 0;
}

static void emit(struct jw *w)
{
	if (w->overflow) {
		/* Never a cut object on the wire. */
		static const char e[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"answer too long\"}}";
		serial_write(e, sizeof(e) - 1);
	} else {
		serial_write(jw_text(w), w->len);
	}
	serial_write("\n", 1);
}

static void timestamp(struct jw *w)
{
	uint64_t ns = clock_ns();
	jw_obj(w, "timestamp");
	jw_u64(w, "seconds", ns / 1000000000);
	jw_u64(w, "microseconds", ns / 1000 % 1000000);
	jw_end(w);
}

/* Run a human command line with its text captured. Returns its status. */
static int run_captured(const char *cmdline)
{
	char buf[CONSOLE_LINE_MAX];
	snprintf(buf, sizeof(buf), "%s", cmdline);
	captured = 0;
	capture[0] = 0;
	capturing = true;
	int rc = strlen(cmdline) >= sizeof(buf) ? (printf("error: command line too long\n"), -1) : console_run(buf);
	capturing = false;
	return rc;
}

/* The captured text's "error: ..." line (or all of it), for a desc. */
static void captured_error(char *err, size_t n)
{
	const char *e = strstr(capture, "error: ");
	const char *from = e ? e + 7 : capture;
	size_t k = strcspn(from, "\n");
	if (!k)
		k = strlen(from);
	snprintf(err, n, "%.*s", (int)k, from);
	if (!*err)
		snprintf(err, n, "the command failed");
}

int qmp_human(const char *cmdline, char *err, size_t n)
{
	if (run_captured(cmdline) == 0)
		return 0;
	captured_error(err, n);
	return -1;
}

/* {"return": {}}: what a command without an answer of its own returns. */
int qmp_empty_return(struct jw *w)
{
	jw_obj(w, "return");
	jw_end(w);
	return 0;
}

/* Run a human command line; {"return": {}} when it succeeds. */
int qmp_human_empty(const char *cmdline, struct jw *w, char *err, size_t n)
{
	return qmp_human(cmdline, err, n) < 0 ? -1 : qmp_empty_return(w);
}

/* A string argument that becomes one word of a command line: 1, 0 when
 * absent (and optional), or -1 with err (missing, wrong type, a space). */
int qmp_word_arg(const struct qmp_req *r, const char *key, bool need, char *word, size_t wn, char *err,
		    size_t n)
{
	int got = qmp_arg_str(r, key, word, wn, err, n);
	if (got < 0)
		return -1;
	if (!got && need) {
		snprintf(err, n, "Parameter '%s' is missing", key);
		return -1;
	}
	if (got && (!*word || strchr(word, ' '))) {
		snprintf(err, n, "Parameter '%s' must be one word", key);
		return -1;
	}
	return got;
}

/* ---- the commands ---- */

const char *const qmp_no_args[] = { NULL };

static int q_capabilities(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	state = QMP_READY;
	return qmp_empty_return(w);
}

/* {"qemu": {"micro", "minor", "major"}, "package"}: QEMU's VersionInfo
 * with ferry's numbers, inside the innermost object. */
static void version_info(struct jw *w)
{
	unsigned major = 0, minor = 0, micro = 0;
	sscanf(FERRY_VERSION, "%u.%u.%u", &major, &minor, &micro);
	char pkg[96];
	snprintf(pkg, sizeof(pkg), "ferry %s (build %s)", FERRY_VERSION, ferry_build_id);
	jw_obj(w, "qemu");
	jw_u64(w, "micro", micro);
	jw_u64(w, "minor", minor);
	jw_u64(w, "major", major);
	jw_end(w);
	jw_str(w, "package", pkg);
}

static int q_version(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	jw_obj(w, "return");
	version_info(w);
	jw_end(w);
	return 0;
}

/* QEMU's RunState for ferry's guest and migration. */
static const char *run_state(void)
{
	struct hv_vm *vm = hv_guest();
	if (!vm)
		return mig_stats.role == MIG_ROLE_SOURCE && mig_stats.status == MIG_COMPLETED ? "postmigrate" : "prelaunch";
	switch (vm->state) {
	case HV_VM_RUNNING:
		return "running";
	case HV_VM_EXITED:
		return "shutdown";
	case HV_VM_FAULTED:
		return "internal-error";
	case HV_VM_STOPPED:
		break;
	}
	if (mig_stats.role == MIG_ROLE_DEST && mig_busy())
		return "inmigrate";
	if (mig_stats.role == MIG_ROLE_SOURCE && mig_busy() && mig_stats.stop_ns)
		return "finish-migrate";
	return "paused";
}

static int q_status(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	const char *st = run_state();
	jw_obj(w, "return");
	jw_bool(w, "running", strcmp(st, "running") == 0);
	jw_bool(w, "singlestep", false);
	jw_str(w, "status", st);
	jw_end(w);
	return 0;
}

static int q_hmp(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	static const char *const allowed[] = { "command-line", "cpu-index", NULL };
	char cmdline[CONSOLE_LINE_MAX];
	int got = qmp_arg_str(r, "command-line", cmdline, sizeof(cmdline), err, n);
	if (qmp_args_only(r, allowed, err, n) < 0 || got < 0)
		return -1;
	if (!got) {
		snprintf(err, n, "Parameter 'command-line' is missing");
		return -1;
	}
	/* Commands that take the console over cannot run inside an answer. */
	char words[CONSOLE_LINE_MAX];
	int k = 0;
	for (const char *s = cmdline; *s && k + 1 < (int)sizeof(words);) {
		while (*s == ' ')
			s++;
		while (*s && *s != ' ' && k + 1 < (int)sizeof(words))
			words[k++] = *s++;
		if (*s)
			words[k++] = ' ';
	}
	words[k] = 0;
	if (strncmp(words, "mode", 4) == 0 && (words[4] == 0 || words[4] == ' ')) {
		snprintf(err, n, "'mode' switches the console; use {\"execute\": \"human\"}");
		return -1;
	}
	if (strncmp(words, "guest console", 13) == 0 && (words[13] == 0 || words[13] == ' ')) {
		snprintf(err, n, "'guest console' takes the console over: use it in human mode");
		return -1;
	}
	run_captured(cmdline); /* QEMU's: the text is the answer, whatever it says */
	jw_str(w, "return", capture);
	return 0;
}

/* A command whose QMP form is a human command without arguments. */
static int simple(const struct qmp_req *r, struct jw *w, char *err, size_t n, const char *cmdline)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	return qmp_human_empty(cmdline, w, err, n);
}

static int q_stop(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	return simple(r, w, err, n, "guest stop");
}

static int q_cont(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	return simple(r, w, err, n, "guest cont");
}

/* ---- ferry's own: the guest and the network ---- */

/* {"workload": NAME, "size": BYTES (a MiB multiple; optional)} */
static int q_guest_start(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	static const char *const allowed[] = { "workload", "size", NULL };
	char wl[32], cmdline[CONSOLE_LINE_MAX];
	uint64_t size = 0;
	int gs;
	if (qmp_args_only(r, allowed, err, n) < 0 || qmp_word_arg(r, "workload", true, wl, sizeof(wl), err, n) < 0 ||
	    (gs = qmp_arg_u64(r, "size", &size, err, n)) < 0)
		return -1;
	if (gs && (size % (1u << 20) || !size)) {
		snprintf(err, n, "Parameter 'size' must be a non-zero multiple of 1 MiB");
		return -1;
	}
	if (gs)
		snprintf(cmdline, sizeof(cmdline), "guest start %s %lluM", wl, (unsigned long long)(size >> 20));
	else
		snprintf(cmdline, sizeof(cmdline), "guest start %s", wl);
	return qmp_human_empty(cmdline, w, err, n);
}

static int q_query_guest(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	static const char *const states[] = { [HV_VM_RUNNING] = "running", [HV_VM_STOPPED] = "stopped",
					      [HV_VM_EXITED] = "exited", [HV_VM_FAULTED] = "faulted" };
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	struct hv_vm *vm = hv_guest();
	jw_obj(w, "return");
	jw_str(w, "backend", hv_backend()->name);
	if (vm) {
		jw_str(w, "workload", hv_workload_name(vm->workload));
		jw_str(w, "state", states[vm->state]);
		jw_u64(w, "size", vm->size);
		jw_u64(w, "up-ms", (clock_ns() - vm->start_ns) / 1000000);
		jw_u64(w, "ran-ms", vm->run_ns / 1000000);
		jw_u64(w, "throttle", vm->throttle_pct);
	}
	jw_end(w);
	return 0;
}

/* {"address": "ADDR/PREFIX", "gateway": "ADDR" (optional)} */
static int q_net_config(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	static const char *const allowed[] = { "address", "gateway", NULL };
	char addr[40], gw[24] = "", cmdline[CONSOLE_LINE_MAX];
	int gg;
	if (qmp_args_only(r, allowed, err, n) < 0 || qmp_word_arg(r, "address", true, addr, sizeof(addr), err, n) < 0 ||
	    (gg = qmp_word_arg(r, "gateway", false, gw, sizeof(gw), err, n)) < 0)
		return -1;
	snprintf(cmdline, sizeof(cmdline), "net config %s%s%s", addr, gg ? " " : "", gw);
	return qmp_human_empty(cmdline, w, err, n);
}

static int q_human(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	state = QMP_OFF; /* after this answer */
	return qmp_empty_return(w);
}

static int q_commands(const struct qmp_req *r, struct jw *w, char *err, size_t n);

static const struct {
	const char *name;
	qmp_fn fn;
} cmds[] = {
	{ "qmp_capabilities", q_capabilities },
	{ "query-version", q_version },
	{ "query-status", q_status },
	{ "query-commands", q_commands },
	{ "human-monitor-command", q_hmp },
	{ "stop", q_stop },
	{ "cont", q_cont },
	{ "migrate", qmp_migrate },
	{ "migrate-incoming", qmp_migrate_incoming },
	{ "migrate_cancel", qmp_migrate_cancel },
	{ "query-migrate", qmp_query_migrate },
	{ "query-migrate-capabilities", qmp_query_caps },
	{ "migrate-set-capabilities", qmp_set_caps },
	{ "query-migrate-parameters", qmp_query_params },
	{ "migrate-set-parameters", qmp_set_params },
	{ "guest-start", q_guest_start },
	{ "query-guest", q_query_guest },
	{ "net-config", q_net_config },
	{ "human", q_human },
};

static int q_commands(const struct qmp_req *r, struct jw *w, char *err, size_t n)
{
	if (qmp_args_only(r, qmp_no_args, err, n) < 0)
		return -1;
	jw_arr(w, "return");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		jw_obj(w, NULL);
		jw_str(w, "name", cmds[i].name);
		jw_end(w);
	}
	jw_end(w);
	return 0;
}

/* ---- one line ---- */

/* The request's "id", as it came (a string with its quotes). */
static void echo_id(struct jw *w, const struct qmp_req *r)
{
	const struct qmp_tok *t = &r->tok[r->id];
	int q = t->type == QMP_T_STRING;
	jw_raw(w, "id", r->js + t->start - q, (size_t)(t->end - t->start + 2 * q));
}

static void answer_error(const struct qmp_req *r, bool have_id, const char *cls, const char *desc)
{
	struct jw w;
	jw_init(&w, out, sizeof(out));
	jw_obj(&w, NULL);
	jw_obj(&w, "error");
	jw_str(&w, "class", cls);
	jw_str(&w, "desc", desc);
	jw_end(&w);
	if (have_id)
		echo_id(&w, r);
	jw_end(&w);
	emit(&w);
}

static void qmp_line(const char *s, size_t n)
{
	static struct qmp_req r;
	char err[256];
	if (qmp_parse(s, n, &r, err, sizeof(err)) < 0)
		return answer_error(&r, r.id >= 0, "GenericError", err);
	size_t i = 0;
	while (i < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmds[i].name, r.execute) != 0)
		i++;
	if (state == QMP_GREETED && strcmp(r.execute, "qmp_capabilities") != 0)
		return answer_error(&r, r.id >= 0, "CommandNotFound",
				    "Expecting capabilities negotiation with 'qmp_capabilities'");
	if (state == QMP_READY && strcmp(r.execute, "qmp_capabilities") == 0)
		return answer_error(&r, r.id >= 0, "CommandNotFound",
				    "Capabilities negotiation is already complete, command ignored");
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		snprintf(err, sizeof(err), "The command %s has not been found", r.execute);
		return answer_error(&r, r.id >= 0, "CommandNotFound", err);
	}
	struct jw w;
	jw_init(&w, out, sizeof(out));
	jw_obj(&w, NULL);
	if (cmds[i].fn(&r, &w, err, sizeof(err)) < 0)
		return answer_error(&r, r.id >= 0, "GenericError", err);
	if (r.id >= 0)
		echo_id(&w, &r);
	jw_end(&w);
	emit(&w);
}

/* ---- the mode: bytes in, events out ---- */

static void greeting(void)
{
	struct jw w;
	jw_init(&w, out, sizeof(out));
	jw_obj(&w, NULL);
	jw_obj(&w, "QMP");
	jw_obj(&w, "version");
	version_info(&w);
	jw_end(&w);
	jw_arr(&w, "capabilities");
	jw_end(&w);
	jw_end(&w);
	jw_end(&w);
	emit(&w);
}

/* A byte from the console (console_divert). Returns 1 to hand the
 * console back to people. */
static int qmp_byte(int c)
{
	if (c == '\n' || c == '\r') {
		if (overflow) {
			struct qmp_req r = { .id = -1 };
			char err[64];
			snprintf(err, sizeof(err), "request longer than %d bytes", QMP_LINE_MAX - 1);
			answer_error(&r, false, "GenericError", err);
		} else if (len) {
			qmp_line(line, len);
		}
		len = 0;
		overflow = false;
		if (state == QMP_OFF) {
			console_set_sink(NULL);
			return 1;
		}
		return 0;
	}
	if (len + 1 >= sizeof(line))
		overflow = true;
	else
		line[len++] = (char)c;
	return 0;
}

static void event(const char *name, const char *key, const char *str, uint64_t num)
{
	struct jw w;
	jw_init(&w, out, sizeof(out));
	jw_obj(&w, NULL);
	jw_str(&w, "event", name);
	if (key) {
		jw_obj(&w, "data");
		if (str)
			jw_str(&w, key, str);
		else
			jw_u64(&w, key, num);
		jw_end(&w);
	}
	timestamp(&w);
	jw_end(&w);
	emit(&w);
}

int qmp_poll(void)
{
	if (state != QMP_READY)
		return 0;
	int did = 0;
	/* In order: a pass's end before the status it led to. */
	if (mig_stats.dirty_sync_count != seen.passes) {
		if (mig_stats.dirty_sync_count > seen.passes)
			event("MIGRATION_PASS", "pass", NULL, mig_stats.dirty_sync_count);
		seen.passes = mig_stats.dirty_sync_count;
		did = 1;
	}
	if (mig_stats.status != seen.mig) {
		seen.mig = mig_stats.status;
		event("MIGRATION", "status", mig_status_name(seen.mig), 0);
		did = 1;
	}
	struct hv_vm *vm = hv_guest();
	int g = vm ? (int)vm->state : -1;
	if (g != seen.guest) {
		if (g == HV_VM_RUNNING)
			event("RESUME", NULL, NULL, 0);
		else if (g == HV_VM_STOPPED && seen.guest == HV_VM_RUNNING)
			event("STOP", NULL, NULL, 0);
		else if (g == HV_VM_EXITED)
			event("SHUTDOWN", "reason", "guest-shutdown", 0);
		else if (g == HV_VM_FAULTED)
			event("GUEST_PANICKED", "action", "pause", 0);
		seen.guest = g;
		did = 1;
	}
	return did;
}

static int cmd_mode(int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "json") != 0) {
		printf("error: usage: mode json (back with {\"execute\": \"human\"})\n");
		return -1;
	}
	state = QMP_GREETED;
	len = 0;
	overflow = false;
	struct hv_vm *vm = hv_guest();
	seen.mig = mig_stats.status;
	seen.passes = mig_stats.dirty_sync_count;
	seen.guest = vm ? (int)vm->state : -1;
	console_set_sink(sink);
	greeting();
	console_divert(qmp_byte);
	return 0;
}

static const struct console_cmd qmp_cmds[] = {
	{ "mode", "json", "switch the console to JSON (QMP's shape; docs/console.md)", cmd_mode },
};

void qmp_init(void)
{
	console_register(qmp_cmds, sizeof(qmp_cmds) / sizeof(qmp_cmds[0]));
}
