/* lro.h: receive coalescing of TCP segments (LRO, "large receive offload"
 * done in the driver glue). Consecutive in-order data segments of one TCP
 * connection that arrive in one receive batch are handed to lwIP as one
 * larger segment: one pass through IP and TCP input and one ACK instead of
 * one per segment (lwIP acks every second segment), which under QEMU TCG
 * is most of a bulk receiver's cost and a third of the frames on the link.
 *
 * Only plain data segments merge: IPv4 without options or fragmentation,
 * a valid IP header checksum, TCP without options, flags ACK and maybe
 * PSH, a payload. Anything else first flushes the pending merge, then goes
 * to lwIP unchanged, so lwIP still sees every frame in arrival order and
 * rejects bad ones with its own counters.
 *
 * Checksums: the merged TCP checksum is derived from the segments' headers
 * alone (a segment whose checksum is right has a payload sum equal to the
 * complement of its pseudo-header and header sums), so no extra pass over
 * the data is made, and lwIP then verifies the merged segment over all its
 * bytes: one corrupted segment fails the merged sum, lwIP drops the merged
 * segment, and TCP retransmits. The merged IP header gets a fresh checksum
 * after each original one was verified here.
 *
 * Portable C with no kernel or lwIP dependency (the pbufs are the caller's:
 * net/netif.c); tested on the host. */
#ifndef FERRY_LRO_H
#define FERRY_LRO_H

#include <stddef.h>
#include <stdint.h>

#define LRO_HDR_LEN 54            /* Ethernet 14 + IPv4 20 + TCP 20, the only shape merged */
#define LRO_MAX_SEGS 44           /* segments per merge */
#define LRO_MAX_PAYLOAD 60000     /* bytes of TCP payload per merge (IPv4 length is 16-bit) */

/* A frame that may merge, as lro_parse found it. */
struct lro_seg {
	uint32_t seq;      /* TCP sequence number */
	uint16_t plen;     /* TCP payload bytes */
	uint16_t frame_len; /* 14 + IPv4 total length: the frame without padding */
	uint16_t paysum;   /* payload's one's-complement sum, derived from the headers */
	uint8_t psh;       /* PSH was set */
};

/* A merge in progress: the first segment's headers, rewritten by
 * lro_finish; the last segment's ACK number and window. */
struct lro_agg {
	uint8_t hdr[LRO_HDR_LEN];
	uint32_t next_seq; /* sequence number the next segment must carry */
	uint32_t plen;     /* payload bytes so far */
	uint32_t nsegs;    /* segments so far (0: no merge in progress) */
	uint32_t paysum;   /* sum of the segments' payload sums (not folded) */
	uint8_t last_ack_win[4 + 2];
	uint8_t psh;
};

/* Is this Ethernet frame (no FCS, len bytes) a plain TCP data segment over
 * IPv4 that may merge? Fills *s and returns 0; -1 otherwise (including a
 * bad IP header checksum: lwIP will count and drop that frame). */
int lro_parse(const uint8_t *frame, size_t len, struct lro_seg *s);

/* Start a merge with frame (lro_parse accepted it as s). */
void lro_start(struct lro_agg *a, const uint8_t *frame, const struct lro_seg *s);

/* May frame (accepted as s) extend merge a? Same link and connection
 * headers, the next sequence number, room left, and an even payload so far
 * (so the new payload's sum adds without a byte swap). */
int lro_can_add(const struct lro_agg *a, const uint8_t *frame, const struct lro_seg *s);

/* Add frame's segment to a (lro_can_add said yes). The caller appends its
 * payload, frame + LRO_HDR_LEN for s->plen bytes, to the merged packet. */
void lro_add(struct lro_agg *a, const uint8_t *frame, const struct lro_seg *s);

/* Rewrite a->hdr into the merged packet's headers: IPv4 length and
 * checksum, the last ACK number and window, PSH if any segment had it,
 * and the TCP checksum over everything. A merge of one segment is left
 * exactly as it arrived. */
void lro_finish(struct lro_agg *a);

#endif
