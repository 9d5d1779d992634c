/* net_bench.c: `net bench listen|send|raw|stop`: TCP bulk transfer between
 * two ferry instances with the payload checksummed at both ends, and a raw
 * frame blast that measures the driver alone.
 *
 * The TCP bench runs as a state machine on lwIP's callbacks plus
 * net_bench_poll from the main loop, so the console stays usable during a
 * transfer. Wire format of one run (little endian):
 *   sender -> receiver: magic "FERRYBN1" (8), payload length (u64),
 *                       payload, Fletcher-64 checksum of the payload (u64)
 *   receiver -> sender: "FBOK" or "FBBD" (4), 4 zero bytes, its checksum (u64)
 * The payload is one ring of xorshift64 output sent over and over, in
 * place (lwIP reads it without a copy), the way iperf sends one buffer:
 * the sender does no per-byte work beyond TCP's own, and knows its
 * checksum before it starts. The ring is twice the send buffer, so
 * reordered, lost, corrupted or wrongly placed bytes change the
 * receiver's checksum. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "lwip/tcp.h"
#include "net.h"
#include "net_priv.h"
#include "pmm.h"
#include "x86.h"

#define BENCH_MIB_MAX 4096            /* largest transfer, MiB */
#define BENCH_WRITE_MIN (32 * 1024) /* bytes of send-buffer room worth a tcp_write (see tx_pump) */
/* The sender's payload ring: longer than all the stream lwIP holds (the
 * send buffer), so no two bytes in flight come from the same place. */
#define BENCH_RING_BYTES (2 * TCP_SND_BUF)
_Static_assert(BENCH_RING_BYTES % PAGE_SIZE == 0, "whole pages, so whole steps of ring_fill");
#define BENCH_RAW_MAX 1000000         /* frames per raw blast (blocks the console: ~10-30 s) */
static const char bench_magic[8] = { 'F', 'E', 'R', 'R', 'Y', 'B', 'N', '1' };

/* Unaligned words read in place: the kernel's compiler turns even an
 * 8-byte memcpy into a call to newlib's (see net/inet_sum.c). */
typedef uint64_t __attribute__((may_alias, aligned(1))) u64_una;

/* Fletcher-64 over little-endian 64-bit words, any split of the stream. */
struct bench_sum {
	uint64_t a, b;
	uint8_t part[8];
	unsigned npart;
};

static void sum_word(struct bench_sum *s, uint64_t w)
{
	s->a += w;
	s->b += s->a;
}

static void sum_update(struct bench_sum *s, const uint8_t *p, size_t n)
{
	while (s->npart && n) {
		s->part[s->npart++] = *p++;
		n--;
		if (s->npart == 8) {
			uint64_t w;
			memcpy(&w, s->part, 8);
			sum_word(s, w);
			s->npart = 0;
		}
	}
	uint64_t a = s->a, b = s->b;
	for (; n >= 32; p += 32, n -= 32) { /* four words per step (see ring_fill) */
		const u64_una *w = (const u64_una *)p;
		a += w[0];
		b += a;
		a += w[1];
		b += a;
		a += w[2];
		b += a;
		a += w[3];
		b += a;
	}
	for (; n >= 8; p += 8, n -= 8) {
		a += *(const u64_una *)p;
		b += a;
	}
	s->a = a;
	s->b = b;
	while (n--)
		s->part[s->npart++] = *p++;
}

static uint64_t sum_final(const struct bench_sum *s)
{
	uint64_t a = s->a, b = s->b;
	if (s->npart) {
		uint64_t w = 0;
		memcpy(&w, s->part, s->npart);
		a += w;
		b += a;
	}
	return b ^ (a * 0x9e3779b97f4a7c15ull);
}

enum rx_phase { RX_HDR, RX_DATA, RX_TRAILER, RX_DONE };

static struct {
	struct tcp_pcb *listen;
	uint16_t port;
	struct tcp_pcb *pcb;       /* the connection being received, or NULL */
	enum rx_phase phase;
	uint8_t hdr[16];
	unsigned hdr_got;
	uint64_t len, got;
	struct bench_sum sum;
	uint64_t t0;
} rx;

