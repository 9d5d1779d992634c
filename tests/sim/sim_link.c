/* sim_link.c: the transport (mig_tcp.h) between the simulator's two ends:
 * one pipe each way with a rate, a one-way latency, a window and losses.
 *
 * A pipe counts bytes by stream offset: sent (handed over by the engine),
 * transmitted (on the wire), arrived, consumed, acknowledged. The sender
 * holds at most a window unacknowledged; the wire carries nothing past a
 * window beyond what the receiver consumed (its receive window); a byte
 * arrives latency after it was transmitted, and is acknowledged latency
 * after it arrived. A loss stalls the wire for the retransmission timeout,
 * as TCP's recovery would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct sim_ev {
	uint64_t off, t;
};

struct sim_queue {
	struct sim_ev *ev;
	size_t cap, head, n;
};

struct sim_pipe {
	struct sim_link_cfg cfg;
	uint8_t *ring;
	uint64_t size;
	uint64_t sent, txd, arr, cons, ackd;
	struct sim_queue arrive, ack;
	double carry;
	uint64_t last_t, stall_until, next_loss;
};

static void q_push(struct sim_queue *q, uint64_t off, uint64_t t)
{
	if (q->n && q->ev[(q->head + q->n - 1) % q->cap].t == t) {
		q->ev[(q->head + q->n - 1) % q->cap].off = off; /* one event per time */
		return;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		struct sim_ev *ev = malloc(cap * sizeof(*ev));
		if (!ev)
			abort();
		for (size_t i = 0; i < q->n; i++)
			ev[i] = q->ev[(q->head + i) % q->cap];
		free(q->ev);
		q->ev = ev;
		q->cap = cap;
		q->head = 0;
	}
	q->ev[(q->head + q->n++) % q->cap] = (struct sim_ev){ off, t };
}

