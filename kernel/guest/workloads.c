/* workloads.c: the built-in guest workloads (64-bit, freestanding,
 * position independent). Each reports through hypercalls only and
 * addresses guest memory through boot->mem_base (hypercall.h). */
#pragma GCC visibility push(hidden)
#include <stdint.h>

#include "hypercall.h"

void hc_gate(void);
uint64_t guest_main(struct guest_boot *boot);

#define PAGE 4096ull
#define SYNTHETIC_BYTES (16ull << 20) /* the XBZRLE patch's 16 MiB buffer */
#define SYNTHETIC_STRIDE 1024         /* bytes between incremented bytes */
#define STAMP_PAGES_MAX 4096          /* pages stamped (16 MiB) */
#define HOT_PER_MILLE 900             /* hotset: share of writes to the hot set */
#define HOT_FRACTION 64               /* hotset: 1/64 of the pages are hot */

static inline int64_t hc(uint64_t nr, uint64_t a, uint64_t b, uint64_t c)
{
	int64_t ret;
	/* The gate preserves every register but RAX; the call pushes on the
	 * stack, so the guest is built with -mno-red-zone. */
	__asm__ volatile("call hc_gate" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "memory");
	return ret;
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t slen(const char *s)
{
	uint64_t n = 0;
	while (s[n])
		n++;
	return n;
}

static void print(const char *s)
{
	hc(HC_PRINT, (uint64_t)(uintptr_t)s, slen(s), 0);
}

/* Append the decimal or hex form of v to buf at *n. */
static void put_num(char *buf, uint64_t *n, uint64_t v, int hex)
{
	char tmp[20];
	int k = 0;
	do {
		uint64_t d = hex ? v & 15 : v % 10;
		tmp[k++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v = hex ? v >> 4 : v / 10;
	} while (v);
	if (hex) {
		buf[(*n)++] = '0';
		buf[(*n)++] = 'x';
	}
	while (k)
		buf[(*n)++] = tmp[--k];
}

static void put_str(char *buf, uint64_t *n, const char *s)
{
	while (*s)
		buf[(*n)++] = *s++;
}

static void counter(uint64_t idx, uint64_t v)
{
	hc(HC_COUNTER, idx, v, 0);
}

static uint64_t data_pages(const struct guest_boot *b)
{
	return (b->mem_size - GUEST_DATA_GPA) / PAGE;
}

__attribute__((noreturn)) static void wl_synthetic(struct guest_boot *b)
{
	volatile uint8_t *buf = (volatile uint8_t *)(uintptr_t)(b->mem_base + GUEST_DATA_GPA);
	uint64_t len = b->mem_size - GUEST_DATA_GPA;
	if (len > SYNTHETIC_BYTES)
		len = SYNTHETIC_BYTES;
	for (uint64_t pass = 1;; pass++) {
		for (uint64_t off = 0; off < len; off += SYNTHETIC_STRIDE)
			buf[off]++;
		counter(HC_CTR_PASSES, pass);
		counter(HC_CTR_WRITES, pass * (len / PAGE));
	}
}

__attribute__((noreturn)) static void wl_sparse(struct guest_boot *b, int hot)
{
	volatile uint8_t *data = (volatile uint8_t *)(uintptr_t)(b->mem_base + GUEST_DATA_GPA);
	uint64_t pages = data_pages(b), hot_pages = pages / HOT_FRACTION ? pages / HOT_FRACTION : 1;
	uint64_t s = b->seed | 1, writes = 0, rate = b->rate ? b->rate : 1;
	uint64_t next = (uint64_t)hc(HC_TIME_NS, 0, 0, 0);
	for (;;) {
		for (uint64_t i = 0; i < rate; i++) {
			uint64_t r = rng_next(&s), page;
			if (hot && r % 1000 < HOT_PER_MILLE)
				page = (r >> 10) % hot_pages;
			else
				page = (r >> 10) % pages;
			data[page * PAGE + (r >> 40) % PAGE] = (uint8_t)r;
		}
		writes += rate;
		counter(HC_CTR_PASSES, writes);
		counter(HC_CTR_WRITES, writes);
		/* rate writes per millisecond: wait out the rest of this one. */
		next += 1000000;
		while ((uint64_t)hc(HC_TIME_NS, 0, 0, 0) < next)
			hc(HC_YIELD, 0, 0, 0);
	}
}

__attribute__((noreturn)) static void wl_stamp(struct guest_boot *b)
{
	volatile uint64_t *data = (volatile uint64_t *)(uintptr_t)(b->mem_base + GUEST_DATA_GPA);
	uint64_t pages = data_pages(b), errors = 0;
	if (pages > STAMP_PAGES_MAX)
		pages = STAMP_PAGES_MAX;
	const uint64_t words = PAGE / 8;
	for (uint64_t pass = 1;; pass++) {
		/* Every stamp must still hold the previous pass's number (first
		 * and last word of each page), whatever happened in between:
		 * pause, resume, migration. */
		for (uint64_t p = 0; p < pages; p++) {
			uint64_t a = data[p * words], z = data[p * words + words - 1];
			if (a != pass - 1 || z != pass - 1) {
				if (errors++ < 4) {
					char msg[HC_PRINT_MAX];
					uint64_t n = 0;
					put_str(msg, &n, "stamp: MISMATCH page ");
					put_num(msg, &n, p, 0);
					put_str(msg, &n, " holds ");
					put_num(msg, &n, a, 0);
					put_str(msg, &n, "/");
					put_num(msg, &n, z, 0);
					put_str(msg, &n, ", expected ");
					put_num(msg, &n, pass - 1, 0);
					msg[n] = 0;
					print(msg);
				}
				counter(HC_CTR_ERRORS, errors);
			}
			data[p * words] = pass;
			data[p * words + words - 1] = pass;
		}
		counter(HC_CTR_PASSES, pass);
		counter(HC_CTR_WRITES, pass * pages);
	}
}

static uint64_t wl_dirtytest(struct guest_boot *b)
{
	volatile struct guest_mailbox *mb =
		(volatile struct guest_mailbox *)(uintptr_t)(b->mem_base + GUEST_MAILBOX_GPA);
	volatile uint8_t *mem = (volatile uint8_t *)(uintptr_t)b->mem_base;
	uint64_t sink = 0;
	for (uint32_t round = 0;; round = mb->round) {
		hc(HC_TEST_SYNC, round, 0, 0);
		if (mb->done)
			return sink & 0; /* reads kept live, status 0 */
		uint32_t nw = mb->nwrite, nr = mb->nread;
		if (nw + nr > GUEST_MAILBOX_PAGES_MAX)
			return 1;
		for (uint32_t i = 0; i < nw; i++)
			mem[(uint64_t)mb->pages[i] * PAGE + (i * 64) % PAGE] = (uint8_t)(round + i);
		for (uint32_t i = nw; i < nw + nr; i++)
			sink += mem[(uint64_t)mb->pages[i] * PAGE + (i * 64) % PAGE];
	}
}

static uint64_t wl_wild(struct guest_boot *b)
{
	uint64_t target = (b->mem_size + (2ull << 20) - 1) & ~((2ull << 20) - 1);
	char msg[HC_PRINT_MAX];
	uint64_t n = 0;
	put_str(msg, &n, "wild: writing to guest-physical ");
	put_num(msg, &n, target, 1);
	put_str(msg, &n, ", outside guest memory");
	msg[n] = 0;
	print(msg);
	volatile uint64_t *p;
	if (b->own_tables) {
		/* Point the 2 MiB page at VA 2 MiB (PD 0, entry 1) at the
		 * first 2 MiB past the end of guest memory. */
		volatile uint64_t *pd = (volatile uint64_t *)(uintptr_t)(GUEST_PT_GPA + 2 * PAGE);
		pd[1] = target | 0x83; /* P RW PS */
		__asm__ volatile("invlpg (%0)" ::"r"(2ull << 20) : "memory");
		p = (volatile uint64_t *)(uintptr_t)(2ull << 20);
	} else {
		p = (volatile uint64_t *)(uintptr_t)(b->mem_base + target);
	}
	*p = 0x57494c44; /* "WILD" */
	print("wild: the write went through (it must not)");
	return 2;
}

/* SSE state must survive exits: ferry's own code uses SSE between them.
 * The guest is built -mgeneral-regs-only, so only these asm blocks touch
 * the XMM registers and MXCSR. */
#define XMM_ALL(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) \
	op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15)
#define XMM_LOAD(n) "movdqu " #n "*16(%0), %%xmm" #n "\n\t"
#define XMM_STORE(n) "movdqu %%xmm" #n ", " #n "*16(%0)\n\t"
#define ABI_MXCSR 0x7f80u /* all exceptions masked, round toward zero */

static uint64_t abi_fpu(void)
{
	uint8_t in[256], out[256];
	uint32_t mx_in = ABI_MXCSR, mx_out = 0;
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)(i * 7 + 3), out[i] = 0;
	__asm__ volatile(XMM_ALL(XMM_LOAD) "ldmxcsr %1" ::"r"(in), "m"(mx_in) : "memory");
	for (int i = 0; i < 20; i++) {
		print("abi: fpu round");
		hc(HC_YIELD, 0, 0, 0);
	}
	__asm__ volatile(XMM_ALL(XMM_STORE) "stmxcsr %1" ::"r"(out), "m"(mx_out) : "memory");
	for (int i = 0; i < 256; i++)
		if (in[i] != out[i])
			return 0;
	return mx_out == ABI_MXCSR;
}

