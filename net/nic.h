/* nic.h: the one interface every NIC driver implements (virtio-net,
 * e1000), the driver chosen once by PCI id, and the send path's wait.
 *
 * Drivers only move frames between their descriptor rings and the caller:
 * they never call lwIP. The main loop polls them (no interrupts). Frames
 * are Ethernet without FCS. A frame is sent either from a driver buffer
 * the caller fills (tx_reserve, tx_commit) or, where the driver offers
 * tx_submit, from the caller's own memory, which the device reads in
 * place and the driver hands back through nic_tx_done. */
#ifndef FERRY_NIC_H
#define FERRY_NIC_H

#include <stddef.h>
#include <stdint.h>

struct pci_dev;

#define NIC_FRAME_MIN 14      /* bytes: an Ethernet header, nothing less is a frame */
#define NIC_FRAME_MAX 1514    /* bytes: header + 1500 MTU, no FCS, no VLAN tag */
#define NIC_BUF_SIZE 2048     /* bytes of each ring buffer (one frame + device header) */
#define NIC_TX_WAIT_MS 200    /* ms a sender waits for ring space before dropping */

/* Driver counters, totals since attach. */
struct nic_stats {
	uint64_t rx_packets, rx_bytes; /* good frames handed up */
	uint64_t rx_drop;              /* frames the device lost (no buffer, missed) */
	uint64_t rx_errors;            /* runt, oversize, split, device-flagged errors */
	uint64_t tx_packets, tx_bytes; /* frames queued to the device */
	uint64_t tx_in_place;          /* ... of which sent from the caller's memory (tx_submit) */
	uint64_t tx_tso, tx_tso_frames; /* tx_submit_tso packets, and the frames cut from them */
	uint64_t tx_drop;              /* frames dropped: ring full past NIC_TX_WAIT_MS */
	uint64_t tx_errors;            /* bad length from the caller, device-reported errors */
};

#define NIC_PIECES 16         /* pieces of one frame or TSO packet sent in place, at most */

/* A frame (or TSO packet) in the caller's memory, in pieces the device
 * reads in order (scatter-gather). */
struct nic_frame {
	unsigned n; /* pieces, 1..NIC_PIECES, none empty */
	size_t len; /* bytes of all pieces together */
	struct {
		uint8_t *data;
		size_t len;
	} piece[NIC_PIECES];
};

/* A TCP/IPv4 packet longer than one frame, for the device to cut into
 * frames (TCP segmentation offload): each gets a copy of the headers with
 * the IP length, IP id, TCP sequence number and flags adjusted, and
 * mss payload bytes, the last one what remains. */
struct nic_tso {
	unsigned hdr_len; /* Ethernet + IPv4 + TCP header bytes, all in piece[0] */
	unsigned tcp_off; /* offset of the TCP header (14 + the IPv4 header's length) */
	unsigned mss;     /* TCP payload bytes per frame: hdr_len + mss <= NIC_FRAME_MAX */
};

/* Called by rx_poll for each good frame; frame is the driver's buffer,
 * valid only during the call (copy what you keep). */
typedef void (*nic_rx_fn)(void *arg, const uint8_t *frame, size_t len);

