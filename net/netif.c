/* netif.c: the glue between the NIC driver and lwIP: one Ethernet netif,
 * the receive path (driver frame -> pbuf -> netif->input), the transmit
 * path (pbuf -> driver ring), link state, and net_poll for the main loop. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/tcp.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lro.h"
#include "net.h"
#include "net_priv.h"
#include "netif/ethernet.h"
#include "nic.h"
#include "pci.h"

#define NET_RX_BUDGET 64          /* frames taken per poll before lwIP's timers run */
#define NET_LINK_POLL_NS 100000000 /* link state checked every 100 ms */
/* Bytes of a TCP packet the NIC segments, at most: under 64 KiB with room
 * for lwIP's headroom in a pbuf's u16_t length. */
#define NET_TSO_MAX 0xff00u

struct net_state net;

static uint64_t next_link_poll;

/* Hand one frame of len bytes to lwIP in a pool pbuf. */
static void rx_deliver(const uint8_t *f, size_t len)
{
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
	if (!p) {
		net.rx_no_pbuf++;
		return;
	}
	pbuf_take(p, f, (u16_t)len);
	if (net.netif.input(p, &net.netif) != ERR_OK)
		pbuf_free(p);
}

/* Receive coalescing (net/lro.h): the merge in progress and its packet,
 * the first frame whole and then each later payload, chained. */
static struct lro_agg lro;
static struct pbuf *lro_pkt;

/* Hand the merge in progress, if any, to lwIP. */
static void lro_flush(void)
{
	if (!lro_pkt)
		return;
	struct pbuf *p = lro_pkt;
	lro_pkt = NULL;
	if (lro.nsegs > 1) {
		lro_finish(&lro);
		memcpy(p->payload, lro.hdr, LRO_HDR_LEN); /* the first pbuf holds the whole first frame */
		net.rx_lro_merges++;
		net.rx_lro_segs += lro.nsegs;
	}
	lro.nsegs = 0;
	if (net.netif.input(p, &net.netif) != ERR_OK)
		pbuf_free(p);
}

/* Start or extend a merge with a frame lro_parse accepted. */
static void lro_take(const uint8_t *f, const struct lro_seg *s)
{
	if (lro_pkt && lro_can_add(&lro, f, s)) {
		struct pbuf *q = pbuf_alloc(PBUF_RAW, s->plen, PBUF_POOL);
		if (!q) {
			net.rx_no_pbuf++; /* TCP retransmits it */
			lro_flush();
			return;
		}
		pbuf_take(q, f + LRO_HDR_LEN, s->plen);
		pbuf_cat(lro_pkt, q);
		lro_add(&lro, f, s);
		return;
	}
	lro_flush();
	struct pbuf *p = pbuf_alloc(PBUF_RAW, s->frame_len, PBUF_POOL);
	if (!p) {
		net.rx_no_pbuf++;
		return;
	}
	pbuf_take(p, f, s->frame_len);
	lro_start(&lro, f, s);
	lro_pkt = p;
}

static void rx_frame(void *arg, const uint8_t *f, size_t len)
{
	(void)arg;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == NET_ETHTYPE_RAW_BENCH) {
		net.rx_raw_bench++;
		return;
	}
	if (type != ETHTYPE_IP && type != ETHTYPE_ARP) {
		net.rx_unknown_type++;
		return;
	}
	/* lwIP 2.1.3's etharp_input reads a whole ARP header without checking
	 * the length: refuse short ones here. */
	if (type == ETHTYPE_ARP && len < SIZEOF_ETH_HDR + SIZEOF_ETHARP_HDR) {
		net.rx_short_arp++;
		return;
	}
	struct lro_seg s;
	if (type == ETHTYPE_IP && lro_parse(f, len, &s) == 0) {
		lro_take(f, &s);
		return;
	}
	lro_flush(); /* lwIP sees frames in arrival order */
	rx_deliver(f, len);
}

/* Can the device read p in place? Its pieces no more than max (empty
 * ones skipped) and none "volatile" (PBUF_REF: bytes that may change once the
 * send returns): lwIP's own buffers stay until the last pbuf_free, and
 * data an application wrote without copying (PBUF_ROM) stays until ACKed,
 * so after the device read it. With the driver's header room free in
 * front: lwIP leaves it (PBUF_LINK_ENCAPSULATION_HLEN) before every frame
 * it builds; a received pbuf it answers in place has none and is copied.
 * Fills f and returns 1, or returns 0. */
