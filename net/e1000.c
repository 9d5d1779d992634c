/* e1000.c: Intel 82540EM (QEMU's `e1000`, Bochs's e1000) with legacy
 * descriptors, polled. Section numbers cite the PCI/PCI-X Family of
 * Gigabit Ethernet Controllers Software Developer's Manual (8254x), rev 4.0.
 *
 * Each descriptor owns one NIC_BUF_SIZE buffer for life. Receive: all but
 * one descriptor belong to the device (RDT one behind the next to read).
 * Transmit: a frame is copied into the descriptor's buffer (tx_reserve,
 * tx_commit) or read in place from the caller's (tx_submit: a descriptor
 * per piece); a TCP packet of up to 64 KiB is read in place and cut into
 * frames by the device (tx_submit_tso: a context descriptor, then
 * extended data descriptors, 3.5 and 3.6); TDT is written once per batch;
 * finished descriptors are recognised by their DD bit. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ioapic.h"
#include "nic.h"
#include "pci.h"
#include "pmm.h"
#include "trap.h"
#include "x86.h"

#define E1000_VENDOR 0x8086
#define E1000_DEV_82540EM 0x100e

#define E1000_RX_RING 1024/* descriptors (x16 bytes: a multiple of 128, 3.2.6) */
#define E1000_TX_RING 1024
#define E1000_TX_BATCH 32 /* descriptors per TDT write at most */

/* Registers (13.4), byte offsets into BAR0. */
#define E1000_CTRL 0x0000
#define E1000_STATUS 0x0008
#define E1000_EERD 0x0014
#define E1000_ICR 0x00c0 /* interrupt cause: clears on read, which deasserts INTx */
#define E1000_IMS 0x00d0
#define E1000_IMC 0x00d8
#define E1000_RCTL 0x0100
#define E1000_TCTL 0x0400
#define E1000_TIPG 0x0410
#define E1000_RDBAL 0x2800
#define E1000_RDBAH 0x2804
#define E1000_RDLEN 0x2808
#define E1000_RDH 0x2810
#define E1000_RDT 0x2818
#define E1000_TDBAL 0x3800
#define E1000_TDBAH 0x3804
#define E1000_TDLEN 0x3808
#define E1000_TDH 0x3810
#define E1000_TDT 0x3818
#define E1000_CRCERRS 0x4000 /* statistics (13.7): clear on read */
#define E1000_RXERRC 0x400c
#define E1000_MPC 0x4010
#define E1000_RNBC 0x40a0
#define E1000_RUC 0x40a4
#define E1000_ROC 0x40ac
#define E1000_MTA 0x5200
#define E1000_RAL0 0x5400
#define E1000_RAH0 0x5404

#define CTRL_ASDE (1u << 5)
#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define STATUS_LU (1u << 1)
#define EERD_START (1u << 0)
#define EERD_DONE (1u << 4)
#define RAH_AV (1u << 31)
/* Receive interrupt causes (13.4.17): descriptor written back (RXT0),
 * ring running low (RXDMT0), overrun (RXO). */
#define ICR_RX ((1u << 7) | (1u << 4) | (1u << 6))
#define RCTL_EN (1u << 1)
#define RCTL_UPE (1u << 3)
#define RCTL_MPE (1u << 4)
#define RCTL_LPE (1u << 5) /* long frames reach us, to be counted, not dropped silently */
#define RCTL_BAM (1u << 15)
#define RCTL_SECRC (1u << 26)
/* RCTL.BSIZE 00 with BSEX 0: 2048-byte buffers (= NIC_BUF_SIZE). */
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)
#define TCTL_CT_SHIFT 4
#define TCTL_COLD_SHIFT 12
#define TIPG_82540_COPPER (10u | (8u << 10) | (6u << 20)) /* IPGT, IPGR1, IPGR2 (13.4.34) */

