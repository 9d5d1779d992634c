/* mig_tcp.c: the migration transport over lwIP's raw TCP API (mig_tcp.h).
 * lwIP's callbacks only record what happened; the migration engine reads
 * and writes from the main loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/ip4_addr.h"
#include "lwip/tcp.h"
#include "mig_tcp.h"
#include "net_priv.h"
#include "pmm.h"

#define MIG_TCP_WRITE_MAX 0xfff8u /* bytes per tcp_write (a u16_t length) */
/* Receive ring, bytes: more than the receive window (TCP_WND), so what
 * the peer may send always fits; the window reopens only as the engine
 * consumes. */
#define MIG_TCP_RX_BYTES (2u << 20)
_Static_assert(MIG_TCP_RX_BYTES > TCP_WND, "the receive ring holds a full window");

static struct {
	enum mig_tcp_state state;
	struct tcp_pcb *listen;
	struct tcp_pcb *pcb;
	uint8_t *rx;          /* ring of MIG_TCP_RX_BYTES (pmm pages, kept for life) */
	size_t rx_head, rx_len; /* first unconsumed byte, bytes held */
	uint64_t rx_refused;  /* deliveries that did not fit yet (never, if the peer keeps to the window) */
	int peer_closed;
	uint64_t acked;
	size_t unacked;
	char peer[24];
	char why[96];
} mt;

static void set_peer(const ip_addr_t *ip, uint16_t port)
{
	snprintf(mt.peer, sizeof(mt.peer), "%s:%u", ip4addr_ntoa(ip_2_ip4(ip)), port);
}

int mig_tcp_parse_uri(const char *uri, int listen, uint32_t *ip, uint16_t *port)
{
	char addr[24];
	const char *a, *colon;
	if (strncmp(uri, "tcp:", 4) != 0) {
		printf("error: bad URI '%s': only tcp:ADDR:PORT is supported\n", uri);
		return -1;
	}
	a = uri + 4;
	colon = strrchr(a, ':');
	if (!colon || colon == a || (size_t)(colon - a) >= sizeof(addr)) {
		printf("error: bad URI '%s': expected tcp:ADDR:PORT\n", uri);
		return -1;
	}
	memcpy(addr, a, (size_t)(colon - a));
	addr[colon - a] = 0;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535) {
		printf("error: bad port '%s' in '%s' (1..65535)\n", colon + 1, uri);
		return -1;
	}
	ip4_addr_t ia;
	if (strcmp(addr, "0") == 0) {
		ip4_addr_set_zero(&ia);
	} else if (net_parse_ip4(addr, &ia)) {
		printf("error: bad address '%s' in '%s'\n", addr, uri);
		return -1;
	}
	if (!listen && (ip4_addr_isany_val(ia) || ip4_addr_isbroadcast_u32(ia.addr, &net.netif) ||
			ip4_addr_ismulticast(&ia))) {
		printf("error: cannot migrate to '%s': not a host address\n", addr);
		return -1;
	}
	*ip = ia.addr;
	*port = (uint16_t)p;
	return 0;
}

int mig_tcp_require(int need_addr)
{
	return net_require(need_addr);
}

uint32_t mig_tcp_local_ip(void)
{
	return net.nic && net.configured ? ip4_addr_get_u32(netif_ip4_addr(&net.netif)) : 0;
}

/* ---- lwIP callbacks: record, never block ---- */