/* The offset of the last event due by now (or keep). */
static uint64_t q_pop_due(struct sim_queue *q, uint64_t now, uint64_t keep)
{
	while (q->n && q->ev[q->head].t <= now) {
		keep = q->ev[q->head].off;
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
	return keep;
}

struct sim_pipe *sim_pipe_new(const struct sim_link_cfg *cfg)
{
	struct sim_pipe *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cfg = *cfg;
	p->size = 2 * cfg->window;
	p->ring = malloc(p->size);
	if (!p->ring) {
		free(p);
		return NULL;
	}
	p->next_loss = cfg->loss_every;
	return p;
}

void sim_pipe_free(struct sim_pipe *p)
{
	if (!p)
		return;
	free(p->arrive.ev);
	free(p->ack.ev);
	free(p->ring);
	free(p);
}

void sim_pipe_step(struct sim_pipe *p, uint64_t now)
{
	uint64_t dt = now - p->last_t;
	p->last_t = now;
	uint64_t arr = q_pop_due(&p->arrive, now, p->arr);
	if (arr != p->arr) {
		p->arr = arr;
		q_push(&p->ack, arr, now + p->cfg.latency_ns);
	}
	p->ackd = q_pop_due(&p->ack, now, p->ackd);
	if (now < p->stall_until)
		return;
	double budget = (double)p->cfg.rate * (double)dt / 1e9 + p->carry;
	uint64_t want = p->sent - p->txd;
	uint64_t room = p->cfg.window - (p->txd - p->cons);
	uint64_t n = (uint64_t)budget;
	if (n > want || n > room) {
		n = want < room ? want : room;
		p->carry = 0; /* an idle wire saves nothing up */
	} else {
		p->carry = budget - (double)n;
	}
	if (!n)
		return;
	p->txd += n;
	q_push(&p->arrive, p->txd, now + p->cfg.latency_ns);
	if (p->cfg.loss_every && p->txd >= p->next_loss) {
		p->stall_until = now + p->cfg.rto_ns;
		p->next_loss = p->txd + p->cfg.loss_every;
	}
}

uint64_t sim_pipe_in_flight(const struct sim_pipe *p)
{
	return p->sent - p->cons;
}

void sim_pipe_set_rate(struct sim_pipe *p, uint64_t rate)
{
	p->cfg.rate = rate;
	p->carry = 0;
}

uint64_t sim_pipe_moved(const struct sim_pipe *p)
{
	return p->arr;
}

/* ---- mig_tcp.h, for the end being polled ---- */

static struct sim_end *me(void)
{
	return &sim_current->end[sim_current->cur];
}

static struct sim_end *peer(void)
{
	return &sim_current->end[1 - sim_current->cur];
}

static struct sim_pipe *out(void)
{
	return sim_current->pipe[sim_current->cur];
}

static struct sim_pipe *in(void)
{
	return sim_current->pipe[1 - sim_current->cur];
}

uint32_t mig_tcp_local_ip(void)
{
	return sim_current->cur == 0 ? 0x0100000a : 0x0200000a; /* 10.0.0.1, 10.0.0.2 */
}

int mig_tcp_listen(uint32_t ip, uint16_t port)
{
	(void)ip;
	if (me()->tcp != MIG_TCP_IDLE && me()->tcp != MIG_TCP_FAILED) {
		printf("error: busy: a migration connection is open\n");
		return -1;
	}
	sim_current->listening = true;
	sim_current->listen_port = port;
	me()->tcp = MIG_TCP_LISTENING;
	me()->closed = false;
	return 0;
}

int mig_tcp_connect(uint32_t ip, uint16_t port)
{
	(void)ip;
	struct sim *s = sim_current;
	me()->tcp = MIG_TCP_CONNECTING;
	me()->closed = false;
	me()->why[0] = 0;
	s->connect_at = me()->now + 2 * s->cfg.link.latency_ns + 1;
	s->connect_port = port;
	return 0;
}

void sim_link_connect_step(struct sim *s)
{
	if (!s->connect_at || s->now < s->connect_at)
		return;
	s->connect_at = 0;
	struct sim_end *src = &s->end[0], *dst = &s->end[1];
	if (src->tcp != MIG_TCP_CONNECTING)
		return;
	if (!s->listening || s->listen_port != s->connect_port || dst->tcp != MIG_TCP_LISTENING) {
		src->tcp = MIG_TCP_FAILED;
		snprintf(src->why, sizeof(src->why), "connection refused");
		return;
	}
	s->listening = false;
	src->tcp = dst->tcp = MIG_TCP_OPEN;
}

enum mig_tcp_state mig_tcp_state(void)
{
	return me()->tcp;
}

const char *mig_tcp_why(void)
{
	return me()->why;
}

const char *mig_tcp_peer(void)
{
	return sim_current->cur == 0 ? "10.0.0.2:4444" : "10.0.0.1:50000";
}

size_t mig_tcp_send(const void *buf, size_t len)
{
	struct sim_pipe *p = out();
	if (me()->tcp != MIG_TCP_OPEN)
		return 0;
	uint64_t room = p->cfg.window - (p->sent - p->ackd);
	size_t n = len < room ? len : (size_t)room;
	for (size_t done = 0; done < n;) {
		uint64_t at = (p->sent + done) % p->size;
		size_t k = n - done < p->size - at ? n - done : (size_t)(p->size - at);
		memcpy(p->ring + at, (const uint8_t *)buf + done, k);
		done += k;
	}
	p->sent += n;
	return n;
}

void mig_tcp_flush(void)
{
}

size_t mig_tcp_unacked(void)
{
	return (size_t)(out()->sent - out()->ackd);
}

size_t mig_tcp_unsent(void)
{
	return (size_t)(out()->sent - out()->txd);
}

uint64_t mig_tcp_acked(void)
{
	return out()->ackd;
}

size_t mig_tcp_peek(const uint8_t **pp)
{
	struct sim_pipe *p = in();
	if (me()->tcp != MIG_TCP_OPEN && me()->tcp != MIG_TCP_FAILED)
		return 0;
	uint64_t avail = p->arr - p->cons;
	uint64_t at = p->cons % p->size;
	if (avail > p->size - at)
		avail = p->size - at;
	*pp = p->ring + at;
	return (size_t)avail;
}

void mig_tcp_consume(size_t n)
{
	struct sim_pipe *p = in();
	if (n > p->arr - p->cons)
		n = (size_t)(p->arr - p->cons);
	p->cons += n;
}

int mig_tcp_peer_closed(void)
{
	return peer()->closed && in()->arr == in()->sent;
}

void mig_tcp_close(void)
{
	struct sim_end *e = me();
	if (e->tcp == MIG_TCP_LISTENING)
		sim_current->listening = false;
	if (e->tcp == MIG_TCP_OPEN || e->tcp == MIG_TCP_FAILED)
		e->closed = true; /* what it sent still goes */
	e->tcp = MIG_TCP_IDLE;
	in()->cons = in()->arr;
}

void mig_tcp_abort(void)
{
	struct sim_end *e = me(), *o = peer();
	if (e->tcp == MIG_TCP_LISTENING)
		sim_current->listening = false;
	/* The reset reaches the peer unless the link carries nothing. */
	if (e->tcp == MIG_TCP_OPEN && o->tcp == MIG_TCP_OPEN && out()->cfg.rate) {
		o->tcp = MIG_TCP_FAILED;
		snprintf(o->why, sizeof(o->why), "connection reset by peer");
	}
	e->tcp = MIG_TCP_IDLE;
	struct sim_pipe *p = out();
	p->sent = p->txd; /* nothing more goes */
	in()->cons = in()->arr;
}

void sim_pipe_drop(struct sim_pipe *p)
{
	p->cons = p->arr;
}
