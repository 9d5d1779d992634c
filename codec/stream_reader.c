/* stream_reader.c: incremental reader of the migration stream. Fed chunks of
 * any size split anywhere, it collects the header and each record (checking
 * a record's length before its buffer grows) and hands out only records
 * that passed every check in stream_check.c. The first error is kept and
 * the reader stays failed. See stream.h for the contract.
 */
#include "stream_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Errors
 */

int stream_rfail(struct stream_reader *r, int err, const char *fmt, ...)
{
	if (r->state != RS_FAILED) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
		va_end(ap);
		r->err = err;
		r->state = RS_FAILED;
	}
	return -r->err;
}

/* ------------------------------------------------------------------------
 * Life cycle and accessors
 */

struct stream_reader *stream_reader_new(enum stream_dir dir)
{
	struct stream_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->dir = dir;
	r->state = RS_HDR;
	r->need = sizeof(struct stream_hdr);
	return r;
}

void stream_reader_free(struct stream_reader *r)
{
	if (r) {
		free(r->buf);
		free(r);
	}
}

void stream_reader_set_agreed(struct stream_reader *r, const struct stream_hello_ack *ack)
{
	r->ack = *ack;
	r->have_ack = true;
	r->crc = ack->status == STREAM_REFUSE_NONE && (ack->caps & STREAM_CAP_CRC32C);
}

const char *stream_reader_error(const struct stream_reader *r) { return r->msg; }
bool stream_reader_done(const struct stream_reader *r) { return r->state == RS_DONE; }
bool stream_reader_crc(const struct stream_reader *r) { return r->crc; }
size_t stream_reader_buffer_size(const struct stream_reader *r) { return r->cap; }

const struct stream_hdr *stream_reader_header(const struct stream_reader *r)
{
	return r->have_hdr ? &r->hdr : NULL;
}

const struct stream_hello *stream_reader_hello(const struct stream_reader *r)
{
	return r->have_hello ? &r->hello : NULL;
}

const struct stream_hello_ack *stream_reader_ack(const struct stream_reader *r)
{
	return r->have_ack ? &r->ack : NULL;
}

/* ------------------------------------------------------------------------
 * Feeding
 */

static size_t stream_body_size(const struct stream_reader *r)
{
	return stream_record_size(r->rh.length, stream_rec_has_crc(r)) -
	       sizeof(struct stream_rec_hdr);
}

/* A record is complete: check it and either hand it out or skip it.
 * Returns 1 (record out), 0 (skipped) or negative. */
static int stream_finish_record(struct stream_reader *r, const uint8_t *body,
				struct stream_record *rec)
{
	bool final = false, skip = false;
	int rc = stream_check_record(r, (const uint8_t *)&r->rh, body, &final, &skip);

	if (rc < 0)
		return rc;
	rec->index = r->index;
	rec->offset = r->rec_offset;
	rec->type = r->rh.type;
	rec->length = r->rh.length;
	rec->body = body;
	r->index++;
	r->have = 0;
	r->need = sizeof(struct stream_rec_hdr);
	r->state = final ? RS_DONE : RS_REC_HDR;
	return skip ? 0 : 1;
}

/* Take what the piece being read still needs (r->need - r->have bytes)
 * from p[*pos..len) into dst (NULL: skip the bytes), advancing *pos and the
 * stream offset. Returns true once the piece is complete. */
static bool stream_gather(struct stream_reader *r, uint8_t *dst, const uint8_t *p, size_t len,
			  size_t *pos)
{
	size_t left = len - *pos, take = r->need - r->have < left ? r->need - r->have : left;
	if (dst)
		memcpy(dst + r->have, p + *pos, take);
	r->have += take;
	*pos += take;
	r->offset += take;
	return r->have == r->need;
}

