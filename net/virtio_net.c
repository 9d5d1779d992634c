/* virtio_net.c: virtio-net over the virtio 1.0 PCI transport (modern,
 * found through vendor capabilities), two split virtqueues (receive 0,
 * transmit 1), polled. Section numbers cite virtio v1.0 (cs04).
 *
 * Every buffer is a fixed NIC_BUF_SIZE slot tied to one descriptor, so a
 * descriptor id names its buffer: receive slots are all posted at start and
 * re-posted as soon as the frame is handed up; transmit slots come from a
 * free list refilled from the used ring. A transmit descriptor points at
 * its slot for a copied frame (tx_reserve, tx_commit), or at the caller's
 * frame for one sent in place (tx_submit), or, for a frame in several
 * pieces, at a table of indirect descriptors written into its slot (a
 * device without them takes frames of one piece only). */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "nic.h"
#include "pci.h"
#include "pmm.h"
#include "trap.h"
#include "x86.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_DEV_NET_TRANSITIONAL 0x1000
#define VIRTIO_DEV_NET_MODERN 0x1041 /* 0x1040 + device type 1 (5.1.1) */

#define VQ_SIZE_MAX 256 /* descriptors per queue: the device's size, capped */
#define VQ_RX 0
#define VQ_TX 1

/* virtio_pci_cap cfg_type (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_DEVICE 4

/* Device status (2.1). */
#define VIRTIO_ST_ACK 1
#define VIRTIO_ST_DRIVER 2
#define VIRTIO_ST_DRIVER_OK 4
#define VIRTIO_ST_FEATURES_OK 8
#define VIRTIO_ST_FAILED 128

/* Feature bits (5.1.3, 6). */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_CFG_READ_TRIES 16 /* reads of device config before taking what came */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* PCI MSI-X (PCI Local Bus 3.0, 6.8.2): capability and table entry. */
#define PCI_CAP_MSIX 0x11
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_SIZE 16
#define MSI_ADDR_BASE 0xfee00000u /* x86 MSI address: fixed delivery to an APIC id */

/* 4.1.4.3: the common configuration structure. 64-bit fields are written
 * as two 32-bit halves (4.1.3.1). */
struct virtio_pci_common_cfg {
	uint32_t device_feature_select;
	uint32_t device_feature;
	uint32_t driver_feature_select;
	uint32_t driver_feature;
	uint16_t msix_config;
	uint16_t num_queues;
	uint8_t device_status;
	uint8_t config_generation;
	uint16_t queue_select;
	uint16_t queue_size;
	uint16_t queue_msix_vector;
	uint16_t queue_enable;
	uint16_t queue_notify_off;
	uint32_t queue_desc_lo, queue_desc_hi;
	uint32_t queue_driver_lo, queue_driver_hi;
	uint32_t queue_device_lo, queue_device_hi;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_pci_common_cfg) == 56, "virtio common cfg (4.1.4.3)");

/* 2.4.5, 2.4.6, 2.4.8: split virtqueue layout. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc");
struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event */
};
struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};
struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event */
};

/* 5.1.6: the header before every frame (12 bytes with VERSION_1). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr (5.1.6)");
#define VNET_HDR sizeof(struct virtio_net_hdr)

struct virtq {
	uint16_t size;        /* descriptors, a power of two */
	uint16_t avail_idx;   /* next avail.idx to publish (free-running) */
	uint16_t last_used;   /* used entries consumed (free-running) */
	uint16_t unnotified;  /* entries published since the last doorbell */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	volatile uint16_t *notify;
	uint8_t *bufs; /* size * NIC_BUF_SIZE bytes; slot i belongs to descriptor i */
};

