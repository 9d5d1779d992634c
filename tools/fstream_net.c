/* fstream_net.c: the network commands: recv (an incoming peer that checks
 * the migration, answers READY or NACK, and on GO saves it and answers
 * COMMIT) and send (replay a saved stream into an incoming peer). IPv4
 * only. Both use the classic switch-over of docs/stream-format.md section
 * 7.5: the DIGEST is checked before READY; neither offers nor grants
 * verification after the switch-over. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fstream.h"

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

/* ------------------------------------------------------------------------
 * recv: an incoming peer that saves the stream.
 */

static int recv_accept(const struct fstream_recv_opts *ro)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	if (parse_addr(ro->listen, &sa) < 0) {
		fstream_errmsg("recv: bad address '%s' (want IPV4:PORT)", ro->listen);
		return -2;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
		fstream_errmsg("recv: %s: %s", ro->listen, strerror(errno));
		return -1;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	printf("listening on %s:%u\n", ip, ntohs(sa.sin_port));
	fflush(stdout);

	struct pollfd p = { .fd = ls, .events = POLLIN };
	if (poll(&p, 1, fstream_timeout_ms) <= 0) {
		fstream_errmsg("recv: no connection within %d s", fstream_timeout_ms / 1000);
		close(ls);
		return -1;
	}
	int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	close(ls);
	if (s < 0)
		fstream_errmsg("recv: accept: %s", strerror(errno));
	return s;
}

/* Answer a HELLO: the intersection of what it offers and what we do. */
static struct stream_hello_ack recv_answer(const struct fstream_recv_opts *ro, const struct stream_hello *h)
{
	struct stream_hello_ack a = { .guest_pages = h->guest_pages, .page_size = h->page_size,
				      .mig_id = h->mig_id };

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
	/* Never verification after the switch-over: the saved file must carry
	 * the DIGEST, checked here before READY, since no GO or REGION_DIGEST
	 * is ever stored. */
	a.caps = h->caps & STREAM_CAP_KNOWN & ~STREAM_CAP_VERIFY_AFTER;
	if (ro->no_crc)
		a.caps &= ~STREAM_CAP_CRC32C;
	a.xbzrle_cache_bytes = (a.codecs & STREAM_CODEC_XBZRLE) ? h->xbzrle_cache_bytes : 0;
	a.digest = STREAM_DIGEST_XXH3_128;
	return a;
}

/* Tell the source the stream cannot be saved, and why. */
static void recv_save_failed(struct stream_writer *reply, const char *why)
{
	char text[160];
	snprintf(text, sizeof(text), "cannot save the stream: %s", why);
	stream_write_error(reply, STREAM_WERR_INTERNAL, text);
}

/* The source ended its stream with ERROR or CANCEL (rec); when says where
 * ("" or e.g. " instead of GO"). */
static void recv_source_stopped(const struct stream_record *rec, const char *when, const char *out)
{
	uint32_t n = 0;
	const char *t = "";
	char code[64] = "";

	if (rec->type == STREAM_ERROR) {
		struct stream_reason why;
		stream_rec_get(rec, &why, sizeof(why));
		snprintf(code, sizeof(code), " %u (%s)", why.code, stream_wire_error_to_str(why.code));
		t = stream_rec_text(rec, &n);
	}
	fstream_errmsg("recv: the source sent %s%s%s%s%.*s: %s not saved", stream_type_to_str(rec->type), code,
		       when, n ? ": " : "", (int)n, t, out);
}