static struct {
	struct tcp_pcb *pcb;       /* the connection sending, or NULL */
	int connected;
	uint64_t len, queued;      /* payload bytes total, handed to tcp_write */
	unsigned hdr_queued, trailer_queued;
	uint8_t trailer[8];        /* the payload's checksum, known before the first byte goes */
	uint8_t verdict[16];
	unsigned verdict_got;
	uint64_t t0;
	char peer[24];
	uint64_t stop_room, stop_queue, stop_mem, pumps; /* why tx_pump stopped (diagnostics) */
} tx;

static uint8_t *bench_ring; /* BENCH_RING_BYTES, allocated by the first send, kept; refilled by each */

static double mbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes * 1e3 / (double)ns : 0.0; /* 10^6 bytes per second */
}

/* ---- receiver ---- */

/* Print why (if any) for `who`, detach every callback from *pcb and close
 * it (abort it when reset, or when closing fails); *pcb becomes NULL.
 * Returns ERR_ABRT when it aborted, which an lwIP callback of that pcb
 * must return. */
static err_t bench_close(struct tcp_pcb **pcb, const char *who, const char *why, int reset)
{
	err_t ret = ERR_OK;
	if (why)
		printf("\nbench %s: %s\n", who, why);
	if (*pcb) {
		tcp_arg(*pcb, NULL);
		tcp_recv(*pcb, NULL);
		tcp_sent(*pcb, NULL);
		tcp_err(*pcb, NULL);
		if (reset || tcp_close(*pcb) != ERR_OK) {
			tcp_abort(*pcb);
			ret = ERR_ABRT;
		}
		*pcb = NULL;
	}
	return ret;
}

static err_t rx_end(const char *why)
{
	return bench_close(&rx.pcb, "recv", why, 0);
}

/* Returns ERR_ABRT when it aborted the connection (see rx_end). */
static err_t rx_consume(const uint8_t *p, size_t n)
{
	while (n && rx.phase != RX_DONE) {
		if (rx.phase == RX_HDR || rx.phase == RX_TRAILER) {
			unsigned want = rx.phase == RX_HDR ? 16 : 8;
			size_t k = want - rx.hdr_got < n ? want - rx.hdr_got : n;
			memcpy(rx.hdr + rx.hdr_got, p, k);
			rx.hdr_got += (unsigned)k;
			p += k;
			n -= k;
			if (rx.hdr_got < want)
				return ERR_OK;
			rx.hdr_got = 0;
			if (rx.phase == RX_HDR) {
				if (memcmp(rx.hdr, bench_magic, 8) != 0) {
					rx.phase = RX_DONE;
					return rx_end("error: bad header magic; connection closed");
				}
				memcpy(&rx.len, rx.hdr + 8, 8);
				if (rx.len == 0 || rx.len > (uint64_t)BENCH_MIB_MAX << 20) {
					rx.phase = RX_DONE;
					return rx_end("error: bad payload length; connection closed");
				}
				rx.phase = RX_DATA;
				continue;
			}
			/* Trailer: compare, report, answer. */
			uint64_t theirs, ours = sum_final(&rx.sum);
			memcpy(&theirs, rx.hdr, 8);
			uint64_t ns = clock_ns() - rx.t0;
			printf("\nbench recv: %llu bytes in %.3f s, %.2f MB/s, checksum %s (0x%016llx)\n",
			       (unsigned long long)rx.got, (double)ns / 1e9, mbps(rx.got, ns),
			       theirs == ours ? "ok" : "MISMATCH", (unsigned long long)ours);
			uint8_t verdict[16] = { 'F', 'B', theirs == ours ? 'O' : 'B', theirs == ours ? 'K' : 'D' };
			memcpy(verdict + 8, &ours, 8);
			tcp_write(rx.pcb, verdict, sizeof(verdict), TCP_WRITE_FLAG_COPY);
			tcp_output(rx.pcb);
			rx.phase = RX_DONE;
			continue;
		}
		size_t k = rx.len - rx.got < n ? (size_t)(rx.len - rx.got) : n;
		sum_update(&rx.sum, p, k);
		rx.got += k;
		p += k;
		n -= k;
		if (rx.got == rx.len)
			rx.phase = RX_TRAILER;
	}
	return ERR_OK;
}

