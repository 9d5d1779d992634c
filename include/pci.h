/* pci.h: PCI configuration space, device enumeration and BARs.
 *
 * Configuration space is reached through ECAM (the ACPI MCFG table) where
 * the firmware describes one, else through the legacy CF8/CFC ports (only
 * the first 256 bytes). pci_init scans every bus once and records each
 * function; drivers then look devices up by vendor and device id. BAR
 * addresses are the ones the firmware assigned: ferry never moves them.
 * Single-threaded, like the rest of ferry. */
#ifndef FERRY_PCI_H
#define FERRY_PCI_H

#include <stddef.h>
#include <stdint.h>

#define PCI_MAX_DEVS 64 /* functions recorded; the rest are counted, not kept */

/* Configuration header registers (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REV 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34

#define PCI_CMD_IO (1u << 0)
#define PCI_CMD_MEM (1u << 1)
#define PCI_CMD_MASTER (1u << 2)
#define PCI_CMD_INTX_DISABLE (1u << 10)
#define PCI_INTERRUPT_LINE 0x3c /* set by firmware: the ISA IRQ the INTx pin is routed to */
#define PCI_INTERRUPT_PIN 0x3d  /* 0: none, 1-4: INTA#-INTD# */
#define PCI_STATUS_CAPS (1u << 4)

#define PCI_CAP_VENDOR 0x09 /* vendor-specific capability (virtio uses it) */

enum pci_bar_kind { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_kind kind;
	int prefetch;
	uint64_t addr; /* bus address = physical address on x86 */
	uint64_t size; /* bytes; 0 when the BAR is absent */
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t class, subclass, progif, rev;
	uint8_t header_type; /* without the multi-function bit */
	struct pci_bar bar[6];
};

/* Scan every bus and size every BAR of type-0 functions. Requires
 * acpi_init and paging_init (ECAM may lie above 4 GiB). Call once. */
void pci_init(void);

/* "ECAM" or "CF8/CFC": how configuration space is reached. */
const char *pci_access_method(void);

/* Number of functions recorded, and the i-th of them (i < pci_count()). */
size_t pci_count(void);
struct pci_dev *pci_get(size_t i);

/* Configuration space access at byte offset off (naturally aligned; off
 * must be < 256 without ECAM, < 4096 with it). */
uint32_t pci_read32(const struct pci_dev *d, unsigned off);
uint16_t pci_read16(const struct pci_dev *d, unsigned off);
uint8_t pci_read8(const struct pci_dev *d, unsigned off);
void pci_write32(const struct pci_dev *d, unsigned off, uint32_t v);
void pci_write16(const struct pci_dev *d, unsigned off, uint16_t v);

/* Set bits in the command register (PCI_CMD_*). */
void pci_enable(const struct pci_dev *d, uint16_t cmd_bits);

/* Capabilities a walk follows before it stops: a device's list may loop. */
#define PCI_CAP_WALK_MAX 48

/* Offset of the first capability with this id after the capability at
 * offset `after` (0: from the start of the list), or 0 when none. One call
 * is bounded, so a looping list ends; a caller that iterates by passing
 * the last result back must bound its own loop by PCI_CAP_WALK_MAX too, or
 * a list that loops through a matching capability never ends. */
unsigned pci_find_cap(const struct pci_dev *d, uint8_t id, unsigned after);

/* A pointer to memory BAR i, mapped uncached. Returns NULL when BAR i is
 * not a memory BAR or the mapping failed. */
volatile void *pci_map_bar(const struct pci_dev *d, int i);

#endif
