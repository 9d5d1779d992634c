/* net_ping.c: `ping ADDR [COUNT]`, ICMP echo over an lwIP raw pcb.
 *
 * The command runs to completion (like ping(8) in a shell), but keeps the
 * network moving: while it waits for a reply it calls net_poll, so lwIP's
 * timers, ARP and running benchmarks carry on. It spins rather than halts
 * while waiting, so round-trip times are not rounded to the timer tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "lwip/icmp.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/prot/ip4.h"
#include "lwip/raw.h"
#include "net.h"
#include "net_priv.h"
#include "x86.h"

#define PING_DATA 56          /* payload bytes after the ICMP header, as ping(8) */
#define PING_TIMEOUT_MS 1000  /* wait for each reply */
#define PING_INTERVAL_MS 100  /* between a reply and the next request */
#define PING_COUNT_MAX 100   /* the command blocks the console: at most ~2 minutes */
#define PING_ID 0xfe77

static struct raw_pcb *ping_pcb;
static uint16_t ping_seq;      /* sequence number awaited */
static int ping_got;           /* the awaited reply came */
static uint64_t ping_recv_ns;
static ip4_addr_t ping_target;

/* Raw receive: takes only the echo reply we wait for; everything else
 * goes on to lwIP's ICMP (which answers echo requests). */
static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr)
{
	(void)arg;
	(void)pcb;
	struct ip_hdr iph;
	struct icmp_echo_hdr echo;
	if (p->tot_len < sizeof(iph) || pbuf_copy_partial(p, &iph, sizeof(iph), 0) != sizeof(iph))
		return 0;
	u16_t hlen = (u16_t)(IPH_HL(&iph) * 4);
	if (hlen < IP_HLEN || p->tot_len < hlen + sizeof(echo) ||
	    pbuf_copy_partial(p, &echo, sizeof(echo), hlen) != sizeof(echo))
		return 0;
	if (echo.type != ICMP_ER || echo.id != lwip_htons(PING_ID) || !ip4_addr_cmp(ip_2_ip4(addr), &ping_target))
		return 0;
	if (echo.seqno == lwip_htons(ping_seq) && !ping_got) {
		ping_got = 1;
		ping_recv_ns = clock_ns();
	}
	pbuf_free(p);
	return 1; /* ours (late replies too): eaten */
}

static int ping_send(uint16_t seq)
{
	struct pbuf *p = pbuf_alloc(PBUF_IP, sizeof(struct icmp_echo_hdr) + PING_DATA, PBUF_RAM);
	if (!p)
		return -1;
	struct icmp_echo_hdr *e = p->payload;
	e->type = ICMP_ECHO;
	e->code = 0;
	e->chksum = 0;
	e->id = lwip_htons(PING_ID);
	e->seqno = lwip_htons(seq);
	uint8_t *d = (uint8_t *)(e + 1);
	for (int i = 0; i < PING_DATA; i++)
		d[i] = (uint8_t)i;
	e->chksum = inet_chksum(e, p->len);
	ip_addr_t dst;
	ip_addr_copy_from_ip4(dst, ping_target);
	err_t err = raw_sendto(ping_pcb, p, &dst);
	pbuf_free(p);
	return err == ERR_OK ? 0 : -1;
}

/* Keep the network going for ms milliseconds or until the reply came. */
static void ping_wait(uint64_t until_ns, int stop_on_reply)
{
	while (clock_ns() < until_ns && !(stop_on_reply && ping_got)) {
		net_poll();
		x86_pause();
	}
}

static int cmd_ping(int argc, char **argv)
{
	if (argc < 1 || argc > 2) {
		printf("usage: ping ADDR [COUNT]\n");
		return 1;
	}
	ip4_addr_t dst;
	if (net_parse_ip4(argv[0], &dst)) {
		printf("error: bad address '%s'\n", argv[0]);
		return 1;
	}
	unsigned long count = 3;
	if (argc == 2) {
		char *end;
		count = strtoul(argv[1], &end, 10);
		if (argv[1][0] < '0' || argv[1][0] > '9' || *end || count < 1 || count > PING_COUNT_MAX) {
			printf("error: bad count '%s' (1..%d)\n", argv[1], PING_COUNT_MAX);
			return 1;
		}
	}
	if (net_require(1))
		return 1;
	if (!ping_pcb) {
		ping_pcb = raw_new(IP_PROTO_ICMP);
		if (!ping_pcb) {
			printf("error: out of raw pcbs\n");
			return 1;
		}
		raw_recv(ping_pcb, ping_recv, NULL);
	}
	ping_target = dst;
	unsigned sent = 0, got = 0;
	double min = 0, max = 0, sum = 0;
	for (unsigned long i = 1; i <= count; i++) {
		ping_seq = (uint16_t)i;
		ping_got = 0;
		uint64_t t0 = clock_ns();
		if (ping_send(ping_seq)) {
			printf("seq=%lu: send failed (no route or out of memory)\n", i);
		} else {
			sent++;
			ping_wait(t0 + PING_TIMEOUT_MS * 1000000ull, 1);
			if (ping_got) {
				double ms = (double)(ping_recv_ns - t0) / 1e6;
				printf("reply from %s: seq=%lu time=%.3f ms\n", argv[0], i, ms);
				if (!got || ms < min)
					min = ms;
				if (!got || ms > max)
					max = ms;
				sum += ms;
				got++;
			} else {
				printf("no reply from %s: seq=%lu (timeout %d ms)\n", argv[0], i, PING_TIMEOUT_MS);
			}
		}
		if (i < count)
			ping_wait(clock_ns() + PING_INTERVAL_MS * 1000000ull, 0);
	}
	ping_seq = 0;
	printf("ping %s: %u sent, %u received, %u%% loss", argv[0], sent, got,
	       sent ? (unsigned)((sent - got) * 100 / sent) : 100);
	if (got)
		printf(", rtt min/avg/max %.3f/%.3f/%.3f ms", min, sum / got, max);
	printf("\n");
	return got ? 0 : 1;
}

static const struct console_cmd ping_cmds[] = {
	{ "ping", "ADDR [COUNT]", "ICMP echo to ADDR, COUNT times (default 3), with round-trip times", cmd_ping },
};

void net_ping_init(void)
{
	console_register(ping_cmds, sizeof(ping_cmds) / sizeof(ping_cmds[0]));
}