static int in_place(struct pbuf *p, unsigned headroom, unsigned max, struct nic_frame *f)
{
	if (pbuf_add_header(p, headroom))
		return 0;
	pbuf_remove_header(p, headroom);
	f->n = 0;
	f->len = p->tot_len;
	for (struct pbuf *q = p; q; q = q->next) {
		if ((q->type_internal & PBUF_TYPE_FLAG_DATA_VOLATILE) || (q->len && f->n == max))
			return 0;
		if (q->len) {
			f->piece[f->n].data = q->payload;
			f->piece[f->n].len = q->len;
			f->n++;
		}
	}
	return f->n > 0 && f->piece[0].data == p->payload;
}

/* The driver is done with a frame linkoutput sent in place. */
void nic_tx_done(void *cookie)
{
	pbuf_free(cookie);
}

/* LWIP_HOOK_IP4_SEG_OFFLOAD (net/lwipopts.h): may IPv4 packet p, of
 * protocol proto, go to the NIC whole though it exceeds the MTU? Every TCP
 * packet that fits the driver's limit does when the driver segments:
 * tso_output takes any such packet, and lwIP's IP fragments of a 64 KiB
 * segment (44 of them) would exceed what a receiver reassembles. */
/* Bytes of a packet the NIC segments at most (0: it does not). */
static size_t tso_limit(void)
{
	const struct nic_ops *ops = net.nic ? net.nic->ops : NULL;
	if (!ops || !ops->tx_submit_tso)
		return 0;
	return ops->tso_max < NET_TSO_MAX ? ops->tso_max : NET_TSO_MAX;
}

int net_ip4_seg_offload(const struct netif *nif, const struct pbuf *p, u8_t proto)
{
	(void)nif;
	return proto == IP_PROTO_TCP && (size_t)p->tot_len + SIZEOF_ETH_HDR <= tso_limit();
}

/* Hand a TCP/IPv4 packet longer than a frame (net_ip4_seg_offload let it
 * through, and ethernet_output put its header in front) to the driver to
 * segment: in place, holding a reference until nic_tx_done, or else from
 * one contiguous copy. */
static err_t tso_output(struct pbuf *p)
{
	struct nic_tso t;
	uint8_t f[SIZEOF_ETH_HDR + 60 + 13];
	if (pbuf_copy_partial(p, f, sizeof(f), 0) != sizeof(f) || f[12] != 0x08 || f[13] != 0x00 ||
	    (f[SIZEOF_ETH_HDR] >> 4) != 4 || (f[SIZEOF_ETH_HDR] & 0xfu) < 5) {
		net.tx_too_long++;
		return ERR_IF;
	}
	t.tcp_off = SIZEOF_ETH_HDR + (f[SIZEOF_ETH_HDR] & 0xfu) * 4u;
	t.hdr_len = t.tcp_off + (f[t.tcp_off + 12] >> 4) * 4u;
	if (t.hdr_len < t.tcp_off + TCP_HLEN || t.hdr_len >= p->tot_len) {
		net.tx_too_long++;
		return ERR_IF;
	}
	/* Frames as large as the link takes: no more than the pcb's own MSS
	 * (net_tcp_tso enables this only when that is the link's). */
	t.mss = NIC_FRAME_MAX - t.hdr_len;
	struct nic_frame fr;
	struct pbuf *hold = p;
	if (in_place(p, 0, NIC_PIECES, &fr) && fr.piece[0].len >= t.hdr_len) {
		pbuf_ref(p);
	} else {
		/* The headers split, or borrowed or scattered bytes: one copy. */
		hold = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
		if (!hold) {
			net.tx_no_mem++;
			return ERR_MEM; /* TCP retransmits it */
		}
		net.tx_tso_copied++;
		fr.n = 1;
		fr.len = fr.piece[0].len = hold->len;
		fr.piece[0].data = hold->payload;
	}
	if (nic_tx_submit_wait(net.nic, &fr, &t, hold) == 0)
		return ERR_OK;
	pbuf_free(hold);
	return ERR_IF; /* ring stayed full, or the driver refused it (counted) */
}