struct virtio_net {
	volatile struct virtio_pci_common_cfg *common;
	volatile uint8_t *devcfg;
	uint32_t devcfg_len;           /* bytes the device capability maps */
	int has_status, has_mac, has_indirect;
	struct virtq rx, tx;
	uint8_t rx_posted[VQ_SIZE_MAX]; /* 1 while the device owns the receive slot */
	uint16_t tx_free[VQ_SIZE_MAX]; /* stack of free transmit descriptor ids */
	uint16_t tx_nfree;
	uint8_t tx_busy[VQ_SIZE_MAX];  /* 1 while the device owns the slot */
	void *tx_cookie[VQ_SIZE_MAX];  /* tx_submit's, while the device reads the caller's frame */
	int tx_reserved;               /* id handed out by tx_reserve, or -1 */
	int irq;                       /* NIC_IRQ_MSIX when the receive queue has vector 0 */
	struct nic_stats st;
};

static struct virtio_net vn_dev;

static int virtio_net_match(const struct pci_dev *d)
{
	return d->vendor == VIRTIO_VENDOR &&
	       (d->device == VIRTIO_DEV_NET_MODERN || d->device == VIRTIO_DEV_NET_TRANSITIONAL);
}

/* virtio_pci_cap (4.1.4): bytes of configuration space it takes, the
 * notify capability's longer form (4.1.4.4) included. */
#define VIRTIO_PCI_CAP_LEN 16
#define VIRTIO_PCI_NOTIFY_CAP_LEN 20

/* Map the structure a virtio_pci_cap at `cap` points to (4.1.4): the
 * capability must fit its own cap_len and configuration space, and the
 * structure must lie inside its BAR and be at least min_len bytes. Sets
 * *len to the structure's length. Returns NULL when any of that fails. */
static volatile uint8_t *cap_map(const struct pci_dev *d, unsigned cap, unsigned cap_len, uint32_t min_len,
				 uint32_t *len)
{
	uint8_t have = pci_read8(d, cap + 2);
	if (have < cap_len || cap + cap_len > 256)
		return NULL;
	uint8_t bar = pci_read8(d, cap + 4);
	uint32_t off = pci_read32(d, cap + 8);
	*len = pci_read32(d, cap + 12);
	if (bar > 5 || *len < min_len || (uint64_t)off + *len > d->bar[bar].size)
		return NULL;
	volatile uint8_t *base = pci_map_bar(d, bar);
	return base ? base + off : NULL;
}

/* Point MSI-X table entry 0 at TRAP_NIC on this CPU and enable MSI-X.
 * Returns 0, or -1 when the function has no usable MSI-X (the driver then
 * polls and the idle halt waits for the tick). */
