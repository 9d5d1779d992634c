/* mig_tcp.h: the migration transport: one lwIP TCP connection (raw API,
 * NO_SYS), opened by connecting (source) or by accepting exactly one
 * connection on a listening port (destination), then moved by the
 * migration engine from the main loop. Nothing here blocks: sends take
 * what the send buffer has room for, receives hand out what has arrived.
 *
 * One connection at a time (ferry migrates one guest). Bytes received are
 * kept as lwIP pbufs until consumed; the receive window reopens only as
 * the engine consumes them, so a slow destination slows its source
 * instead of losing data. */
#ifndef FERRY_MIG_TCP_H
#define FERRY_MIG_TCP_H

#include <stddef.h>
#include <stdint.h>

enum mig_tcp_state {
	MIG_TCP_IDLE,       /* nothing open */
	MIG_TCP_LISTENING,  /* waiting for the one connection */
	MIG_TCP_CONNECTING, /* connect sent, no answer yet */
	MIG_TCP_OPEN,       /* connected: send and receive */
	MIG_TCP_FAILED,     /* reset, refused, aborted: mig_tcp_why() says */
};

/* Parse a migration URI "tcp:ADDR:PORT". ADDR is a dotted quad; "0" means
 * any address (allowed only when listen is non-zero). Returns 0 with
 * *ip (network byte order, 0 = any) and *port, or -1 after printing a
 * precise "error: ..." line. Needs nothing of the network. */
int mig_tcp_parse_uri(const char *uri, int listen, uint32_t *ip, uint16_t *port);

/* Checks the console commands share: a NIC and (need_addr) an address.
 * Prints why and returns -1 when missing. */
int mig_tcp_require(int need_addr);

/* The interface's IPv4 address (network byte order); 0 if none. */
uint32_t mig_tcp_local_ip(void);

/* Listen on ip:port (ip 0: any) for one connection. Returns 0, or -1
 * after printing why (busy, port in use, out of pcbs). The listener
 * closes once it has accepted; later connections are refused. */
int mig_tcp_listen(uint32_t ip, uint16_t port);

/* Connect to ip:port. Returns 0 (state CONNECTING), or -1 after printing
 * why. */
int mig_tcp_connect(uint32_t ip, uint16_t port);

enum mig_tcp_state mig_tcp_state(void);

/* Why the connection failed or ended ("" while it has not). */
const char *mig_tcp_why(void);

/* "ADDR:PORT" of the peer (or of the listener while listening). */
const char *mig_tcp_peer(void);

/* Queue up to len bytes for sending (copied). Returns the bytes taken (0
 * when the send buffer is full or the connection is not open). */
size_t mig_tcp_send(const void *buf, size_t len);

/* Push queued bytes out now (after a batch of mig_tcp_send). */
void mig_tcp_flush(void);

/* Bytes handed to mig_tcp_send and not yet acknowledged by the peer. */
size_t mig_tcp_unacked(void);

/* Bytes handed to mig_tcp_send that TCP has not sent yet (queued behind
 * the peer's window or the congestion window). */
size_t mig_tcp_unsent(void);

/* Bytes the peer acknowledged since the connection opened. */
uint64_t mig_tcp_acked(void);

/* The received bytes not yet consumed: *p points at the first contiguous
 * piece (valid until mig_tcp_consume or the next main-loop pass). Returns
 * its length, 0 when nothing waits. */
size_t mig_tcp_peek(const uint8_t **p);

/* Drop the first n bytes mig_tcp_peek showed and reopen the window. */
void mig_tcp_consume(size_t n);

/* The peer closed its side (after everything it sent was received). */
int mig_tcp_peer_closed(void);

/* Close the connection (or the listener) and drop unconsumed bytes.
 * Queued output is still sent by lwIP after this (a final verdict is
 * not lost). Back to IDLE. */
void mig_tcp_close(void);

/* Abort: reset the connection now, nothing more is sent. Back to IDLE. */
void mig_tcp_abort(void);

#endif