void net_tcp_tso(struct tcp_pcb *pcb)
{
	u16_t wire = (u16_t)(net.netif.mtu - IP_HLEN - TCP_HLEN);
	size_t max = tso_limit();
	if (pcb->mss != wire || max < SIZEOF_ETH_HDR + IP_HLEN + TCP_HLEN + 2u * wire)
		return;
	size_t per = (max - SIZEOF_ETH_HDR - IP_HLEN - TCP_HLEN) / wire;
	pcb->mss = (u16_t)(per * wire);
	/* lwIP sends nothing while its window is below the next segment's
	 * length: a first window of two packets (lwIP's initial window for
	 * this MSS would be that too, were it computed now). */
	if (pcb->cwnd < 2u * pcb->mss)
		pcb->cwnd = 2u * pcb->mss;
}

/* Send p: in place where the driver can (TCP segments, ARP), holding a
 * reference until nic_tx_done (lwIP neither changes nor retransmits a
 * segment while a driver holds one), else copied into a driver buffer. */
static err_t linkoutput(struct netif *nif, struct pbuf *p)
{
	(void)nif;
	const struct nic_ops *ops = net.nic->ops;
	if (p->tot_len > NIC_FRAME_MAX && ops->tx_submit_tso)
		return tso_output(p);
	if (p->tot_len > NIC_FRAME_MAX || p->tot_len < NIC_FRAME_MIN) {
		net.tx_too_long++;
		return ERR_IF;
	}
	struct nic_frame f;
	if (ops->tx_submit && in_place(p, ops->tx_headroom, ops->tx_pieces(net.nic->priv), &f)) {
		pbuf_ref(p);
		if (nic_tx_submit_wait(net.nic, &f, NULL, p) == 0)
			return ERR_OK;
		pbuf_free(p);
		return ERR_IF; /* ring stayed full; counted; TCP retransmits */
	}
	uint8_t *buf = nic_tx_reserve_wait(net.nic);
	if (!buf)
		return ERR_IF;
	pbuf_copy_partial(p, buf, p->tot_len, 0);
	ops->tx_commit(net.nic->priv, p->tot_len);
	return ERR_OK;
}

static err_t netif_setup(struct netif *nif)
{
	nif->name[0] = 'e';
	nif->name[1] = 'n';
	nif->mtu = NIC_FRAME_MAX - SIZEOF_ETH_HDR;
	nif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(nif->hwaddr, net.nic->mac, ETH_HWADDR_LEN);
	nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	nif->output = etharp_output;
	nif->linkoutput = linkoutput;
	return ERR_OK;
}

void net_netif_configure(const ip4_addr_t *ip, const ip4_addr_t *mask, const ip4_addr_t *gw)
{
	netif_set_addr(&net.netif, ip, mask, gw);
	netif_set_up(&net.netif);
	net.configured = 1;
}

static void link_poll(void)
{
	int up = net.nic->ops->link_up(net.nic->priv);
	if (up && !netif_is_link_up(&net.netif))
		netif_set_link_up(&net.netif);
	else if (!up && netif_is_link_up(&net.netif))
		netif_set_link_down(&net.netif);
}

void net_init(void)
{
	net_cmds_init();
	net_ping_init();
	net_bench_init();
	net.nic = nic_probe();
	if (!net.nic)
		return;
	lwip_init();
	ip4_addr_t zero;
	ip4_addr_set_zero(&zero);
	if (!netif_add(&net.netif, &zero, &zero, &zero, NULL, netif_setup, ethernet_input)) {
		printf("net: lwIP refused the interface\n");
		net.nic = NULL;
		return;
	}
	netif_set_default(&net.netif);
	link_poll();
	const uint8_t *m = net.nic->mac;
	printf("net: %s at %02x:%02x.%x, MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s\n",
	       net.nic->ops->name, net.nic->pci->bus, net.nic->pci->dev, net.nic->pci->fn, m[0], m[1],
	       m[2], m[3], m[4], m[5], netif_is_link_up(&net.netif) ? "up" : "down");
}

int net_wake_arm(void)
{
	return net.nic ? nic_wake_arm(net.nic) : 0;
}

void net_wake_disarm(void)
{
	if (net.nic)
		nic_wake_disarm(net.nic);
}

int net_poll(void)
{
	if (!net.nic)
		return 0;
	const struct nic_ops *ops = net.nic->ops;
	int work = ops->rx_poll(net.nic->priv, rx_frame, NULL, NET_RX_BUDGET);
	lro_flush(); /* a merge never outlives its receive batch */
	sys_check_timeouts();
	work |= net_bench_poll();
	ops->tx_flush(net.nic->priv);
	uint64_t now = clock_ns();
	if (now >= next_link_poll) {
		next_link_poll = now + NET_LINK_POLL_NS;
		link_poll();
	}
	return work != 0;
}