/* 3.2.3 receive descriptor, 3.3.3 legacy transmit descriptor. */
struct e1000_rx_desc {
	uint64_t addr;
	uint16_t length;
	uint16_t csum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
};
_Static_assert(sizeof(struct e1000_rx_desc) == 16, "e1000 rx descriptor");
struct e1000_tx_desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso;
	uint8_t cmd;
	uint8_t status;
	uint8_t css;
	uint16_t special;
};
_Static_assert(sizeof(struct e1000_tx_desc) == 16, "e1000 tx descriptor");
/* 3.3.6 TCP/IP context descriptor and 3.3.7 data descriptor (the
 * extended forms, DEXT set), as they lie over a legacy descriptor. */
struct e1000_ctx_desc {
	uint8_t ipcss, ipcso;    /* IP header start; its checksum's offset */
	uint16_t ipcse;          /* IP header's last byte */
	uint8_t tucss, tucso;    /* TCP header start; its checksum's offset */
	uint16_t tucse;          /* last byte summed (0: to the packet's end) */
	uint32_t paylen_cmd;     /* PAYLEN (bits 0-19), DTYP 0, TUCMD (24-31) */
	uint8_t status, hdr_len; /* STA; bytes of headers repeated in each frame */
	uint16_t mss;            /* payload bytes per frame */
};
_Static_assert(sizeof(struct e1000_ctx_desc) == 16, "e1000 context descriptor");
struct e1000_data_desc {
	uint64_t addr;
	uint32_t len_cmd;        /* length (bits 0-19), DTYP 1 (20-23), DCMD (24-31) */
	uint8_t status, popts;   /* STA; which checksums to insert */
	uint16_t special;
};
_Static_assert(sizeof(struct e1000_data_desc) == 16, "e1000 data descriptor");
#define TXD_DTYP_DATA (1u << 20)
#define TXD_X_EOP (1u << 24)  /* DCMD (data) */
#define TXD_X_IFCS (1u << 25) /* DCMD (data) */
#define TXD_X_TCP (1u << 24)  /* TUCMD (context): the packet is TCP */
#define TXD_X_IP (1u << 25)   /* TUCMD (context): ... over IPv4 */
#define TXD_X_TSE (1u << 26)  /* both: segmentation */
#define TXD_X_RS (1u << 27)   /* both: report status (DD) */
#define TXD_X_DEXT (1u << 29) /* both: extended descriptor */
#define TXD_POPTS_IXSM 0x01   /* insert the IPv4 header checksum */
#define TXD_POPTS_TXSM 0x02   /* insert the TCP checksum */
#define E1000_TSO_MAX 0xffffu /* bytes of a segmented packet: the device's IPv4 lengths */

#define RXD_STAT_DD (1u << 0)
#define RXD_STAT_EOP (1u << 1)
/* RDESC.ERRORS (3.2.3.2): frame errors drop the frame; IPE/TCPE (bits 6, 5)
 * only report a checksum offload's verdict, and lwIP checks every sum. */
#define RXD_ERR_CE (1u << 0)  /* CRC or alignment error */
#define RXD_ERR_SE (1u << 1)  /* symbol error */
#define RXD_ERR_SEQ (1u << 2) /* sequence error */
#define RXD_ERR_CXE (1u << 4) /* carrier extension error */
#define RXD_ERR_RXE (1u << 7) /* RX data error */
#define RXD_ERR_MASK (RXD_ERR_CE | RXD_ERR_SE | RXD_ERR_SEQ | RXD_ERR_CXE | RXD_ERR_RXE)
#define TXD_CMD_EOP (1u << 0)
#define TXD_CMD_IFCS (1u << 1)
#define TXD_CMD_RS (1u << 3)
#define TXD_STAT_DD (1u << 0)