static uint64_t wl_abi(struct guest_boot *b)
{
	uint64_t ok = 0, n = 0;
	static const char text[] = "abi: print";
	n++, ok += hc(HC_PRINT, (uint64_t)(uintptr_t)text, sizeof(text) - 1, 0) == 0;
	n++, ok += hc(HC_PRINT, (uint64_t)(uintptr_t)text, HC_PRINT_MAX + 1, 0) == HC_EINVAL;
	n++, ok += hc(HC_PRINT, b->mem_base + b->mem_size - 4, 8, 0) == HC_EINVAL;
	n++, ok += hc(HC_PRINT, b->mem_base - 4096, 8, 0) == HC_EINVAL;
	n++, ok += hc(HC_COUNTER, HC_COUNTERS, 1, 0) == HC_EINVAL;
	n++, ok += hc(HC_TEST_SYNC, 0, 0, 0) == HC_EINVAL;
	n++, ok += hc(999, 0, 0, 0) == HC_ENOSYS;
	int64_t t0 = hc(HC_TIME_NS, 0, 0, 0), t1 = hc(HC_TIME_NS, 0, 0, 0);
	n++, ok += t0 > 0 && t1 >= t0;
	n++, ok += abi_fpu();
	char msg[HC_PRINT_MAX];
	uint64_t k = 0;
	put_str(msg, &k, "abi: ");
	put_num(msg, &k, ok, 0);
	put_str(msg, &k, " of ");
	put_num(msg, &k, n, 0);
	put_str(msg, &k, " checks passed");
	msg[k] = 0;
	print(msg);
	__asm__ volatile("ud2"); /* a guest fault: ferry must stop the guest, not itself */
	return 4;
}

