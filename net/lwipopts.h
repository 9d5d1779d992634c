/* lwipopts.h: lwIP 2.1.3 configuration for ferry. NO_SYS=1 raw API, IPv4
 * only, one Ethernet netif, driven by the main loop alone (no threads, no
 * interrupts touch lwIP), pools in .bss. Sized for bulk TCP between two
 * ferry instances: window scaling on, a 512 KiB receive window and send
 * buffer. Sizes are bytes unless a unit is given. */
#ifndef FERRY_LWIPOPTS_H
#define FERRY_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0 /* nothing preempts lwIP */
#define LWIP_SOCKET 0
#define SO_REUSE 1 /* SOF_REUSEADDR: migrate_incoming re-listens while an old connection sits in TIME_WAIT */
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_SINGLE_NETIF 1

#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 1 /* ping's echo replies */
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1

/* Memory: the lwIP heap holds PBUF_RAM (every TCP segment written with
 * copy, so the whole send buffer plus headers); the pbuf pool holds
 * received frames until the application takes them. */
#define MEM_ALIGNMENT 8
#define MEM_SIZE (6 * 1024 * 1024)
#define MEMP_NUM_PBUF 2048 /* PBUF_ROM/REF headers: one per segment of data written without copying */
#define MEMP_NUM_RAW_PCB 4
#define MEMP_NUM_UDP_PCB 4
#define MEMP_NUM_TCP_PCB 16
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_REASSDATA 8
#define MEMP_NUM_FRAG_PBUF 16
#define MEMP_NUM_ARP_QUEUE 32
#define PBUF_POOL_SIZE 1024 /* 1536-byte buffers: 1.5 MiB, > TCP_WND of frames */
#define PBUF_POOL_BUFSIZE 1536
/* Room in front of every frame lwIP builds for a device header (virtio's
 * 12-byte virtio_net_hdr), so a driver can send the frame in place
 * (nic_ops.tx_submit) instead of copying it (net/netif.c). */
#define PBUF_LINK_ENCAPSULATION_HLEN 12

/* TCP for bulk transfer. */
#define TCP_MSS 1460
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 4                          /* window units of 16 bytes: up to 1 MiB */
#define TCP_WND (1020 * 1024)                    /* receive window (<= 0xffff << TCP_RCV_SCALE) */
#define TCP_SND_BUF (2048 * 1024)                /* unacknowledged + unsent bytes per pcb */
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS) /* segments */
#define MEMP_NUM_TCP_SEG (TCP_SND_QUEUELEN + 64)
#define TCP_SNDLOWAT (16 * TCP_MSS)              /* sent callback's "room again" mark */
#define TCP_OVERSIZE TCP_MSS
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_SACK_OUT 1
/* The receiver coalesces segments (net/lro.h), so one ACK may cover many:
 * slow start credits all of them (tools/lwip-patches/0001). */
#define TCP_SLOW_START_ABC_SEGS 64
/* A full-sized or coalesced segment is ACKed at once, not after lwIP's
 * delayed-ACK wait (tools/lwip-patches/0002 says why; on QEMU's socket
 * link the wait cost four 40 ms stalls at the start of every connection). */
#define TCP_ACK_NOW_SEGS 1
#define LWIP_TCP_TIMESTAMPS 0
#define TCP_LISTEN_BACKLOG 0

/* Checksums: generated in software, and verified on every received
 * packet (lwIP's defaults, spelled out because they are a requirement). */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_ICMP 1
/* Sums by net/inet_sum.c (64-bit words), and TCP data summed while
 * tcp_write copies it, so the segment is not read again to send it. */
#define LWIP_CHKSUM lwip_port_chksum
#define LWIP_CHECKSUM_ON_COPY 1
#define LWIP_CHKSUM_COPY(dst, src, len) lwip_port_chksum_copy((dst), (src), (len))
/* Frame and segment copies (pbuf_take, pbuf_copy_partial) by net_copy:
 * see net/inet_sum.h for why not newlib's memcpy. */
void net_copy(void *dst, const void *src, __SIZE_TYPE__ len);
#define MEMCPY(dst, src, len) net_copy((dst), (src), (len))

/* A TCP packet longer than the MTU goes to a NIC that segments it
 * whole instead of being fragmented (tools/lwip-patches/0003; net/netif.c
 * decides). */
struct netif;
struct pbuf;
int net_ip4_seg_offload(const struct netif *nif, const struct pbuf *p, unsigned char proto);
#define LWIP_HOOK_IP4_SEG_OFFLOAD(netif, p, proto) net_ip4_seg_offload((netif), (p), (proto))

/* Counters for `info net` (no printing from lwIP itself). */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define LWIP_STATS_LARGE 1 /* 32-bit counters */
#define MIB2_STATS 0

#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_HOSTNAME 0

#endif