static int msix_setup(const struct pci_dev *d)
{
	unsigned cap = pci_find_cap(d, PCI_CAP_MSIX, 0);
	if (!cap)
		return -1;
	uint32_t tbl = pci_read32(d, cap + 4);
	unsigned bir = tbl & 7;
	uint32_t off = tbl & ~7u;
	if (bir > 5 || (uint64_t)off + MSIX_ENTRY_SIZE > d->bar[bir].size)
		return -1;
	volatile uint8_t *base = pci_map_bar(d, bir);
	if (!base)
		return -1;
	volatile uint32_t *e = (volatile uint32_t *)(base + off);
	e[0] = MSI_ADDR_BASE | clock_lapic_id() << 12;
	e[1] = 0;
	e[2] = TRAP_NIC; /* edge, fixed delivery */
	e[3] = 0;        /* unmasked */
	uint16_t ctrl = pci_read16(d, cap + 2);
	pci_write16(d, cap + 2, (uint16_t)((ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_MASKALL));
	return 0;
}

/* The queue area for size n: descriptors, then the driver ring, then on
 * the next page the device ring (alignments 16, 2, 4: 2.4). */
static size_t vq_pages_before_used(uint16_t n)
{
	return (16u * n + 6 + 2u * n + PAGE_SIZE - 1) / PAGE_SIZE;
}

static int vq_setup(struct virtio_net *v, struct virtq *q, uint16_t index, uint16_t msix_vector,
		    uint32_t notify_mult, volatile uint8_t *notify_base, uint32_t notify_len)
{
	volatile struct virtio_pci_common_cfg *c = v->common;
	c->queue_select = index;
	uint16_t max = c->queue_size;
	if (max == 0) {
		printf("virtio-net: queue %u missing\n", index);
		return -1;
	}
	uint16_t n = max < VQ_SIZE_MAX ? max : VQ_SIZE_MAX;
	while (n & (n - 1))
		n &= (uint16_t)(n - 1); /* round down to a power of two */
	/* 4.1.4.4: the queue's doorbell must lie inside the notify structure. */
	uint64_t notify_off = (uint64_t)c->queue_notify_off * notify_mult;
	if (notify_off + sizeof(uint16_t) > notify_len) {
		printf("virtio-net: queue %u notify offset 0x%llx is outside the %u-byte notify area\n", index,
		       (unsigned long long)notify_off, notify_len);
		return -1;
	}
	size_t pre = vq_pages_before_used(n), post = (6 + 8u * n + PAGE_SIZE - 1) / PAGE_SIZE;
	uint8_t *mem = pmm_alloc(pre + post, PMM_ZERO);
	/* Rounded up: a queue of one descriptor still needs its buffer. */
	q->bufs = pmm_alloc(((size_t)n * NIC_BUF_SIZE + PAGE_SIZE - 1) / PAGE_SIZE, PMM_ZERO);
	if (!mem || !q->bufs) {
		printf("virtio-net: out of memory for queue %u\n", index);
		return -1;
	}
	q->size = n;
	q->desc = (struct virtq_desc *)mem;
	q->avail = (struct virtq_avail *)(mem + 16u * n);
	q->used = (struct virtq_used *)(mem + pre * PAGE_SIZE);
	for (uint16_t i = 0; i < n; i++)
		q->desc[i].addr = (uint64_t)(uintptr_t)(q->bufs + (size_t)i * NIC_BUF_SIZE);
	c->queue_size = n;
	c->queue_desc_lo = (uint32_t)(uintptr_t)q->desc;
	c->queue_desc_hi = (uint32_t)((uint64_t)(uintptr_t)q->desc >> 32);
	c->queue_driver_lo = (uint32_t)(uintptr_t)q->avail;
	c->queue_driver_hi = (uint32_t)((uint64_t)(uintptr_t)q->avail >> 32);
	c->queue_device_lo = (uint32_t)(uintptr_t)q->used;
	c->queue_device_hi = (uint32_t)((uint64_t)(uintptr_t)q->used >> 32);
	q->notify = (volatile uint16_t *)(notify_base + notify_off);
	/* Interrupts stay suppressed until rx_arm asks for one (2.4.7). */
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	if (msix_vector != VIRTIO_MSI_NO_VECTOR) {
		c->queue_msix_vector = msix_vector;
		if (c->queue_msix_vector == msix_vector) /* 4.1.5.1.2: the device may refuse */
			v->irq = NIC_IRQ_MSIX;
	}
	c->queue_enable = 1;
	return 0;
}

/* Make the entries added so far visible, then ring the doorbell unless
 * the device asked not to be notified (2.4.7). */
static void vq_publish(struct virtq *q, uint16_t index, int notify)
{
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	if (!notify)
		return;
	/* The device's flag must be read after our idx store is visible. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) & VIRTQ_USED_F_NO_NOTIFY))
		*q->notify = index;
	q->unnotified = 0;
}

/* Read used-ring entry i once: the device may rewrite the ring, and a
 * plain read could be re-done by the compiler between the id's bounds
 * check and its use. */
static struct virtq_used_elem used_read(const struct virtq *q, uint16_t i)
{
	const volatile struct virtq_used_elem *u = &q->used->ring[i & (q->size - 1)];
	struct virtq_used_elem e = { .id = u->id, .len = u->len };
	return e;
}

static void rx_post(struct virtio_net *v, uint16_t id)
{
	struct virtq *q = &v->rx;
	v->rx_posted[id] = 1;
	q->desc[id].len = NIC_BUF_SIZE;
	q->desc[id].flags = VIRTQ_DESC_F_WRITE;
	q->avail->ring[q->avail_idx & (q->size - 1)] = id;
	q->avail_idx++;
}

static void *virtio_net_attach(struct pci_dev *d)
{
	struct virtio_net *v = &vn_dev;
	memset(v, 0, sizeof(*v));
	volatile uint8_t *notify_base = NULL;
	uint32_t notify_mult = 0, notify_len = 0, common_len;
	/* 4.1.4: the first capability of each type is the one to use. The walk
	 * is bounded: a list that loops through a vendor capability would
	 * otherwise return it forever. */
	unsigned ncaps = 0;
	for (unsigned cap = pci_find_cap(d, PCI_CAP_VENDOR, 0); cap && ncaps < PCI_CAP_WALK_MAX;
	     cap = pci_find_cap(d, PCI_CAP_VENDOR, cap), ncaps++) {
		uint8_t type = pci_read8(d, cap + 3);
		if (type == VIRTIO_PCI_CAP_COMMON && !v->common) {
			v->common = (volatile struct virtio_pci_common_cfg *)cap_map(
				d, cap, VIRTIO_PCI_CAP_LEN, sizeof(struct virtio_pci_common_cfg), &common_len);
		} else if (type == VIRTIO_PCI_CAP_NOTIFY && !notify_base) {
			notify_base = cap_map(d, cap, VIRTIO_PCI_NOTIFY_CAP_LEN, sizeof(uint16_t), &notify_len);
			notify_mult = pci_read32(d, cap + 16);
		} else if (type == VIRTIO_PCI_CAP_DEVICE && !v->devcfg) {
			v->devcfg = cap_map(d, cap, VIRTIO_PCI_CAP_LEN, 0, &v->devcfg_len);
		}
	}
	if (!v->common || !notify_base || !v->devcfg) {
		printf("virtio-net: %02x:%02x.%x has no virtio 1.0 capabilities (legacy-only devices are not supported)\n",
		       d->bus, d->dev, d->fn);
		return NULL;
	}
	pci_enable(d, PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE);

	/* 3.1.1 driver initialization, steps 1-8. */
	volatile struct virtio_pci_common_cfg *c = v->common;
	c->device_status = 0; /* 1. reset; the device reads 0 when done */
	uint64_t deadline = clock_ns() + 1000000000ull;
	while (c->device_status != 0)
		if (clock_ns() > deadline) {
			printf("virtio-net: device did not reset\n");
			return NULL;
		}
	c->device_status = VIRTIO_ST_ACK;                    /* 2. */
	c->device_status = VIRTIO_ST_ACK | VIRTIO_ST_DRIVER; /* 3. */
	c->device_feature_select = 0;                        /* 4. features */
	uint64_t have = c->device_feature;
	c->device_feature_select = 1;
	have |= (uint64_t)c->device_feature << 32;
	if (!(have & (1ull << VIRTIO_F_VERSION_1))) {
		printf("virtio-net: device does not offer VIRTIO_F_VERSION_1\n");
		c->device_status = VIRTIO_ST_FAILED;
		return NULL;
	}
	uint64_t want = have & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) |
				(1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_F_RING_INDIRECT_DESC));
	c->driver_feature_select = 0;
	c->driver_feature = (uint32_t)want;
	c->driver_feature_select = 1;
	c->driver_feature = (uint32_t)(want >> 32);
	c->device_status = VIRTIO_ST_ACK | VIRTIO_ST_DRIVER | VIRTIO_ST_FEATURES_OK; /* 5. */
	if (!(c->device_status & VIRTIO_ST_FEATURES_OK)) {                         /* 6. */
		printf("virtio-net: device refused features 0x%llx\n", (unsigned long long)want);
		c->device_status = VIRTIO_ST_FAILED;
		return NULL;
	}
	v->has_status = (want >> VIRTIO_NET_F_STATUS) & 1;
	v->has_mac = (want >> VIRTIO_NET_F_MAC) & 1;
	v->has_indirect = (want >> VIRTIO_F_RING_INDIRECT_DESC) & 1;
	/* 5.1.4: mac (6 bytes) then status (2), each valid only when offered. */
	if (v->devcfg_len < (v->has_status ? 8u : v->has_mac ? 6u : 0u)) {
		printf("virtio-net: device configuration of %u bytes is too short for mac/status\n", v->devcfg_len);
		c->device_status = VIRTIO_ST_FAILED;
		return NULL;
	}
	if (!(want & (1ull << VIRTIO_NET_F_MAC)))
		printf("virtio-net: device offers no MAC address; using 00:00:00:00:00:00\n");
	/* 7. queues; configuration changes raise no interrupt. */
	uint16_t rx_vector = msix_setup(d) == 0 ? 0 : VIRTIO_MSI_NO_VECTOR;
	c->msix_config = VIRTIO_MSI_NO_VECTOR;
	if (c->num_queues < 2 ||
	    vq_setup(v, &v->rx, VQ_RX, rx_vector, notify_mult, notify_base, notify_len) ||
	    vq_setup(v, &v->tx, VQ_TX, VIRTIO_MSI_NO_VECTOR, notify_mult, notify_base, notify_len)) {
		printf("virtio-net: queue set-up failed\n");
		c->device_status = VIRTIO_ST_FAILED;
		return NULL;
	}
	for (uint16_t i = 0; i < v->rx.size; i++)
		rx_post(v, i);
	for (uint16_t i = 0; i < v->tx.size; i++)
		v->tx_free[v->tx_nfree++] = (uint16_t)(v->tx.size - 1 - i);
	v->tx_reserved = -1;
	c->device_status = VIRTIO_ST_ACK | VIRTIO_ST_DRIVER | VIRTIO_ST_FEATURES_OK | VIRTIO_ST_DRIVER_OK; /* 8. */
	vq_publish(&v->rx, VQ_RX, 1);
	return v;
}

