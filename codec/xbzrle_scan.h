/* xbzrle_scan.h: the XBZRLE encoder core, instantiated once per SIMD path.
 *
 * Private to codec/xbzrle*.c. Include it after defining:
 *   SCAN_NAME(x)  pastes a path prefix onto x (e.g. avx2_##x)
 *   SCAN_ATTR     function attributes of the path (e.g. target("avx2"))
 *   SCAN_MASK     uint64_t f(const uint8_t *a, const uint8_t *b): bit i set
 *                 iff a[i] != b[i], for 64 bytes
 *   SCAN_SKIP     size_t f(a, b, from, end): the first 64-byte block at
 *                 from, from + 64, ... below end holding a difference, or
 *                 end (from and end are multiples of 64 apart)
 * It defines SCAN_NAME(encode) with xbzrle_encode()'s contract (len is
 * already checked against XBZRLE_MAX_LEN). A template rather than function
 * pointers so that the mask and skip inline into the run walker: it calls
 * them once per 64-byte block.
 */

/* The walker keeps the diff mask of the last 64-byte block it looked at,
 * so that finding the end of a run and the start of the next, usually in
 * the same block, costs a shift and a count, not another compare. */
struct SCAN_NAME(scan) {
	const uint8_t *old, *new;
	size_t len;    /* page length */
	size_t full;   /* len rounded down to 64: end of the whole blocks */
	size_t blk;    /* offset of the cached block, or SIZE_MAX */
	uint64_t mask; /* its diff mask; bits past len are 0 */
};

static inline __attribute__((always_inline)) SCAN_ATTR uint64_t
SCAN_NAME(block_mask)(struct SCAN_NAME(scan) *s, size_t b)
{
	if (b < s->full)
		return SCAN_MASK(s->old + b, s->new + b);
	return xbzrle_tail_mask(s->old + b, s->new + b, s->len - b);
}

/* First offset >= i whose byte differs, or len. */
static inline __attribute__((always_inline)) SCAN_ATTR size_t
SCAN_NAME(find_diff)(struct SCAN_NAME(scan) *s, size_t i)
{
	size_t b = i & ~(size_t)63;
	uint64_t m;

	if (b != s->blk) {
		s->blk = b;
		s->mask = SCAN_NAME(block_mask)(s, b);
	}
	m = s->mask >> (i & 63);
	if (m)
		return i + (size_t)__builtin_ctzll(m);
	b += 64;
	if (b < s->full) {
		b = SCAN_SKIP(s->old, s->new, b, s->full);
		if (b < s->full) {
			s->blk = b;
			s->mask = SCAN_MASK(s->old + b, s->new + b);
			return b + (size_t)__builtin_ctzll(s->mask);
		}
	}
	if (b < s->len) { /* the partial last block */
		s->blk = b;
		s->mask = xbzrle_tail_mask(s->old + b, s->new + b, s->len - b);
		if (s->mask)
			return b + (size_t)__builtin_ctzll(s->mask);
	}
	return s->len;
}

/* First offset >= i whose byte is unchanged, or len; i < len. */
static inline __attribute__((always_inline)) SCAN_ATTR size_t
SCAN_NAME(find_same)(struct SCAN_NAME(scan) *s, size_t i)
{
	size_t b = i & ~(size_t)63;
	uint64_t e;

	if (b != s->blk) {
		s->blk = b;
		s->mask = SCAN_NAME(block_mask)(s, b);
	}
	/* Bits past len read as "same", so a run that reaches the page's end
	 * stops there; hence the clamp. */
	e = ~s->mask >> (i & 63);
	while (!e) {
		b += 64;
		if (b >= s->len)
			return s->len;
		s->blk = b;
		s->mask = SCAN_NAME(block_mask)(s, b);
		e = ~s->mask;
		i = b;
	}
	i += (size_t)__builtin_ctzll(e);
	return i < s->len ? i : s->len;
}

static SCAN_ATTR int SCAN_NAME(encode)(const uint8_t *old, const uint8_t *new,
				       size_t len, uint8_t *dst, size_t dlen)
{
	struct SCAN_NAME(scan) s = {
		.old = old, .new = new, .len = len,
		.full = len & ~(size_t)63, .blk = SIZE_MAX, .mask = 0,
	};
	size_t d = 0, zrun, start, end, next, next_end;

	start = SCAN_NAME(find_diff)(&s, 0);
	if (start == len)
		return 0;
	zrun = start;
	end = SCAN_NAME(find_same)(&s, start);
	for (;;) {
		/* Look one run ahead: a gap of one or two unchanged bytes may
		 * be cheaper copied than encoded as a zrun plus a new nzrun
		 * header (xbzrle_merge_gap). */
		next = end < len ? SCAN_NAME(find_diff)(&s, end) : len;
		next_end = next < len ? SCAN_NAME(find_same)(&s, next) : len;
		if (next < len &&
		    xbzrle_merge_gap(end - start, next - end, next_end - next)) {
			end = next_end;
			continue;
		}
		d = xbzrle_put_runs(dst, d, dlen, zrun, new + start, end - start,
				    len - start);
		if (d == SIZE_MAX)
			return XBZRLE_EOVERFLOW;
		if (next >= len)
			return (int)d;
		zrun = next - end;
		start = next;
		end = next_end;
	}
}

#undef SCAN_NAME
#undef SCAN_ATTR
#undef SCAN_MASK
#undef SCAN_SKIP
