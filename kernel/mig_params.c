/* mig_params.c: migrate_set_parameter and migrate_set_capability, with
 * QEMU's names and units wherever QEMU has the knob, and their info
 * commands (docs/console.md). Each parameter is a row of one table: its
 * kind says how it is parsed and printed, its bounds what is valid, and
 * live whether a change during a migration takes effect at once (the
 * others, and every capability but auto-converge and xbzrle, apply to the
 * next migration: they were negotiated with the peer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "hv.h"
#include "mig_cmds.h"

enum pkind {
	P_MS,      /* milliseconds */
	P_BYTES,   /* bytes, K/M/G suffixes */
	P_RATE,    /* bytes a second, K/M/G suffixes */
	P_COUNT,
	P_PCT,
	P_ADDR,    /* a guest-physical address, any base */
	P_ACTION,  /* no-convergence: switch-over (0) or fail (1) */
	P_ONOFF,   /* off (0) or on (1) */
};

struct param {
	const char *name;
	enum pkind kind;
	uint64_t min, max;
	bool zero_ok;     /* 0 is valid too (off, unlimited, measured) whatever min says */
	bool live;
	uint64_t *val;
	const char *zero; /* what 0 means, when it means something */
};

static const struct param params[] = {
	{ "max-bandwidth", P_RATE, MIG_RATE_MIN, 1ull << 40, true, true, &mig_params.max_bandwidth, "unlimited" },
	{ "downtime-limit", P_MS, 1, MIG_MAX_DOWNTIME_MS, false, true, &mig_params.downtime_ms, NULL },
	{ "avail-switchover-bandwidth", P_RATE, 1, 1ull << 40, true, true, &mig_params.avail_switchover_bw,
	  "the measured bandwidth" },
	{ "xbzrle-cache-size", P_BYTES, 4096, MIG_MAX_CACHE_BYTES, false, true, &mig_params.xbzrle_cache_bytes, NULL },
	{ "max-iterations", P_COUNT, 1, 1000, false, true, &mig_params.max_iterations, NULL },
	{ "stall-iterations", P_COUNT, 1, 100, false, true, &mig_params.stall_iterations, NULL },
	{ "cpu-throttle-initial", P_PCT, 1, 99, false, true, &mig_params.throttle_initial, NULL },
	{ "cpu-throttle-increment", P_PCT, 1, 99, false, true, &mig_params.throttle_increment, NULL },
	{ "max-cpu-throttle", P_PCT, 1, 99, false, true, &mig_params.throttle_max, NULL },
	{ "no-convergence", P_ACTION, 0, 1, true, true, &mig_params.fail_unconverged, NULL },
	{ "max-downtime", P_MS, 1, MIG_MAX_DOWNTIME_MS, true, true, &mig_params.max_downtime_ms, "no budget" },
	{ "x-xbzrle-auto-fit", P_ONOFF, 0, 1, true, false, &mig_params.xbzrle_auto_fit, NULL },
	{ "x-flip-gpa", P_ADDR, 0, UINT64_MAX, true, true, &mig_params.x_flip_gpa, "off" },
};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

static const char *const actions[] = { "switch-over", "fail" };
static const char *const onoff[] = { "off", "on" };

static int parse_value(const struct param *p, const char *v, uint64_t *out)
{
	char *end;
	if (p->kind == P_ACTION || p->kind == P_ONOFF) {
		for (uint64_t i = 0; i < 2; i++)
			if (strcmp(v, (p->kind == P_ACTION ? actions : onoff)[i]) == 0)
				return *out = i, 0;
		return -1;
	}
	if (v[0] < '0' || v[0] > '9')
		return -1;
	if (p->kind == P_BYTES || p->kind == P_RATE)
		return hv_parse_size(v, out);
	*out = strtoull(v, &end, p->kind == P_ADDR ? 0 : 10);
	return *end ? -1 : 0;
}