static void virtio_net_get_mac(void *priv, uint8_t mac[6])
{
	struct virtio_net *v = priv;
	if (!v->has_mac) { /* attach said so: 00:00:00:00:00:00 */
		memset(mac, 0, 6);
		return;
	}
	/* 4.1.4.3.1: re-read while the configuration changes under us, a
	 * bounded number of times (a device forever changing it must not
	 * hang ferry). */
	uint8_t gen;
	int tries = 0;
	do {
		gen = v->common->config_generation;
		for (int i = 0; i < 6; i++)
			mac[i] = v->devcfg[i];
	} while (gen != v->common->config_generation && ++tries < VIRTIO_CFG_READ_TRIES);
}

static int virtio_net_link_up(void *priv)
{
	struct virtio_net *v = priv;
	if (!v->has_status)
		return 1;
	return (*(volatile uint16_t *)(v->devcfg + 6) & VIRTIO_NET_S_LINK_UP) != 0;
}

static int virtio_net_rx_poll(void *priv, nic_rx_fn fn, void *arg, int budget)
{
	struct virtio_net *v = priv;
	struct virtq *q = &v->rx;
	int n = 0;
	uint16_t used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	while (q->last_used != used_idx && n < budget) {
		struct virtq_used_elem e = used_read(q, q->last_used);
		q->last_used++;
		n++;
		/* A device bug: an id out of range, or one the device does not
		 * own (a duplicate): nothing to hand up or re-post, and posting it
		 * again would put more than size entries in the driver ring. */
		if (e.id >= q->size || !v->rx_posted[e.id]) {
			v->st.rx_errors++;
			continue;
		}
		v->rx_posted[e.id] = 0;
		uint8_t *buf = q->bufs + (size_t)e.id * NIC_BUF_SIZE;
		if (e.len < VNET_HDR + NIC_FRAME_MIN || e.len > VNET_HDR + NIC_FRAME_MAX) {
			v->st.rx_errors++; /* runt or oversize */
		} else {
			size_t len = e.len - VNET_HDR;
			v->st.rx_packets++;
			v->st.rx_bytes += len;
			fn(arg, buf + VNET_HDR, len);
		}
		rx_post(v, (uint16_t)e.id);
	}
	if (n)
		vq_publish(q, VQ_RX, 1);
	return n;
}