uint64_t guest_main(struct guest_boot *b)
{
	if (b->magic != GUEST_BOOT_MAGIC)
		return 3;
	switch (b->workload) {
	case GUEST_WL_SYNTHETIC:
		wl_synthetic(b);
	case GUEST_WL_SPARSE:
		wl_sparse(b, 0);
	case GUEST_WL_HOTSET:
		wl_sparse(b, 1);
	case GUEST_WL_STAMP:
		wl_stamp(b);
	case GUEST_WL_DIRTYTEST:
		return wl_dirtytest(b);
	case GUEST_WL_WILD:
		return wl_wild(b);
	case GUEST_WL_ABI:
		return wl_abi(b);
	case GUEST_WL_PORTIO:
		print("portio: writing port 0x80");
		__asm__ volatile("outb %%al, $0x80" ::"a"(0x42));
		print("portio: the write went through (it must not)");
		return 5;
	case GUEST_WL_INVD:
		print("invd: invalidating caches without write-back");
		__asm__ volatile("invd" ::: "memory");
		print("invd: the INVD went through (it must not)");
		return 6;
	case GUEST_WL_EXITBENCH:
		for (uint64_t i = 0;; i++)
			counter(HC_CTR_AUX, i);
	default:
		for (;;)
			hc(HC_YIELD, 0, 0, 0);
	}
}