int fstream_cmd_recv(const struct fstream_recv_opts *ro)
{
	char part[PATH_MAX];
	struct fstream_input in;
	struct stream_record rec;
	struct stream_writer reply, file;
	struct fstream_output net, fo;
	struct fstream_image im = { 0 };
	struct stream_apply *a = NULL;
	int s, fd = -1, k, rc = FSTREAM_EXIT_STREAM;
	bool ended = false, part_made = false;
	uint32_t nack = 0;
	char nack_text[256] = "";

	if (fstream_part_name(part, sizeof(part), ro->out) < 0) {
		fstream_errmsg("recv: %s: %s", ro->out, strerror(errno));
		return FSTREAM_EXIT_STREAM;
	}
	s = recv_accept(ro);
	if (s < 0)
		return s == -2 ? FSTREAM_EXIT_USAGE : FSTREAM_EXIT_STREAM;
	net = (struct fstream_output){ .fd = s, .net = true };
	stream_writer_init_fn(&reply, fstream_out_fd, &net);
	if (fstream_input_open(&in, s, "recv", true, STREAM_DIR_MIGRATION) < 0)
		goto out;
	stream_write_header(&reply, 0);

	while ((k = fstream_input_next(&in, &rec)) == 1) {
		if (rec.type == STREAM_HELLO) {
			struct stream_hello h;
			stream_rec_get(&rec, &h, sizeof(h));
			struct stream_hello_ack ack = recv_answer(ro, &h);
			/* Memory first, so a guest that cannot fit is refused, not dropped. */
			if (!ack.status && fstream_image_alloc(&im, h.guest_pages) < 0) {
				ack = (struct stream_hello_ack){ .status = STREAM_REFUSE_GUEST_SIZE,
								 .guest_pages = h.guest_pages,
								 .mig_id = h.mig_id };
				snprintf(ack.reason, sizeof(ack.reason), "cannot allocate %llu pages",
					 (unsigned long long)h.guest_pages);
			}
			if (stream_write_hello_ack(&reply, &ack) < 0) {
				fstream_errmsg("recv: sending HELLO_ACK: %s%s%s", stream_writer_error(&reply),
					       net.why[0] ? ": " : "", net.why);
				goto out;
			}
			if (ack.status) {
				fstream_errmsg("recv: refused the migration: %s", ack.reason);
				goto out;
			}
			stream_reader_set_agreed(in.r, &ack);
			/* From here the source waits for a verdict: failing on our
			 * own, tell it with an ERROR rather than just hanging up. */
			if (!(a = stream_apply_new(fstream_image_page, NULL, &im))) {
				fstream_errmsg("recv: out of memory");
				stream_write_error(&reply, STREAM_WERR_RESOURCES, "out of memory");
				goto out;
			}
			stream_apply_record(a, &rec);
			fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0) {
				const char *why = strerror(errno);
				fstream_errmsg("recv: %s: %s", part, why);
				recv_save_failed(&reply, why);
				goto out;
			}
			part_made = true;
			fo = (struct fstream_output){ .fd = fd };
			stream_writer_init_fn(&file, fstream_out_fd, &fo);
			stream_write_header(&file, STREAM_HDR_F_SAVED);
			stream_write_hello(&file, &h);
			stream_write_hello_ack(&file, &ack);
			continue;
		}
		if (rec.type == STREAM_ERROR || rec.type == STREAM_CANCEL) {
			recv_source_stopped(&rec, "", ro->out);
			goto out;
		}
		if (stream_write_record(&file, rec.type, rec.body, rec.length) < 0) {
			const char *why = fo.why[0] ? fo.why : stream_writer_error(&file);
			fstream_errmsg("recv: %s: write failed: %s", part, why);
			recv_save_failed(&reply, why);
			goto out;
		}
		/* After a failed record keep reading to END, then NACK. */
		if (!nack && stream_apply_record(a, &rec) < 0) {
			nack = rec.type == STREAM_DIGEST ? STREAM_NACK_DIGEST : STREAM_NACK_INTERNAL;
			snprintf(nack_text, sizeof(nack_text), "%s", stream_apply_error(a));
		}
		/* The saved file ends here; the live stream goes on with GO
		 * (or CANCEL) once we said READY. */
		if (rec.type == STREAM_END) {
			ended = true;
			break;
		}
	}
	if (k < 0) {
		stream_write_error(&reply, in.werr, in.why);
		goto out;
	}
	if (!ended) {
		fstream_errmsg("recv: connection closed before END");
		goto out;
	}
	if (!nack && !stream_apply_stats(a)->digest_ok) {
		nack = STREAM_NACK_INCOMPLETE;
		snprintf(nack_text, sizeof(nack_text), "no digest verified");
	}
	if (nack) {
		stream_write_nack(&reply, nack, nack_text);
		fstream_errmsg("recv: NACK: %s", nack_text);
		goto out;
	}
	/* The file is on disk before READY: READY promises that GO will not
	 * fail here, and after GO the source gives its guest up. */
	int err = fsync(fd) < 0 ? errno : 0;
	if (close(fd) < 0 && !err)
		err = errno;
	fd = -1;
	if (err) {
		char text[160];
		fstream_errmsg("recv: %s: %s", part, strerror(err));
		snprintf(text, sizeof(text), "cannot save the stream: %s", strerror(err));
		stream_write_nack(&reply, STREAM_NACK_INTERNAL, text);
		goto out;
	}
	if (stream_write_ready(&reply) < 0) {
		fstream_errmsg("recv: sending READY: %s%s%s", stream_writer_error(&reply),
			       net.why[0] ? ": " : "", net.why);
		goto out;
	}
	/* Only GO hands the guest over; CANCEL, ERROR, a closed connection or
	 * silence leave it with the source, and nothing is saved. */
	k = fstream_input_next(&in, &rec);
	if (k == 1 && rec.type != STREAM_GO) {
		recv_source_stopped(&rec, " instead of GO", ro->out);
		goto out;
	}
	if (k != 1) {
		if (k < 0)
			stream_write_error(&reply, in.werr, in.why);
		fstream_errmsg("recv: no GO after READY: %s not saved", ro->out);
		goto out;
	}
	if (rename(part, ro->out) < 0) {
		char text[160];
		const char *why = strerror(errno);
		fstream_errmsg("recv: %s: %s", ro->out, why);
		/* After GO, but nothing ran here: the source keeps its guest. */
		snprintf(text, sizeof(text), "cannot save the stream: %s", why);
		stream_write_nack(&reply, STREAM_NACK_START, text);
		goto out;
	}
	part_made = false;
	if (stream_write_commit(&reply) < 0)
		fstream_errmsg("recv: sending COMMIT: %s%s%s", stream_writer_error(&reply),
			       net.why[0] ? ": " : "", net.why);
	const struct stream_apply_stats *st = stream_apply_stats(a);
	printf("COMMIT: %llu pages (raw %llu zero %llu xbzrle %llu), %llu iterations, saved to %s\n",
	       (unsigned long long)im.pages, (unsigned long long)st->pages_raw,
	       (unsigned long long)st->pages_zero, (unsigned long long)st->pages_xbzrle,
	       (unsigned long long)st->iterations, ro->out);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (part_made)
		unlink(part);
	shutdown(s, SHUT_WR);
	close(s);
	fstream_input_close(&in);
	stream_apply_free(a);
	free(im.mem);
	return rc;
}

