/* lro.c: receive coalescing of TCP data segments; see lro.h. Sums are
 * inet_sum16's: one's-complement sums of the bytes read as native 16-bit
 * words, so a 16-bit result stored natively lands in network order. */
#include <string.h>

#include "inet_sum.h"
#include "lro.h"

#define ETH_LEN 14
#define IP_LEN 20
#define TCP_LEN 20
#define ETHTYPE_IPV4 0x0800
#define IP_PROTO_TCP 6
#define TCP_PSH 0x08
#define TCP_ACK 0x10

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static uint16_t fold32(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Sum of the TCP pseudo-header (RFC 793) for ip's addresses and a TCP
 * segment of tcp_len bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, uint32_t tcp_len)
{
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = IP_PROTO_TCP;
	put_be16(ph + 10, (uint16_t)tcp_len);
	return inet_sum16(ph, sizeof(ph));
}

int lro_parse(const uint8_t *f, size_t len, struct lro_seg *s)
{
	if (len < LRO_HDR_LEN || be16(f + 12) != ETHTYPE_IPV4)
		return -1;
	const uint8_t *ip = f + ETH_LEN, *tcp = ip + IP_LEN;
	uint16_t tl = be16(ip + 2);
	if (ip[0] != 0x45 || ip[9] != IP_PROTO_TCP || (be16(ip + 6) & 0x3fff) != 0 ||
	    tl <= IP_LEN + TCP_LEN || tl > len - ETH_LEN)
		return -1; /* options, not TCP, a fragment, no payload, or truncated */
	if (fold32(inet_sum16(ip, IP_LEN)) != 0xffff)
		return -1; /* bad IP header checksum */
	if ((tcp[12] >> 4) != TCP_LEN / 4 || (tcp[13] & ~TCP_PSH) != TCP_ACK)
		return -1; /* TCP options, or flags other than ACK and PSH */
	s->seq = be32(tcp + 4);
	s->plen = (uint16_t)(tl - IP_LEN - TCP_LEN);
	s->frame_len = (uint16_t)(ETH_LEN + tl);
	s->psh = (tcp[13] & TCP_PSH) != 0;
	/* If the segment's checksum is right, pseudo + header + payload sums
	 * to 0xffff, so the payload sums to the complement of the rest. */
	uint16_t rest = fold32(pseudo_sum(ip, TCP_LEN + s->plen) + inet_sum16(tcp, TCP_LEN));
	s->paysum = (uint16_t)~rest;
	return 0;
}

void lro_start(struct lro_agg *a, const uint8_t *f, const struct lro_seg *s)
{
	memcpy(a->hdr, f, LRO_HDR_LEN);
	a->next_seq = s->seq + s->plen;
	a->plen = s->plen;
	a->nsegs = 1;
	a->paysum = s->paysum;
	memcpy(a->last_ack_win, f + ETH_LEN + IP_LEN + 8, 4);
	memcpy(a->last_ack_win + 4, f + ETH_LEN + IP_LEN + 14, 2);
	a->psh = s->psh;
}

int lro_can_add(const struct lro_agg *a, const uint8_t *f, const struct lro_seg *s)
{
	const uint8_t *ip = f + ETH_LEN, *aip = a->hdr + ETH_LEN;
	return a->nsegs > 0 && a->nsegs < LRO_MAX_SEGS && (a->plen & 1) == 0 &&
	       a->plen + s->plen <= LRO_MAX_PAYLOAD && s->seq == a->next_seq &&
	       memcmp(f, a->hdr, ETH_LEN) == 0 &&         /* same link addresses and type */
	       ip[1] == aip[1] &&                           /* same TOS */
	       memcmp(ip + 12, aip + 12, 8) == 0 &&         /* same addresses */
	       memcmp(ip + IP_LEN, aip + IP_LEN, 4) == 0;   /* same ports */
}

void lro_add(struct lro_agg *a, const uint8_t *f, const struct lro_seg *s)
{
	a->next_seq += s->plen;
	a->plen += s->plen;
	a->nsegs++;
	a->paysum += s->paysum;
	memcpy(a->last_ack_win, f + ETH_LEN + IP_LEN + 8, 4);
	memcpy(a->last_ack_win + 4, f + ETH_LEN + IP_LEN + 14, 2);
	a->psh |= s->psh;
}

void lro_finish(struct lro_agg *a)
{
	if (a->nsegs < 2)
		return;
	uint8_t *ip = a->hdr + ETH_LEN, *tcp = ip + IP_LEN;
	put_be16(ip + 2, (uint16_t)(IP_LEN + TCP_LEN + a->plen));
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~fold32(inet_sum16(ip, IP_LEN));
	memcpy(ip + 10, &c, 2);

	memcpy(tcp + 8, a->last_ack_win, 4);
	memcpy(tcp + 14, a->last_ack_win + 4, 2);
	tcp[13] = (uint8_t)(TCP_ACK | (a->psh ? TCP_PSH : 0));
	tcp[16] = tcp[17] = 0;
	uint32_t sum = pseudo_sum(ip, TCP_LEN + a->plen) + inet_sum16(tcp, TCP_LEN) + fold32(a->paysum);
	c = (uint16_t)~fold32(sum);
	memcpy(tcp + 16, &c, 2);
}
