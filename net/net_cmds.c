/* net_cmds.c: `net config` and `info net`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "lwip/stats.h"
#include "net_priv.h"
#include "pci.h"

int net_parse_ip4(const char *s, ip4_addr_t *a)
{
	uint32_t v = 0;
	for (int part = 0; part < 4; part++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned n = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (unsigned)(*s++ - '0');
			if (++digits > 3 || n > 255)
				return -1;
		}
		v = v << 8 | n;
		if (part < 3 && *s++ != '.')
			return -1;
	}
	if (*s)
		return -1;
	ip4_addr_set_u32(a, lwip_htonl(v));
	return 0;
}

const char *net_err_str(err_t err)
{
	switch (err) {
	case ERR_OK: return "ok";
	case ERR_MEM: return "out of memory";
	case ERR_BUF: return "buffer error";
	case ERR_TIMEOUT: return "timeout";
	case ERR_RTE: return "no route";
	case ERR_INPROGRESS: return "in progress";
	case ERR_VAL: return "illegal value";
	case ERR_WOULDBLOCK: return "would block";
	case ERR_USE: return "address in use";
	case ERR_ALREADY: return "already connecting";
	case ERR_ISCONN: return "already connected";
	case ERR_CONN: return "not connected";
	case ERR_IF: return "interface error";
	case ERR_ABRT: return "connection aborted";
	case ERR_RST: return "connection reset";
	case ERR_CLSD: return "connection closed";
	case ERR_ARG: return "illegal argument";
	default: return "unknown error";
	}
}

int net_require(int need_addr)
{
	if (!net.nic) {
		printf("error: no network interface (no supported NIC found: virtio-net, e1000)\n");
		return -1;
	}
	if (need_addr && !net.configured) {
		printf("error: no address configured; use 'net config ADDR/PREFIX [GATEWAY]'\n");
		return -1;
	}
	return 0;
}

static int cmd_net_config(int argc, char **argv)
{
	if (argc < 1 || argc > 2) {
		printf("usage: net config ADDR/PREFIX [GATEWAY]\n");
		return 1;
	}
	char addr[32];
	const char *slash = strchr(argv[0], '/');
	if (!slash) {
		printf("error: expected ADDR/PREFIX, got '%s'\n", argv[0]);
		return 1;
	}
	if ((size_t)(slash - argv[0]) >= sizeof(addr)) { /* longer than any dotted quad */
		printf("error: bad address '%.*s'\n", (int)(slash - argv[0]), argv[0]);
		return 1;
	}
	memcpy(addr, argv[0], (size_t)(slash - argv[0]));
	addr[slash - argv[0]] = 0;
	ip4_addr_t ip, mask, gw;
	if (net_parse_ip4(addr, &ip)) {
		printf("error: bad address '%s'\n", addr);
		return 1;
	}
	char *end;
	const char *ps = slash + 1;
	unsigned long prefix = strtoul(ps, &end, 10);
	if (!*ps || *ps < '0' || *ps > '9' || *end || prefix > 32) {
		printf("error: bad prefix '%s' (0..32)\n", ps);
		return 1;
	}
	uint32_t m = prefix ? 0xffffffffu << (32 - prefix) : 0;
	ip4_addr_set_u32(&mask, lwip_htonl(m));
	uint32_t host = lwip_ntohl(ip4_addr_get_u32(&ip));
	if (host == 0 || host >= 0xe0000000u || (host >> 24) == 127) {
		printf("error: %s is not a unicast host address\n", addr);
		return 1;
	}
	if (prefix <= 30 && ((host & ~m) == 0 || (host & ~m) == ~m)) {
		ip4_addr_t netw;
		ip4_addr_set_u32(&netw, lwip_htonl(host & m));
		printf("error: %s is the %s address of %s/%lu\n", addr, (host & ~m) ? "broadcast" : "network",
		       ip4addr_ntoa(&netw), prefix);
		return 1;
	}
	ip4_addr_set_zero(&gw);
	if (argc == 2) {
		if (net_parse_ip4(argv[1], &gw)) {
			printf("error: bad gateway '%s'\n", argv[1]);
			return 1;
		}
		uint32_t g = lwip_ntohl(ip4_addr_get_u32(&gw));
		/* Another host: same network, not us, and (with host bits to
		 * spare) neither the network nor the broadcast address. */
		if ((g & m) != (host & m) || g == host ||
		    (prefix <= 30 && ((g & ~m) == 0 || (g & ~m) == ~m))) {
			printf("error: gateway %s is not another host of %s/%lu\n", argv[1], addr, prefix);
			return 1;
		}
	}
	if (net_require(0))
		return 1;
	net_netif_configure(&ip, &mask, &gw);
	char gws[16];
	snprintf(gws, sizeof(gws), "%s", argc == 2 ? ip4addr_ntoa(&gw) : "none");
	printf("net: %s/%lu gateway %s\n", ip4addr_ntoa(&ip), prefix, gws);
	return 0;
}