static const char *unit(enum pkind k)
{
	switch (k) {
	case P_MS: return " ms";
	case P_BYTES: return " bytes";
	case P_RATE: return " bytes/s";
	case P_PCT: return "%";
	default: return "";
	}
}

static void print_value(const struct param *p)
{
	uint64_t v = *p->val;
	printf("%s: ", p->name);
	if (p->kind == P_ACTION || p->kind == P_ONOFF)
		printf("%s\n", (p->kind == P_ACTION ? actions : onoff)[v]);
	else if (p->kind == P_ADDR)
		printf("0x%llx%s%s%s\n", (unsigned long long)v, v || !p->zero ? "" : " (", v || !p->zero ? "" : p->zero,
		       v || !p->zero ? "" : ")");
	else if (!v && p->zero)
		printf("0 (%s)\n", p->zero);
	else if (p->kind == P_RATE)
		printf("%llu bytes/s (%.1f MiB/s)\n", (unsigned long long)v, (double)v / (1 << 20));
	else
		printf("%llu%s\n", (unsigned long long)v, unit(p->kind));
}

/* "1..1000 ms", "0 (unlimited) or 65536..1099511627776 bytes/s" */
static void print_range(const struct param *p)
{
	if (p->kind == P_ACTION)
		printf("switch-over or fail");
	else if (p->kind == P_ONOFF)
		printf("on or off");
	else if (p->kind == P_ADDR)
		printf("a guest-physical address; 0: off");
	else
		printf("%s%s%s%llu..%llu%s%s", p->zero_ok ? "0 (" : "", p->zero_ok ? p->zero : "",
		       p->zero_ok ? ") or " : "", (unsigned long long)p->min, (unsigned long long)p->max, unit(p->kind),
		       p->kind == P_BYTES || p->kind == P_RATE ? "; K, M, G suffixes" : "");
}

static void usage_parameters(void)
{
	printf("usage: migrate_set_parameter NAME VALUE; NAME is one of:\n");
	for (size_t i = 0; i < NPARAMS; i++) {
		printf("  %-27s ", params[i].name);
		print_range(&params[i]);
		printf("%s\n", params[i].live ? "" : " (next migration)");
	}
}

static int cmd_set_parameter(int argc, char **argv)
{
	if (argc != 2) {
		usage_parameters();
		return 1;
	}
	const struct param *p = NULL;
	for (size_t i = 0; i < NPARAMS; i++)
		if (strcmp(argv[0], params[i].name) == 0)
			p = &params[i];
	if (!p) {
		printf("error: unknown parameter '%s'; 'migrate_set_parameter' alone lists them\n", argv[0]);
		return 1;
	}
	uint64_t v;
	if (parse_value(p, argv[1], &v) < 0 || ((v < p->min || v > p->max) && !(v == 0 && p->zero_ok))) {
		printf("error: bad %s '%s' (", p->name, argv[1]);
		print_range(p);
		printf(")\n");
		return 1;
	}
	if (!p->live && mig_src_active()) {
		printf("error: %s cannot change during a migration; it applies to the next one\n", p->name);
		return 1;
	}
	uint64_t old = *p->val;
	*p->val = v;
	char why[160];
	if (mig_src_retune(why, sizeof(why)) < 0) {
		*p->val = old;
		printf("error: %s\n", why);
		return 1;
	}
	return 0;
}

static int cmd_info_parameters(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < NPARAMS; i++)
		print_value(&params[i]);
	mig_pick_print();
	return 0;
}

/* ---- capabilities ---- */

struct cap {
	const char *name;
	bool *flag;          /* on/off capabilities */
	uint32_t cap_bit;    /* what the peer agreed: a STREAM_CAP_ bit ... */
	uint32_t codec_bit;  /* ... or a STREAM_CODEC_ bit (0, 0: this end's alone) */
	bool live;
};

