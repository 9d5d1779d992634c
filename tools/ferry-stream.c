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
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "stream.h"
#include "xbzrle.h"

#define PROG "ferry-stream"
#define EXIT_STREAM 1
#define EXIT_USAGE 2
#define IO_CHUNK (256u << 10)	/* bytes read per call */

static int timeout_ms = 30000;	/* --timeout: per network wait */

__attribute__((format(printf, 1, 2)))
static void errmsg(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " COMMAND [ARGS]\n"
		"\n"
		"Inspect, verify, save and restore ferry migration streams.\n"
		"\n"
		"commands:\n"
		"  dump FILE                         print one line per record, then totals\n"
		"  verify FILE                       check structure, CRCs and the memory digest\n"
		"  extract FILE -o MEMORY.raw        write the guest memory the stream describes\n"
		"  recv --listen ADDR:PORT -o FILE   receive a migration as a destination would,\n"
		"        [--max-pages N] [--no-crc]  verify it, answer COMMIT or NACK, save it\n"
		"                                    (PORT 0 picks a free port; the address is\n"
		"                                    printed as 'listening on ADDR:PORT')\n"
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

/* ------------------------------------------------------------------------
 * Input: a file descriptor read in chunks, fed to a reader.
 */

struct input {
	int fd;
	const char *name;
	bool net;		/* wait with a timeout */
	uint8_t *buf;
	size_t pos, len;
	struct stream_reader *r;
};

static int input_open(struct input *in, int fd, const char *name, bool net, enum stream_dir dir)
{
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->name = name;
	in->net = net;
	in->buf = malloc(IO_CHUNK);
	in->r = stream_reader_new(dir);
	if (!in->buf || !in->r) {
		errmsg("out of memory");
		return -1;
	}
	return 0;
}

static void input_close(struct input *in)
{
	free(in->buf);
	stream_reader_free(in->r);
}

/* Next record: 1 with *rec, 0 at a clean end, -1 on error (reported). */
static int input_next(struct input *in, struct stream_record *rec)
{
	for (;;) {
		if (in->pos < in->len) {
			size_t used;
			int k = stream_reader_feed(in->r, in->buf + in->pos, in->len - in->pos, &used, rec);
			in->pos += used;
			if (k < 0) {
				errmsg("%s: %s", in->name, stream_reader_error(in->r));
				return -1;
			}
			if (k == 1)
				return 1;
			continue;
		}
		if (stream_reader_done(in->r))
			return 0;
		if (in->net) {
			struct pollfd p = { .fd = in->fd, .events = POLLIN };
			int n = poll(&p, 1, timeout_ms);
			if (n == 0) {
				errmsg("%s: no data for %d s", in->name, timeout_ms / 1000);
				return -1;
			}
		}
		ssize_t n = read(in->fd, in->buf, IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			n = 0;	/* a peer that died: say where its stream stopped */
		if (n < 0) {
			errmsg("%s: read: %s", in->name, strerror(errno));
			return -1;
		}
		if (n == 0) {
			if (stream_reader_finish(in->r) < 0) {
				errmsg("%s: %s", in->name, stream_reader_error(in->r));
				return -1;
			}
			return 0;
		}
		in->pos = 0;
		in->len = (size_t)n;
	}
}

/* ------------------------------------------------------------------------
 * Output: file descriptors, with a timeout for sockets.
 */

struct output {
	int fd;
	bool net;
};

static int out_fd(void *ctx, const void *buf, size_t len)
{
	struct output *o = ctx;
	const uint8_t *p = buf;

	while (len) {
		if (o->net) {
			struct pollfd pf = { .fd = o->fd, .events = POLLOUT };
			if (poll(&pf, 1, timeout_ms) <= 0)
				return -1;
		}
		ssize_t n = o->net ? send(o->fd, p, len, MSG_NOSIGNAL) : write(o->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Memory image for verify / extract / recv.
 */

struct image {
	uint8_t *mem;
	uint64_t pages;
};

static uint8_t *image_page(void *ctx, uint64_t pfn)
{
	struct image *im = ctx;
	return pfn < im->pages ? im->mem + pfn * STREAM_PAGE_SIZE : NULL;
}

static int image_alloc(struct image *im, uint64_t pages)
{
	im->pages = pages;
	im->mem = calloc(pages, STREAM_PAGE_SIZE);
	if (!im->mem) {
		errmsg("cannot allocate %llu pages of guest memory", (unsigned long long)pages);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * dump
 */

static void dump_mask(const char *label, uint64_t mask, const char *(*name)(uint64_t))
{
	printf(" %s ", label);
	bool first = true;
	for (int b = 0; b < 64; b++)
		if (mask & (1ull << b)) {
			const char *n = name(1ull << b);
			if (strcmp(n, "UNKNOWN") == 0)
				printf("%sbit%d", first ? "" : ",", b);
			else
				printf("%s%s", first ? "" : ",", n);
			first = false;
		}
	if (first)
		printf("none");
}

static const char *codec_name64(uint64_t c) { return stream_codec_to_str((uint32_t)c); }

static void dump_text(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n && s[i]; i++)
		putchar(s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?');
	putchar('"');
}

struct totals {
	uint64_t records, raw, zero, xbzrle, xbzrle_bytes, iterations;
	uint64_t bytes_by_type[16], bytes_other;
};

static unsigned type_slot(uint32_t t)
{
	if (t == STREAM_ITER_END)
		return 14;
	return t < 14 ? t : 15;
}

static void dump_record(const struct stream_record *rec, bool crc, struct totals *t)
{
	printf("#%-5llu @%-10llu %-12s len %-8u", (unsigned long long)rec->index,
	       (unsigned long long)rec->offset, stream_type_to_str(rec->type), rec->length);
	t->records++;
	t->bytes_by_type[type_slot(rec->type)] += stream_record_size(rec->length, crc);

	switch (rec->type) {
	case STREAM_HELLO: {
		struct stream_hello h;
		stream_rec_get(rec, &h, sizeof(h));
		printf(" page_size %u guest_pages %llu", h.page_size, (unsigned long long)h.guest_pages);
		dump_mask("caps", h.caps, stream_cap_to_str);
		dump_mask("codecs", h.codecs, codec_name64);
		printf(" xbzrle_cache %llu digests 0x%x software ", (unsigned long long)h.xbzrle_cache_bytes,
		       h.digests);
		dump_text(h.software, sizeof(h.software));
		break;
	}
	case STREAM_HELLO_ACK: {
		struct stream_hello_ack a;
		stream_rec_get(rec, &a, sizeof(a));
		printf(" status %s guest_pages %llu", stream_refusal_to_str(a.status),
		       (unsigned long long)a.guest_pages);
		dump_mask("caps", a.caps, stream_cap_to_str);
		dump_mask("codecs", a.codecs, codec_name64);
		printf(" xbzrle_cache %llu digest 0x%x", (unsigned long long)a.xbzrle_cache_bytes, a.digest);
		if (a.status) {
			printf(" reason ");
			dump_text(a.reason, sizeof(a.reason));
		}
		break;
	}
	case STREAM_GUEST_INFO: {
		struct stream_guest_info g;
		stream_rec_get(rec, &g, sizeof(g));
		printf(" guest_pages %llu vcpus %u mode %s tsc_khz %llu workload ",
		       (unsigned long long)g.guest_pages, g.nr_vcpus, stream_mode_to_str(g.mode),
		       (unsigned long long)g.tsc_khz);
		dump_text(g.workload, sizeof(g.workload));
		printf(" name ");
		dump_text(g.name, sizeof(g.name));
		break;
	}
	case STREAM_PAGE_DATA:
	case STREAM_ZERO_PAGES: {
		uint32_t n = stream_rec_count(rec);
		printf(" count %u pfn %llu..%llu", n, (unsigned long long)stream_rec_pfn(rec, 0),
		       (unsigned long long)stream_rec_pfn(rec, n - 1));
		if (rec->type == STREAM_PAGE_DATA)
			t->raw += n;
		else
			t->zero += n;
		break;
	}
	case STREAM_XBZRLE_PAGES: {
		struct stream_xbzrle_page e;
		size_t off = 0;
		uint64_t first = 0, last = 0, bytes = 0;
		uint32_t n = 0;
		while (stream_rec_xbzrle_next(rec, &off, &e)) {
			if (n++ == 0)
				first = e.pfn;
			last = e.pfn;
			bytes += e.len;
		}
		printf(" count %u pfn %llu..%llu encoded %llu", n, (unsigned long long)first,
		       (unsigned long long)last, (unsigned long long)bytes);
		t->xbzrle += n;
		t->xbzrle_bytes += bytes;
		break;
	}
	case STREAM_ITER_END: {
		struct stream_iter_end it;
		stream_rec_get(rec, &it, sizeof(it));
		printf(" iteration %u dirty %llu raw %llu zero %llu xbzrle %llu skipped %llu"
		       " overflow %llu cache_miss %llu bytes %llu ns %llu",
		       it.iteration, (unsigned long long)it.pages_dirty, (unsigned long long)it.pages_raw,
		       (unsigned long long)it.pages_zero, (unsigned long long)it.pages_xbzrle,
		       (unsigned long long)it.pages_skipped, (unsigned long long)it.xbzrle_overflow,
		       (unsigned long long)it.xbzrle_cache_miss, (unsigned long long)it.bytes,
		       (unsigned long long)it.duration_ns);
		t->iterations++;
		break;
	}
	case STREAM_CPU_STATE: {
		struct stream_cpu_state c;
		stream_rec_get(rec, &c, sizeof(c));
		printf(" vcpu %u rip 0x%llx rsp 0x%llx rflags 0x%llx cr0 0x%llx cr3 0x%llx cr4 0x%llx"
		       " efer 0x%llx cs 0x%x xsave %u",
		       c.vcpu, (unsigned long long)c.rip, (unsigned long long)c.gpr[STREAM_RSP],
		       (unsigned long long)c.rflags, (unsigned long long)c.cr0,
		       (unsigned long long)c.cr3, (unsigned long long)c.cr4,
		       (unsigned long long)c.efer, c.seg[STREAM_CS].selector, c.xsave_len);
		break;
	}
	case STREAM_DIGEST: {
		struct stream_digest d;
		stream_rec_get(rec, &d, sizeof(d));
		printf(" xxh3-128 %016llx%016llx pages %llu", (unsigned long long)d.high64,
		       (unsigned long long)d.low64, (unsigned long long)d.guest_pages);
		break;
	}
	case STREAM_NACK:
	case STREAM_ERROR: {
		struct stream_reason why;
		uint32_t n;
		const char *s = stream_rec_text(rec, &n);
		stream_rec_get(rec, &why, sizeof(why));
		printf(" code %u (%s) text ", why.code, rec->type == STREAM_NACK ?
		       stream_nack_to_str(why.code) : stream_wire_error_to_str(why.code));
		dump_text(s, n);
		break;
	}
	}
	putchar('\n');
}

static int cmd_dump(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct input in;
	struct stream_record rec;
	struct totals t;
	int k;

	if (fd < 0) {
		errmsg("%s: %s", path, strerror(errno));
		return EXIT_STREAM;
	}
	memset(&t, 0, sizeof(t));
	if (input_open(&in, fd, path, false, STREAM_DIR_MIGRATION) < 0)
		return EXIT_STREAM;
	while ((k = input_next(&in, &rec)) == 1)
		dump_record(&rec, stream_reader_crc(in.r) || rec.type == STREAM_HELLO ||
			    rec.type == STREAM_HELLO_ACK, &t);
	printf("totals: records %llu pages raw %llu zero %llu xbzrle %llu (encoded %llu bytes)"
	       " iterations %llu\n", (unsigned long long)t.records, (unsigned long long)t.raw,
	       (unsigned long long)t.zero, (unsigned long long)t.xbzrle,
	       (unsigned long long)t.xbzrle_bytes, (unsigned long long)t.iterations);
	printf("bytes by type:");
	for (uint32_t s = 1; s < 16; s++) {
		uint32_t type = s == 14 ? STREAM_ITER_END : s;
		if (t.bytes_by_type[s])
			printf(" %s %llu", s == 15 ? "other" : stream_type_to_str(type),
			       (unsigned long long)t.bytes_by_type[s]);
	}
	putchar('\n');
	input_close(&in);
	close(fd);
	return k < 0 ? EXIT_STREAM : 0;
}

/* ------------------------------------------------------------------------
 * verify / extract
 */

/* Replay a saved stream into im. Returns 0 when every record passed and
 * the digest matched. */
static int replay_file(const char *path, struct image *im, uint64_t *records)
{
	int fd = open(path, O_RDONLY);
	struct input in;
	struct stream_record rec;
	struct stream_apply *a = stream_apply_new(image_page, NULL, im);
	int k, rc = -1;

	*records = 0;
	if (fd < 0) {
		errmsg("%s: %s", path, strerror(errno));
		stream_apply_free(a);
		return -1;
	}
	if (input_open(&in, fd, path, false, STREAM_DIR_MIGRATION) < 0 || !a)
		goto out;
	while ((k = input_next(&in, &rec)) == 1) {
		(*records)++;
		if (rec.type == STREAM_HELLO) {
			struct stream_hello h;
			stream_rec_get(&rec, &h, sizeof(h));
			if (image_alloc(im, h.guest_pages) < 0)
				goto out;
		}
		if (rec.type == STREAM_ERROR || rec.type == STREAM_CANCEL) {
			errmsg("%s: record %llu: the stream was abandoned (%s)", path,
			       (unsigned long long)rec.index, stream_type_to_str(rec.type));
			goto out;
		}
		if (stream_apply_record(a, &rec) < 0) {
			errmsg("%s: %s", path, stream_apply_error(a));
			goto out;
		}
	}
	if (k < 0)
		goto out;
	if (!(stream_reader_header(in.r)->flags & STREAM_HDR_F_SAVED)) {
		errmsg("%s: not a saved stream", path);
		goto out;
	}
	if (!stream_apply_stats(a)->digest_ok) {
		errmsg("%s: no digest was verified", path);
		goto out;
	}
	rc = 0;
out:
	stream_apply_free(a);
	input_close(&in);
	close(fd);
	return rc;
}

static int cmd_verify(const char *path)
{
	struct image im = { 0 };
	uint64_t n;
	int rc = replay_file(path, &im, &n);

	if (rc == 0) {
		struct stream_digest d;
		stream_digest_memory(image_page, &im, im.pages, &d);
		printf("%s: OK: %llu records, %llu pages, digest %016llx%016llx matches\n", path,
		       (unsigned long long)n, (unsigned long long)im.pages,
		       (unsigned long long)d.high64, (unsigned long long)d.low64);
	}
	free(im.mem);
	return rc == 0 ? 0 : EXIT_STREAM;
}

static int write_file(const char *path, const void *p, size_t n)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.part", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct output o = { .fd = fd };
	if (fd < 0 || out_fd(&o, p, n) < 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		errmsg("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int cmd_extract(const char *path, const char *out)
{
	struct image im = { 0 };
	uint64_t n;
	int rc = replay_file(path, &im, &n);

	if (rc == 0)
		rc = write_file(out, im.mem, im.pages * STREAM_PAGE_SIZE);
	if (rc == 0)
		printf("%s: %llu pages written to %s\n", path, (unsigned long long)im.pages, out);
	free(im.mem);
	return rc == 0 ? 0 : EXIT_STREAM;
}

/* ------------------------------------------------------------------------
 * Networking helpers
 */

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon[1] == '\0')
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Write a stream header + one record to fd; used for replies. */
static void send_error(struct stream_writer *w, uint32_t code, const char *text)
{
	stream_write_error(w, code, text);
}

/* ------------------------------------------------------------------------
 * recv: an incoming peer that saves the stream.
 */

struct recv_opts {
	const char *listen, *out;
	uint64_t max_pages;
	bool no_crc;
};

static int recv_accept(const struct recv_opts *ro)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	if (parse_addr(ro->listen, &sa) < 0) {
		errmsg("recv: bad address '%s' (want IPV4:PORT)", ro->listen);
		return -2;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
		errmsg("recv: %s: %s", ro->listen, strerror(errno));
		return -1;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	printf("listening on %s:%u\n", ip, ntohs(sa.sin_port));
	fflush(stdout);

	struct pollfd p = { .fd = ls, .events = POLLIN };
	if (poll(&p, 1, timeout_ms) <= 0) {
		errmsg("recv: no connection within %d s", timeout_ms / 1000);
		close(ls);
		return -1;
	}
	int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	close(ls);
	if (s < 0)
		errmsg("recv: accept: %s", strerror(errno));
	return s;
}

/* Answer a HELLO: the intersection of what it offers and what we do. */
static struct stream_hello_ack recv_answer(const struct recv_opts *ro, const struct stream_hello *h)
{
	struct stream_hello_ack a = { .guest_pages = h->guest_pages, .page_size = h->page_size };

	if (h->page_size != STREAM_PAGE_SIZE) {
		a.status = STREAM_REFUSE_PAGE_SIZE;
	} else if (ro->max_pages && h->guest_pages > ro->max_pages) {
		a.status = STREAM_REFUSE_GUEST_SIZE;
		snprintf(a.reason, sizeof(a.reason), "guest of %llu pages, limit %llu",
			 (unsigned long long)h->guest_pages, (unsigned long long)ro->max_pages);
	} else if (!(h->codecs & STREAM_CODEC_RAW)) {
		a.status = STREAM_REFUSE_CODEC;
	} else if (!(h->digests & STREAM_DIGEST_XXH3_128)) {
		a.status = STREAM_REFUSE_DIGEST;
	}
	if (a.status) {
		if (!a.reason[0])
			snprintf(a.reason, sizeof(a.reason), "%s", stream_refusal_to_str(a.status));
		return a;
	}
	a.codecs = h->codecs & (STREAM_CODEC_RAW | STREAM_CODEC_ZERO | STREAM_CODEC_XBZRLE);
	a.caps = h->caps & STREAM_CAP_KNOWN;
	if (ro->no_crc)
		a.caps &= ~STREAM_CAP_CRC32C;
	a.xbzrle_cache_bytes = (a.codecs & STREAM_CODEC_XBZRLE) ? h->xbzrle_cache_bytes : 0;
	a.digest = STREAM_DIGEST_XXH3_128;
	return a;
}

static int cmd_recv(const struct recv_opts *ro)
{
	char part[4096];
	struct input in;
	struct stream_record rec;
	struct stream_writer reply, file;
	struct output net, fo;
	struct image im = { 0 };
	struct stream_apply *a = NULL;
	int s, fd = -1, k, rc = EXIT_STREAM;
	bool ended = false;
	uint32_t nack = 0;
	char nack_text[256] = "";

	s = recv_accept(ro);
	if (s < 0)
		return s == -2 ? EXIT_USAGE : EXIT_STREAM;
	snprintf(part, sizeof(part), "%s.part", ro->out);
	net = (struct output){ .fd = s, .net = true };
	stream_writer_init_fn(&reply, out_fd, &net);
	if (input_open(&in, s, "recv", true, STREAM_DIR_MIGRATION) < 0)
		goto out;
	stream_write_header(&reply, 0);

	while ((k = input_next(&in, &rec)) == 1) {
		if (rec.type == STREAM_HELLO) {
			struct stream_hello h;
			stream_rec_get(&rec, &h, sizeof(h));
			struct stream_hello_ack ack = recv_answer(ro, &h);
			/* Memory first, so a guest that cannot fit is refused, not dropped. */
			if (!ack.status && image_alloc(&im, h.guest_pages) < 0) {
				ack = (struct stream_hello_ack){ .status = STREAM_REFUSE_GUEST_SIZE,
								 .guest_pages = h.guest_pages };
				snprintf(ack.reason, sizeof(ack.reason), "cannot allocate %llu pages",
					 (unsigned long long)h.guest_pages);
			}
			if (stream_write_hello_ack(&reply, &ack) < 0) {
				errmsg("recv: sending HELLO_ACK: %s", stream_writer_error(&reply));
				goto out;
			}
			if (ack.status) {
				errmsg("recv: refused the migration: %s", ack.reason);
				goto out;
			}
			stream_reader_set_agreed(in.r, &ack);
			if (!(a = stream_apply_new(image_page, NULL, &im)))
				goto out;
			stream_apply_record(a, &rec);
			fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0) {
				errmsg("recv: %s: %s", part, strerror(errno));
				goto out;
			}
			fo = (struct output){ .fd = fd };
			stream_writer_init_fn(&file, out_fd, &fo);
			stream_write_header(&file, STREAM_HDR_F_SAVED);
			stream_write_hello(&file, &h);
			stream_write_hello_ack(&file, &ack);
			continue;
		}
		if (rec.type == STREAM_ERROR || rec.type == STREAM_CANCEL) {
			uint32_t n = 0;
			const char *t = rec.type == STREAM_ERROR ? stream_rec_text(&rec, &n) : "";
			errmsg("recv: the source sent %s%s%.*s", stream_type_to_str(rec.type),
			       n ? ": " : "", (int)n, t);
			goto out;
		}
		if (stream_write_record(&file, rec.type, rec.body, rec.length) < 0) {
			errmsg("recv: %s: write failed", part);
			goto out;
		}
		/* After a failed record keep reading to END, then NACK. */
		if (!nack && stream_apply_record(a, &rec) < 0) {
			nack = rec.type == STREAM_DIGEST ? STREAM_NACK_DIGEST : STREAM_NACK_INTERNAL;
			snprintf(nack_text, sizeof(nack_text), "%s", stream_apply_error(a));
		}
		if (rec.type == STREAM_END)
			ended = true;
	}
	if (k < 0) {
		send_error(&reply, STREAM_WERR_PROTOCOL, stream_reader_error(in.r));
		goto out;
	}
	if (!ended) {
		errmsg("recv: connection closed before END");
		goto out;
	}
	if (!nack && !stream_apply_stats(a)->digest_ok) {
		nack = STREAM_NACK_INCOMPLETE;
		snprintf(nack_text, sizeof(nack_text), "no digest verified");
	}
	if (nack) {
		stream_write_nack(&reply, nack, nack_text);
		errmsg("recv: NACK: %s", nack_text);
		goto out;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(part, ro->out) < 0) {
		errmsg("recv: %s: %s", ro->out, strerror(errno));
		fd = -1;
		stream_write_nack(&reply, STREAM_NACK_INTERNAL, "cannot save the stream");
		goto out;
	}
	fd = -1;
	if (stream_write_commit(&reply) < 0)
		errmsg("recv: sending COMMIT: %s", stream_writer_error(&reply));
	const struct stream_apply_stats *st = stream_apply_stats(a);
	printf("COMMIT: %llu pages (raw %llu zero %llu xbzrle %llu), %llu iterations, saved to %s\n",
	       (unsigned long long)im.pages, (unsigned long long)st->pages_raw,
	       (unsigned long long)st->pages_zero, (unsigned long long)st->pages_xbzrle,
	       (unsigned long long)st->iterations, ro->out);
	rc = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(part);
	}
	shutdown(s, SHUT_WR);
	close(s);
	input_close(&in);
	stream_apply_free(a);
	free(im.mem);
	return rc;
}

/* ------------------------------------------------------------------------
 * send: replay a saved stream into an incoming peer.
 */

/* Read the peer's reply stream up to its next record. */
static int send_reply(struct input *rin, struct stream_record *rec)
{
	int k = input_next(rin, rec);
	if (k == 0)
		errmsg("send: peer closed the connection without a verdict");
	return k;
}

static int cmd_send(const char *path, const char *addr)
{
	struct sockaddr_in sa;
	struct input fin, rin;
	struct stream_record rec, rr;
	struct stream_writer w;
	struct output net;
	struct stream_hello_ack peer = { 0 };
	int ffd, s, k, rc = EXIT_STREAM;
	bool rin_open = false;

	if (parse_addr(addr, &sa) < 0) {
		errmsg("send: bad address '%s' (want IPV4:PORT)", addr);
		return EXIT_USAGE;
	}
	ffd = open(path, O_RDONLY | O_CLOEXEC);
	if (ffd < 0) {
		errmsg("send: %s: %s", path, strerror(errno));
		return EXIT_STREAM;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		errmsg("send: connect %s: %s", addr, strerror(errno));
		close(ffd);
		if (s >= 0)
			close(s);
		return EXIT_STREAM;
	}
	net = (struct output){ .fd = s, .net = true };
	stream_writer_init_fn(&w, out_fd, &net);
	if (input_open(&fin, ffd, path, false, STREAM_DIR_MIGRATION) < 0 ||
	    input_open(&rin, s, "peer", true, STREAM_DIR_REPLY) < 0)
		goto out;
	rin_open = true;

	while ((k = input_next(&fin, &rec)) == 1) {
		if (rec.type == STREAM_HELLO) {
			if (!(stream_reader_header(fin.r)->flags & STREAM_HDR_F_SAVED)) {
				errmsg("send: %s: not a saved stream", path);
				goto out;
			}
			struct stream_hello h;
			stream_rec_get(&rec, &h, sizeof(h));
			if (stream_write_header(&w, 0) < 0 || stream_write_hello(&w, &h) < 0) {
				errmsg("send: %s", stream_writer_error(&w));
				goto out;
			}
			if (send_reply(&rin, &rr) != 1)
				goto out;
			if (rr.type != STREAM_HELLO_ACK) {
				errmsg("send: peer answered %s", stream_type_to_str(rr.type));
				goto out;
			}
			stream_rec_get(&rr, &peer, sizeof(peer));
			if (peer.status) {
				errmsg("send: peer refused: %s: %.64s", stream_refusal_to_str(peer.status),
				       peer.reason);
				goto out;
			}
			stream_writer_set_crc(&w, peer.caps & STREAM_CAP_CRC32C);
			continue;
		}
		if (rec.type == STREAM_HELLO_ACK) {	/* the saved answer */
			struct stream_hello_ack saved;
			stream_rec_get(&rec, &saved, sizeof(saved));
			uint32_t missing = saved.codecs & ~peer.codecs;
			if (missing || ((saved.caps & STREAM_CAP_XSAVE) && !(peer.caps & STREAM_CAP_XSAVE))) {
				errmsg("send: the peer does not accept %s, which %s uses",
				       missing ? stream_codec_to_str(missing & -missing) : "xsave", path);
				stream_write_cancel(&w);
				goto out;
			}
			continue;
		}
		if (stream_write_record(&w, rec.type, rec.body, rec.length) < 0) {
			errmsg("send: %s", stream_writer_error(&w));
			break;	/* the peer may have said why: read it */
		}
	}
	if (k < 0) {
		stream_write_error(&w, STREAM_WERR_PROTOCOL, "saved stream is corrupt");
		goto out;
	}
	if (send_reply(&rin, &rr) != 1)
		goto out;
	if (rr.type == STREAM_COMMIT) {
		printf("COMMIT: %s restored into %s (%llu records)\n", path, addr,
		       (unsigned long long)w.records);
		rc = 0;
	} else {
		uint32_t n = 0;
		const char *t = rr.type == STREAM_NACK || rr.type == STREAM_ERROR ?
				stream_rec_text(&rr, &n) : "";
		errmsg("send: peer answered %s: %.*s", stream_type_to_str(rr.type), (int)n, t);
	}
out:
	if (rin_open)
		input_close(&rin);
	input_close(&fin);
	close(s);
	close(ffd);
	return rc;
}

/* ------------------------------------------------------------------------
 * gen: a saved stream from a synthetic workload: the source's side of a
 * migration (bulk pass, then passes over pages a fake guest dirtied, each
 * page sent as ZERO, XBZRLE against what the destination holds, or raw),
 * without a network. For tests, fuzz seeds and demos.
 */

struct gen_opts {
	const char *out;
	uint64_t pages, seed;
	unsigned iterations;
	bool no_crc, no_xbzrle, bad_digest;
};

static uint64_t gen_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Batches being filled for one pass. */
struct gen_batch {
	struct stream_writer *w;
	uint64_t raw_pfn[STREAM_MAX_BATCH];
	const uint8_t *raw_page[STREAM_MAX_BATCH];
	uint32_t nraw;
	uint64_t zero_pfn[STREAM_MAX_ZERO_BATCH];
	uint32_t nzero;
	struct stream_xbzrle_page xb[STREAM_MAX_BATCH];
	uint8_t *xb_buf;	/* STREAM_MAX_BATCH encodings of a page each */
	uint32_t nxb;
	int err;
};

static void gen_flush(struct gen_batch *b)
{
	int rc = 0;
	if (b->nraw)
		rc |= stream_write_pages(b->w, b->nraw, b->raw_pfn, b->raw_page);
	if (b->nzero)
		rc |= stream_write_zero_pages(b->w, b->nzero, b->zero_pfn);
	if (b->nxb)
		rc |= stream_write_xbzrle_pages(b->w, b->nxb, b->xb);
	if (rc)
		b->err = -1;
	b->nraw = b->nzero = b->nxb = 0;
}

static int cmd_gen(const struct gen_opts *go)
{
	struct stream_writer w;
	struct output fo;
	struct gen_batch *b = calloc(1, sizeof(*b));
	uint8_t *mem = calloc(go->pages, STREAM_PAGE_SIZE);
	uint8_t *sent = calloc(go->pages, STREAM_PAGE_SIZE);	/* what the destination holds */
	uint64_t seed = go->seed | 1;
	char part[4096];
	int rc = EXIT_STREAM;

	if (!b || !mem || !sent || !(b->xb_buf = malloc((size_t)STREAM_MAX_BATCH * STREAM_PAGE_SIZE))) {
		errmsg("gen: out of memory");
		goto out;
	}
	snprintf(part, sizeof(part), "%s.part", go->out);
	fo.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	fo.net = false;
	if (fo.fd < 0) {
		errmsg("gen: %s: %s", part, strerror(errno));
		goto out;
	}
	stream_writer_init_fn(&w, out_fd, &fo);
	b->w = &w;

	/* Memory: a quarter zero pages, the rest text-like bytes. */
	for (uint64_t p = 0; p < go->pages; p++)
		if (gen_rand(&seed) % 4)
			for (size_t i = 0; i < STREAM_PAGE_SIZE; i++)
				mem[p * STREAM_PAGE_SIZE + i] = (uint8_t)('a' + gen_rand(&seed) % 26);

	struct stream_hello h = {
		.page_size = STREAM_PAGE_SIZE, .guest_pages = go->pages,
		.codecs = STREAM_CODEC_RAW | STREAM_CODEC_ZERO | (go->no_xbzrle ? 0 : STREAM_CODEC_XBZRLE),
		.caps = STREAM_CAP_XSAVE | STREAM_CAP_ITER_STATS | (go->no_crc ? 0 : STREAM_CAP_CRC32C),
		.xbzrle_cache_bytes = go->no_xbzrle ? 0 : 64ull << 20,
		.digests = STREAM_DIGEST_XXH3_128,
	};
	snprintf(h.software, sizeof(h.software), "ferry-stream gen");
	struct stream_hello_ack a = {
		.codecs = h.codecs, .guest_pages = h.guest_pages, .caps = h.caps,
		.xbzrle_cache_bytes = h.xbzrle_cache_bytes, .digest = STREAM_DIGEST_XXH3_128,
		.page_size = STREAM_PAGE_SIZE,
	};
	struct stream_guest_info g = { .guest_pages = go->pages, .nr_vcpus = 1, .mode = STREAM_MODE_PTE };
	snprintf(g.workload, sizeof(g.workload), "gen-sparse");
	snprintf(g.name, sizeof(g.name), "gen-%llu", (unsigned long long)go->seed);
	stream_write_header(&w, STREAM_HDR_F_SAVED);
	stream_write_hello(&w, &h);
	stream_write_hello_ack(&w, &a);
	stream_write_guest_info(&w, &g);

	for (unsigned it = 0; it <= go->iterations; it++) {
		struct stream_iter_end st = { .iteration = it };
		uint64_t bytes0 = w.bytes;
		if (it > 0) {	/* the guest runs: a tenth of the pages change */
			for (uint64_t p = 0; p < go->pages; p++) {
				if (gen_rand(&seed) % 10)
					continue;
				uint8_t *pg = mem + p * STREAM_PAGE_SIZE;
				switch (gen_rand(&seed) % 8) {
				case 0: memset(pg, 0, STREAM_PAGE_SIZE); break;		/* freed */
				case 1: for (size_t i = 0; i < STREAM_PAGE_SIZE; i++)	/* rewritten */
						pg[i] = (uint8_t)gen_rand(&seed);
					break;
				case 2: break;						/* same bytes */
				default: for (int k = 0; k < 4; k++)			/* a few bytes */
						pg[gen_rand(&seed) % STREAM_PAGE_SIZE] = (uint8_t)it;
				}
			}
		}
		for (uint64_t p = 0; p < go->pages; p++) {
			uint8_t *pg = mem + p * STREAM_PAGE_SIZE, *old = sent + p * STREAM_PAGE_SIZE;
			if (it > 0 && memcmp(pg, old, STREAM_PAGE_SIZE) == 0)
				continue;	/* clean (or dirty but unchanged) */
			st.pages_dirty++;
			if (xbzrle_is_zero(pg, STREAM_PAGE_SIZE)) {
				b->zero_pfn[b->nzero++] = p;
				st.pages_zero++;
			} else {
				int n = -1;
				uint8_t *enc = b->xb_buf + (size_t)b->nxb * STREAM_PAGE_SIZE;
				if (it > 0 && !go->no_xbzrle)
					n = xbzrle_encode(old, pg, STREAM_PAGE_SIZE, enc, STREAM_PAGE_SIZE);
				if (n > 0) {
					b->xb[b->nxb++] = (struct stream_xbzrle_page){ p, (uint32_t)n, enc };
					st.pages_xbzrle++;
				} else {
					if (it > 0 && !go->no_xbzrle)
						st.xbzrle_overflow++;
					b->raw_pfn[b->nraw] = p;
					b->raw_page[b->nraw++] = pg;
					st.pages_raw++;
				}
			}
			memcpy(old, pg, STREAM_PAGE_SIZE);
			if (b->nraw == STREAM_MAX_BATCH || b->nzero == STREAM_MAX_ZERO_BATCH ||
			    b->nxb == STREAM_MAX_BATCH)
				gen_flush(b);
		}
		gen_flush(b);
		st.bytes = w.bytes - bytes0;
		stream_write_iter_end(&w, &st);
	}

	struct stream_cpu_state c = { .version = STREAM_CPU_STATE_V1, .rip = 0x401000, .rflags = 0x202,
				      .cr0 = 0x80050033, .cr3 = 0x1000, .cr4 = 0x6a0, .efer = 0x500,
				      .xcr0 = 3 };
	c.gpr[STREAM_RSP] = 0x7ffff000;
	c.seg[STREAM_CS] = (struct stream_segment){ .selector = 0x23, .limit = 0xffffffff, .attr = 0xa0fb };
	uint8_t xsave[576] = { 0x7f, 0x03 };	/* default FCW */
	stream_write_cpu_state(&w, &c, xsave, sizeof(xsave));

	struct digest128 dg = digest_buf(mem, go->pages * STREAM_PAGE_SIZE);
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = go->pages,
				   .low64 = dg.low64 ^ (go->bad_digest ? 1 : 0), .high64 = dg.high64 };
	stream_write_digest(&w, &d);
	stream_write_end(&w);
	if (b->err || w.err || fsync(fo.fd) < 0 || close(fo.fd) < 0 || rename(part, go->out) < 0) {
		errmsg("gen: %s: %s", go->out, w.err ? stream_writer_error(&w) : strerror(errno));
		unlink(part);
		goto out;
	}
	printf("%s: %llu records, %llu bytes, %llu pages, %u iterations\n", go->out,
	       (unsigned long long)w.records, (unsigned long long)w.bytes,
	       (unsigned long long)go->pages, go->iterations);
	rc = 0;
out:
	if (b)
		free(b->xb_buf);
	free(b);
	free(mem);
	free(sent);
	return rc;
}

/* ------------------------------------------------------------------------
 * Command line
 */

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
	struct gen_opts go = { .pages = 256, .iterations = 3, .seed = 1 };
	struct recv_opts ro = { 0 };
	int npos = 0;

	if (!cmd) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v;
#define NEED_VAL() do { if (!val) { errmsg("%s needs a value", a); return EXIT_USAGE; } i++; } while (0)
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
				errmsg("%s: '%s' is not a number", a, val);
				return EXIT_USAGE;
			}
			if (!strcmp(a, "--timeout"))
				timeout_ms = v > 3600 ? 3600000 : (int)v * 1000;
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
			errmsg("unknown option '%s' (see --help)", a);
			return EXIT_USAGE;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			errmsg("too many arguments (see --help)");
			return EXIT_USAGE;
		}
	}

	if (!strcmp(cmd, "dump") && npos == 1)
		return cmd_dump(pos[0]);
	if (!strcmp(cmd, "verify") && npos == 1)
		return cmd_verify(pos[0]);
	if (!strcmp(cmd, "extract") && npos == 1 && out)
		return cmd_extract(pos[0], out);
	if (!strcmp(cmd, "send") && npos == 2)
		return cmd_send(pos[0], pos[1]);
	if (!strcmp(cmd, "recv") && npos == 0 && listen && out) {
		ro.listen = listen;
		ro.out = out;
		return cmd_recv(&ro);
	}
	if (!strcmp(cmd, "gen") && npos == 0 && out) {
		if (go.pages == 0 || go.pages > (1ull << 24)) {
			errmsg("gen: --pages must be 1..16777216");
			return EXIT_USAGE;
		}
		go.out = out;
		return cmd_gen(&go);
	}
	if (strcmp(cmd, "dump") && strcmp(cmd, "verify") && strcmp(cmd, "extract") &&
	    strcmp(cmd, "send") && strcmp(cmd, "recv") && strcmp(cmd, "gen"))
		errmsg("unknown command '%s'", cmd);
	else
		errmsg("%s: wrong arguments", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