/* ------------------------------------------------------------------------
 * send: replay a saved stream into an incoming peer.
 */

/* Read the peer's reply stream up to its next record, which must be want.
 * Returns 0, or -1 after saying what came instead (a NACK or ERROR with
 * its code and text) or why nothing did. */
static int send_expect(struct fstream_input *rin, struct stream_record *rec, uint32_t want)
{
	int k = fstream_input_next(rin, rec);
	if (k == 0)
		fstream_errmsg("send: peer closed the connection without a verdict (waiting for %s)",
			       stream_type_to_str(want));
	if (k != 1)
		return -1;
	if (rec->type == want)
		return 0;

	uint32_t n = 0;
	const char *t = "";
	char code[64] = "";
	if (rec->type == STREAM_NACK || rec->type == STREAM_ERROR) {
		struct stream_reason why;
		stream_rec_get(rec, &why, sizeof(why));
		snprintf(code, sizeof(code), " %u (%s)", why.code, rec->type == STREAM_NACK ?
			 stream_nack_to_str(why.code) : stream_wire_error_to_str(why.code));
		t = stream_rec_text(rec, &n);
	}
	fstream_errmsg("send: peer answered %s%s%s%.*s (waiting for %s)", stream_type_to_str(rec->type), code,
		       n ? ": " : "", (int)n, t, stream_type_to_str(want));
	return -1;
}

/* connect() s to sa, waiting at most fstream_timeout_ms (a plain connect
 * retries for minutes when SYNs go unanswered). Returns 0 with s blocking
 * again, or -1 with errno (ETIMEDOUT for the timeout). */
