/* stream_check.c: every check a migration stream record must pass before the
 * reader hands it out (docs/stream-format.md sections 3-8): the stream
 * header, the record header before anything is buffered, the CRC trailer,
 * padding and reserved fields, each type's body layout, page numbers against
 * the guest size, and record order. Each failure names the record, its type
 * and what was wrong, and leaves the reader failed.
 */
#include "stream_priv.h"

#include "crc32c.h"

/* ------------------------------------------------------------------------
 * Stream header
 */

int stream_check_hdr(struct stream_reader *r)
{
	struct stream_hdr *h = &r->hdr;

	memcpy(h, r->small, sizeof(*h));
	if (h->magic != STREAM_MAGIC)
		return stream_rfail(r, STREAM_E_MAGIC, "header: bad magic 0x%016llx",
				    (unsigned long long)h->magic);
	if (h->byte_order != STREAM_BYTE_ORDER_MARK)
		return stream_rfail(r, STREAM_E_HEADER, "header: byte-order mark 0x%08x, want 0x%08x",
				    h->byte_order, STREAM_BYTE_ORDER_MARK);
	if (h->version != STREAM_VERSION)
		return stream_rfail(r, STREAM_E_VERSION, "header: version %u, this reader knows %u",
				    h->version, STREAM_VERSION);
	if (h->hdr_len < sizeof(*h) || h->hdr_len > STREAM_HDR_MAX_LEN || (h->hdr_len & 7))
		return stream_rfail(r, STREAM_E_HEADER, "header: length %u not in 32..%u step 8",
				    h->hdr_len, STREAM_HDR_MAX_LEN);
	if (h->page_shift != STREAM_PAGE_SHIFT)
		return stream_rfail(r, STREAM_E_HEADER, "header: page shift %u, only %u supported",
				    h->page_shift, STREAM_PAGE_SHIFT);
	if (h->flags & ~STREAM_HDR_F_KNOWN)
		return stream_rfail(r, STREAM_E_HEADER, "header: unknown flags 0x%08x",
				    h->flags & ~STREAM_HDR_F_KNOWN);
	if (h->reserved)
		return stream_rfail(r, STREAM_E_RESERVED, "header: reserved field 0x%08x", h->reserved);
	if ((h->flags & STREAM_HDR_F_SAVED) && r->dir != STREAM_DIR_MIGRATION)
		return stream_rfail(r, STREAM_E_HEADER, "header: saved-file flag on a reply stream");
	r->have_hdr = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Record checks
 */

static bool stream_type_known(uint32_t type)
{
	switch (type) {
	case STREAM_HELLO: case STREAM_HELLO_ACK: case STREAM_GUEST_INFO:
	case STREAM_PAGE_DATA: case STREAM_ZERO_PAGES: case STREAM_XBZRLE_PAGES:
	case STREAM_CPU_STATE: case STREAM_DIGEST: case STREAM_END:
	case STREAM_COMMIT: case STREAM_NACK: case STREAM_ERROR:
	case STREAM_CANCEL: case STREAM_ITER_END: case STREAM_DEVICE_STATE:
	case STREAM_READY: case STREAM_GO: case STREAM_VERIFIED: case STREAM_REGION_DIGEST:
		return true;
	}
	return false;
}

/* Body length that a fixed-size type must have; -1 for variable types. */
static long stream_fixed_len(uint32_t type)
{
	switch (type) {
	case STREAM_HELLO:	return sizeof(struct stream_hello);
	case STREAM_HELLO_ACK:	return sizeof(struct stream_hello_ack);
	case STREAM_GUEST_INFO:	return sizeof(struct stream_guest_info);
	case STREAM_ITER_END:	return sizeof(struct stream_iter_end);
	case STREAM_DIGEST:	return sizeof(struct stream_digest);
	case STREAM_END:
	case STREAM_READY:
	case STREAM_GO:
	case STREAM_COMMIT:
	case STREAM_VERIFIED:
	case STREAM_CANCEL:	return sizeof(struct stream_ctl);
	}
	return -1;
}

/* Checks on the record header alone, before anything is buffered. */
int stream_check_rec_hdr(struct stream_reader *r)
{
	uint32_t t = r->rh.type, len = r->rh.length;
	long fixed = stream_fixed_len(t);

	if (len > STREAM_MAX_BODY)
		return RFAIL(r, STREAM_E_TOO_LONG, "length %u above maximum %u", len, STREAM_MAX_BODY);
	if (!stream_type_known(t) && !(t & STREAM_TYPE_OPTIONAL))
		return RFAIL(r, STREAM_E_UNKNOWN, "unknown mandatory type 0x%08x", t);
	if (fixed >= 0 && len != (unsigned long)fixed)
		return RFAIL(r, STREAM_E_LENGTH, "length %u, want %ld", len, fixed);
	return 0;
}

/* Page numbers of a batch: inside the guest, strictly increasing. */
static int stream_check_pfn(struct stream_reader *r, uint32_t i, uint64_t pfn, uint64_t *prev)
{
	if (pfn >= r->hello.guest_pages)
		return RFAIL(r, STREAM_E_RANGE, "page %llu beyond guest size %llu",
			     (unsigned long long)pfn, (unsigned long long)r->hello.guest_pages);
	if (i > 0 && pfn <= *prev)
		return RFAIL(r, STREAM_E_ORDER, "page %llu after page %llu: not increasing",
			     (unsigned long long)pfn, (unsigned long long)*prev);
	*prev = pfn;
	return 0;
}

static int stream_check_batch(struct stream_reader *r, const uint8_t *b, uint32_t len,
			      uint32_t max, uint32_t *count)
{
	struct stream_batch bh;

	if (len < sizeof(bh))
		return RFAIL(r, STREAM_E_LENGTH, "length %u below batch header", len);
	memcpy(&bh, b, sizeof(bh));
	if (bh.reserved)
		return RFAIL(r, STREAM_E_RESERVED, "batch reserved field 0x%08x", bh.reserved);
	if (bh.count == 0 || bh.count > max)
		return RFAIL(r, STREAM_E_RANGE, "count %u not in 1..%u", bh.count, max);
	*count = bh.count;
	return 0;
}

static int stream_check_pages(struct stream_reader *r, const uint8_t *b, uint32_t len,
			      size_t per_page, uint32_t max)
{
	uint32_t n;
	uint64_t prev = 0;
	int rc;

	if ((rc = stream_check_batch(r, b, len, max, &n)) < 0)
		return rc;
	if (len != sizeof(struct stream_batch) + (size_t)n * per_page)
		return RFAIL(r, STREAM_E_LENGTH, "length %u, %u pages need %zu", len, n,
			     sizeof(struct stream_batch) + (size_t)n * per_page);
	for (uint32_t i = 0; i < n; i++)
		if ((rc = stream_check_pfn(r, i, stream_ld64(b + 8 + 8 * (size_t)i), &prev)) < 0)
			return rc;
	return 0;
}

static int stream_check_xbzrle(struct stream_reader *r, const uint8_t *b, uint32_t len)
{
	uint32_t n;
	uint64_t prev = 0;
	size_t off = sizeof(struct stream_batch);
	int rc;

	if ((rc = stream_check_batch(r, b, len, STREAM_MAX_BATCH, &n)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		struct stream_xbzrle_entry e;
		if (len - off < sizeof(e))
			return RFAIL(r, STREAM_E_LENGTH, "entry %u header beyond length %u", i, len);
		memcpy(&e, b + off, sizeof(e));
		off += sizeof(e);
		if (e.reserved)
			return RFAIL(r, STREAM_E_RESERVED, "entry %u reserved field 0x%08x", i, e.reserved);
		if (e.enc_len == 0 || e.enc_len > STREAM_PAGE_SIZE)
			return RFAIL(r, STREAM_E_RANGE, "page %llu encoded length %u not in 1..%u",
				     (unsigned long long)e.pfn, e.enc_len, STREAM_PAGE_SIZE);
		size_t padded = (e.enc_len + 7u) & ~7u;
		if (len - off < padded)
			return RFAIL(r, STREAM_E_LENGTH, "page %llu: %u encoded bytes beyond length %u",
				     (unsigned long long)e.pfn, e.enc_len, len);
		for (size_t k = e.enc_len; k < padded; k++)
			if (b[off + k])
				return RFAIL(r, STREAM_E_RESERVED, "page %llu: padding not zero",
					     (unsigned long long)e.pfn);
		if ((rc = stream_check_pfn(r, i, e.pfn, &prev)) < 0)
			return rc;
		off += padded;
	}
	if (off != len)
		return RFAIL(r, STREAM_E_LENGTH, "%zu bytes after %u entries", len - off, n);
	return 0;
}

static int stream_check_device(struct stream_reader *r, const uint8_t *b, uint32_t len)
{
	struct stream_device_state d;

	if (len < sizeof(d))
		return RFAIL(r, STREAM_E_LENGTH, "length %u below %zu", len, sizeof(d));
	memcpy(&d, b, sizeof(d));
	if (d.version != STREAM_DEVICE_STATE_V1)
		return RFAIL(r, STREAM_E_VERSION, "version %u, this reader knows %u", d.version,
			     STREAM_DEVICE_STATE_V1);
	if (d.model != STREAM_PLATFORM_PC_V1)
		return RFAIL(r, STREAM_E_RANGE, "platform model %u, this reader knows %u", d.model,
			     STREAM_PLATFORM_PC_V1);
	if (d.length > STREAM_MAX_DEVICE_STATE || len != sizeof(d) + d.length)
		return RFAIL(r, STREAM_E_LENGTH, "length %u with device state length %u", len, d.length);
	if (d.reserved)
		return RFAIL(r, STREAM_E_RESERVED, "reserved field 0x%08x", d.reserved);
	if (!(r->ack.caps & STREAM_CAP_PLATFORM_PC))
		return RFAIL(r, STREAM_E_ORDER, "device state but the platform was not agreed");
	return 0;
}

static int stream_check_cpu(struct stream_reader *r, const uint8_t *b, uint32_t len)
{
	struct stream_cpu_state c;

	if (len < sizeof(c))
		return RFAIL(r, STREAM_E_LENGTH, "length %u below %zu", len, sizeof(c));
	memcpy(&c, b, sizeof(c));
	if (c.version != STREAM_CPU_STATE_V1)
		return RFAIL(r, STREAM_E_VERSION, "version %u, this reader knows %u",
			     c.version, STREAM_CPU_STATE_V1);
	if (c.vcpu >= r->nr_vcpus)
		return RFAIL(r, STREAM_E_RANGE, "vcpu %u beyond %u vcpus", c.vcpu, r->nr_vcpus);
	if (c.xsave_len > STREAM_MAX_XSAVE || len != sizeof(c) + c.xsave_len)
		return RFAIL(r, STREAM_E_LENGTH, "length %u with XSAVE length %u", len, c.xsave_len);
	if (c.xsave_len && !(r->ack.caps & STREAM_CAP_XSAVE))
		return RFAIL(r, STREAM_E_ORDER, "XSAVE area but xsave was not agreed");
	bool bad = c.reserved || c.gdtr.reserved0 || c.gdtr.reserved1 ||
		   c.idtr.reserved0 || c.idtr.reserved1;
	for (int i = 0; i < STREAM_NR_SEGS; i++)
		bad |= c.seg[i].reserved0 || c.seg[i].reserved1;
	if (bad)
		return RFAIL(r, STREAM_E_RESERVED, "reserved field not zero");
	return 0;
}

static int stream_check_reason(struct stream_reader *r, const uint8_t *b, uint32_t len)
{
	struct stream_reason why;

	if (len < sizeof(why) || len - sizeof(why) > STREAM_MAX_TEXT)
		return RFAIL(r, STREAM_E_LENGTH, "length %u not in %zu..%zu", len, sizeof(why),
			     sizeof(why) + STREAM_MAX_TEXT);
	memcpy(&why, b, sizeof(why));
	if (why.reserved)
		return RFAIL(r, STREAM_E_RESERVED, "reserved field 0x%08x", why.reserved);
	return 0;
}

static int stream_check_hello(struct stream_reader *r, const uint8_t *b)
{
	memcpy(&r->hello, b, sizeof(r->hello));
	if (r->hello.reserved)
		return RFAIL(r, STREAM_E_RESERVED, "reserved field 0x%08x", r->hello.reserved);
	if (r->hello.page_size != STREAM_PAGE_SIZE)
		return RFAIL(r, STREAM_E_RANGE, "page size %u, header says %u",
			     r->hello.page_size, STREAM_PAGE_SIZE);
	if (r->hello.mig_id == 0)
		return RFAIL(r, STREAM_E_RANGE, "migration id 0 (never used: 0 marks a record sent before the HELLO)");
	if (r->hello.guest_pages == 0 || r->hello.guest_pages > STREAM_MAX_GUEST_PAGES)
		return RFAIL(r, STREAM_E_RANGE, "guest size %llu pages not in 1..%llu",
			     (unsigned long long)r->hello.guest_pages,
			     (unsigned long long)STREAM_MAX_GUEST_PAGES);
	r->have_hello = true;
	return 0;
}

static int stream_check_ack(struct stream_reader *r, const uint8_t *b)
{
	struct stream_hello_ack a;

	memcpy(&a, b, sizeof(a));
	if (a.status == STREAM_REFUSE_NONE) {
		if (a.page_size != STREAM_PAGE_SIZE)
			return RFAIL(r, STREAM_E_RANGE, "page size %u", a.page_size);
		if (!(a.codecs & STREAM_CODEC_RAW))
			return RFAIL(r, STREAM_E_RANGE, "accepted without the RAW codec");
		if (a.digest != STREAM_DIGEST_XXH3_128)
			return RFAIL(r, STREAM_E_RANGE, "digest 0x%x not supported", a.digest);
		if (r->have_hello) {
			if (a.guest_pages != r->hello.guest_pages)
				return RFAIL(r, STREAM_E_RANGE, "guest size %llu, HELLO said %llu",
					     (unsigned long long)a.guest_pages,
					     (unsigned long long)r->hello.guest_pages);
			if ((a.codecs & ~r->hello.codecs) || (a.caps & ~r->hello.caps) ||
			    !(a.digest & r->hello.digests))
				return RFAIL(r, STREAM_E_RANGE, "agrees to more than HELLO offered");
			if (a.mig_id != r->hello.mig_id)
				return RFAIL(r, STREAM_E_RANGE, "migration id %016llx, HELLO said %016llx",
					     (unsigned long long)a.mig_id, (unsigned long long)r->hello.mig_id);
			/* Only a saved file has both: it ends at END, so the region
			 * digests that would replace its DIGEST never come. */
			if (a.caps & STREAM_CAP_VERIFY_AFTER)
				return RFAIL(r, STREAM_E_RANGE, "verification after the switch-over in a saved stream");
		} else {
			/* Reply stream: the ack sets the guest size for page checks. */
			r->hello.guest_pages = a.guest_pages;
		}
	}
	stream_reader_set_agreed(r, &a);
	return 0;
}

/* The number of REGION_DIGEST regions covering the guest. */
static uint64_t stream_regions(const struct stream_reader *r)
{
	return (r->hello.guest_pages + STREAM_REGION_PAGES - 1) / STREAM_REGION_PAGES;
}

/* Verification after the switch-over agreed (no DIGEST, REGION_DIGEST after GO). */
static bool stream_live_verify(const struct stream_reader *r)
{
	return r->have_ack && (r->ack.caps & STREAM_CAP_VERIFY_AFTER);
}

/* The reply stream: HELLO_ACK, READY, COMMIT and (verification after the
 * switch-over) VERIFIED, or a NACK at any point after the HELLO_ACK. */
static int stream_check_reply_order(struct stream_reader *r, bool *final)
{
	uint32_t t = r->rh.type;

	if (!r->have_ack)
		return t == STREAM_HELLO_ACK ? 0 : RFAIL(r, STREAM_E_ORDER, "reply must start with HELLO_ACK");
	switch (t) {
	case STREAM_NACK:
		*final = true;
		return 0;
	case STREAM_READY:
		if (r->seen_ready)
			return RFAIL(r, STREAM_E_ORDER, "second READY");
		r->seen_ready = true;
		return 0;
	case STREAM_COMMIT:
		if (!r->seen_ready)
			return RFAIL(r, STREAM_E_ORDER, "COMMIT before READY");
		/* Not final when VERIFIED is still to come: a second one is not. */
		if (r->seen_commit)
			return RFAIL(r, STREAM_E_ORDER, "second COMMIT");
		r->seen_commit = true;
		*final = !stream_live_verify(r);
		return 0;
	case STREAM_VERIFIED:
		if (!stream_live_verify(r))
			return RFAIL(r, STREAM_E_ORDER, "VERIFIED without verification after the switch-over");
		if (!r->seen_commit)
			return RFAIL(r, STREAM_E_ORDER, "VERIFIED before COMMIT");
		*final = true;
		return 0;
	}
	return RFAIL(r, STREAM_E_ORDER, "not valid in a reply stream");
}

/* Is this record allowed here? Sets the reader's phase flags. */
static int stream_check_order(struct stream_reader *r, bool *final)
{
	uint32_t t = r->rh.type;
	bool saved = r->hdr.flags & STREAM_HDR_F_SAVED;

	*final = false;
	if (t == STREAM_CANCEL && r->seen_go)
		return RFAIL(r, STREAM_E_ORDER, "CANCEL after GO, past the point of no return");
	if (t == STREAM_ERROR || t == STREAM_CANCEL) {
		*final = true;
		return 0;
	}
	if (r->dir == STREAM_DIR_REPLY)
		return stream_check_reply_order(r, final);

	if (!r->have_hello)
		return t == STREAM_HELLO ? 0 : RFAIL(r, STREAM_E_ORDER, "stream must start with HELLO");
	if (t == STREAM_HELLO)
		return RFAIL(r, STREAM_E_ORDER, "second HELLO");
	if (t == STREAM_COMMIT || t == STREAM_NACK || t == STREAM_READY || t == STREAM_VERIFIED)
		return RFAIL(r, STREAM_E_ORDER, "destination's record in a migration stream");
	if (saved && !r->have_ack)
		return t == STREAM_HELLO_ACK ? 0
		       : RFAIL(r, STREAM_E_ORDER, "saved stream needs HELLO_ACK after HELLO");
	if (t == STREAM_HELLO_ACK)
		return RFAIL(r, STREAM_E_ORDER, "HELLO_ACK %s", saved ? "repeated"
			     : "in a live migration stream");
	if (!r->have_ack)
		return RFAIL(r, STREAM_E_ORDER, "before the HELLO_ACK (stream_reader_set_agreed)");
	if (r->ack.status != STREAM_REFUSE_NONE)
		return RFAIL(r, STREAM_E_ORDER, "after a refused HELLO_ACK");

	/* After END: GO (live only), then the region digests. */
	if (r->seen_go) {
		if (t != STREAM_REGION_DIGEST)
			return RFAIL(r, STREAM_E_ORDER, "after GO only REGION_DIGEST may follow");
		return 0;
	}
	if (r->seen_end) {
		if (t != STREAM_GO)
			return RFAIL(r, STREAM_E_ORDER, "after END only GO or CANCEL may follow");
		r->seen_go = true;
		*final = !stream_live_verify(r);
		return 0;
	}
	switch (t) {
	case STREAM_GO:
	case STREAM_REGION_DIGEST:
		return RFAIL(r, STREAM_E_ORDER, "before END");
	case STREAM_GUEST_INFO:
		if (r->seen_guest_info)
			return RFAIL(r, STREAM_E_ORDER, "second GUEST_INFO");
		return 0;
	case STREAM_END:
		if (!r->seen_digest && !stream_live_verify(r))
			return RFAIL(r, STREAM_E_ORDER, "END without DIGEST");
		r->seen_end = true;
		*final = saved;
		break;
	case STREAM_DIGEST:
		if (stream_live_verify(r))
			return RFAIL(r, STREAM_E_ORDER, "DIGEST, but verification after the switch-over was agreed");
		if (r->seen_digest)
			return RFAIL(r, STREAM_E_ORDER, "second DIGEST");
		break;
	case STREAM_ZERO_PAGES:
		if (!(r->ack.codecs & STREAM_CODEC_ZERO))
			return RFAIL(r, STREAM_E_ORDER, "zero codec was not agreed");
		break;
	case STREAM_XBZRLE_PAGES:
		if (!(r->ack.codecs & STREAM_CODEC_XBZRLE))
			return RFAIL(r, STREAM_E_ORDER, "xbzrle codec was not agreed");
		break;
	}
	if (!r->seen_guest_info)
		return RFAIL(r, STREAM_E_ORDER, "before GUEST_INFO");
	if (r->seen_digest && (t == STREAM_PAGE_DATA || t == STREAM_ZERO_PAGES ||
			       t == STREAM_XBZRLE_PAGES))
		return RFAIL(r, STREAM_E_ORDER, "page record after DIGEST");
	return 0;
}

/* The migration id a control record must carry: the HELLO's (migration
 * stream) or the HELLO_ACK's (reply); 0 before either. */
static uint64_t stream_mig_id(const struct stream_reader *r)
{
	if (r->dir == STREAM_DIR_REPLY)
		return r->have_ack ? r->ack.mig_id : 0;
	return r->have_hello ? r->hello.mig_id : 0;
}

static int stream_check_mig_id(struct stream_reader *r, uint64_t id)
{
	if (id != stream_mig_id(r))
		return RFAIL(r, STREAM_E_RANGE, "migration id %016llx, this stream's is %016llx",
			     (unsigned long long)id, (unsigned long long)stream_mig_id(r));
	return 0;
}

static int stream_check_regions(struct stream_reader *r, const uint8_t *b, uint32_t len, bool *final)
{
	struct stream_region_digest d;

	if (len < sizeof(d))
		return RFAIL(r, STREAM_E_LENGTH, "length %u below %zu", len, sizeof(d));
	memcpy(&d, b, sizeof(d));
	if (d.reserved)
		return RFAIL(r, STREAM_E_RESERVED, "reserved field 0x%08x", d.reserved);
	if (d.algo != r->ack.digest)
		return RFAIL(r, STREAM_E_RANGE, "digest algorithm 0x%x, agreed 0x%x", d.algo, r->ack.digest);
	if (d.region_pages != STREAM_REGION_PAGES)
		return RFAIL(r, STREAM_E_RANGE, "regions of %u pages, want %u", d.region_pages, STREAM_REGION_PAGES);
	if (d.count == 0 || d.count > STREAM_MAX_REGIONS)
		return RFAIL(r, STREAM_E_RANGE, "count %u not in 1..%u", d.count, STREAM_MAX_REGIONS);
	if (len != sizeof(d) + (size_t)d.count * sizeof(struct stream_region_hash))
		return RFAIL(r, STREAM_E_LENGTH, "length %u, %u regions need %zu", len, d.count,
			     sizeof(d) + (size_t)d.count * sizeof(struct stream_region_hash));
	if (d.first != r->regions_next)
		return RFAIL(r, STREAM_E_ORDER, "regions from %llu, want %llu", (unsigned long long)d.first,
			     (unsigned long long)r->regions_next);
	if (d.count > stream_regions(r) - d.first)
		return RFAIL(r, STREAM_E_RANGE, "regions %llu..%llu beyond the guest's %llu",
			     (unsigned long long)d.first, (unsigned long long)(d.first + d.count - 1),
			     (unsigned long long)stream_regions(r));
	r->regions_next += d.count;
	*final = r->regions_next == stream_regions(r);
	return 0;
}

/* HELLO and HELLO_ACK always carry a trailer: the negotiation that turns
 * CRCs on cannot itself be left unprotected. */
bool stream_rec_has_crc(const struct stream_reader *r)
{
	return r->crc || r->rh.type == STREAM_HELLO || r->rh.type == STREAM_HELLO_ACK;
}

/* The whole record is here: hdr8 is its 8-byte header, body its body
 * followed by padding and (when on) the trailer. */
int stream_check_record(struct stream_reader *r, const uint8_t *hdr8,
			       const uint8_t *body, bool *final, bool *skip)
{
	uint32_t len = r->rh.length, t = r->rh.type;
	size_t padded = ((size_t)len + 7) & ~(size_t)7;
	int rc;

	if (stream_rec_has_crc(r)) {
		struct stream_rec_crc tr;
		memcpy(&tr, body + padded, sizeof(tr));
		uint32_t want = crc32c(crc32c(0, hdr8, 8), body, padded);
		if (tr.crc32c != want)
			return RFAIL(r, STREAM_E_CRC, "CRC32C 0x%08x, computed 0x%08x", tr.crc32c, want);
		if (tr.reserved)
			return RFAIL(r, STREAM_E_RESERVED, "CRC trailer reserved 0x%08x", tr.reserved);
	}
	for (size_t k = len; k < padded; k++)
		if (body[k])
			return RFAIL(r, STREAM_E_RESERVED, "padding byte %zu not zero", k - len);

	*skip = !stream_type_known(t);	/* optional: mandatory ones failed earlier */
	if (*skip) {
		*final = false;
		return 0;
	}
	if ((rc = stream_check_order(r, final)) < 0)
		return rc;

	switch (t) {
	case STREAM_HELLO:
		return stream_check_hello(r, body);
	case STREAM_HELLO_ACK:
		if ((rc = stream_check_ack(r, body)) < 0)
			return rc;
		if (r->dir == STREAM_DIR_REPLY && r->ack.status != STREAM_REFUSE_NONE)
			*final = true;
		return 0;
	case STREAM_GUEST_INFO: {
		struct stream_guest_info g;
		memcpy(&g, body, sizeof(g));
		if (g.guest_pages != r->hello.guest_pages)
			return RFAIL(r, STREAM_E_RANGE, "guest size %llu, HELLO said %llu",
				     (unsigned long long)g.guest_pages,
				     (unsigned long long)r->hello.guest_pages);
		if (g.nr_vcpus == 0 || g.nr_vcpus > STREAM_MAX_VCPUS)
			return RFAIL(r, STREAM_E_RANGE, "%u vcpus not in 1..%u", g.nr_vcpus,
				     STREAM_MAX_VCPUS);
		if (g.mode > STREAM_MODE_PTE)
			return RFAIL(r, STREAM_E_RANGE, "unknown guest mode %u", g.mode);
		r->nr_vcpus = g.nr_vcpus;
		r->seen_guest_info = true;
		return 0;
	}
	case STREAM_PAGE_DATA:
		return stream_check_pages(r, body, len, 8 + STREAM_PAGE_SIZE, STREAM_MAX_BATCH);
	case STREAM_ZERO_PAGES:
		return stream_check_pages(r, body, len, 8, STREAM_MAX_ZERO_BATCH);
	case STREAM_XBZRLE_PAGES:
		return stream_check_xbzrle(r, body, len);
	case STREAM_ITER_END: {
		struct stream_iter_end it;
		memcpy(&it, body, sizeof(it));
		return it.reserved ? RFAIL(r, STREAM_E_RESERVED, "reserved field 0x%08x", it.reserved) : 0;
	}
	case STREAM_CPU_STATE:
		return stream_check_cpu(r, body, len);
	case STREAM_DEVICE_STATE:
		return stream_check_device(r, body, len);
	case STREAM_DIGEST: {
		struct stream_digest d;
		memcpy(&d, body, sizeof(d));
		if (d.reserved)
			return RFAIL(r, STREAM_E_RESERVED, "reserved field 0x%08x", d.reserved);
		if (d.algo != r->ack.digest)
			return RFAIL(r, STREAM_E_RANGE, "digest algorithm 0x%x, agreed 0x%x",
				     d.algo, r->ack.digest);
		if (d.guest_pages != r->hello.guest_pages)
			return RFAIL(r, STREAM_E_RANGE, "digest covers %llu pages, guest has %llu",
				     (unsigned long long)d.guest_pages,
				     (unsigned long long)r->hello.guest_pages);
		r->seen_digest = true;
		return 0;
	}
	case STREAM_REGION_DIGEST:
		return stream_check_regions(r, body, len, final);
	case STREAM_NACK:
	case STREAM_ERROR:
		if ((rc = stream_check_reason(r, body, len)) < 0)
			return rc;
		return stream_check_mig_id(r, stream_ld64(body + 8));
	}
	/* END, READY, GO, COMMIT, VERIFIED, CANCEL: the id alone */
	return stream_check_mig_id(r, stream_ld64(body));
}
