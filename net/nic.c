/* nic.c: choosing the NIC driver by PCI id, and the send path's wait. */
#include <stdio.h>

#include "clock.h"
#include "nic.h"
#include "pci.h"
#include "trap.h"
#include "x86.h"

static const struct nic_ops *const drivers[] = { &virtio_net_ops, &e1000_ops };

static struct nic the_nic;

static void nic_irq(struct trap_frame *f)
{
	(void)f;
	struct nic *n = &the_nic;
	n->irqs++;
	if (n->ops && n->ops->irq_ack)
		n->ops->irq_ack(n->priv);
	clock_lapic_eoi();
}

struct nic *nic_probe(void)
{
	for (size_t i = 0; i < pci_count(); i++) {
		struct pci_dev *d = pci_get(i);
		for (size_t k = 0; k < sizeof(drivers) / sizeof(drivers[0]); k++) {
			if (!drivers[k]->match(d))
				continue;
			trap_set_handler(TRAP_NIC, nic_irq); /* before attach can enable it */
			void *priv = drivers[k]->attach(d);
			if (!priv)
				return NULL;
			the_nic.ops = drivers[k];
			the_nic.priv = priv;
			the_nic.pci = d;
			the_nic.irq_kind = drivers[k]->irq_kind(priv);
			drivers[k]->get_mac(priv, the_nic.mac);
			return &the_nic;
		}
	}
	return NULL;
}

/* Full ring: make sure the device knows about everything queued, then
 * give it time to drain, reclaiming. try() retries the send; returns
 * non-zero once it went. Frames are never overwritten in flight. */
static int tx_wait(struct nic *n, int (*try)(struct nic *, void *), void *arg)
{
	n->tx_waits++;
	n->ops->tx_flush(n->priv);
	uint64_t deadline = clock_ns() + (uint64_t)NIC_TX_WAIT_MS * 1000000;
	while (!try(n, arg)) {
		if (clock_ns() > deadline) {
			n->tx_drop++;
			return 0;
		}
		x86_pause();
	}
	return 1;
}

static int try_reserve(struct nic *n, void *arg)
{
	return (*(uint8_t **)arg = n->ops->tx_reserve(n->priv)) != NULL;
}

uint8_t *nic_tx_reserve_wait(struct nic *n)
{
	uint8_t *buf = NULL;
	if (try_reserve(n, &buf) || tx_wait(n, try_reserve, &buf))
		return buf;
	return NULL;
}

int nic_frame_ok(const struct nic_frame *f, size_t min, size_t max)
{
	if (f->n < 1 || f->n > NIC_PIECES || f->len < min || f->len > max)
		return 0;
	size_t sum = 0;
	for (unsigned i = 0; i < f->n; i++) {
		if (f->piece[i].len == 0 || f->piece[i].len > 0xffff)
			return 0;
		sum += f->piece[i].len;
	}
	return sum == f->len;
}

struct submit {
	const struct nic_frame *f;
	const struct nic_tso *t;
	void *cookie;
};

static int try_submit(struct nic *n, void *arg)
{
	struct submit *s = arg;
	return (s->t ? n->ops->tx_submit_tso(n->priv, s->f, s->t, s->cookie)
		     : n->ops->tx_submit(n->priv, s->f, s->cookie)) == 0;
}

int nic_tx_submit_wait(struct nic *n, const struct nic_frame *f, const struct nic_tso *t, void *cookie)
{
	struct submit s = { f, t, cookie };
	return try_submit(n, &s) || tx_wait(n, try_submit, &s) ? 0 : -1;
}

int nic_wake_arm(struct nic *n)
{
	return n->ops->rx_arm(n->priv) > 0;
}

void nic_wake_disarm(struct nic *n)
{
	n->ops->rx_disarm(n->priv);
}

const char *nic_irq_name(int kind)
{
	return kind == NIC_IRQ_MSIX ? "msi-x" : kind == NIC_IRQ_INTX ? "intx" : "none (polled)";
}

void nic_get_stats(struct nic *n, struct nic_stats *s)
{
	n->ops->get_stats(n->priv, s);
	s->tx_drop += n->tx_drop;
}