static int send_connect(int s, const struct sockaddr_in *sa)
{
	int fl = fcntl(s, F_GETFL);
	if (fl < 0 || fcntl(s, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		if (errno != EINPROGRESS)
			return -1;
		struct pollfd p = { .fd = s, .events = POLLOUT };
		int k, err = 0;
		socklen_t len = sizeof(err);
		while ((k = poll(&p, 1, fstream_timeout_ms)) < 0 && errno == EINTR)
			;
		if (k == 0)
			errno = ETIMEDOUT;
		if (k <= 0)
			return -1;
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -1;
		if (err) {
			errno = err;
			return -1;
		}
	}
	return fcntl(s, F_SETFL, fl) < 0 ? -1 : 0;
}

/* Report a failed write to the peer, with why the output failed if it did. */
static void send_write_failed(const struct stream_writer *w, const struct fstream_output *net)
{
	if (net->why[0])
		fstream_errmsg("send: %s: %s", stream_writer_error(w), net->why);
	else
		fstream_errmsg("send: %s", stream_writer_error(w));
}

int fstream_cmd_send(const char *path, const char *addr)
{
	struct sockaddr_in sa;
	struct fstream_input fin, rin;
	struct stream_record rec, rr;
	struct stream_writer w;
	struct fstream_output net;
	struct stream_hello_ack peer = { 0 };
	int ffd, s, k, rc = FSTREAM_EXIT_STREAM;
	bool rin_open = false, write_failed = false;

	if (parse_addr(addr, &sa) < 0) {
		fstream_errmsg("send: bad address '%s' (want IPV4:PORT)", addr);
		return FSTREAM_EXIT_USAGE;
	}
	ffd = open(path, O_RDONLY | O_CLOEXEC);
	if (ffd < 0) {
		fstream_errmsg("send: %s: %s", path, strerror(errno));
		return FSTREAM_EXIT_STREAM;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || send_connect(s, &sa) < 0) {
		fstream_errmsg("send: connect %s: %s", addr, strerror(errno));
		close(ffd);
		if (s >= 0)
			close(s);
		return FSTREAM_EXIT_STREAM;
	}
	net = (struct fstream_output){ .fd = s, .net = true };
	stream_writer_init_fn(&w, fstream_out_fd, &net);
	if (fstream_input_open(&fin, ffd, path, false, STREAM_DIR_MIGRATION) < 0 ||
	    fstream_input_open(&rin, s, "peer", true, STREAM_DIR_REPLY) < 0)
		goto out;
	rin_open = true;

	while ((k = fstream_input_next(&fin, &rec)) == 1) {
		if (rec.type == STREAM_HELLO) {
			if (!(stream_reader_header(fin.r)->flags & STREAM_HDR_F_SAVED)) {
				fstream_errmsg("send: %s: not a saved stream", path);
				goto out;
			}
			struct stream_hello h;
			stream_rec_get(&rec, &h, sizeof(h));
			/* The file carries the DIGEST, checked before READY: the
			 * region digests of verification after the switch-over
			 * would need the memory of a source, which a file is not. */
			h.caps &= ~STREAM_CAP_VERIFY_AFTER;
			if (stream_write_header(&w, 0) < 0 || stream_write_hello(&w, &h) < 0) {
				send_write_failed(&w, &net);
				goto out;
			}
			if (send_expect(&rin, &rr, STREAM_HELLO_ACK) < 0)
				goto out;
			stream_rec_get(&rr, &peer, sizeof(peer));
			if (peer.status) {
				fstream_errmsg("send: peer refused: %s: %.64s", stream_refusal_to_str(peer.status),
				       peer.reason);
				goto out;
			}
			stream_writer_set_crc(&w, peer.caps & STREAM_CAP_CRC32C);
			/* The reply stream's reader knows no HELLO: the echo and
			 * the subset are ours to check. */
			uint64_t extra = peer.caps & ~h.caps;
			if (peer.mig_id != h.mig_id || extra) {
				char why[128];
				if (extra)
					snprintf(why, sizeof(why), "peer's HELLO_ACK agrees to %s, which was not offered",
						 stream_cap_to_str(extra & -extra));
				else
					snprintf(why, sizeof(why), "peer's HELLO_ACK carries migration id %016llx, "
						 "the HELLO %016llx", (unsigned long long)peer.mig_id,
						 (unsigned long long)h.mig_id);
				fstream_errmsg("send: %s", why);
				stream_write_error(&w, STREAM_WERR_PROTOCOL, why);
				goto out;
			}
			continue;
		}
		if (rec.type == STREAM_HELLO_ACK) {	/* the saved answer */
			struct stream_hello_ack saved;
			stream_rec_get(&rec, &saved, sizeof(saved));
			uint32_t missing = saved.codecs & ~peer.codecs;
			if (missing || ((saved.caps & STREAM_CAP_XSAVE) && !(peer.caps & STREAM_CAP_XSAVE))) {
				fstream_errmsg("send: the peer does not accept %s, which %s uses",
				       missing ? stream_codec_to_str(missing & -missing) : "xsave", path);
				stream_write_cancel(&w);
				goto out;
			}
			continue;
		}
		if (stream_write_record(&w, rec.type, rec.body, rec.length) < 0) {
			send_write_failed(&w, &net);
			write_failed = true;
			break;
		}
	}
	if (k < 0) {
		stream_write_error(&w, STREAM_WERR_PROTOCOL, "saved stream is corrupt");
		goto out;
	}
	if (write_failed) {
		send_expect(&rin, &rr, STREAM_READY);	/* the peer may have said why */
		goto out;
	}
	/* The file's END was the last record: the peer checks the digest and
	 * says READY; GO hands the guest over; COMMIT says the peer has it. */
	if (send_expect(&rin, &rr, STREAM_READY) < 0)
		goto out;
	if (stream_write_go(&w) < 0) {
		send_write_failed(&w, &net);
		goto out;
	}
	if (send_expect(&rin, &rr, STREAM_COMMIT) < 0)
		goto out;
	printf("COMMIT: %s restored into %s (%llu records)\n", path, addr, (unsigned long long)w.records);
	rc = 0;
out:
	if (rin_open)
		fstream_input_close(&rin);
	fstream_input_close(&fin);
	close(s);
	close(ffd);
	return rc;
}