struct e1000 {
	uintptr_t regs;
	volatile struct e1000_rx_desc *rx;
	volatile struct e1000_tx_desc *tx;
	uint8_t *rx_bufs, *tx_bufs;
	unsigned rx_next;   /* next descriptor to look at */
	int rx_in_frame;    /* inside a frame that spans descriptors: drop to its EOP */
	unsigned tx_tail;   /* next descriptor to fill (what TDT will become) */
	unsigned tx_clean;  /* oldest descriptor not yet seen done */
	unsigned tx_used;   /* descriptors between tx_clean and tx_tail */
	unsigned tx_unflushed;
	void *tx_cookie[E1000_TX_RING]; /* tx_submit's, while the device reads the caller's frame */
	int irq;            /* NIC_IRQ_INTX once the line is routed */
	uint8_t mac[6];
	struct nic_stats st;
};

static struct e1000 e1000_dev;

static uint32_t rd(struct e1000 *e, uint32_t reg) { return x86_mmio_read32(e->regs + reg); }
static void wr(struct e1000 *e, uint32_t reg, uint32_t v) { x86_mmio_write32(e->regs + reg, v); }

static int e1000_match(const struct pci_dev *d)
{
	return d->vendor == E1000_VENDOR && d->device == E1000_DEV_82540EM;
}

/* 5.3.1: read a 16-bit EEPROM word through EERD. Returns -1 on timeout. */
static int eeprom_read(struct e1000 *e, unsigned word)
{
	wr(e, E1000_EERD, EERD_START | (word << 8));
	uint64_t deadline = clock_ns() + 10000000; /* 10 ms */
	uint32_t v;
	while (!((v = rd(e, E1000_EERD)) & EERD_DONE))
		if (clock_ns() > deadline)
			return -1;
	return (int)(v >> 16);
}

