/* ferry-stream: inspect, verify, save and restore ferry migration streams on
 * a host. Built from the same codec/ sources as the kernel.
 *
 *   dump FILE                          one line per record, then totals
 *   verify FILE                        structure, CRCs, and the digest by replay
 *   extract FILE -o MEMORY.raw         the guest memory the stream describes
 *   recv --listen ADDR:PORT -o FILE    act as an incoming peer; save the stream
 *   send FILE HOST:PORT                replay a saved stream into an incoming peer
 *   gen -o FILE [options]              synthesize a saved stream (tests, demos)
 *
 * Exit status: 0 success, 1 the stream or the peer failed, 2 usage error.
 *
 * This file is the command line; the commands are in fstream_*.c and
 * tools/fstream.h is the contract between them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstream.h"

void fstream_errmsg(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, FSTREAM_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " FSTREAM_PROG " COMMAND [ARGS]\n"
		"\n"
		"Inspect, verify, save and restore ferry migration streams.\n"
		"\n"
		"commands:\n"
		"  dump FILE                         print one line per record, then totals (a\n"
		"                                    saved file, a reply stream, or a captured\n"
		"                                    live stream read as its HELLO offered)\n"
		"  verify FILE                       check structure, CRCs and the memory digest\n"
		"  extract FILE -o MEMORY.raw        write the guest memory the stream describes\n"
		"  recv --listen ADDR:PORT -o FILE   receive a migration as a destination would:\n"
		"        [--max-pages N] [--no-crc]  verify it, answer READY or NACK, and on GO\n"
		"                                    save it and answer COMMIT (PORT 0 picks a\n"
		"                                    free port; the address is printed as\n"
		"                                    'listening on ADDR:PORT')\n"
		"  send FILE HOST:PORT               replay a saved stream into an incoming peer\n"
		"  gen -o FILE [--pages N] [--iterations N] [--seed N]\n"
		"        [--no-crc] [--no-xbzrle] [--bad-digest]\n"
		"                                    synthesize a saved stream from a test workload\n"
		"\n"
		"options:\n"
		"  --timeout SECONDS   network waits (default 30)\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit status: 0 success, 1 invalid stream or peer failure, 2 usage error.\n"
		"The format is specified in docs/stream-format.md.\n");
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end || !*s || *s == '-')
		return false;
	*v = x;
	return true;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL, *pos[2] = { NULL, NULL }, *out = NULL, *listen = NULL;
	struct fstream_gen_opts go = { .pages = 256, .iterations = 3, .seed = 1 };
	struct fstream_recv_opts ro = { 0 };
	int npos = 0;

	if (!cmd) {
		usage(stderr);
		return FSTREAM_EXIT_USAGE;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v;
#define NEED_VAL() do { if (!val) { fstream_errmsg("%s needs a value", a); return FSTREAM_EXIT_USAGE; } i++; } while (0)
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			NEED_VAL();
			out = val;
		} else if (!strcmp(a, "--listen")) {
			NEED_VAL();
			listen = val;
		} else if (!strcmp(a, "--timeout") || !strcmp(a, "--pages") || !strcmp(a, "--seed") ||
			   !strcmp(a, "--iterations") || !strcmp(a, "--max-pages")) {
			NEED_VAL();
			if (!parse_u64(val, &v)) {
				fstream_errmsg("%s: '%s' is not a number", a, val);
				return FSTREAM_EXIT_USAGE;
			}
			if (!strcmp(a, "--timeout"))
				fstream_timeout_ms = v > 3600 ? 3600000 : (int)v * 1000;
			else if (!strcmp(a, "--pages"))
				go.pages = v;
			else if (!strcmp(a, "--seed"))
				go.seed = v;
			else if (!strcmp(a, "--iterations"))
				go.iterations = v > 1000 ? 1000 : (unsigned)v;
			else
				ro.max_pages = v;
		} else if (!strcmp(a, "--no-crc")) {
			go.no_crc = ro.no_crc = true;
		} else if (!strcmp(a, "--no-xbzrle")) {
			go.no_xbzrle = true;
		} else if (!strcmp(a, "--bad-digest")) {
			go.bad_digest = true;
		} else if (a[0] == '-' && a[1]) {
			fstream_errmsg("unknown option '%s' (see --help)", a);
			return FSTREAM_EXIT_USAGE;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			fstream_errmsg("too many arguments (see --help)");
			return FSTREAM_EXIT_USAGE;
		}
	}

	if (!strcmp(cmd, "dump") && npos == 1)
		return fstream_cmd_dump(pos[0]);
	if (!strcmp(cmd, "verify") && npos == 1)
		return fstream_cmd_verify(pos[0]);
	if (!strcmp(cmd, "extract") && npos == 1 && out)
		return fstream_cmd_extract(pos[0], out);
	if (!strcmp(cmd, "send") && npos == 2)
		return fstream_cmd_send(pos[0], pos[1]);
	if (!strcmp(cmd, "recv") && npos == 0 && listen && out) {
		ro.listen = listen;
		ro.out = out;
		return fstream_cmd_recv(&ro);
	}
	if (!strcmp(cmd, "gen") && npos == 0 && out) {
		if (go.pages == 0 || go.pages > (1ull << 24)) {
			fstream_errmsg("gen: --pages must be 1..16777216");
			return FSTREAM_EXIT_USAGE;
		}
		go.out = out;
		return fstream_cmd_gen(&go);
	}
	if (strcmp(cmd, "dump") && strcmp(cmd, "verify") && strcmp(cmd, "extract") &&
	    strcmp(cmd, "send") && strcmp(cmd, "recv") && strcmp(cmd, "gen"))
		fstream_errmsg("unknown command '%s'", cmd);
	else
		fstream_errmsg("%s: wrong arguments", cmd);
	usage(stderr);
	return FSTREAM_EXIT_USAGE;
}