static err_t rx_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)err;
	if (!p) { /* the sender closed */
		if (rx.phase != RX_DONE)
			printf("\nbench recv: error: sender closed after %llu of %llu bytes\n",
			       (unsigned long long)rx.got, (unsigned long long)rx.len);
		return rx_end(NULL);
	}
	for (struct pbuf *q = p; q; q = q->next)
		if (rx_consume(q->payload, q->len) == ERR_ABRT) {
			pbuf_free(p); /* ours: lwIP does not free it after ERR_ABRT */
			return ERR_ABRT;
		}
	if (rx.pcb == pcb)
		tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void rx_err(void *arg, err_t err)
{
	(void)arg;
	rx.pcb = NULL; /* already freed by lwIP */
	if (rx.phase != RX_DONE)
		printf("\nbench recv: error: connection lost (%s) after %llu bytes\n", net_err_str(err),
		       (unsigned long long)rx.got);
}

static err_t rx_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	if (rx.pcb) {
		printf("\nbench recv: refusing a second connection while one runs\n");
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	memset(&rx.phase, 0, sizeof(rx) - offsetof(__typeof__(rx), phase));
	rx.pcb = pcb;
	rx.t0 = clock_ns();
	tcp_recv(pcb, rx_recv);
	tcp_err(pcb, rx_err);
	return ERR_OK;
}

/* ---- sender ---- */

static err_t tx_end(const char *why)
{
	/* Unacknowledged payload is sent from the ring, which the next send
	 * overwrites: a send that ends before the receiver's verdict (so
	 * before every byte was ACKed) is reset, not closed. */
	return bench_close(&tx.pcb, "send", why, tx.verdict_got < sizeof(tx.verdict));
}

/* Fill the ring with the xorshift64 stream from seed; *ring_sum gets
 * its checksum state from zero. */
static void ring_fill(uint64_t seed, struct bench_sum *ring_sum)
{
	uint64_t r = seed, a = 0, b = 0;
	uint64_t *w = (uint64_t *)bench_ring; /* page-aligned */
	/* Four words per step: under QEMU TCG the loop's own steps cost as
	 * much as its work. */
	for (size_t i = 0; i < BENCH_RING_BYTES / 8; i += 4) {
		for (int k = 0; k < 4; k++) {
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			w[i + k] = r;
			a += r;
			b += a;
		}
	}
	memset(ring_sum, 0, sizeof(*ring_sum));
	ring_sum->a = a;
	ring_sum->b = b;
}

/* The checksum of len bytes of the ring sent over and over. A whole pass
 * of n words after a stream whose state is (a, b) leaves (a + A, b + n*a
 * + B), where (A, B) is the ring's own state from zero; the last, partial
 * pass is summed directly. */
static uint64_t ring_stream_sum(const struct bench_sum *ring_sum, uint64_t len)
{
	struct bench_sum s;
	memset(&s, 0, sizeof(s));
	for (uint64_t pass = 0; pass < len / BENCH_RING_BYTES; pass++) {
		s.b += (uint64_t)(BENCH_RING_BYTES / 8) * s.a + ring_sum->b;
		s.a += ring_sum->a;
	}
	sum_update(&s, bench_ring, (size_t)(len % BENCH_RING_BYTES));
	return sum_final(&s);
}

