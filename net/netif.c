/* netif.c: the glue between the NIC driver and lwIP: one Ethernet netif,
 * the receive path (driver frame -> pbuf -> netif->input), the transmit
 * path (pbuf -> driver ring), link state, and net_poll for the main loop. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "lro.h"
#include "net.h"
#include "net_priv.h"
#include "netif/ethernet.h"
#include "nic.h"
#include "pci.h"

#define NET_RX_BUDGET 64          /* frames taken per poll before lwIP's timers run */
#define NET_LINK_POLL_NS 100000000 /* link state checked every 100 ms */

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

/* Can the device read p in place? One pbuf whose data lives in its own
 * allocation (heap or pool: it stays until the last pbuf_free, unlike a
 * PBUF_REF/ROM's borrowed bytes), with the driver's header room free in
 * front. lwIP leaves that room (PBUF_LINK_ENCAPSULATION_HLEN) before every
 * frame it builds; a received pbuf it answers in place has none and is
 * copied. */
static uint8_t *in_place(struct pbuf *p, unsigned headroom)
{
	if (p->next || !(p->type_internal & PBUF_TYPE_FLAG_STRUCT_DATA_CONTIGUOUS) ||
	    pbuf_add_header(p, headroom))
		return NULL;
	pbuf_remove_header(p, headroom);
	return p->payload;
}

/* The driver is done with a frame linkoutput sent in place. */
void nic_tx_done(void *cookie)
{
	pbuf_free(cookie);
}

/* Send p: in place where the driver can (TCP segments, ARP), holding a
 * reference until nic_tx_done (lwIP neither changes nor retransmits a
 * segment while a driver holds one), else copied into a driver buffer. */
static err_t linkoutput(struct netif *nif, struct pbuf *p)
{
	(void)nif;
	const struct nic_ops *ops = net.nic->ops;
	if (p->tot_len > NIC_FRAME_MAX || p->tot_len < NIC_FRAME_MIN) {
		net.tx_too_long++;
		return ERR_IF;
	}
	uint8_t *frame = ops->tx_submit ? in_place(p, ops->tx_headroom) : NULL;
	if (frame) {
		pbuf_ref(p);
		if (nic_tx_submit_wait(net.nic, frame, p->tot_len, p) == 0)
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