struct nic_ops {
	const char *name;
	/* Does this driver handle PCI function d? Called during nic_probe. */
	int (*match)(const struct pci_dev *d);
	/* Reset and bring up the device: rings, MAC, bus mastering. Returns
	 * the driver's private state, or NULL after printing why. Once. */
	void *(*attach)(struct pci_dev *d);
	/* The station address (from the device). */
	void (*get_mac)(void *priv, uint8_t mac[6]);
	/* 1 when the link is up. Cheap: called every poll period. */
	int (*link_up)(void *priv);
	/* Take up to budget received frames off the ring: good ones go to fn,
	 * bad ones are counted; every buffer goes back to the device. Returns
	 * how many ring entries were consumed (0: nothing waiting). */
	int (*rx_poll)(void *priv, nic_rx_fn fn, void *arg, int budget);
	/* Reclaim finished transmissions, then return a buffer of
	 * NIC_FRAME_MAX bytes for the next frame, or NULL while the ring is
	 * full. The buffer belongs to the caller until tx_commit. */
	uint8_t *(*tx_reserve)(void *priv);
	/* Queue the frame written into the last reserved buffer;
	 * NIC_FRAME_MIN <= len <= NIC_FRAME_MAX. The device may not see it
	 * before tx_flush. */
	void (*tx_commit)(void *priv, size_t len);
	/* Optional (NULL: callers copy into tx_reserve buffers). Queue a
	 * frame in the caller's memory, read by the device in place:
	 * NIC_FRAME_MIN <= f->len <= NIC_FRAME_MAX, and the tx_headroom bytes
	 * before piece[0] are free for the device's header, which the driver
	 * writes there. The caller must leave all of it unchanged until the
	 * driver passes cookie to nic_tx_done (from tx_reserve, tx_submit or
	 * tx_flush, once the device is done with it). Returns 0, or -1 while
	 * the ring is full (nothing queued). The device may not see it
	 * before tx_flush. Not between a tx_reserve and its tx_commit. */
	int (*tx_submit)(void *priv, const struct nic_frame *f, void *cookie);
	/* Pieces of one tx_submit frame at most, 1..NIC_PIECES (it may
	 * depend on what the device offered); callers copy frames in more. */
	unsigned (*tx_pieces)(void *priv);
	unsigned tx_headroom; /* bytes tx_submit writes in front of a frame */
	/* Optional (NULL: no segmentation offload). Queue packet f, laid
	 * out as t says, read in place like tx_submit's frame (without
	 * headroom), and have the device cut it into frames and compute their
	 * IPv4 and TCP checksums: the driver may rewrite the checksum fields
	 * in piece[0] to what its device expects. f->len <= tso_max. Returns
	 * 0, or -1 while the ring is full (nothing queued). */
	int (*tx_submit_tso)(void *priv, const struct nic_frame *f, const struct nic_tso *t, void *cookie);
	size_t tso_max; /* bytes of a tx_submit_tso packet at most */
	/* Tell the device about every committed frame (one doorbell). */
	void (*tx_flush)(void *priv);
	/* Counters so far (device statistics registers folded in). */
	void (*get_stats)(void *priv, struct nic_stats *s);
	/* The receive interrupt, which only wakes the main loop's idle halt
	 * (frames are still taken by rx_poll). attach sets it up on vector
	 * TRAP_NIC when the device has one (MSI-X, or INTx through the I/O
	 * APIC) and leaves it off. rx_arm turns it on before a halt and
	 * returns 1 when frames already wait (do not halt), 0 when armed, -1
	 * when there is no interrupt (the halt lasts until the timer tick).
	 * rx_disarm turns it off again after the halt. irq_ack runs in the
	 * interrupt handler and quiets a level-triggered line (NULL: edge). */
	int (*irq_kind)(void *priv); /* NIC_IRQ_* */
	int (*rx_arm)(void *priv);
	void (*rx_disarm)(void *priv);
	void (*irq_ack)(void *priv);
};

extern const struct nic_ops virtio_net_ops;
extern const struct nic_ops e1000_ops;

/* The attached NIC. */
struct nic {
	const struct nic_ops *ops;
	void *priv;
	const struct pci_dev *pci;
	uint8_t mac[6];
	uint64_t tx_waits; /* reservations that found the ring full and waited */
	uint64_t tx_drop;  /* ... and gave up after NIC_TX_WAIT_MS */
	uint64_t irqs;     /* receive interrupts taken */
	int irq_kind;      /* NIC_IRQ_*: how the receive interrupt arrives */
};

#define NIC_IRQ_NONE 0  /* polled; the idle halt waits for the timer tick */
#define NIC_IRQ_MSIX 1
#define NIC_IRQ_INTX 2  /* level-triggered, through the I/O APIC */

/* Attach the first PCI function a driver matches. Returns NULL when no
 * supported NIC exists or its driver failed (it printed why). Requires
 * pci_init. Once. */
struct nic *nic_probe(void);

/* tx_reserve that, when the ring is full, rings the doorbell and waits
 * (reclaiming) up to NIC_TX_WAIT_MS. Returns the buffer, or NULL when the
 * ring stayed full (counted in n->tx_drop). */
uint8_t *nic_tx_reserve_wait(struct nic *n);

/* For drivers: are f's pieces 1..NIC_PIECES, none empty or over 64 KiB,
 * adding up to f->len, with min <= f->len <= max? */
int nic_frame_ok(const struct nic_frame *f, size_t min, size_t max);

/* tx_submit (t NULL) or tx_submit_tso with the same wait. Returns 0, or
 * -1 when the ring stayed full (counted in n->tx_drop; cookie is not
 * passed to nic_tx_done). */
int nic_tx_submit_wait(struct nic *n, const struct nic_frame *f, const struct nic_tso *t, void *cookie);

/* Defined by the driver's user (net/netif.c): the device has finished
 * with the frame tx_submit queued under cookie. */
void nic_tx_done(void *cookie);

/* Arm the receive interrupt before the main loop halts: 1 when frames
 * already wait (skip the halt), 0 otherwise (armed, or no interrupt and
 * the tick will end the halt). nic_wake_disarm after the halt. */
int nic_wake_arm(struct nic *n);
void nic_wake_disarm(struct nic *n);

/* The kind of receive interrupt attach set up (NIC_IRQ_*), as a word. */
const char *nic_irq_name(int kind);

/* Driver counters with the generic layer's added (tx_drop). */
void nic_get_stats(struct nic *n, struct nic_stats *s);

#endif
