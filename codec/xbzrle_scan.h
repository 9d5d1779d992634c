/* xbzrle_scan.h: the XBZRLE encoder core, instantiated once per SIMD path.
 *
 * Private to codec/xbzrle*.c. Include it after defining:
 *   SCAN_NAME(x)  pastes a path prefix onto x (e.g. avx2_##x)
 *   SCAN_ATTR     function attributes of the path (e.g. target("avx2"))
 *   SCAN_MASK     uint64_t f(const uint8_t *a, const uint8_t *b): bit i set
 *                 iff a[i] != b[i], for 64 bytes
 *   SCAN_TRANS    (optional) void f(uint64_t *m, size_t nblk, uint8_t *e64):
 *                 SCAN_NAME(trans) for every block at once, in place: m[w]
 *                 becomes the block's transitions, e64[w] its end64;
 *                 used when SCAN_TRANS_FROM or more blocks changed
 *   SCAN_POPCNT   the number of set bits of a uint64_t
 *   SCAN_CTZ      the index of the lowest set bit of a uint64_t, any value
 *                 (ignored by the caller) for 0
 * It defines SCAN_NAME(encode) with xbzrle_encode()'s contract (len is
 * already checked against XBZRLE_MAX_LEN). A template rather than function
 * pointers so that every helper inlines into the path's encoder.
 */

/* For each of the nblk 64-byte blocks w: m[w] = its diff mask, and bit w
 * of nz[] set iff m[w] is not 0. Returns the OR of all masks. No branch
 * on the data. */
static inline __attribute__((always_inline)) SCAN_ATTR uint64_t
SCAN_NAME(masks)(const uint8_t *a, const uint8_t *b, size_t nblk, uint64_t *m,
		 uint64_t *nz)
{
	uint64_t any = 0;

	for (size_t w0 = 0; w0 < nblk; w0 += 64) {
		size_t n = nblk - w0 < 64 ? nblk - w0 : 64;
		uint64_t bits = 0;

		for (size_t k = 0; k < n; k++) {
			uint64_t x = SCAN_MASK(a + (w0 + k) * 64, b + (w0 + k) * 64);

			m[w0 + k] = x;
			any |= x;
			bits |= (uint64_t)(x != 0) << k;
		}
		nz[w0 / 64] = bits;
	}
	return any;
}

/* Block w's run boundaries, from its diff mask c and its neighbours' p
 * and q: bit i set iff byte 64(w - 1) + i starts a run or is the first
 * byte past one, after unchanged bytes whose neighbours both changed are
 * filled (they never cost more copied than split, see xbzrle_merge_gap).
 * Starts and ends never fall on the same byte. An end at byte 0 belongs
 * to the block before (a changed block): it is that block's *e64, the
 * end at its byte 64. */
static inline __attribute__((always_inline)) SCAN_ATTR uint64_t
SCAN_NAME(trans)(uint64_t p, uint64_t c, uint64_t q, uint64_t *e64)
{
	/* Filled: this block, the last byte of the one before, the first
	 * of the one after. */
	uint64_t f = c | (~c & (c << 1 | p >> 63) & (c >> 1 | q << 63));
	uint64_t p63 = (p >> 63 | (p >> 62 & c)) & 1;
	uint64_t q0 = (q | (c >> 63 & q >> 1)) & 1;

	*e64 = f >> 63 & ~q0;
	return (f & ~(f << 1 | p63)) | (~f & f << 1);
}

/* Write the runs [pos[2k], pos[2k + 1]) for k < nr, merging across the
 * gaps xbzrle_merge_gap picks. *done is the page offset just past the last
 * run written, *d the stream length. Unless last, the run nr - 1 is not
 * written if it is long enough to merge with one of the next batch:
 * returns the index of the first run not written (its start updated to
 * that of any run merged into it), or SIZE_MAX on overflow. */
static inline __attribute__((always_inline)) SCAN_ATTR size_t
SCAN_NAME(emit)(uint8_t *dst, size_t *d, size_t dlen, const uint8_t *new,
		size_t len, size_t *done, uint16_t *pos, size_t nr, bool last)
{
	size_t k, dd = *d, dn = *done;

	for (k = 0; k < nr; k++) {
		size_t s = pos[2 * k], e = pos[2 * k + 1], z = s - dn, n = e - s;

		/* Most runs of a sparse page: too short to merge (that needs
		 * 128 bytes), the zrun and a one-byte nzrun header in one
		 * 4-byte store and the bytes in one 16-byte move (bytes past
		 * the run are scratch; the room check keeps them below
		 * dlen). */
		if (__builtin_expect((n <= 16) & (len - s >= 16) & (dlen - dd >= 4 + 16), 1)) {
			size_t lz = 1 + (z >= 128);
			uint32_t h = xbzrle_uleb_bytes(z) | (uint32_t)n << (8 * lz);

			memcpy(dst + dd, &h, 4);
			memcpy(dst + dd + lz + 1, new + s, 16);
			dd += lz + 1 + n;
			dn = e;
			continue;
		}
		while (k + 1 < nr && pos[2 * k + 2] - e == 2 &&
		       xbzrle_merge_gap(e - s, 2, pos[2 * k + 3] - pos[2 * k + 2]))
			e = pos[2 * ++k + 1];
		if (!last && k + 1 >= nr && e - s >= 128) {
			pos[2 * k] = (uint16_t)s;
			break;
		}
		dd = xbzrle_put_runs(dst, dd, dlen, s - dn, new + s, e - s, len - s);
		if (dd == SIZE_MAX)
			return SIZE_MAX;
		dn = e;
	}
	*d = dd;
	*done = dn;
	return k;
}

