/* fstream_io.c: ferry-stream's byte plumbing: records read from a file or a
 * socket (with the --timeout wait), bytes written to a file or a socket, the
 * guest memory image the stream is applied to, and whole-file writes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fstream.h"

#define IO_CHUNK (256u << 10)	/* bytes read per call */

int fstream_timeout_ms = 30000;

/* ------------------------------------------------------------------------
 * Input: a file descriptor read in chunks, fed to a reader.
 */

int fstream_input_open(struct fstream_input *in, int fd, const char *name, bool net, enum stream_dir dir)
{
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->name = name;
	in->net = net;
	in->buf = malloc(IO_CHUNK);
	in->r = stream_reader_new(dir);
	if (!in->buf || !in->r) {
		fstream_errmsg("out of memory");
		return -1;
	}
	return 0;
}

void fstream_input_close(struct fstream_input *in)
{
	free(in->buf);
	stream_reader_free(in->r);
}

/* Record why in failed (werr: the STREAM_WERR_ code an ERROR reply would
 * carry) and report it as "NAME: why". Returns -1. */
__attribute__((format(printf, 3, 4)))
static int input_fail(struct fstream_input *in, uint32_t werr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in->why, sizeof(in->why), fmt, ap);
	va_end(ap);
	in->werr = werr;
	fstream_errmsg("%s: %s", in->name, in->why);
	return -1;
}

int fstream_input_next(struct fstream_input *in, struct stream_record *rec)
{
	for (;;) {
		if (in->pos < in->len) {
			size_t used;
			int k = stream_reader_feed(in->r, in->buf + in->pos, in->len - in->pos, &used, rec);
			in->pos += used;
			if (k < 0)
				return input_fail(in, STREAM_WERR_PROTOCOL, "%s",
						  stream_reader_error(in->r));
			if (k == 1)
				return 1;
			continue;
		}
		if (stream_reader_done(in->r))
			return 0;
		if (in->net) {
			struct pollfd p = { .fd = in->fd, .events = POLLIN };
			int n = poll(&p, 1, fstream_timeout_ms);
			if (n == 0)
				return input_fail(in, STREAM_WERR_TIMEOUT, "no data for %d s",
						  fstream_timeout_ms / 1000);
			if (n < 0 && errno == EINTR)
				continue;
			/* Else read() would block with no timeout. */
			if (n < 0)
				return input_fail(in, STREAM_WERR_INTERNAL, "poll: %s", strerror(errno));
		}
		ssize_t n = read(in->fd, in->buf, IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			n = 0;	/* a peer that died: say where its stream stopped */
		if (n < 0)
			return input_fail(in, STREAM_WERR_INTERNAL, "read: %s", strerror(errno));
		if (n == 0) {
			if (stream_reader_finish(in->r) < 0)
				return input_fail(in, STREAM_WERR_PROTOCOL, "%s",
						  stream_reader_error(in->r));
			return 0;
		}
		in->pos = 0;
		in->len = (size_t)n;
	}
}

/* ------------------------------------------------------------------------
 * Output: file descriptors, with a timeout for sockets.
 */

int fstream_out_fd(void *ctx, const void *buf, size_t len)
{
	struct fstream_output *o = ctx;
	const uint8_t *p = buf;

	while (len) {
		if (o->net) {
			struct pollfd pf = { .fd = o->fd, .events = POLLOUT };
			int k = poll(&pf, 1, fstream_timeout_ms);
			if (k < 0 && errno == EINTR)
				continue;
			if (k == 0) {
				snprintf(o->why, sizeof(o->why), "no room to send for %d s",
					 fstream_timeout_ms / 1000);
				errno = ETIMEDOUT;
				return -1;
			}
			if (k < 0) {
				snprintf(o->why, sizeof(o->why), "poll: %s", strerror(errno));
				return -1;
			}
		}
		/* MSG_DONTWAIT: poll only says there is some room; a blocking send()
		 * of more would wait for all of it, past the timeout. */
		ssize_t n = o->net ? send(o->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
				   : write(o->fd, p, len);
		if (n < 0 && (errno == EINTR || (o->net && (errno == EAGAIN || errno == EWOULDBLOCK))))
			continue;
		if (n == 0)
			errno = EIO;
		if (n <= 0) {
			snprintf(o->why, sizeof(o->why), "%s", strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Memory image for verify / extract / recv.
 */

uint8_t *fstream_image_page(void *ctx, uint64_t pfn)
{
	struct fstream_image *im = ctx;
	return pfn < im->pages ? im->mem + pfn * STREAM_PAGE_SIZE : NULL;
}

int fstream_image_alloc(struct fstream_image *im, uint64_t pages)
{
	im->pages = pages;
	im->mem = calloc(pages, STREAM_PAGE_SIZE);
	if (!im->mem) {
		fstream_errmsg("cannot allocate %llu pages of guest memory", (unsigned long long)pages);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Whole files
 */

int fstream_part_name(char *buf, size_t size, const char *path)
{
	int n = snprintf(buf, size, "%s.part", path);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int fstream_write_file(const char *path, const void *p, size_t n)
{
	char tmp[PATH_MAX];
	if (fstream_part_name(tmp, sizeof(tmp), path) < 0) {
		fstream_errmsg("%s: %s", path, strerror(errno));
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct fstream_output o = { .fd = fd };
	if (fd < 0 || fstream_out_fd(&o, p, n) < 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		fstream_errmsg("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
