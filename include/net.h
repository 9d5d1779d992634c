/* net.h: the network subsystem as the rest of ferry sees it: a NIC found
 * on PCI, lwIP (NO_SYS) over it, and the console commands that use them.
 * Everything runs from the main loop; nothing here is interrupt driven. */
#ifndef FERRY_NET_H
#define FERRY_NET_H

/* Find a supported NIC (virtio-net, e1000), attach its driver, start lwIP
 * and register the network commands. Without a NIC the commands still
 * exist and say so. Requires pci_init and clock_init. Once. */
void net_init(void);

/* One pass of network work: take received frames into lwIP, run lwIP's
 * timers, advance running benchmarks, ring the transmit doorbell. Returns
 * non-zero when it did work (the main loop then does not halt). */
int net_poll(void);

/* Around the main loop's idle halt: net_wake_arm turns on the NIC's
 * receive interrupt so a frame ends the halt, and returns 1 when frames
 * already wait (do not halt); net_wake_disarm turns it off after. */
int net_wake_arm(void);
void net_wake_disarm(void);

#endif