static const struct cap caps[] = {
	{ "xbzrle", NULL, 0, STREAM_CODEC_XBZRLE, true },
	{ "zero-pages", &mig_params.zero_pages, 0, STREAM_CODEC_ZERO, false },
	{ "record-crc", &mig_params.record_crc, STREAM_CAP_CRC32C, 0, false },
	{ "verify-after", &mig_params.verify_after, STREAM_CAP_VERIFY_AFTER, 0, false },
	{ "auto-converge", &mig_params.auto_converge, 0, 0, true },
};
#define NCAPS (sizeof(caps) / sizeof(caps[0]))

static const char *const xbzrle_names[] = { [MIG_XBZRLE_OFF] = "off", [MIG_XBZRLE_ON] = "on",
					    [MIG_XBZRLE_AUTO] = "auto" };

static int cmd_set_capability(int argc, char **argv)
{
	const struct cap *c = NULL;
	for (size_t i = 0; argc == 2 && i < NCAPS; i++)
		if (strcmp(argv[0], caps[i].name) == 0)
			c = &caps[i];
	if (argc != 2 || !c) {
		if (argc == 2)
			printf("error: unknown capability '%s'\n", argv[0]);
		printf("usage: migrate_set_capability xbzrle on|off|auto | zero-pages on|off | record-crc on|off |\n"
		       "  verify-after on|off | auto-converge on|off\n");
		return 1;
	}
	int v = -1;
	for (int i = 0; i < (c->flag ? 2 : 3); i++)
		if (strcmp(argv[1], xbzrle_names[i]) == 0)
			v = i;
	if (v < 0) {
		printf("error: bad value '%s' for %s (%s)\n", argv[1], c->name,
		       c->flag ? "on or off" : "on, off or auto");
		return 1;
	}
	if (mig_src_active() && !c->live) {
		printf("error: %s is negotiated with the peer when a migration starts; it applies to the next one\n",
		       c->name);
		return 1;
	}
	if (mig_src_active() && !c->flag && v != MIG_XBZRLE_OFF && !mig_src_has_cache()) {
		printf("error: this migration has no XBZRLE (off when it started, or not agreed by the peer); "
		       "it applies to the next one\n");
		return 1;
	}
	enum mig_xbzrle_mode old = mig_params.xbzrle;
	bool oldf = c->flag ? *c->flag : false;
	if (c->flag)
		*c->flag = v == MIG_XBZRLE_ON;
	else
		mig_params.xbzrle = (enum mig_xbzrle_mode)v;
	char why[160];
	if (mig_src_retune(why, sizeof(why)) < 0) {
		mig_params.xbzrle = old;
		if (c->flag)
			*c->flag = oldf;
		printf("error: %s\n", why);
		return 1;
	}
	return 0;
}

static int cmd_info_capabilities(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < NCAPS; i++) {
		const struct cap *c = &caps[i];
		printf("%s: %s", c->name, c->flag ? (*c->flag ? "on" : "off") : xbzrle_names[mig_params.xbzrle]);
		if (!c->cap_bit && !c->codec_bit)
			printf(" (this end only)\n");
		else if (!mig_stats.agreed)
			printf(" (no peer yet)\n");
		else
			printf(" (peer agreed at the last HELLO: %s)\n",
			       (mig_stats.agreed_caps & c->cap_bit) || (mig_stats.agreed_codecs & c->codec_bit) ? "yes" : "no");
	}
	return 0;
}

static const struct console_cmd param_cmds[] = {
	{ "migrate_set_capability", "NAME on|off (xbzrle: on|off|auto)",
	  "xbzrle, zero-pages, record-crc, verify-after, auto-converge", cmd_set_capability },
	{ "migrate_set_parameter", "NAME VALUE",
	  "max-bandwidth, downtime-limit, xbzrle-cache-size, ... (alone: the list)", cmd_set_parameter },
	{ "info migrate_capabilities", "", "capabilities, and what the peer agreed at the last HELLO",
	  cmd_info_capabilities },
	{ "info migrate_parameters", "", "parameters in force", cmd_info_parameters },
};

void mig_params_init(void)
{
	console_register(param_cmds, sizeof(param_cmds) / sizeof(param_cmds[0]));
}