static void *e1000_attach(struct pci_dev *d)
{
	struct e1000 *e = &e1000_dev;
	memset(e, 0, sizeof(*e));
	e->regs = (uintptr_t)pci_map_bar(d, 0);
	if (!e->regs) {
		printf("e1000: %02x:%02x.%x BAR0 is not a memory BAR\n", d->bus, d->dev, d->fn);
		return NULL;
	}
	/* INTx wakes the idle halt when the firmware routed the line (QEMU
	 * and Bochs: PIRQ -> ISA IRQ -> the same I/O APIC pin); the 82540EM has
	 * no MSI. The device keeps every cause masked until rx_arm. */
	uint8_t pin = pci_read8(d, PCI_INTERRUPT_PIN), line = pci_read8(d, PCI_INTERRUPT_LINE);
	e->irq = pin && ioapic_route_pci_line(line, TRAP_NIC, "e1000") == 0 ? NIC_IRQ_INTX : NIC_IRQ_NONE;
	pci_enable(d, PCI_CMD_MEM | PCI_CMD_MASTER | (e->irq ? 0 : PCI_CMD_INTX_DISABLE));

	/* 14.3: global reset, interrupts masked, link set up. */
	wr(e, E1000_IMC, 0xffffffffu);
	wr(e, E1000_CTRL, rd(e, E1000_CTRL) | CTRL_RST);
	clock_delay_ns(1000000); /* the reset bit self-clears within 1 us; allow 1 ms */
	uint64_t deadline = clock_ns() + 100000000;
	while (rd(e, E1000_CTRL) & CTRL_RST)
		if (clock_ns() > deadline) {
			printf("e1000: device did not come out of reset\n");
			return NULL;
		}
	wr(e, E1000_IMC, 0xffffffffu);
	wr(e, E1000_CTRL, rd(e, E1000_CTRL) | CTRL_SLU | CTRL_ASDE);

	/* Station address: EEPROM words 0-2 (5.6), loaded into RAL0/RAH0. */
	for (unsigned w = 0; w < 3; w++) {
		int v = eeprom_read(e, w);
		if (v < 0) {
			printf("e1000: EEPROM read timed out\n");
			return NULL;
		}
		e->mac[2 * w] = (uint8_t)v;
		e->mac[2 * w + 1] = (uint8_t)(v >> 8);
	}
	wr(e, E1000_RAL0, (uint32_t)e->mac[0] | (uint32_t)e->mac[1] << 8 | (uint32_t)e->mac[2] << 16 |
				  (uint32_t)e->mac[3] << 24);
	wr(e, E1000_RAH0, (uint32_t)e->mac[4] | (uint32_t)e->mac[5] << 8 | RAH_AV);
	for (unsigned i = 0; i < 128; i++)
		wr(e, E1000_MTA + 4 * i, 0);

	size_t rx_ring_pages = (E1000_RX_RING * sizeof(struct e1000_rx_desc) + PAGE_SIZE - 1) / PAGE_SIZE;
	size_t tx_ring_pages = (E1000_TX_RING * sizeof(struct e1000_tx_desc) + PAGE_SIZE - 1) / PAGE_SIZE;
	e->rx = pmm_alloc(rx_ring_pages, PMM_ZERO);
	e->tx = pmm_alloc(tx_ring_pages, PMM_ZERO);
	e->rx_bufs = pmm_alloc(E1000_RX_RING * NIC_BUF_SIZE / PAGE_SIZE, 0);
	e->tx_bufs = pmm_alloc(E1000_TX_RING * NIC_BUF_SIZE / PAGE_SIZE, 0);
	if (!e->rx || !e->tx || !e->rx_bufs || !e->tx_bufs) {
		printf("e1000: out of memory for rings\n");
		return NULL;
	}

	/* 14.4 receive initialization. */
	for (unsigned i = 0; i < E1000_RX_RING; i++)
		e->rx[i].addr = (uint64_t)(uintptr_t)(e->rx_bufs + (size_t)i * NIC_BUF_SIZE);
	wr(e, E1000_RDBAL, (uint32_t)(uintptr_t)e->rx);
	wr(e, E1000_RDBAH, (uint32_t)((uint64_t)(uintptr_t)e->rx >> 32));
	wr(e, E1000_RDLEN, E1000_RX_RING * sizeof(struct e1000_rx_desc));
	wr(e, E1000_RDH, 0);
	wr(e, E1000_RDT, E1000_RX_RING - 1);
	/* QEMU's model then refuses frames for 1 s of its time after every RCTL
	 * write (its flush_queue_timer): early frames are delayed, not lost. */
	wr(e, E1000_RCTL, RCTL_EN | RCTL_LPE | RCTL_BAM | RCTL_SECRC);

	/* 14.5 transmit initialization. */
	for (unsigned i = 0; i < E1000_TX_RING; i++) {
		e->tx[i].addr = (uint64_t)(uintptr_t)(e->tx_bufs + (size_t)i * NIC_BUF_SIZE);
		e->tx[i].status = TXD_STAT_DD;
	}
	wr(e, E1000_TDBAL, (uint32_t)(uintptr_t)e->tx);
	wr(e, E1000_TDBAH, (uint32_t)((uint64_t)(uintptr_t)e->tx >> 32));
	wr(e, E1000_TDLEN, E1000_TX_RING * sizeof(struct e1000_tx_desc));
	wr(e, E1000_TDH, 0);
	wr(e, E1000_TDT, 0);
	wr(e, E1000_TIPG, TIPG_82540_COPPER);
	wr(e, E1000_TCTL, TCTL_EN | TCTL_PSP | (0x0fu << TCTL_CT_SHIFT) | (0x40u << TCTL_COLD_SHIFT));
	/* Start the statistics from zero (they clear on read). */
	(void)rd(e, E1000_CRCERRS);
	(void)rd(e, E1000_RXERRC);
	(void)rd(e, E1000_MPC);
	(void)rd(e, E1000_RNBC);
	(void)rd(e, E1000_RUC);
	(void)rd(e, E1000_ROC);
	return e;
}

