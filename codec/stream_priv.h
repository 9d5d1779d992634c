/* stream_priv.h: the migration stream reader's private state, shared by
 * stream_reader.c (feeding, life cycle, typed views) and stream_check.c
 * (every check a record must pass). Not for use outside codec/.
 */
#ifndef FERRY_STREAM_PRIV_H
#define FERRY_STREAM_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "stream.h"

enum stream_rstate {
	RS_HDR,		/* collecting the 32-byte stream header */
	RS_HDR_EXT,	/* skipping header bytes appended by a later version */
	RS_REC_HDR,	/* collecting a record header */
	RS_BODY,	/* collecting body, padding and trailer */
	RS_DONE,	/* final record returned */
	RS_FAILED,
};

struct stream_reader {
	enum stream_dir dir;
	enum stream_rstate state;
	int err;
	char msg[200];

	uint8_t small[sizeof(struct stream_hdr)];	/* header being collected */
	size_t have;		/* bytes collected in small[] or buf[] */
	size_t need;		/* bytes the current unit takes */
	uint8_t *buf;		/* body + padding + trailer of the record */
	size_t cap;

	uint64_t offset;	/* stream bytes consumed */
	uint64_t index;		/* records started */
	uint64_t rec_offset;	/* offset of the current record's header */
	struct stream_rec_hdr rh;

	struct stream_hdr hdr;
	struct stream_hello hello;
	struct stream_hello_ack ack;
	bool have_hdr, have_hello, have_ack, crc;
	bool seen_guest_info, seen_digest;
	bool seen_end, seen_go, seen_ready, seen_commit;
	uint64_t regions_next;	/* REGION_DIGEST: the next region expected */
	uint32_t nr_vcpus;
};

/* Fail the reader with a printf-style message; keeps the first error.
 * Returns -err (the first error's). */
__attribute__((format(printf, 3, 4)))
int stream_rfail(struct stream_reader *r, int err, const char *fmt, ...);

/* "record 17 (XBZRLE_PAGES): " prefix for record errors. */
#define RFAIL(r, err, fmt, ...)                                                   \
	stream_rfail((r), (err), "record %llu (%s): " fmt,                        \
		     (unsigned long long)(r)->index, stream_type_to_str((r)->rh.type), \
		     ##__VA_ARGS__)

/* Little-endian u64 at any alignment. */
static inline uint64_t stream_ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* stream_check.c. Each returns 0 or a negative stream_err (reader failed). */

/* The 32 header bytes collected in r->small. */
int stream_check_hdr(struct stream_reader *r);

/* The record header r->rh, before anything is buffered: length maximum,
 * unknown mandatory type, fixed-size types. */
int stream_check_rec_hdr(struct stream_reader *r);

/* Does the current record carry a CRC trailer? */
bool stream_rec_has_crc(const struct stream_reader *r);

/* The whole record: hdr8 its 8-byte header, body its body followed by
 * padding and trailer. Sets *final for a record that ends the stream and
 * *skip for an unknown optional one. */
int stream_check_record(struct stream_reader *r, const uint8_t *hdr8, const uint8_t *body,
			bool *final, bool *skip);

#endif /* FERRY_STREAM_PRIV_H */