static void tx_reclaim(struct virtio_net *v)
{
	struct virtq *q = &v->tx;
	uint16_t used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	while (q->last_used != used_idx) {
		uint32_t id = used_read(q, q->last_used).id;
		q->last_used++;
		if (id >= q->size || !v->tx_busy[id]) {
			v->st.tx_errors++; /* device returned a slot it did not own */
			continue;
		}
		v->tx_busy[id] = 0;
		v->tx_free[v->tx_nfree++] = (uint16_t)id;
		if (v->tx_cookie[id]) {
			void *cookie = v->tx_cookie[id];
			v->tx_cookie[id] = NULL;
			nic_tx_done(cookie);
		}
	}
}

static uint8_t *virtio_net_tx_reserve(void *priv)
{
	struct virtio_net *v = priv;
	if (v->tx_reserved < 0) {
		if (!v->tx_nfree)
			tx_reclaim(v);
		if (!v->tx_nfree)
			return NULL;
		v->tx_reserved = v->tx_free[--v->tx_nfree];
	}
	uint8_t *buf = v->tx.bufs + (size_t)v->tx_reserved * NIC_BUF_SIZE;
	memset(buf, 0, VNET_HDR); /* no offloads: an all-zero header */
	return buf + VNET_HDR;
}

/* Doorbell batching: one notification per this many frames at most. */
#define VIRTIO_NET_TX_BATCH 32