static void detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)pcb;
	(void)err;
	if (!p) {
		mt.peer_closed = 1;
		return ERR_OK;
	}
	/* Copy into the ring and free the pbuf at once (pbufs are the
	 * driver's receive pool); the window reopens at consume time. */
	size_t n = p->tot_len, off = 0;
	if (n > MIG_TCP_RX_BYTES - mt.rx_len) {
		/* Cannot happen while the peer keeps to the window (the ring is
		 * larger); if it does, lwIP keeps the data and offers it again
		 * (refused data) rather than lose stream bytes. */
		mt.rx_refused++;
		return ERR_MEM;
	}
	while (off < n) {
		size_t tail = (mt.rx_head + mt.rx_len) % MIG_TCP_RX_BYTES;
		size_t k = MIG_TCP_RX_BYTES - tail < n - off ? MIG_TCP_RX_BYTES - tail : n - off;
		pbuf_copy_partial(p, mt.rx + tail, (u16_t)k, (u16_t)off);
		mt.rx_len += k;
		off += k;
	}
	pbuf_free(p);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)arg;
	(void)pcb;
	mt.acked += len;
	mt.unacked = mt.unacked > len ? mt.unacked - len : 0;
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	(void)arg;
	mt.pcb = NULL; /* lwIP has freed it */
	mt.state = MIG_TCP_FAILED;
	snprintf(mt.why, sizeof(mt.why), "connection %s (%s)",
		 err == ERR_RST ? "reset by the peer" : err == ERR_ABRT ? "aborted" : "lost", net_err_str(err));
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK)
		return err;
	net_tcp_tso(pcb); /* the connecting side is the migration's source */
	mt.state = MIG_TCP_OPEN;
	return ERR_OK;
}

static void attach(struct tcp_pcb *pcb)
{
	tcp_nagle_disable(pcb);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	if (mt.pcb || mt.state != MIG_TCP_LISTENING) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	mt.pcb = pcb;
	set_peer(&pcb->remote_ip, pcb->remote_port);
	attach(pcb);
	mt.state = MIG_TCP_OPEN;
	/* One source per `migrate_incoming`: stop listening. */
	tcp_close(mt.listen);
	mt.listen = NULL;
	return ERR_OK;
}

/* ---- opening ---- */

/* Forget the connection; keep the receive ring. Returns -1 when there is
 * no ring and none can be had. */
static int reset_state(void)
{
	uint8_t *rx = mt.rx;
	memset(&mt, 0, sizeof(mt));
	mt.rx = rx ? rx : pmm_alloc(MIG_TCP_RX_BYTES / 4096, 0);
	return mt.rx ? 0 : -1;
}

/* A fresh pcb for a new connection to or from ip:port (set in *a, and as
 * the peer `info migrate` names), when the transport is free. Returns NULL
 * after printing why. */
static struct tcp_pcb *open_pcb(uint32_t ip, uint16_t port, ip_addr_t *a)
{
	if (mt.state != MIG_TCP_IDLE && mt.state != MIG_TCP_FAILED) {
		printf("error: the migration transport is busy\n");
		return NULL;
	}
	if (reset_state() < 0) {
		printf("error: out of memory for the receive buffer\n");
		return NULL;
	}
	ip_addr_set_ip4_u32_val(*a, ip);
	set_peer(a, port);
	struct tcp_pcb *pcb = tcp_new();
	if (!pcb)
		printf("error: out of TCP pcbs\n");
	return pcb;
}

int mig_tcp_listen(uint32_t ip, uint16_t port)
{
	ip_addr_t a;
	struct tcp_pcb *pcb = open_pcb(ip, port, &a);
	if (!pcb)
		return -1;
	/* The last migration's connection may still be in TIME_WAIT on
	 * this port: listening again is what the operator asked. */
	ip_set_option(pcb, SOF_REUSEADDR);
	err_t err = tcp_bind(pcb, &a, port);
	if (err != ERR_OK) {
		printf("error: cannot listen on port %u: %s\n", port, net_err_str(err));
		tcp_close(pcb);
		return -1;
	}
	mt.listen = tcp_listen(pcb);
	if (!mt.listen) {
		printf("error: out of memory for a listening pcb\n");
		tcp_close(pcb);
		return -1;
	}
	tcp_accept(mt.listen, on_accept);
	mt.state = MIG_TCP_LISTENING;
	return 0;
}

