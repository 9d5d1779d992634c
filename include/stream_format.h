/* stream_format.h: the wire layout of ferry's migration stream, and nothing
 * else. docs/stream-format.md is the prose specification; this header is its
 * machine-checked half. Every multi-byte field is little-endian on the wire.
 * Structures are naturally aligned with explicit reserved fields (which a
 * writer sets to zero and a reader rejects when non-zero), and every size and
 * offset is pinned by a _Static_assert so the layout cannot drift.
 *
 * ferry runs only on x86-64, so readers and writers copy these structures to
 * and from the wire with memcpy; the assertion below makes a big-endian port
 * fail to compile rather than misread a stream.
 */
#ifndef FERRY_STREAM_FORMAT_H
#define FERRY_STREAM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "stream wire structs are little-endian and copied verbatim");

#define STREAM_ASSERT_SIZE(type, n) \
	_Static_assert(sizeof(struct type) == (n), #type " size")
#define STREAM_ASSERT_OFF(type, field, n) \
	_Static_assert(offsetof(struct type, field) == (n), #type "." #field " offset")

/* ------------------------------------------------------------------------
 * Stream header: the first 32 bytes of every stream, in both directions and
 * in saved files. Extended only by appending: hdr_len says how long this
 * stream's header is, and a reader skips the bytes it does not know.
 */
#define STREAM_MAGIC		0x47494d5952524546ULL /* "FERRYMIG" as bytes */
#define STREAM_VERSION		2u		/* 2: migration ids, READY/GO, verification after the switch-over */
#define STREAM_BYTE_ORDER_MARK	0x01020304u	/* reads as 04 03 02 01 */
#define STREAM_HDR_MAX_LEN	4096u		/* bytes; longer = corrupt */

/* Header flags. Unknown flags are an error: they could change the meaning of
 * everything that follows. */
#define STREAM_HDR_F_SAVED	(1u << 0)	/* a saved file: HELLO_ACK follows HELLO */
#define STREAM_HDR_F_KNOWN	(STREAM_HDR_F_SAVED)

struct stream_hdr {
	uint64_t magic;		/* STREAM_MAGIC */
	uint32_t version;	/* STREAM_VERSION */
	uint32_t hdr_len;	/* bytes of header, >= 32, multiple of 8 */
	uint32_t byte_order;	/* STREAM_BYTE_ORDER_MARK */
	uint32_t page_shift;	/* log2(page size); 12 is the only value today */
	uint32_t flags;		/* STREAM_HDR_F_* */
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_hdr, 32);
STREAM_ASSERT_OFF(stream_hdr, magic, 0);
STREAM_ASSERT_OFF(stream_hdr, version, 8);
STREAM_ASSERT_OFF(stream_hdr, hdr_len, 12);
STREAM_ASSERT_OFF(stream_hdr, byte_order, 16);
STREAM_ASSERT_OFF(stream_hdr, page_shift, 20);
STREAM_ASSERT_OFF(stream_hdr, flags, 24);
STREAM_ASSERT_OFF(stream_hdr, reserved, 28);

/* ------------------------------------------------------------------------
 * Records: header, body, zero padding to a multiple of 8, and, once a
 * HELLO_ACK accepting STREAM_CAP_CRC32C has passed, a CRC trailer.
 */
#define STREAM_PAGE_SHIFT	12u
#define STREAM_PAGE_SIZE	4096u		/* bytes */
#define STREAM_MAX_BODY		(4u << 20)	/* bytes; larger = corrupt */
#define STREAM_MAX_BATCH	512u		/* pages per PAGE_DATA / XBZRLE_PAGES */
#define STREAM_MAX_ZERO_BATCH	4096u		/* page numbers per ZERO_PAGES */
#define STREAM_MAX_GUEST_PAGES	(1ULL << 32)	/* 16 TiB of 4 KiB pages */
#define STREAM_MAX_VCPUS	256u
#define STREAM_MAX_XSAVE	65536u		/* bytes of XSAVE area */
#define STREAM_MAX_TEXT		1024u		/* bytes of NACK / ERROR text */

/* Bit 31 of a type marks it optional: a reader that does not know an
 * optional type skips it; an unknown mandatory type fails the stream. */
#define STREAM_TYPE_OPTIONAL	0x80000000u

enum stream_type {
	STREAM_HELLO		= 0x00000001,
	STREAM_HELLO_ACK	= 0x00000002,
	STREAM_GUEST_INFO	= 0x00000003,
	STREAM_PAGE_DATA	= 0x00000004,
	STREAM_ZERO_PAGES	= 0x00000005,
	STREAM_XBZRLE_PAGES	= 0x00000006,
	STREAM_CPU_STATE	= 0x00000007,
	STREAM_DIGEST		= 0x00000008,
	STREAM_END		= 0x00000009,
	STREAM_COMMIT		= 0x0000000a,
	STREAM_NACK		= 0x0000000b,
	STREAM_ERROR		= 0x0000000c,
	STREAM_CANCEL		= 0x0000000d,
	STREAM_DEVICE_STATE	= 0x0000000e,	/* the virtual platform's devices */
	STREAM_READY		= 0x0000000f,	/* destination: checked and loaded, waiting for GO */
	STREAM_GO		= 0x00000010,	/* source: run it (the point of no return) */
	STREAM_VERIFIED		= 0x00000011,	/* destination: the memory matched, keep running */
	STREAM_REGION_DIGEST	= 0x00000012,	/* source: hashes of its memory, region by region */
	STREAM_ITER_END		= 0x80000001,	/* optional: statistics only */
};

struct stream_rec_hdr {
	uint32_t type;		/* enum stream_type */
	uint32_t length;	/* body bytes, excluding padding and trailer */
};
STREAM_ASSERT_SIZE(stream_rec_hdr, 8);
STREAM_ASSERT_OFF(stream_rec_hdr, type, 0);
STREAM_ASSERT_OFF(stream_rec_hdr, length, 4);

/* CRC32C (Castagnoli, reflected, init and final xor 0xffffffff) over the
 * record header, body and padding. */
struct stream_rec_crc {
	uint32_t crc32c;
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_rec_crc, 8);
STREAM_ASSERT_OFF(stream_rec_crc, crc32c, 0);
STREAM_ASSERT_OFF(stream_rec_crc, reserved, 4);

/* ------------------------------------------------------------------------
 * Negotiation.
 */
#define STREAM_CAP_CRC32C	(1ull << 0)	/* per-record CRC trailer */
#define STREAM_CAP_XSAVE	(1ull << 1)	/* CPU_STATE may carry an XSAVE area */
#define STREAM_CAP_ITER_STATS	(1ull << 2)	/* ITER_END records are wanted */
/* The guest is an operating system on ferry's PC platform (the kvm64-class
 * CPU model, 8259 PIC, 8254 PIT, 16550 UART, CMOS clock): DEVICE_STATE
 * records carry its devices. A destination grants it only when it can run
 * such a guest; a source with one stops before any page when refused. */
#define STREAM_CAP_PLATFORM_PC	(1ull << 3)
/* Verification after the switch-over: END comes without a DIGEST; after
 * GO the source sends REGION_DIGEST records of its stopped memory, the
 * destination compares them with its own (taken as the guest runs) and
 * answers VERIFIED or NACK (docs/migration.md). Without it the DIGEST
 * precedes END and is checked before READY. */
#define STREAM_CAP_VERIFY_AFTER	(1ull << 4)
#define STREAM_CAP_KNOWN	(STREAM_CAP_CRC32C | STREAM_CAP_XSAVE | STREAM_CAP_ITER_STATS | \
				 STREAM_CAP_PLATFORM_PC | STREAM_CAP_VERIFY_AFTER)

#define STREAM_CODEC_RAW	(1u << 0)	/* PAGE_DATA; every peer has it */
#define STREAM_CODEC_ZERO	(1u << 1)	/* ZERO_PAGES */
#define STREAM_CODEC_XBZRLE	(1u << 2)	/* XBZRLE_PAGES, QEMU's encoding */

#define STREAM_DIGEST_XXH3_128	(1u << 0)	/* the only digest today */

/* Why a destination refused a HELLO (HELLO_ACK.status). */
enum stream_refusal {
	STREAM_REFUSE_NONE	= 0,	/* accepted */
	STREAM_REFUSE_PAGE_SIZE	= 1,
	STREAM_REFUSE_GUEST_SIZE = 2,	/* guest does not fit here */
	STREAM_REFUSE_DIGEST	= 3,	/* no digest in common */
	STREAM_REFUSE_CODEC	= 4,	/* no RAW codec offered */
	STREAM_REFUSE_BUSY	= 5,	/* already receiving a guest */
	STREAM_REFUSE_POLICY	= 6,	/* operator said no */
	STREAM_REFUSE_PLATFORM	= 7,	/* cannot run the guest's platform (STREAM_CAP_PLATFORM_PC) */
};

/* HELLO, source to destination: what the source offers. */
struct stream_hello {
	uint32_t page_size;		/* bytes; 4096 */
	uint32_t codecs;		/* STREAM_CODEC_* offered */
	uint64_t guest_pages;		/* guest memory size in pages */
	uint64_t caps;			/* STREAM_CAP_* offered */
	uint64_t xbzrle_cache_bytes;	/* XBZRLE cache budget the source will use */
	uint32_t digests;		/* STREAM_DIGEST_* offered */
	uint32_t reserved;
	char software[32];		/* NUL-padded implementation name */
	uint64_t mig_id;		/* this migration's id: every control record carries it */
};
STREAM_ASSERT_SIZE(stream_hello, 80);
STREAM_ASSERT_OFF(stream_hello, page_size, 0);
STREAM_ASSERT_OFF(stream_hello, codecs, 4);
STREAM_ASSERT_OFF(stream_hello, guest_pages, 8);
STREAM_ASSERT_OFF(stream_hello, caps, 16);
STREAM_ASSERT_OFF(stream_hello, xbzrle_cache_bytes, 24);
STREAM_ASSERT_OFF(stream_hello, digests, 32);
STREAM_ASSERT_OFF(stream_hello, reserved, 36);
STREAM_ASSERT_OFF(stream_hello, software, 40);
STREAM_ASSERT_OFF(stream_hello, mig_id, 72);

/* HELLO_ACK, destination to source: the intersection, or a refusal. */
struct stream_hello_ack {
	uint32_t status;		/* enum stream_refusal; 0 = accepted */
	uint32_t codecs;		/* agreed codecs (includes RAW) */
	uint64_t guest_pages;		/* echoed */
	uint64_t caps;			/* agreed capabilities */
	uint64_t xbzrle_cache_bytes;	/* echoed when XBZRLE agreed, else 0 */
	uint32_t digest;		/* the one digest chosen */
	uint32_t page_size;		/* echoed */
	char reason[64];		/* NUL-padded text when refused */
	uint64_t mig_id;		/* HELLO.mig_id, echoed */
};
STREAM_ASSERT_SIZE(stream_hello_ack, 112);
STREAM_ASSERT_OFF(stream_hello_ack, status, 0);
STREAM_ASSERT_OFF(stream_hello_ack, codecs, 4);
STREAM_ASSERT_OFF(stream_hello_ack, guest_pages, 8);
STREAM_ASSERT_OFF(stream_hello_ack, caps, 16);
STREAM_ASSERT_OFF(stream_hello_ack, xbzrle_cache_bytes, 24);
STREAM_ASSERT_OFF(stream_hello_ack, digest, 32);
STREAM_ASSERT_OFF(stream_hello_ack, page_size, 36);
STREAM_ASSERT_OFF(stream_hello_ack, reason, 40);
STREAM_ASSERT_OFF(stream_hello_ack, mig_id, 104);

/* ------------------------------------------------------------------------
 * The guest.
 */
enum stream_guest_mode {
	STREAM_MODE_NONE = 0,	/* no CPU state: memory only */
	STREAM_MODE_VMX	 = 1,
	STREAM_MODE_SVM	 = 2,
	STREAM_MODE_PTE	 = 3,	/* ring-3 guest under ferry's page tables */
};

struct stream_guest_info {
	uint64_t guest_pages;	/* must equal HELLO.guest_pages */
	uint32_t nr_vcpus;	/* 1..STREAM_MAX_VCPUS */
	uint32_t mode;		/* enum stream_guest_mode */
	uint64_t tsc_khz;	/* source TSC frequency, 0 if unknown */
	char workload[32];	/* NUL-padded workload name */
	char name[32];		/* NUL-padded guest name */
};
STREAM_ASSERT_SIZE(stream_guest_info, 88);
STREAM_ASSERT_OFF(stream_guest_info, guest_pages, 0);
STREAM_ASSERT_OFF(stream_guest_info, nr_vcpus, 8);
STREAM_ASSERT_OFF(stream_guest_info, mode, 12);
STREAM_ASSERT_OFF(stream_guest_info, tsc_khz, 16);
STREAM_ASSERT_OFF(stream_guest_info, workload, 24);
STREAM_ASSERT_OFF(stream_guest_info, name, 56);

/* PAGE_DATA: batch header, then u64 pfn[count], then count whole pages.
 * ZERO_PAGES: batch header, then u64 pfn[count].
 * XBZRLE_PAGES: batch header, then count entries, each a stream_xbzrle_entry
 * followed by enc_len encoded bytes and zero padding to 8.
 * Page numbers within one batch are strictly increasing. */
struct stream_batch {
	uint32_t count;
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_batch, 8);
STREAM_ASSERT_OFF(stream_batch, count, 0);
STREAM_ASSERT_OFF(stream_batch, reserved, 4);

struct stream_xbzrle_entry {
	uint64_t pfn;
	uint32_t enc_len;	/* 1..page size */
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_xbzrle_entry, 16);
STREAM_ASSERT_OFF(stream_xbzrle_entry, pfn, 0);
STREAM_ASSERT_OFF(stream_xbzrle_entry, enc_len, 8);
STREAM_ASSERT_OFF(stream_xbzrle_entry, reserved, 12);

/* ITER_END: the end of one pass over dirty memory, with what it sent. */
struct stream_iter_end {
	uint32_t iteration;	/* 0 = bulk pass */
	uint32_t reserved;
	uint64_t pages_dirty;	/* pages found dirty at this pass's harvest */
	uint64_t pages_raw;
	uint64_t pages_zero;
	uint64_t pages_xbzrle;
	uint64_t pages_skipped;	/* dirty but unchanged (XBZRLE length 0) */
	uint64_t xbzrle_overflow;
	uint64_t xbzrle_cache_miss;
	uint64_t bytes;		/* stream bytes this pass */
	uint64_t duration_ns;
};
STREAM_ASSERT_SIZE(stream_iter_end, 80);
STREAM_ASSERT_OFF(stream_iter_end, iteration, 0);
STREAM_ASSERT_OFF(stream_iter_end, reserved, 4);
STREAM_ASSERT_OFF(stream_iter_end, pages_dirty, 8);
STREAM_ASSERT_OFF(stream_iter_end, pages_raw, 16);
STREAM_ASSERT_OFF(stream_iter_end, pages_zero, 24);
STREAM_ASSERT_OFF(stream_iter_end, pages_xbzrle, 32);
STREAM_ASSERT_OFF(stream_iter_end, pages_skipped, 40);
STREAM_ASSERT_OFF(stream_iter_end, xbzrle_overflow, 48);
STREAM_ASSERT_OFF(stream_iter_end, xbzrle_cache_miss, 56);
STREAM_ASSERT_OFF(stream_iter_end, bytes, 64);
STREAM_ASSERT_OFF(stream_iter_end, duration_ns, 72);

/* ------------------------------------------------------------------------
 * DEVICE_STATE: the devices of the platform STREAM_CAP_PLATFORM_PC names
 * (and the vCPU event state CPU_STATE has no room for): this header, then
 * length bytes in the platform's own versioned layout, which the platform
 * checks field by field when it loads them (kernel/vm/vm_state.c). Sent
 * once, after the last page and before CPU_STATE.
 */
#define STREAM_DEVICE_STATE_V1	1u
#define STREAM_PLATFORM_PC_V1	1u	/* model: ferry's PC platform, layout 1 */
#define STREAM_MAX_DEVICE_STATE	65536u	/* bytes */

struct stream_device_state {
	uint32_t version;	/* STREAM_DEVICE_STATE_V1 */
	uint32_t model;		/* STREAM_PLATFORM_PC_V1 */
	uint32_t length;	/* bytes of device state following */
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_device_state, 16);
STREAM_ASSERT_OFF(stream_device_state, version, 0);
STREAM_ASSERT_OFF(stream_device_state, model, 4);
STREAM_ASSERT_OFF(stream_device_state, length, 8);
STREAM_ASSERT_OFF(stream_device_state, reserved, 12);

/* ------------------------------------------------------------------------
 * CPU_STATE: one record per vCPU; the fixed part below, then xsave_len bytes
 * of XSAVE area (standard format, as XSAVE writes it), then padding.
 */
#define STREAM_CPU_STATE_V1	1u

/* Segment attributes use the VMX access-rights layout (Intel SDM Vol. 3C
 * 24.4.1): type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15,
 * unusable 16. SVM's compressed form converts losslessly. */
struct stream_segment {
	uint16_t selector;
	uint16_t reserved0;
	uint32_t limit;		/* bytes - 1, byte granular */
	uint32_t attr;
	uint32_t reserved1;
	uint64_t base;
};
STREAM_ASSERT_SIZE(stream_segment, 24);
STREAM_ASSERT_OFF(stream_segment, selector, 0);
STREAM_ASSERT_OFF(stream_segment, reserved0, 2);
STREAM_ASSERT_OFF(stream_segment, limit, 4);
STREAM_ASSERT_OFF(stream_segment, attr, 8);
STREAM_ASSERT_OFF(stream_segment, reserved1, 12);
STREAM_ASSERT_OFF(stream_segment, base, 16);

struct stream_dtable {
	uint16_t limit;
	uint16_t reserved0;
	uint32_t reserved1;
	uint64_t base;
};
STREAM_ASSERT_SIZE(stream_dtable, 16);
STREAM_ASSERT_OFF(stream_dtable, limit, 0);
STREAM_ASSERT_OFF(stream_dtable, reserved0, 2);
STREAM_ASSERT_OFF(stream_dtable, reserved1, 4);
STREAM_ASSERT_OFF(stream_dtable, base, 8);

/* Indexes into gpr[]: the x86 register encoding order. */
enum stream_gpr {
	STREAM_RAX, STREAM_RCX, STREAM_RDX, STREAM_RBX,
	STREAM_RSP, STREAM_RBP, STREAM_RSI, STREAM_RDI,
	STREAM_R8, STREAM_R9, STREAM_R10, STREAM_R11,
	STREAM_R12, STREAM_R13, STREAM_R14, STREAM_R15,
	STREAM_NR_GPRS
};

/* Indexes into seg[]: the x86 segment register encoding order, then LDTR
 * and TR. */
enum stream_seg {
	STREAM_ES, STREAM_CS, STREAM_SS, STREAM_DS, STREAM_FS, STREAM_GS,
	STREAM_LDTR, STREAM_TR,
	STREAM_NR_SEGS
};

struct stream_cpu_state {
	uint32_t version;	/* STREAM_CPU_STATE_V1 */
	uint32_t vcpu;		/* < GUEST_INFO.nr_vcpus */
	uint64_t gpr[STREAM_NR_GPRS];
	uint64_t rip;
	uint64_t rflags;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	struct stream_segment seg[STREAM_NR_SEGS];
	struct stream_dtable gdtr;
	struct stream_dtable idtr;
	uint64_t dr[6];		/* DR0..DR3, DR6, DR7 */
	/* MSRs */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, tsc, tsc_aux, debugctl;
	uint64_t xcr0;
	uint32_t xsave_len;	/* bytes of XSAVE area following; 0 = none */
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_cpu_state, 584);
STREAM_ASSERT_OFF(stream_cpu_state, version, 0);
STREAM_ASSERT_OFF(stream_cpu_state, vcpu, 4);
STREAM_ASSERT_OFF(stream_cpu_state, gpr, 8);
STREAM_ASSERT_OFF(stream_cpu_state, rip, 136);
STREAM_ASSERT_OFF(stream_cpu_state, rflags, 144);
STREAM_ASSERT_OFF(stream_cpu_state, cr0, 152);
STREAM_ASSERT_OFF(stream_cpu_state, cr2, 160);
STREAM_ASSERT_OFF(stream_cpu_state, cr3, 168);
STREAM_ASSERT_OFF(stream_cpu_state, cr4, 176);
STREAM_ASSERT_OFF(stream_cpu_state, cr8, 184);
STREAM_ASSERT_OFF(stream_cpu_state, efer, 192);
STREAM_ASSERT_OFF(stream_cpu_state, seg, 200);
STREAM_ASSERT_OFF(stream_cpu_state, gdtr, 392);
STREAM_ASSERT_OFF(stream_cpu_state, idtr, 408);
STREAM_ASSERT_OFF(stream_cpu_state, dr, 424);
STREAM_ASSERT_OFF(stream_cpu_state, star, 472);
STREAM_ASSERT_OFF(stream_cpu_state, lstar, 480);
STREAM_ASSERT_OFF(stream_cpu_state, cstar, 488);
STREAM_ASSERT_OFF(stream_cpu_state, sfmask, 496);
STREAM_ASSERT_OFF(stream_cpu_state, kernel_gs_base, 504);
STREAM_ASSERT_OFF(stream_cpu_state, sysenter_cs, 512);
STREAM_ASSERT_OFF(stream_cpu_state, sysenter_esp, 520);
STREAM_ASSERT_OFF(stream_cpu_state, sysenter_eip, 528);
STREAM_ASSERT_OFF(stream_cpu_state, pat, 536);
STREAM_ASSERT_OFF(stream_cpu_state, tsc, 544);
STREAM_ASSERT_OFF(stream_cpu_state, tsc_aux, 552);
STREAM_ASSERT_OFF(stream_cpu_state, debugctl, 560);
STREAM_ASSERT_OFF(stream_cpu_state, xcr0, 568);
STREAM_ASSERT_OFF(stream_cpu_state, xsave_len, 576);
STREAM_ASSERT_OFF(stream_cpu_state, reserved, 580);

/* ------------------------------------------------------------------------
 * Switch-over and verdict.
 */

/* DIGEST: XXH3-128 (seed 0) of all guest memory, pages 0..guest_pages-1 in
 * order, as if concatenated. */
struct stream_digest {
	uint32_t algo;		/* STREAM_DIGEST_XXH3_128 */
	uint32_t reserved;
	uint64_t guest_pages;	/* pages covered: HELLO.guest_pages */
	uint64_t low64;		/* XXH128_hash_t.low64 */
	uint64_t high64;	/* XXH128_hash_t.high64 */
};
STREAM_ASSERT_SIZE(stream_digest, 32);
STREAM_ASSERT_OFF(stream_digest, algo, 0);
STREAM_ASSERT_OFF(stream_digest, reserved, 4);
STREAM_ASSERT_OFF(stream_digest, guest_pages, 8);
STREAM_ASSERT_OFF(stream_digest, low64, 16);
STREAM_ASSERT_OFF(stream_digest, high64, 24);

/* REGION_DIGEST: XXH3-128 (seed 0) of each region of STREAM_REGION_PAGES
 * pages (the last one may be shorter), for regions first..first+count-1,
 * then count struct stream_region_hash. The records cover every region of
 * the guest in order; the last one ends the stream. */
#define STREAM_REGION_PAGES	512u		/* 2 MiB: one stage-2 page directory entry */
#define STREAM_MAX_REGIONS	4096u		/* per record */
struct stream_region_digest {
	uint32_t algo;		/* STREAM_DIGEST_XXH3_128 */
	uint32_t region_pages;	/* STREAM_REGION_PAGES */
	uint64_t first;		/* first region covered */
	uint32_t count;		/* 1..STREAM_MAX_REGIONS */
	uint32_t reserved;
};
STREAM_ASSERT_SIZE(stream_region_digest, 24);
STREAM_ASSERT_OFF(stream_region_digest, algo, 0);
STREAM_ASSERT_OFF(stream_region_digest, region_pages, 4);
STREAM_ASSERT_OFF(stream_region_digest, first, 8);
STREAM_ASSERT_OFF(stream_region_digest, count, 16);
STREAM_ASSERT_OFF(stream_region_digest, reserved, 20);

struct stream_region_hash {
	uint64_t low64, high64;
};
STREAM_ASSERT_SIZE(stream_region_hash, 16);

/* END, READY, GO, COMMIT, VERIFIED and CANCEL: the migration id alone
 * (HELLO.mig_id; a reader refuses any other). */
struct stream_ctl {
	uint64_t mig_id;
};
STREAM_ASSERT_SIZE(stream_ctl, 8);
STREAM_ASSERT_OFF(stream_ctl, mig_id, 0);

/* NACK and ERROR: a code and the migration id (0 when sent before the
 * HELLO was read), then 0..STREAM_MAX_TEXT bytes of UTF-8 text (no NUL),
 * filling the rest of the body. */
struct stream_reason {
	uint32_t code;		/* enum stream_nack or enum stream_wire_error */
	uint32_t reserved;
	uint64_t mig_id;
};
STREAM_ASSERT_SIZE(stream_reason, 16);
STREAM_ASSERT_OFF(stream_reason, code, 0);
STREAM_ASSERT_OFF(stream_reason, reserved, 4);
STREAM_ASSERT_OFF(stream_reason, mig_id, 8);

enum stream_nack {
	STREAM_NACK_DIGEST	= 1,	/* memory does not match the DIGEST */
	STREAM_NACK_CPU_STATE	= 2,	/* CPU state missing or unusable */
	STREAM_NACK_INCOMPLETE	= 3,	/* END before everything needed */
	STREAM_NACK_INTERNAL	= 4,	/* destination failed on its own */
	STREAM_NACK_START	= 5,	/* after GO: the guest could not start here; it never ran */
	STREAM_NACK_REGIONS	= 6,	/* after COMMIT: regions differ; the guest is stopped and discarded here */
};

enum stream_wire_error {
	STREAM_WERR_PROTOCOL	= 1,	/* the peer's stream was malformed */
	STREAM_WERR_RESOURCES	= 2,	/* out of memory or similar */
	STREAM_WERR_TIMEOUT	= 3,
	STREAM_WERR_INTERNAL	= 4,
	STREAM_WERR_OPERATOR	= 5,	/* cancelled or refused by an operator */
};

#endif /* FERRY_STREAM_FORMAT_H */