/* Queue as much as the send buffer takes; returns non-zero if it did. */
static int tx_pump(void)
{
	struct tcp_pcb *pcb = tx.pcb;
	int did = 0;
	if (!pcb || !tx.connected)
		return 0;
	while (tx.hdr_queued < 16) {
		uint8_t hdr[16];
		memcpy(hdr, bench_magic, 8);
		memcpy(hdr + 8, &tx.len, 8);
		if (tcp_sndbuf(pcb) < 16 || tcp_write(pcb, hdr, 16, TCP_WRITE_FLAG_COPY | TCP_WRITE_FLAG_MORE) != ERR_OK)
			return 0;
		tx.hdr_queued = 16;
		did = 1;
	}
	while (tx.queued < tx.len) {
		u32_t room = tcp_sndbuf(pcb);
		/* What is left, up to the ring's end. */
		uint64_t left = tx.len - tx.queued;
		uint64_t to_end = BENCH_RING_BYTES - tx.queued % BENCH_RING_BYTES;
		unsigned n = (unsigned)(left < to_end ? left : to_end);
		unsigned want = n;
		if (room < n)
			n = room;
		if (n > 0xffff)
			n = 0xffff & ~7u; /* tcp_write takes a u16_t length */
		if (n < BENCH_WRITE_MIN && n < want) {
			tx.stop_room++;
			/* Wait for a useful amount of room: the send buffer is twice
			 * the window, so a MiB stays queued meanwhile, and one
			 * tcp_write of 32 KiB costs far less than 11 of 2.9 KiB
			 * (one per ACK). */
			break;
		}
		if (tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 4) {
			tx.stop_queue++;
			break;
		}
		/* No copy: lwIP sends from the ring (PBUF_ROM) until ACKed. */
		if (tcp_write(pcb, bench_ring + tx.queued % BENCH_RING_BYTES, (u16_t)n, TCP_WRITE_FLAG_MORE) != ERR_OK) {
			tx.stop_mem++;
			break;
		}
		tx.queued += n;
		did = 1;
	}
	if (tx.queued == tx.len && !tx.trailer_queued) {
		if (tcp_sndbuf(pcb) >= 8 && tcp_write(pcb, tx.trailer, 8, TCP_WRITE_FLAG_COPY) == ERR_OK) {
			tx.trailer_queued = 1;
			did = 1;
		}
	}
	if (did)
		tcp_output(pcb);
	return did;
}

static err_t tx_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)arg;
	(void)pcb;
	(void)len;
	tx_pump(); /* room again in the send buffer */
	return ERR_OK;
}

static err_t tx_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)err;
	if (!p) {
		return tx_end(tx.verdict_got < sizeof(tx.verdict) ? "error: receiver closed before its verdict" : NULL);
	}
	unsigned k = (unsigned)(p->tot_len < sizeof(tx.verdict) - tx.verdict_got ? p->tot_len
										  : sizeof(tx.verdict) - tx.verdict_got);
	pbuf_copy_partial(p, tx.verdict + tx.verdict_got, (u16_t)k, 0);
	tx.verdict_got += k;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	if (tx.verdict_got == sizeof(tx.verdict)) {
		uint64_t ns = clock_ns() - tx.t0, theirs;
		memcpy(&theirs, tx.verdict + 8, 8);
		int ok = memcmp(tx.verdict, "FBOK", 4) == 0;
		printf("\nbench send: %llu bytes to %s in %.3f s, %.2f MB/s, receiver checksum %s (0x%016llx)\n",
		       (unsigned long long)tx.len, tx.peer, (double)ns / 1e9, mbps(tx.len, ns),
		       ok ? "ok" : "MISMATCH", (unsigned long long)theirs);
		printf("bench send: tcp cwnd %u KiB, ssthresh %u KiB, peer window %u KiB; "
		       "writes stopped by room %llu, queue %llu, memory %llu\n",
		       (unsigned)(pcb->cwnd >> 10), (unsigned)(pcb->ssthresh >> 10), (unsigned)(pcb->snd_wnd >> 10),
		       (unsigned long long)tx.stop_room, (unsigned long long)tx.stop_queue,
		       (unsigned long long)tx.stop_mem);
		return tx_end(NULL);
	}
	return ERR_OK;
}

static void tx_err(void *arg, err_t err)
{
	(void)arg;
	tx.pcb = NULL;
	printf("\nbench send: error: connection to %s failed (%s) after %llu bytes queued\n", tx.peer,
	       net_err_str(err), (unsigned long long)tx.queued);
}

static err_t tx_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK)
		return err;
	tx.connected = 1;
	net_tcp_tso(pcb);
	tx.t0 = clock_ns();
	tx_pump();
	return ERR_OK;
}