/* Hand descriptor id to the device: at buf, dlen bytes of device header
 * then frame, or (flags VIRTQ_DESC_F_INDIRECT) a table of descriptors
 * that says where they are; len is the frame's. */
static void tx_queue(struct virtio_net *v, uint16_t id, void *buf, size_t dlen, uint16_t flags, size_t len,
		     void *cookie)
{
	struct virtq *q = &v->tx;
	q->desc[id].addr = (uint64_t)(uintptr_t)buf;
	q->desc[id].len = (uint32_t)dlen;
	q->desc[id].flags = flags;
	v->tx_busy[id] = 1;
	v->tx_cookie[id] = cookie;
	q->avail->ring[q->avail_idx & (q->size - 1)] = id;
	q->avail_idx++;
	q->unnotified++;
	v->st.tx_packets++;
	v->st.tx_bytes += len;
	vq_publish(q, VQ_TX, q->unnotified >= VIRTIO_NET_TX_BATCH);
}

static void virtio_net_tx_commit(void *priv, size_t len)
{
	struct virtio_net *v = priv;
	if (v->tx_reserved < 0 || len < NIC_FRAME_MIN || len > NIC_FRAME_MAX) {
		v->st.tx_errors++;
		return;
	}
	uint16_t id = (uint16_t)v->tx_reserved;
	v->tx_reserved = -1;
	tx_queue(v, id, v->tx.bufs + (size_t)id * NIC_BUF_SIZE, VNET_HDR + len, 0, len, NULL);
}

/* Several pieces need indirect descriptors. */
static unsigned virtio_net_tx_pieces(void *priv)
{
	return ((struct virtio_net *)priv)->has_indirect ? NIC_PIECES : 1;
}

