/* fstream.h: the contract between ferry-stream's files, private to the tool.
 *
 *   ferry-stream.c   main: the command line, usage, fstream_errmsg()
 *   fstream_io.c     record input from a file or socket, output sink,
 *                    guest memory image, whole-file writes
 *   fstream_dump.c   dump, verify, extract
 *   fstream_net.c    recv, send
 *   fstream_gen.c    gen
 *
 * Every error is reported on stderr where it is found, prefixed
 * "ferry-stream: ", so callers only pass the failure up. Commands return the
 * process exit status.
 */
#ifndef FERRY_FSTREAM_H
#define FERRY_FSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define FSTREAM_PROG "ferry-stream"
#define FSTREAM_EXIT_STREAM 1	/* the stream or the peer failed */
#define FSTREAM_EXIT_USAGE 2	/* bad command line */

/* ------------------------------------------------------------------------
 * ferry-stream.c
 */

/* Print FSTREAM_PROG ": ", the message and a newline on stderr. */
__attribute__((format(printf, 1, 2)))
void fstream_errmsg(const char *fmt, ...);

/* ------------------------------------------------------------------------
 * fstream_io.c
 */

/* Milliseconds each network wait (data, room to send, a connection) may
 * take; from --timeout, default 30000. Set by main() before any command. */
extern int fstream_timeout_ms;

/* Records read from a descriptor in chunks and fed to a reader. */
struct fstream_input {
	int fd;			/* not owned: the caller closes it */
	const char *name;	/* prefix of error messages */
	bool net;		/* wait with a timeout */
	uint8_t *buf;
	size_t pos, len;
	struct stream_reader *r;	/* read-only for callers */
	/* After fstream_input_next() returned -1: why, without the name, and
	 * the STREAM_WERR_ code an ERROR record telling the peer would carry. */
	char why[STREAM_MAX_TEXT / 4];
	uint32_t werr;
};

/* Set up in to read records of direction dir from fd; name labels its
 * messages; net makes each wait time out after fstream_timeout_ms.
 * Returns 0, or -1 out of memory (reported). Either way in may then be
 * passed to fstream_input_close(), and must be, to free it. */
int fstream_input_open(struct fstream_input *in, int fd, const char *name, bool net,
		       enum stream_dir dir);

/* Free what fstream_input_open() allocated; fd stays open. */
void fstream_input_close(struct fstream_input *in);

/* Read up to the next complete record. Returns 1 with *rec (valid until
 * the next call), 0 at a clean end (a final record, then end of input), or
 * -1 on a stream error or truncation (werr STREAM_WERR_PROTOCOL), a timeout
 * (STREAM_WERR_TIMEOUT) or a read error (STREAM_WERR_INTERNAL), reported as
 * "NAME: why" and kept in in->why. A peer that resets the connection counts as end of input. */
int fstream_input_next(struct fstream_input *in, struct stream_record *rec);

/* Output sink for stream_writer_init_fn(): ctx is a struct fstream_output. */
struct fstream_output {
	int fd;
	bool net;		/* a socket: send() with a timeout, no SIGPIPE */
	char why[64];		/* after a failure: why, e.g. "no room to send for 30 s" */
};

/* stream_out_fn: write all len bytes of buf to the fstream_output ctx.
 * Returns 0, or -1 on a write error or (net) when no byte could be sent for
 * fstream_timeout_ms; then errno and o->why say why (errno ETIMEDOUT for
 * the timeout). Nothing reported. */
int fstream_out_fd(void *ctx, const void *buf, size_t len);

/* Guest memory: pages * STREAM_PAGE_SIZE bytes, zero-filled. */
struct fstream_image {
	uint8_t *mem;		/* owned: the caller frees it */
	uint64_t pages;
};

/* stream_page_fn over a struct fstream_image ctx: page pfn, or NULL when
 * pfn is not below pages. */
uint8_t *fstream_image_page(void *ctx, uint64_t pfn);

/* Allocate im for pages zeroed pages. Returns 0, or -1 (reported) when the
 * memory cannot be had. Call once per image. */
int fstream_image_alloc(struct fstream_image *im, uint64_t pages);

/* Put path + ".part" in buf[0..size), where an output is written before
 * it is renamed into place. Returns 0, or -1 with errno ENAMETOOLONG (not
 * reported) when it does not fit: a cut name could be another file. */
int fstream_part_name(char *buf, size_t size, const char *path);

/* Write n bytes at p to path through path.part, fsync'd then renamed, so
 * path is whole or untouched. Returns 0, or -1 (reported, path.part
 * removed). */
int fstream_write_file(const char *path, const void *p, size_t n);

/* ------------------------------------------------------------------------
 * fstream_dump.c: path is a saved stream file.
 */

/* Print each record of path on a line, then totals (also after an error).
 * path is a saved file, a reply stream, or a captured live migration
 * stream, read with the agreement its HELLO offered (CRC trailers as found
 * after the HELLO, VERIFY_AFTER when offered and no DIGEST comes). Returns
 * 0, or FSTREAM_EXIT_STREAM when the file cannot be read or is malformed. */
int fstream_cmd_dump(const char *path);

/* Replay path into memory: every record valid, a saved stream, the digest
 * matched. Returns 0 (prints "PATH: OK: ..."), or FSTREAM_EXIT_STREAM. */
int fstream_cmd_verify(const char *path);

/* As fstream_cmd_verify(), then write the guest memory to out with
 * fstream_write_file(). Returns 0, or FSTREAM_EXIT_STREAM with out
 * untouched. */
int fstream_cmd_extract(const char *path, const char *out);

/* ------------------------------------------------------------------------
 * fstream_net.c
 */

struct fstream_recv_opts {
	const char *listen;	/* IPV4:PORT; port 0 picks one */
	const char *out;	/* where an accepted stream is saved */
	uint64_t max_pages;	/* refuse larger guests; 0 = no limit */
	bool no_crc;		/* decline CRC trailers */
};

/* Listen, print "listening on ADDR:PORT" and flush stdout, accept one
 * source, check its migration up to END, answer READY or NACK, wait for GO,
 * then save the stream to ro->out (without the GO) and answer COMMIT. A
 * CANCEL, ERROR, closed connection or timeout instead of GO leaves no file,
 * partial or whole. Returns 0 after COMMIT, FSTREAM_EXIT_USAGE for a bad
 * address, else FSTREAM_EXIT_STREAM. */
int fstream_cmd_recv(const struct fstream_recv_opts *ro);

/* Replay the saved stream path into the incoming peer at addr (IPV4:PORT),
 * re-encoded for what the peer accepts and without verification after the
 * switch-over; after the file's END wait for READY, send GO, wait for
 * COMMIT. Returns 0 when the peer answered COMMIT, FSTREAM_EXIT_USAGE for a
 * bad address, else FSTREAM_EXIT_STREAM. */
int fstream_cmd_send(const char *path, const char *addr);

/* ------------------------------------------------------------------------
 * fstream_gen.c
 */

struct fstream_gen_opts {
	const char *out;	/* the saved stream to write */
	uint64_t pages;		/* guest size, 1..2^24 (main checks) */
	uint64_t seed;		/* of the workload's pseudo-random bytes */
	unsigned iterations;	/* passes after the bulk pass */
	bool no_crc, no_xbzrle, bad_digest;
};

/* Synthesize a saved stream into go->out (through go->out.part). Returns 0,
 * or FSTREAM_EXIT_STREAM with go->out untouched. */
int fstream_cmd_gen(const struct fstream_gen_opts *go);

#endif /* FERRY_FSTREAM_H */