static void e1000_get_mac(void *priv, uint8_t mac[6])
{
	memcpy(mac, ((struct e1000 *)priv)->mac, 6);
}

static int e1000_link_up(void *priv)
{
	return (rd(priv, E1000_STATUS) & STATUS_LU) != 0;
}

static int e1000_rx_poll(void *priv, nic_rx_fn fn, void *arg, int budget)
{
	struct e1000 *e = priv;
	int n = 0;
	while (n < budget) {
		volatile struct e1000_rx_desc *d = &e->rx[e->rx_next];
		uint8_t status = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
		if (!(status & RXD_STAT_DD))
			break;
		unsigned len = d->length;
		uint8_t errors = d->errors;
		if (e->rx_in_frame || !(status & RXD_STAT_EOP)) {
			/* Part of a frame longer than one buffer: count it once, at its end. */
			e->rx_in_frame = !(status & RXD_STAT_EOP);
			if (!e->rx_in_frame)
				e->st.rx_errors++;
		} else if ((errors & RXD_ERR_MASK) || len < NIC_FRAME_MIN || len > NIC_FRAME_MAX) {
			e->st.rx_errors++;
		} else {
			e->st.rx_packets++;
			e->st.rx_bytes += len;
			fn(arg, e->rx_bufs + (size_t)e->rx_next * NIC_BUF_SIZE, len);
		}
		d->status = 0;
		e->rx_next = (e->rx_next + 1) % E1000_RX_RING;
		n++;
	}
	if (n) {
		/* Give the consumed descriptors back in one write: the device owns
		 * RDH..RDT-1, so RDT = the last one consumed keeps one in hand. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		wr(e, E1000_RDT, (e->rx_next + E1000_RX_RING - 1) % E1000_RX_RING);
	}
	return n;
}

static void tx_reclaim(struct e1000 *e)
{
	while (e->tx_used &&
	       (__atomic_load_n(&e->tx[e->tx_clean].status, __ATOMIC_ACQUIRE) & TXD_STAT_DD)) {
		void *cookie = e->tx_cookie[e->tx_clean];
		e->tx_cookie[e->tx_clean] = NULL;
		e->tx_clean = (e->tx_clean + 1) % E1000_TX_RING;
		e->tx_used--;
		if (cookie)
			nic_tx_done(cookie);
	}
}

/* Room for k more descriptors (one slot stays empty so TDT never catches
 * up with TDH, 3.4), reclaiming first if need be. */
static int tx_room(struct e1000 *e, unsigned k)
{
	if (e->tx_used + k > E1000_TX_RING - 1)
		tx_reclaim(e);
	return e->tx_used + k <= E1000_TX_RING - 1;
}

static uint8_t *e1000_tx_reserve(void *priv)
{
	struct e1000 *e = priv;
	if (!tx_room(e, 1))
		return NULL;
	return e->tx_bufs + (size_t)e->tx_tail * NIC_BUF_SIZE;
}

static void tx_kick(struct e1000 *e)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	wr(e, E1000_TDT, e->tx_tail);
	e->tx_unflushed = 0;
}

/* The descriptor at the tail is filled: it carries cookie (NULL but on a
 * frame's last descriptor), and the tail moves on. */
static void tx_advance(struct e1000 *e, void *cookie)
{
	e->tx_cookie[e->tx_tail] = cookie;
	e->tx_tail = (e->tx_tail + 1) % E1000_TX_RING;
	e->tx_used++;
	e->tx_unflushed++;
}

/* Fill the descriptor at the tail with len bytes at buf, the frame's
 * last piece when eop (which then carries the cookie). */
static void tx_put(struct e1000 *e, const uint8_t *buf, size_t len, int eop, void *cookie)
{
	volatile struct e1000_tx_desc *d = &e->tx[e->tx_tail];
	d->addr = (uint64_t)(uintptr_t)buf;
	d->length = (uint16_t)len;
	d->cmd = TXD_CMD_IFCS | TXD_CMD_RS | (eop ? TXD_CMD_EOP : 0);
	d->status = 0;
	tx_advance(e, eop ? cookie : NULL);
}

/* Count a queued frame and ring the doorbell once per batch. */
static void tx_queued(struct e1000 *e, uint64_t frames, uint64_t bytes)
{
	e->st.tx_packets += frames;
	e->st.tx_bytes += bytes;
	if (e->tx_unflushed >= E1000_TX_BATCH)
		tx_kick(e);
}

static void e1000_tx_commit(void *priv, size_t len)
{
	struct e1000 *e = priv;
	if (len < NIC_FRAME_MIN || len > NIC_FRAME_MAX || !tx_room(e, 1)) {
		e->st.tx_errors++;
		return;
	}
	tx_put(e, e->tx_bufs + (size_t)e->tx_tail * NIC_BUF_SIZE, len, 1, NULL);
	tx_queued(e, 1, len);
}

static unsigned e1000_tx_pieces(void *priv)
{
	(void)priv;
	return NIC_PIECES;
}

/* The frame in place, a legacy descriptor per piece (3.3.3: EOP on the
 * last); they need no header (headroom 0). */
static int e1000_tx_submit(void *priv, const struct nic_frame *f, void *cookie)
{
	struct e1000 *e = priv;
	if (!nic_frame_ok(f, NIC_FRAME_MIN, NIC_FRAME_MAX) || !cookie) {
		e->st.tx_errors++;
		return -1;
	}
	if (!tx_room(e, f->n))
		return -1;
	for (unsigned i = 0; i < f->n; i++)
		tx_put(e, f->piece[i].data, f->piece[i].len, i + 1 == f->n, cookie);
	e->st.tx_in_place++;
	tx_queued(e, 1, f->len);
	return 0;
}

/* The TCP checksum field's seed for segmentation (3.6.4 / the IP-layer
 * checksum rules of 8254x TSO): the pseudo-header sum over the addresses
 * and protocol without the length, which the device adds per frame,
 * folded and not complemented. The IPv4 checksum field must be 0: the
 * device sums the header with it. */
static void tso_seed(uint8_t *ip, uint8_t *tcp)
{
	uint32_t sum = 6; /* IPPROTO_TCP */
	for (unsigned i = 12; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = ip[11] = 0;
	tcp[16] = (uint8_t)(sum >> 8);
	tcp[17] = (uint8_t)sum;
}

/* One context descriptor with the packet's layout, then a data descriptor
 * per piece; the cookie rides on the last. */
static int e1000_tx_submit_tso(void *priv, const struct nic_frame *f, const struct nic_tso *t, void *cookie)
{
	struct e1000 *e = priv;
	if (!nic_frame_ok(f, NIC_FRAME_MAX + 1, E1000_TSO_MAX) || !cookie || t->mss == 0 ||
	    t->tcp_off < 14 + 20 || t->hdr_len < t->tcp_off + 20 || t->hdr_len + t->mss > NIC_FRAME_MAX ||
	    f->piece[0].len < t->hdr_len) {
		e->st.tx_errors++;
		return -1;
	}
	if (!tx_room(e, f->n + 1))
		return -1;
	uint8_t *h = f->piece[0].data;
	tso_seed(h + 14, h + t->tcp_off);
	size_t paylen = f->len - t->hdr_len;

	volatile struct e1000_ctx_desc *c = (volatile struct e1000_ctx_desc *)&e->tx[e->tx_tail];
	c->ipcss = 14;
	c->ipcso = 14 + 10;
	c->ipcse = (uint16_t)(t->tcp_off - 1);
	c->tucss = (uint8_t)t->tcp_off;
	c->tucso = (uint8_t)(t->tcp_off + 16);
	c->tucse = 0;
	c->paylen_cmd = (uint32_t)paylen | TXD_X_TCP | TXD_X_IP | TXD_X_TSE | TXD_X_RS | TXD_X_DEXT;
	c->hdr_len = (uint8_t)t->hdr_len;
	c->mss = (uint16_t)t->mss;
	c->status = 0;
	tx_advance(e, NULL);
	for (unsigned i = 0; i < f->n; i++) {
		volatile struct e1000_data_desc *d = (volatile struct e1000_data_desc *)&e->tx[e->tx_tail];
		int last = i + 1 == f->n;
		d->addr = (uint64_t)(uintptr_t)f->piece[i].data;
		d->len_cmd = (uint32_t)f->piece[i].len | TXD_DTYP_DATA | TXD_X_IFCS | TXD_X_TSE | TXD_X_RS |
			     TXD_X_DEXT | (last ? TXD_X_EOP : 0);
		d->popts = TXD_POPTS_IXSM | TXD_POPTS_TXSM;
		d->special = 0;
		d->status = 0;
		tx_advance(e, last ? cookie : NULL);
	}
	uint64_t frames = (paylen + t->mss - 1) / t->mss;
	e->st.tx_tso++;
	e->st.tx_tso_frames += frames;
	tx_queued(e, frames, paylen + frames * t->hdr_len);
	return 0;
}

static void e1000_tx_flush(void *priv)
{
	struct e1000 *e = priv;
	if (e->tx_unflushed)
		tx_kick(e);
	tx_reclaim(e);
}

static void e1000_get_stats(void *priv, struct nic_stats *s)
{
	struct e1000 *e = priv;
	/* Fold the clear-on-read device counters in (13.7). */
	e->st.rx_errors += rd(e, E1000_CRCERRS) + rd(e, E1000_RXERRC) + rd(e, E1000_RUC) + rd(e, E1000_ROC);
	e->st.rx_drop += rd(e, E1000_MPC);
	(void)rd(e, E1000_RNBC); /* receive-no-buffer also counts in MPC when a frame is lost */
	*s = e->st;
}

static int e1000_irq_kind(void *priv)
{
	return ((struct e1000 *)priv)->irq;
}

static int e1000_rx_arm(void *priv)
{
	struct e1000 *e = priv;
	if (!e->irq)
		return -1;
	(void)rd(e, E1000_ICR); /* drop causes from while the loop was awake */
	wr(e, E1000_IMS, ICR_RX);
	/* A frame written back before the mask opened raised nothing. */
	return (__atomic_load_n(&e->rx[e->rx_next].status, __ATOMIC_ACQUIRE) & RXD_STAT_DD) != 0;
}

static void e1000_rx_disarm(void *priv)
{
	struct e1000 *e = priv;
	if (e->irq)
		wr(e, E1000_IMC, 0xffffffffu);
}

/* Interrupt context: reading ICR clears the causes and so deasserts the
 * level-triggered line before the handler's EOI. */
static void e1000_irq_ack(void *priv)
{
	(void)rd(priv, E1000_ICR);
}

const struct nic_ops e1000_ops = {
	.name = "e1000",
	.match = e1000_match,
	.attach = e1000_attach,
	.get_mac = e1000_get_mac,
	.link_up = e1000_link_up,
	.rx_poll = e1000_rx_poll,
	.tx_reserve = e1000_tx_reserve,
	.tx_commit = e1000_tx_commit,
	.tx_submit = e1000_tx_submit,
	.tx_pieces = e1000_tx_pieces,
	.tx_headroom = 0,
	.tx_submit_tso = e1000_tx_submit_tso,
	.tso_max = E1000_TSO_MAX,
	.tx_flush = e1000_tx_flush,
	.get_stats = e1000_get_stats,
	.irq_kind = e1000_irq_kind,
	.rx_arm = e1000_rx_arm,
	.rx_disarm = e1000_rx_disarm,
	.irq_ack = e1000_irq_ack,
};