/* The frame in place, its all-zero header (no offloads) written into the
 * VNET_HDR bytes before it. One piece: one descriptor, as for a copied
 * frame. Several: one descriptor pointing to a table of them (2.4.5.3
 * indirect descriptors) in the slot's buffer, which the frame leaves
 * unused. */
static int virtio_net_tx_submit(void *priv, const struct nic_frame *f, void *cookie)
{
	struct virtio_net *v = priv;
	if (!nic_frame_ok(f, NIC_FRAME_MIN, NIC_FRAME_MAX) || f->n > virtio_net_tx_pieces(v) || !cookie) {
		v->st.tx_errors++;
		return -1;
	}
	if (!v->tx_nfree)
		tx_reclaim(v);
	if (!v->tx_nfree)
		return -1;
	uint16_t id = v->tx_free[--v->tx_nfree];
	uint8_t *hdr = f->piece[0].data - VNET_HDR;
	memset(hdr, 0, VNET_HDR);
	if (f->n == 1) {
		tx_queue(v, id, hdr, VNET_HDR + f->len, 0, f->len, cookie);
	} else {
		struct virtq_desc *t = (struct virtq_desc *)(v->tx.bufs + (size_t)id * NIC_BUF_SIZE);
		_Static_assert(NIC_PIECES * sizeof(struct virtq_desc) <= NIC_BUF_SIZE, "table fits a slot");
		for (unsigned i = 0; i < f->n; i++) {
			t[i].addr = (uint64_t)(uintptr_t)(i ? f->piece[i].data : hdr);
			t[i].len = (uint32_t)(f->piece[i].len + (i ? 0 : VNET_HDR));
			t[i].flags = i + 1 < f->n ? VIRTQ_DESC_F_NEXT : 0;
			t[i].next = (uint16_t)(i + 1);
		}
		tx_queue(v, id, t, f->n * sizeof(*t), VIRTQ_DESC_F_INDIRECT, f->len, cookie);
	}
	v->st.tx_in_place++;
	return 0;
}

static void virtio_net_tx_flush(void *priv)
{
	struct virtio_net *v = priv;
	if (v->tx.unnotified)
		vq_publish(&v->tx, VQ_TX, 1);
	tx_reclaim(v);
}

static void virtio_net_get_stats(void *priv, struct nic_stats *s)
{
	struct virtio_net *v = priv;
	*s = v->st;
}

static int virtio_net_irq_kind(void *priv)
{
	return ((struct virtio_net *)priv)->irq;
}

static int virtio_net_rx_arm(void *priv)
{
	struct virtio_net *v = priv;
	struct virtq *q = &v->rx;
	if (!v->irq)
		return -1;
	__atomic_store_n(&q->avail->flags, 0, __ATOMIC_RELEASE);
	/* A frame used before the device saw the flag raised no interrupt:
	 * look again after the store is visible. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used;
}

static void virtio_net_rx_disarm(void *priv)
{
	struct virtio_net *v = priv;
	if (v->irq)
		__atomic_store_n(&v->rx.avail->flags, VIRTQ_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}

const struct nic_ops virtio_net_ops = {
	.name = "virtio-net",
	.match = virtio_net_match,
	.attach = virtio_net_attach,
	.get_mac = virtio_net_get_mac,
	.link_up = virtio_net_link_up,
	.rx_poll = virtio_net_rx_poll,
	.tx_reserve = virtio_net_tx_reserve,
	.tx_commit = virtio_net_tx_commit,
	.tx_submit = virtio_net_tx_submit,
	.tx_pieces = virtio_net_tx_pieces,
	.tx_headroom = VNET_HDR,
	.tx_flush = virtio_net_tx_flush,
	.get_stats = virtio_net_get_stats,
	.irq_kind = virtio_net_irq_kind,
	.rx_arm = virtio_net_rx_arm,
	.rx_disarm = virtio_net_rx_disarm,
};