int mig_tcp_connect(uint32_t ip, uint16_t port)
{
	ip_addr_t a;
	struct tcp_pcb *pcb = open_pcb(ip, port, &a);
	if (!pcb)
		return -1;
	attach(pcb);
	mt.pcb = pcb;
	mt.state = MIG_TCP_CONNECTING;
	err_t err = tcp_connect(pcb, &a, port, on_connected);
	if (err != ERR_OK) {
		/* tcp_abort calls the err callback: detach first. */
		detach(pcb);
		tcp_abort(pcb);
		printf("error: cannot connect to %s: %s\n", mt.peer, net_err_str(err)); /* before the reset clears it */
		reset_state();
		return -1;
	}
	return 0;
}

enum mig_tcp_state mig_tcp_state(void)
{
	return mt.state;
}

const char *mig_tcp_why(void)
{
	return mt.why;
}

const char *mig_tcp_peer(void)
{
	return mt.peer;
}

/* ---- moving bytes ---- */

size_t mig_tcp_send(const void *buf, size_t len)
{
	size_t done = 0;
	if (mt.state != MIG_TCP_OPEN || !mt.pcb)
		return 0;
	while (done < len) {
		size_t room = tcp_sndbuf(mt.pcb), n = len - done;
		if (n > room)
			n = room;
		if (n > MIG_TCP_WRITE_MAX)
			n = MIG_TCP_WRITE_MAX;
		if (n == 0 || tcp_sndqueuelen(mt.pcb) >= TCP_SND_QUEUELEN - 4)
			break;
		if (tcp_write(mt.pcb, (const uint8_t *)buf + done, (u16_t)n,
			      TCP_WRITE_FLAG_COPY | TCP_WRITE_FLAG_MORE) != ERR_OK)
			break; /* out of memory for segments: try again later */
		done += n;
	}
	mt.unacked += done;
	return done;
}

void mig_tcp_flush(void)
{
	if (mt.state == MIG_TCP_OPEN && mt.pcb)
		tcp_output(mt.pcb);
}

size_t mig_tcp_unacked(void)
{
	return mt.unacked;
}

size_t mig_tcp_unsent(void)
{
	if (mt.state != MIG_TCP_OPEN || !mt.pcb)
		return 0;
	return (size_t)(u32_t)(mt.pcb->snd_lbb - mt.pcb->snd_nxt);
}

uint64_t mig_tcp_acked(void)
{
	return mt.acked;
}

size_t mig_tcp_peek(const uint8_t **p)
{
	if (!mt.rx_len)
		return 0;
	*p = mt.rx + mt.rx_head;
	return MIG_TCP_RX_BYTES - mt.rx_head < mt.rx_len ? MIG_TCP_RX_BYTES - mt.rx_head : mt.rx_len;
}

void mig_tcp_consume(size_t n)
{
	if (n > mt.rx_len)
		n = mt.rx_len;
	mt.rx_head = (mt.rx_head + n) % MIG_TCP_RX_BYTES;
	mt.rx_len -= n;
	if (mt.pcb) {
		/* tcp_recved takes a u16_t: reopen the window in pieces. */
		while (n) {
			u16_t k = n > 0xffff ? 0xffff : (u16_t)n;
			tcp_recved(mt.pcb, k);
			n -= k;
		}
	}
}

int mig_tcp_peer_closed(void)
{
	return mt.peer_closed;
}

void mig_tcp_close(void)
{
	if (mt.listen)
		tcp_close(mt.listen);
	if (mt.pcb) {
		detach(mt.pcb);
		if (tcp_close(mt.pcb) != ERR_OK)
			tcp_abort(mt.pcb);
	}
	reset_state();
}

void mig_tcp_abort(void)
{
	if (mt.listen)
		tcp_close(mt.listen);
	if (mt.pcb) {
		detach(mt.pcb);
		tcp_abort(mt.pcb);
	}
	reset_state();
}