/* Append base + the index of each set bit of x to out, in order; returns
 * how many. Writes in groups of 4, 12 and 8 (past the count they are
 * scratch, at most 24): a block's count varies page to page, and exact
 * loops mispredict their exit; these branches go the same way for most
 * blocks of a page (changed blocks of a sparse page hold one or two runs,
 * of a dense page several). */
static inline __attribute__((always_inline)) SCAN_ATTR size_t
SCAN_NAME(bits)(uint16_t *out, uint64_t x, size_t base)
{
	size_t c = (size_t)SCAN_POPCNT(x);

#define SCAN_BIT(j) (out[j] = (uint16_t)(base + (size_t)SCAN_CTZ(x)), x &= x - 1)
	SCAN_BIT(0); SCAN_BIT(1); SCAN_BIT(2); SCAN_BIT(3);
	if (__builtin_expect(c > 4, 0)) {
		SCAN_BIT(4); SCAN_BIT(5); SCAN_BIT(6); SCAN_BIT(7);
		SCAN_BIT(8); SCAN_BIT(9); SCAN_BIT(10); SCAN_BIT(11);
		SCAN_BIT(12); SCAN_BIT(13); SCAN_BIT(14); SCAN_BIT(15);
		if (c > 16) {
			SCAN_BIT(16); SCAN_BIT(17); SCAN_BIT(18); SCAN_BIT(19);
			SCAN_BIT(20); SCAN_BIT(21); SCAN_BIT(22); SCAN_BIT(23);
			for (size_t j = 24; j < c; j++)
				SCAN_BIT(j);
		}
	}
#undef SCAN_BIT
	return c;
}

/* The encoder, in two passes. First the masks pass takes every block's
 * diff mask, streaming both pages at memcmp's pace with no branch on the
 * data (a branch on where the changes are would mispredict a few times
 * per changed block and stall the loads behind it). Then, for the changed
 * blocks only, the mask with its one-byte unchanged holes filled (they
 * never cost more copied than split, see xbzrle_merge_gap) gives each
 * run's first byte and the byte just past it as bits; their indices go
 * into one list, alternately start and end, from which runs are written
 * in batches. The loops run once per changed block and once per run, with
 * no branch on how many runs a block holds. */
static SCAN_ATTR int SCAN_NAME(encode)(const uint8_t *old, const uint8_t *new,
				       size_t len, uint8_t *dst, size_t dlen)
{
	/* m[0] and m[nblk + 1] stay 0: a block's neighbours always exist. */
	uint64_t m[XBZRLE_MAX_BLOCKS + 2], nz[XBZRLE_MAX_BLOCKS / 64];
	/* Run boundaries: a batch, one block's worth (at most 44: runs and
	 * gaps of one and two bytes) and scratch. */
	uint16_t pos[2 * SCAN_BATCH + 64];
#ifdef SCAN_TRANS
	uint8_t e[XBZRLE_MAX_BLOCKS + 2];
	bool bulk;
#endif
	size_t nblk = (len + 63) / 64, full = len / 64, np = 0, d = 0, done = 0, k = 0;
	uint64_t any;

	any = SCAN_NAME(masks)(old, new, full, m + 1, nz);
	m[0] = 0;
	m[nblk + 1] = 0;
	if (full < nblk) {
		m[nblk] = xbzrle_tail_mask(old + full * 64, new + full * 64, len - full * 64);
		if (full % 64 == 0)
			nz[full / 64] = 0;
		nz[full / 64] |= (uint64_t)(m[nblk] != 0) << (full % 64);
		any |= m[nblk];
	}
	if (!any)
		return 0;
#ifdef SCAN_TRANS
	/* All blocks at once pays from a few changed blocks up. */
	for (size_t wi = 0; wi * 64 < nblk; wi++)
		k += (size_t)SCAN_POPCNT(nz[wi]);
	bulk = k >= SCAN_TRANS_FROM;
	if (bulk)
		SCAN_TRANS(m, nblk, e);
#endif
	for (size_t wi = 0; wi * 64 < nblk; wi++) {
		for (uint64_t bits = nz[wi]; bits; bits &= bits - 1) {
			size_t w = wi * 64 + (size_t)__builtin_ctzll(bits) + 1;
			size_t base = (w - 1) * 64;
			uint64_t t, e64;

#ifdef SCAN_TRANS
			if (bulk) {
				t = m[w];
				e64 = e[w];
			} else
#endif
			t = SCAN_NAME(trans)(m[w - 1], m[w], m[w + 1], &e64);
			np += SCAN_NAME(bits)(pos + np, t, base);
			pos[np] = (uint16_t)(base + 64);
			np += e64;
			if (__builtin_expect(np > 2 * SCAN_BATCH, 0)) {
				k = SCAN_NAME(emit)(dst, &d, dlen, new, len, &done, pos,
						    np / 2, false);
				if (k == SIZE_MAX)
					return XBZRLE_EOVERFLOW;
				for (size_t j = 2 * k; j < np; j++)
					pos[j - 2 * k] = pos[j];
				np -= 2 * k;
			}
		}
	}
	k = SCAN_NAME(emit)(dst, &d, dlen, new, len, &done, pos, np / 2, true);
	return k == SIZE_MAX ? XBZRLE_EOVERFLOW : (int)d;
}

#undef SCAN_NAME
#undef SCAN_ATTR
#undef SCAN_MASK
#undef SCAN_TRANS
#undef SCAN_TRANS_FROM
#undef SCAN_POPCNT
#undef SCAN_CTZ