/* ---- commands ---- */

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || v < 1 || v > 65535) {
		printf("error: bad port '%s' (1..65535)\n", s);
		return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

static int cmd_bench_listen(int argc, char **argv)
{
	uint16_t port;
	if (argc != 1) {
		printf("usage: net bench listen PORT\n");
		return 1;
	}
	if (parse_port(argv[0], &port) || net_require(1))
		return 1;
	if (rx.listen) {
		printf("error: already listening on port %u; 'net bench stop' first\n", rx.port);
		return 1;
	}
	struct tcp_pcb *pcb = tcp_new();
	if (!pcb) {
		printf("error: out of TCP pcbs\n");
		return 1;
	}
	err_t err = tcp_bind(pcb, IP_ANY_TYPE, port);
	if (err != ERR_OK) {
		printf("error: cannot bind port %u: %s\n", port, net_err_str(err));
		tcp_close(pcb);
		return 1;
	}
	rx.listen = tcp_listen(pcb);
	if (!rx.listen) {
		printf("error: out of memory for a listening pcb\n");
		tcp_close(pcb);
		return 1;
	}
	rx.port = port;
	tcp_accept(rx.listen, rx_accept);
	printf("bench: listening on port %u\n", port);
	return 0;
}

static int cmd_bench_send(int argc, char **argv)
{
	ip4_addr_t dst;
	uint16_t port;
	if (argc != 3) {
		printf("usage: net bench send ADDR PORT MIB\n");
		return 1;
	}
	if (net_parse_ip4(argv[0], &dst)) {
		printf("error: bad address '%s'\n", argv[0]);
		return 1;
	}
	if (parse_port(argv[1], &port))
		return 1;
	char *end;
	unsigned long mib = strtoul(argv[2], &end, 10);
	if (argv[2][0] < '0' || argv[2][0] > '9' || *end || mib < 1 || mib > BENCH_MIB_MAX) {
		printf("error: bad size '%s' (1..%d MiB)\n", argv[2], BENCH_MIB_MAX);
		return 1;
	}
	if (net_require(1))
		return 1;
	if (tx.pcb) {
		printf("error: a send is running; 'net bench stop' first\n");
		return 1;
	}
	if (!bench_ring && !(bench_ring = pmm_alloc(BENCH_RING_BYTES / PAGE_SIZE, 0))) {
		printf("error: out of memory for the send ring (%u KiB)\n", BENCH_RING_BYTES / 1024);
		return 1;
	}
	struct tcp_pcb *pcb = tcp_new();
	if (!pcb) {
		printf("error: out of TCP pcbs\n");
		return 1;
	}
	memset(&tx, 0, sizeof(tx));
	tx.pcb = pcb;
	tx.len = (uint64_t)mib << 20;
	struct bench_sum ring_sum;
	ring_fill(0x243f6a8885a308d3ull ^ clock_ns(), &ring_sum);
	uint64_t sum = ring_stream_sum(&ring_sum, tx.len);
	memcpy(tx.trailer, &sum, 8);
	tx.verdict_got = 0;
	snprintf(tx.peer, sizeof(tx.peer), "%s:%u", argv[0], port);
	tcp_nagle_disable(pcb);
	tcp_recv(pcb, tx_recv);
	tcp_sent(pcb, tx_sent);
	tcp_err(pcb, tx_err);
	ip_addr_t a;
	ip_addr_copy_from_ip4(a, dst);
	err_t err = tcp_connect(pcb, &a, port, tx_connected);
	if (err != ERR_OK) {
		/* tcp_abort calls the err callback: detach it, or tx_err reports
		 * the same failure a second time as "connection aborted". */
		tx.pcb = NULL;
		tcp_err(pcb, NULL);
		tcp_abort(pcb);
		printf("error: cannot connect to %s: %s\n", tx.peer, net_err_str(err));
		return 1;
	}
	printf("bench: sending %lu MiB to %s\n", mib, tx.peer);
	return 0;
}

static int cmd_bench_stop(int argc, char **argv)
{
	(void)argv;
	if (argc) {
		printf("usage: net bench stop\n");
		return 1;
	}
	int any = rx.listen || rx.pcb || tx.pcb;
	if (tx.pcb) {
		printf("bench send: stopped after %llu of %llu bytes queued\n", (unsigned long long)tx.queued,
		       (unsigned long long)tx.len);
		tx_end(NULL);
	}
	if (rx.pcb) {
		printf("bench recv: stopped after %llu of %llu bytes\n", (unsigned long long)rx.got,
		       (unsigned long long)rx.len);
		rx_end(NULL);
	}
	if (rx.listen) {
		tcp_close(rx.listen);
		rx.listen = NULL;
	}
	printf(any ? "bench: stopped\n" : "bench: nothing running\n");
	return 0;
}

/* Blast `count` frames of NIC_FRAME_MAX bytes to the broadcast address,
 * through the driver alone; the rate is the driver's and the device's. */
static int cmd_bench_raw(int argc, char **argv)
{
	if (argc != 1) {
		printf("usage: net bench raw COUNT\n");
		return 1;
	}
	char *end;
	unsigned long count = strtoul(argv[0], &end, 10);
	if (argv[0][0] < '0' || argv[0][0] > '9' || *end || count < 1 || count > BENCH_RAW_MAX) {
		printf("error: bad count '%s' (1..%d)\n", argv[0], BENCH_RAW_MAX);
		return 1;
	}
	if (net_require(0))
		return 1;
	struct nic *n = net.nic;
	uint64_t drops0 = n->tx_drop, t0 = clock_ns();
	unsigned long sent = 0;
	for (unsigned long i = 0; i < count; i++) {
		uint8_t *f = nic_tx_reserve_wait(n);
		if (!f)
			continue;
		memset(f, 0xff, 6);
		memcpy(f + 6, n->mac, 6);
		f[12] = NET_ETHTYPE_RAW_BENCH >> 8;
		f[13] = NET_ETHTYPE_RAW_BENCH & 0xff;
		memcpy(f + 14, &i, sizeof(i));
		/* Not "whatever the slot held": that is an earlier frame (TCP
		 * payload sent to one peer) or, on the e1000, never-cleared
		 * memory, and this frame goes to broadcast. */
		memset(f + 14 + sizeof(i), 0, NIC_FRAME_MAX - 14 - sizeof(i));
		n->ops->tx_commit(n->priv, NIC_FRAME_MAX);
		sent++;
	}
	n->ops->tx_flush(n->priv);
	uint64_t ns = clock_ns() - t0;
	printf("bench raw: %lu frames of %d bytes in %.3f s, %.0f frames/s, %.2f MB/s, dropped %llu\n", sent,
	       NIC_FRAME_MAX, (double)ns / 1e9, ns ? (double)sent * 1e9 / (double)ns : 0.0,
	       mbps((uint64_t)sent * NIC_FRAME_MAX, ns), (unsigned long long)(n->tx_drop - drops0));
	return 0;
}

void net_bench_info(void)
{
	if (rx.listen)
		printf("bench: listening on port %u%s\n", rx.port, rx.pcb ? ", receiving" : "");
	if (rx.pcb)
		printf("bench: received %llu of %llu bytes\n", (unsigned long long)rx.got, (unsigned long long)rx.len);
	if (tx.pcb)
		printf("bench: sending to %s, %llu of %llu bytes queued\n", tx.peer, (unsigned long long)tx.queued,
		       (unsigned long long)tx.len);
}

int net_bench_poll(void)
{
	return tx.pcb ? tx_pump() : 0;
}

static const struct console_cmd bench_cmds[] = {
	{ "net bench listen", "PORT", "receive TCP bench transfers on PORT (runs in the background)", cmd_bench_listen },
	{ "net bench send", "ADDR PORT MIB", "send MIB MiB over TCP to a listening ferry, checksummed", cmd_bench_send },
	{ "net bench raw", "COUNT", "send COUNT MTU-sized frames through the driver alone; print the rate", cmd_bench_raw },
	{ "net bench stop", "", "stop listening and any running transfer", cmd_bench_stop },
};

void net_bench_init(void)
{
	console_register(bench_cmds, sizeof(bench_cmds) / sizeof(bench_cmds[0]));
}
