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

static inline __attribute__((always_inline)) SCAN_ATTR uint64_t
SCAN_NAME(mask_at)(const uint8_t *old, const uint8_t *new, size_t len,
		   size_t blk)
{
	size_t b = blk * 64;

	if (b + 64 <= len)
		return SCAN_MASK(old + b, new + b);
	return b < len ? xbzrle_tail_mask(old + b, new + b, len - b) : 0;
}

/* The run writer's state: the last maximal run (after hole filling) is
 * held back one step so that a two-byte gap between two long runs can
 * still be merged (xbzrle.c, "merge rules"). */
struct SCAN_NAME(out) {
	uint8_t *dst;
	size_t d, dlen;
	size_t done;       /* page offset just past the last run written */
	size_t ps, pe;     /* the held run [ps, pe), if held */
	bool held;
};

/* Write the held run. Returns false on overflow. */
static inline __attribute__((always_inline)) SCAN_ATTR bool
SCAN_NAME(flush)(struct SCAN_NAME(out) *o, const uint8_t *new, size_t len)
{
	o->d = xbzrle_put_runs(o->dst, o->d, o->dlen, o->ps - o->done, new + o->ps,
			       o->pe - o->ps, len - o->ps);
	o->done = o->pe;
	return o->d != SIZE_MAX;
}

/* A run [s, e) found: merge it into the held one or write that. */
static inline __attribute__((always_inline)) SCAN_ATTR bool
SCAN_NAME(run)(struct SCAN_NAME(out) *o, const uint8_t *new, size_t len,
	       size_t s, size_t e)
{
	if (o->held) {
		if (xbzrle_merge_gap(o->pe - o->ps, s - o->pe, e - s)) {
			o->pe = e;
			return true;
		}
		if (!SCAN_NAME(flush)(o, new, len))
			return false;
	}
	o->held = true;
	o->ps = s;
	o->pe = e;
	return true;
}

/* The encoder. Skips unchanged blocks with SCAN_SKIP until the first
 * change, then walks the page a block at a time: the block's diff mask,
 * with one-byte unchanged holes filled (they never cost more copied than
 * split, see xbzrle_merge_gap), gives the run boundaries as its bit
 * transitions, visited with count-trailing-zeros: no per-byte loop and few
 * unpredictable branches, which is what dense pages need. Long unchanged
 * stretches after the first change go back to SCAN_SKIP. */
static SCAN_ATTR int SCAN_NAME(encode)(const uint8_t *old, const uint8_t *new,
				       size_t len, uint8_t *dst, size_t dlen)
{
	struct SCAN_NAME(out) o = {.dst = dst, .dlen = dlen};
	size_t nblk = (len + 63) / 64, full = len / 64, w, start = 0;
	uint64_t prev = 0, cur, nxt, carry = 0;
	bool in_run = false;

	w = SCAN_SKIP(old, new, 0, full * 64) / 64;
	cur = SCAN_NAME(mask_at)(old, new, len, w);
	if (!cur)
		return 0; /* w is the tail block or past it: identical */
	for (;;) {
		uint64_t m, t;

		nxt = w + 1 < nblk ? SCAN_NAME(mask_at)(old, new, len, w + 1) : 0;
		/* Fill unchanged bytes whose neighbours both changed. */
		m = cur | (~cur & ((cur << 1) | (prev >> 63)) & ((cur >> 1) | (nxt << 63)));
		/* Bit k of t: byte k's state differs from byte k-1's. */
		t = m ^ ((m << 1) | carry);
		carry = m >> 63;
		/* Transitions alternate start, end, start...: take them in
		 * pairs, so the only data-dependent branch is a run crossing
		 * into the next block. */
		while (t) {
			size_t pos = w * 64 + (size_t)__builtin_ctzll(t);

			t &= t - 1;
			if (!in_run) {
				start = pos;
				if (!t) {
					in_run = true;
					break;
				}
				pos = w * 64 + (size_t)__builtin_ctzll(t);
				t &= t - 1;
			}
			in_run = false;
			if (!SCAN_NAME(run)(&o, new, len, start, pos))
				return XBZRLE_EOVERFLOW;
		}
		if (++w >= nblk)
			break;
		prev = cur;
		cur = nxt;
		/* Between runs and in an unchanged block: skip ahead. */
		if (!cur && !in_run && w + 1 < full) {
			size_t nb = SCAN_SKIP(old, new, (w + 1) * 64, full * 64) / 64;

			if (nb > w + 1) {
				w = nb - 1;
				prev = 0;
			}
		}
	}
	if (in_run && !SCAN_NAME(run)(&o, new, len, start, len))
		return XBZRLE_EOVERFLOW;
	if (!SCAN_NAME(flush)(&o, new, len))
		return XBZRLE_EOVERFLOW;
	return (int)o.d;
}

#undef SCAN_NAME
#undef SCAN_ATTR
#undef SCAN_MASK
#undef SCAN_SKIP
