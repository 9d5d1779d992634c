/* net_priv.h: state shared by the files of net/ (netif glue, commands,
 * ping, bench). Not for use outside net/. */
#ifndef FERRY_NET_PRIV_H
#define FERRY_NET_PRIV_H

#include <stdint.h>

#include "lwip/err.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "nic.h"

#define NET_ETHTYPE_RAW_BENCH 0x88b5 /* IEEE local experimental: `net bench raw` frames */

struct net_state {
	struct nic *nic;           /* NULL: no supported NIC */
	struct netif netif;
	int configured;            /* an address was set with `net config` */
	uint64_t rx_unknown_type;  /* frames whose ethertype is neither IPv4 nor ARP */
	uint64_t rx_short_arp;     /* ARP frames too short for an ARP header */
	uint64_t rx_no_pbuf;       /* frames dropped: pbuf pool empty */
	uint64_t rx_raw_bench;     /* `net bench raw` frames received (and dropped) */
	uint64_t rx_lro_merges;    /* TCP segments handed to lwIP merged from several */
	uint64_t rx_lro_segs;      /* ... and the segments they were merged from */
	uint64_t tx_too_long;      /* lwIP handed over more than NIC_FRAME_MAX, or an unusable TSO packet */
	uint64_t tx_tso_copied;    /* TSO packets copied whole first (borrowed or scattered bytes) */
	uint64_t tx_no_mem;        /* ... and dropped for want of the copy's memory */
};

extern struct net_state net;

/* Set the address, netmask and gateway (gw may be 0.0.0.0) and bring the
 * interface up. Requires net.nic. */
void net_netif_configure(const ip4_addr_t *ip, const ip4_addr_t *mask, const ip4_addr_t *gw);

struct tcp_pcb;
/* Let pcb, a bulk sender's connection just opened, hand the NIC TCP
 * packets of up to 64 KiB to segment (nic_ops.tx_submit_tso): its lwIP
 * segment size becomes the largest multiple of the link's MSS that fits.
 * Does nothing unless the driver segments and the peer takes full-sized
 * segments. */
void net_tcp_tso(struct tcp_pcb *pcb);

/* Parse a dotted-quad IPv4 address strictly (four decimal parts 0..255).
 * Returns 0 and sets *a, or -1. */
int net_parse_ip4(const char *s, ip4_addr_t *a);

/* lwIP's err_t as words (lwip_strerr is empty without LWIP_DEBUG). */
const char *net_err_str(err_t err);

/* Checks shared by commands that need the network: prints the error and
 * returns -1 when there is no NIC, or (need_addr) no address yet. */
int net_require(int need_addr);

/* Register the command tables of the files below. */
void net_cmds_init(void);
void net_ping_init(void);
void net_bench_init(void);

/* Advance a running benchmark; returns non-zero while one is moving data
 * (so the main loop keeps polling instead of halting). */
int net_bench_poll(void);

/* Print the bench lines of `info net`. */
void net_bench_info(void);

#endif