static unsigned prefix_len(const ip4_addr_t *mask)
{
	return (unsigned)__builtin_popcount(ip4_addr_get_u32(mask));
}

static int cmd_info_net(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (net_require(0))
		return 1;
	struct nic *n = net.nic;
	struct netif *nif = &net.netif;
	const uint8_t *m = n->mac;
	printf("net: %s at %02x:%02x.%x, MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s, mtu %u\n",
	       n->ops->name, n->pci->bus, n->pci->dev, n->pci->fn, m[0], m[1], m[2], m[3], m[4], m[5],
	       n->ops->link_up(n->priv) ? "up" : "down", nif->mtu);
	if (net.configured) {
		char ip[16], gw[16];
		snprintf(ip, sizeof(ip), "%s", ip4addr_ntoa(netif_ip4_addr(nif)));
		snprintf(gw, sizeof(gw), "%s",
			 ip4_addr_isany(netif_ip4_gw(nif)) ? "none" : ip4addr_ntoa(netif_ip4_gw(nif)));
		printf("ipv4: %s/%u gateway %s\n", ip, prefix_len(netif_ip4_netmask(nif)), gw);
	} else {
		printf("ipv4: not configured\n");
	}
	printf("interrupt: %s, %llu taken (only to wake the idle halt; frames are polled)\n",
	       nic_irq_name(n->irq_kind), (unsigned long long)n->irqs);
	struct nic_stats s;
	nic_get_stats(n, &s);
	printf("rx: packets %llu bytes %llu drop %llu errors %llu\n", (unsigned long long)s.rx_packets,
	       (unsigned long long)s.rx_bytes, (unsigned long long)s.rx_drop, (unsigned long long)s.rx_errors);
	printf("tx: packets %llu bytes %llu drop %llu errors %llu (ring-full waits %llu, sent in place %llu)\n",
	       (unsigned long long)s.tx_packets, (unsigned long long)s.tx_bytes, (unsigned long long)s.tx_drop,
	       (unsigned long long)s.tx_errors, (unsigned long long)n->tx_waits,
	       (unsigned long long)s.tx_in_place);
	if (n->ops->tx_submit_tso)
		printf("tx segmentation offload: %llu tcp packets sent as %llu frames (copied first %llu, no memory %llu)\n",
		       (unsigned long long)s.tx_tso, (unsigned long long)s.tx_tso_frames,
		       (unsigned long long)net.tx_tso_copied, (unsigned long long)net.tx_no_mem);
	printf("link layer: unknown ethertype %llu, short arp %llu, no pbuf %llu, raw bench frames %llu, "
	       "oversize sends %llu\n",
	       (unsigned long long)net.rx_unknown_type, (unsigned long long)net.rx_short_arp,
	       (unsigned long long)net.rx_no_pbuf,
	       (unsigned long long)net.rx_raw_bench, (unsigned long long)net.tx_too_long);
	printf("rx coalescing: %llu tcp segments merged into %llu\n", (unsigned long long)net.rx_lro_segs,
	       (unsigned long long)net.rx_lro_merges);
	const struct stats_ *ls = &lwip_stats;
	printf("stack: ethernet/arp drop %u, ip drop %u (checksum %u, length %u, proto %u), "
	       "icmp drop %u (checksum %u), tcp drop %u (checksum %u), udp drop %u\n",
	       (unsigned)ls->etharp.drop, (unsigned)ls->ip.drop, (unsigned)ls->ip.chkerr, (unsigned)ls->ip.lenerr,
	       (unsigned)ls->ip.proterr, (unsigned)ls->icmp.drop, (unsigned)ls->icmp.chkerr, (unsigned)ls->tcp.drop,
	       (unsigned)ls->tcp.chkerr, (unsigned)ls->udp.drop);
	net_bench_info();
	return 0;
}

static const struct console_cmd net_cmds[] = {
	{ "net config", "ADDR/PREFIX [GATEWAY]", "set the IPv4 address, prefix length and gateway", cmd_net_config },
	{ "info net", "", "NIC, link, address and rx/tx/drop/error counters", cmd_info_net },
};

void net_cmds_init(void)
{
	console_register(net_cmds, sizeof(net_cmds) / sizeof(net_cmds[0]));
}