int stream_reader_feed(struct stream_reader *r, const void *data, size_t len,
		       size_t *used, struct stream_record *rec)
{
	const uint8_t *p = data;
	size_t pos = 0;
	int rc;

	*used = 0;
	for (;;) {
		size_t left = len - pos;

		switch (r->state) {
		case RS_FAILED:
			return -r->err;
		case RS_DONE:
			if (left)
				return stream_rfail(r, STREAM_E_TRAILING,
						    "data at offset %llu after the final record %llu (%s)",
						    (unsigned long long)r->offset,
						    (unsigned long long)r->index - 1,
						    stream_type_to_str(r->rh.type));
			*used = pos;
			return 0;
		default:
			break;
		}
		if (left == 0) {
			*used = pos;
			return 0;
		}

		switch (r->state) {
		case RS_HDR:
			if (!stream_gather(r, r->small, p, len, &pos))
				break;
			if ((rc = stream_check_hdr(r)) < 0)
				return rc;
			r->have = 0;
			r->need = r->hdr.hdr_len - sizeof(struct stream_hdr);
			r->state = r->need ? RS_HDR_EXT : RS_REC_HDR;
			if (!r->need)
				r->need = sizeof(struct stream_rec_hdr);
			break;

		case RS_HDR_EXT:	/* appended by a later version: skipped */
			if (stream_gather(r, NULL, p, len, &pos)) {
				r->have = 0;
				r->need = sizeof(struct stream_rec_hdr);
				r->state = RS_REC_HDR;
			}
			break;

		case RS_REC_HDR:
			if (!stream_gather(r, r->small, p, len, &pos))
				break;
			memcpy(&r->rh, r->small, sizeof(r->rh));
			r->rec_offset = r->offset - sizeof(r->rh);
			if ((rc = stream_check_rec_hdr(r)) < 0)
				return rc;
			r->have = 0;
			r->need = stream_body_size(r);
			/* Fast path: the whole body is in this chunk; check it in place. */
			if (len - pos >= r->need) {
				const uint8_t *body = p + pos;
				pos += r->need;
				r->offset += r->need;
				rc = stream_finish_record(r, body, rec);
				if (rc != 0) {
					*used = pos;
					return rc;
				}
				break;
			}
			/* Only now, with the length checked, may the buffer grow. */
			if (r->need > r->cap) {
				uint8_t *nb = realloc(r->buf, r->need);
				if (!nb)
					return RFAIL(r, STREAM_E_NOMEM, "no memory for %zu bytes", r->need);
				r->buf = nb;
				r->cap = r->need;
			}
			r->state = RS_BODY;
			break;

		case RS_BODY:
			if (!stream_gather(r, r->buf, p, len, &pos))
				break;
			rc = stream_finish_record(r, r->buf, rec);
			if (rc != 0) {
				*used = pos;
				return rc;
			}
			break;

		default:
			break;
		}
	}
}

int stream_reader_finish(struct stream_reader *r)
{
	switch (r->state) {
	case RS_FAILED:
		return -r->err;
	case RS_DONE:
		return 0;
	case RS_HDR:
	case RS_HDR_EXT:
		return stream_rfail(r, STREAM_E_TRUNCATED, "stream ends inside the header after %llu bytes",
				    (unsigned long long)r->offset);
	case RS_REC_HDR:
		if (r->have)
			return RFAIL(r, STREAM_E_TRUNCATED, "stream ends inside the record header");
		if (r->index == 0)
			return stream_rfail(r, STREAM_E_TRUNCATED, "stream ends before the first record");
		return stream_rfail(r, STREAM_E_TRUNCATED,
				    "stream ends after record %llu (%s) without a final record",
				    (unsigned long long)r->index - 1, stream_type_to_str(r->rh.type));
	case RS_BODY:
		return RFAIL(r, STREAM_E_TRUNCATED, "stream ends after %zu of %zu body bytes",
			     r->have, r->need);
	}
	return -STREAM_E_INVAL;
}

/* ------------------------------------------------------------------------
 * Typed views of validated records
 */

void stream_rec_get(const struct stream_record *rec, void *out, size_t size)
{
	size_t n = size < rec->length ? size : rec->length;

	memcpy(out, rec->body, n);
	if (n < size)
		memset((uint8_t *)out + n, 0, size - n);
}

uint32_t stream_rec_count(const struct stream_record *rec)
{
	struct stream_batch b;

	memcpy(&b, rec->body, sizeof(b));
	return b.count;
}

uint64_t stream_rec_pfn(const struct stream_record *rec, uint32_t i)
{
	return stream_ld64(rec->body + sizeof(struct stream_batch) + 8 * (size_t)i);
}

const uint8_t *stream_rec_page(const struct stream_record *rec, uint32_t i)
{
	return rec->body + sizeof(struct stream_batch) + 8 * (size_t)stream_rec_count(rec) +
	       (size_t)i * STREAM_PAGE_SIZE;
}

bool stream_rec_xbzrle_next(const struct stream_record *rec, size_t *off,
			    struct stream_xbzrle_page *page)
{
	struct stream_xbzrle_entry e;

	if (*off == 0)
		*off = sizeof(struct stream_batch);
	if (*off >= rec->length)
		return false;
	memcpy(&e, rec->body + *off, sizeof(e));
	page->pfn = e.pfn;
	page->len = e.enc_len;
	page->data = rec->body + *off + sizeof(e);
	*off += sizeof(e) + ((e.enc_len + 7u) & ~7u);
	return true;
}

const char *stream_rec_text(const struct stream_record *rec, uint32_t *len)
{
	*len = rec->length - (uint32_t)sizeof(struct stream_reason);
	return (const char *)rec->body + sizeof(struct stream_reason);
}
