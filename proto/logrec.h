/* logrec.h - a record of the write log (the cache directory's `wlog`).
 *
 * The write log is a circular file of log_size bytes.  Every record has a
 * log sequence number (lsn): its byte position in the log since the log
 * was created.  lsns only grow, so no two records of one log share one;
 * a record lives at file offset lsn % log_size.  Records start on a
 * multiple of the log's alignment `align` (2^align_shift, 512..4096: the
 * O_DIRECT alignment of the log's device), and are one `align`-byte
 * header block followed by the data, padded to `align`.  A record never
 * straddles the end of the file or of the RAM buffer in front of it: a
 * PAD record fills what is left there.
 *
 * A write is acknowledged once its record is in the RAM buffer; a flush
 * waits until every record before it is in the file and the file is
 * synced (group commit).  Recovery scans from the durable tail and stops
 * at the first record that does not decode, carries another lsn or
 * device id, or whose data does not match its hash: what it keeps is a
 * prefix of the writes, in the order they were acknowledged.
 *
 * Header, little-endian (the first 64 bytes of the header block; the
 * rest of the block is zero):
 *   0  magic        4  "TBLR"
 *   4  type         1  LOGREC_WRITE 1, LOGREC_ZERO 2, LOGREC_TRIM 3,
 *                      LOGREC_PAD 4
 *   5  flags        1  LOGREC_F_FUA 0x1 (informational)
 *   6  align_shift  1  log2(align), 9..12
 *   7  spare        1  0
 *   8  lsn          8  this record's position
 *  16  device_id    8
 *  24  offset       8  device byte offset (WRITE, ZERO, TRIM); 0 for PAD
 *  32  length       4  device bytes (WRITE, ZERO, TRIM: 1..
 *                      LOGREC_MAX_LENGTH); 0 for PAD
 *  36  span         4  bytes the record takes in the log, header included:
 *                      WRITE align + ROUND_UP(length, align); ZERO and
 *                      TRIM align; PAD at least align, a multiple of it
 *  40  data_hash    8  XXH3_64bits of the `length` data bytes (WRITE),
 *                      else 0
 *  48  spare       12  zero
 *  60  hdr_hash     4  XXH32(bytes 0..59, seed 0)
 *
 * ZERO: the range reads as zeros.  TRIM: whole chunks in the range become
 * holes (the engine only logs TRIMs of whole chunks).
 */
#ifndef TIERBD_LOGREC_H
#define TIERBD_LOGREC_H

#include <stddef.h>
#include <stdint.h>

#define LOGREC_MAGIC "TBLR"
#define LOGREC_HDR_LEN 64
#define LOGREC_ALIGN_SHIFT_MIN 9
#define LOGREC_ALIGN_SHIFT_MAX 12
/* The largest range a record covers: nbdkit's largest write.  nbdkit
 * passes zero and trim requests up to 4 GiB - 1: the engine logs a
 * longer one as several records. */
#define LOGREC_MAX_LENGTH (64u << 20)

enum logrec_type {
	LOGREC_WRITE = 1,
	LOGREC_ZERO = 2,
	LOGREC_TRIM = 3,
	LOGREC_PAD = 4,
};
#define LOGREC_F_FUA 0x1u

struct logrec {
	uint8_t type, flags;
	uint64_t lsn;
	uint64_t device_id;
	uint64_t offset;
	uint32_t length;
	uint32_t span;
	uint64_t data_hash;
};

/* The span of a WRITE, ZERO or TRIM record of `length` device bytes;
 * 0 (no valid span) for a length such a record cannot carry (0, or
 * above LOGREC_MAX_LENGTH), for PAD (its span is its size) and for an
 * align_shift outside 9..12. */
uint32_t logrec_span(enum logrec_type type, uint32_t length,
		     unsigned align_shift);

/* Encode r into hdr, which has room for 2^align_shift bytes (the whole
 * header block is written: the header, then zeros).  r->span must be
 * set (logrec_span, or the pad's size). */
void logrec_encode(const struct logrec *r, unsigned align_shift, void *hdr);

/* Decode the header block hdr (len bytes, at least LOGREC_HDR_LEN) of a
 * log whose alignment is 2^align_shift.  Checks magic, hdr_hash, type,
 * flags, align_shift == the log's, span consistent with type, length and
 * alignment, 0 < length <= LOGREC_MAX_LENGTH (WRITE, ZERO, TRIM),
 * offset + length without overflow, PAD's offset and length zero,
 * data_hash zero but for WRITE.  Returns 0, -EBADMSG (not a record of
 * this log: garbage, torn, another alignment, even of an unknown type)
 * or -ENOTSUP (a valid header of an unknown type or flag).  Does not
 * check lsn or device_id: the caller knows what it expects.  Never
 * reads outside hdr[0..len). */
int logrec_decode(const void *hdr, size_t len, unsigned align_shift,
		  struct logrec *r);

/* 0 if data (r->length bytes) matches r->data_hash, else -EBADMSG.
 * Records other than WRITE carry no data: 0, and data is not read. */
int logrec_check_data(const struct logrec *r, const void *data);

#endif
