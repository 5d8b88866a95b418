/* logrec.c - encode and decode a write-log record header (see logrec.h).
 *
 * A record header is the first 64 bytes of an `align`-byte block; the
 * rest of the block is zero when written and not read back (the data
 * follows the block, covered by its own hash).  The header's XXH32
 * covers its first 60 bytes, so a torn or stale block is caught before
 * any of its lengths is acted on.
 *
 * logrec_decode checks, in order:
 *   1. len >= 64, the magic, the header hash        else -EBADMSG
 *   2. align_shift == the log's                     else -EBADMSG
 *      (a record of a log with another alignment is not one of ours,
 *      whatever its type)
 *   3. a known type, no flag bits but LOGREC_F_FUA  else -ENOTSUP
 *   4. the fields for the type:                     else -EBADMSG
 *        WRITE  0 < length <= LOGREC_MAX_LENGTH, offset + length
 *               without overflow, span == align + ROUND_UP(length)
 *        ZERO,  as WRITE (the same bound on length), but span == align
 *        TRIM   and data_hash == 0
 *        PAD    offset, length and data_hash 0, span a non-zero
 *               multiple of align
 * The version of the format is the magic: there is no version field.
 * Spare bytes are written as zero and not checked (they are hashed).
 */
#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/logrec.h"

/* Byte offsets of the header fields (the table in logrec.h). */
enum {
	OFF_MAGIC = 0,
	OFF_TYPE = 4,
	OFF_FLAGS = 5,
	OFF_ALIGN_SHIFT = 6,
	OFF_SPARE0 = 7,
	OFF_LSN = 8,
	OFF_DEVICE_ID = 16,
	OFF_OFFSET = 24,
	OFF_LENGTH = 32,
	OFF_SPAN = 36,
	OFF_DATA_HASH = 40,
	OFF_SPARE1 = 48,
	OFF_HDR_HASH = 60,
};

_Static_assert(sizeof(LOGREC_MAGIC) - 1 == 4, "magic is 4 bytes");
_Static_assert(OFF_HDR_HASH + 4 == LOGREC_HDR_LEN, "header size");
/* The largest span fits its u32 field. */
_Static_assert((uint64_t)LOGREC_MAX_LENGTH +
			       2 * (1u << LOGREC_ALIGN_SHIFT_MAX) <
		       UINT32_MAX,
	       "span fits u32");

#define LOGREC_F_KNOWN LOGREC_F_FUA

static uint32_t hdr_hash(const uint8_t *hdr)
{
	return XXH32(hdr, OFF_HDR_HASH, 0);
}

uint32_t logrec_span(enum logrec_type type, uint32_t length,
		     unsigned align_shift)
{
	uint32_t align;

	if (align_shift < LOGREC_ALIGN_SHIFT_MIN ||
	    align_shift > LOGREC_ALIGN_SHIFT_MAX)
		return 0;
	align = UINT32_C(1) << align_shift;
	switch (type) {
	case LOGREC_WRITE:
		if (length == 0 || length > LOGREC_MAX_LENGTH)
			return 0;
		return align + (uint32_t)ROUND_UP(length, align);
	case LOGREC_ZERO:
	case LOGREC_TRIM:
		return length && length <= LOGREC_MAX_LENGTH ? align : 0;
	case LOGREC_PAD:
		break;
	}
	return 0;
}

void logrec_encode(const struct logrec *r, unsigned align_shift, void *hdr)
{
	uint8_t *b = hdr;

	memset(b, 0, (size_t)1 << align_shift);
	memcpy(b + OFF_MAGIC, LOGREC_MAGIC, 4);
	b[OFF_TYPE] = r->type;
	b[OFF_FLAGS] = r->flags;
	b[OFF_ALIGN_SHIFT] = (uint8_t)align_shift;
	le64_put(b + OFF_LSN, r->lsn);
	le64_put(b + OFF_DEVICE_ID, r->device_id);
	le64_put(b + OFF_OFFSET, r->offset);
	le32_put(b + OFF_LENGTH, r->length);
	le32_put(b + OFF_SPAN, r->span);
	le64_put(b + OFF_DATA_HASH, r->data_hash);
	le32_put(b + OFF_HDR_HASH, hdr_hash(b));
}

int logrec_decode(const void *hdr, size_t len, unsigned align_shift,
		  struct logrec *r)
{
	const uint8_t *b = hdr;
	struct logrec x;
	uint32_t align;

	if (!hdr || len < LOGREC_HDR_LEN)
		return -EBADMSG;
	if (memcmp(b + OFF_MAGIC, LOGREC_MAGIC, 4) != 0)
		return -EBADMSG;
	if (le32_get(b + OFF_HDR_HASH) != hdr_hash(b))
		return -EBADMSG;
	/* The header is authentic from here on.  The caller's alignment
	 * is in range if the header's equals it. */
	if (b[OFF_ALIGN_SHIFT] != align_shift ||
	    align_shift < LOGREC_ALIGN_SHIFT_MIN ||
	    align_shift > LOGREC_ALIGN_SHIFT_MAX)
		return -EBADMSG;
	align = UINT32_C(1) << align_shift;

	x.type = b[OFF_TYPE];
	x.flags = b[OFF_FLAGS];
	if (x.type < LOGREC_WRITE || x.type > LOGREC_PAD)
		return -ENOTSUP;
	if (x.flags & ~LOGREC_F_KNOWN)
		return -ENOTSUP;
	x.lsn = le64_get(b + OFF_LSN);
	x.device_id = le64_get(b + OFF_DEVICE_ID);
	x.offset = le64_get(b + OFF_OFFSET);
	x.length = le32_get(b + OFF_LENGTH);
	x.span = le32_get(b + OFF_SPAN);
	x.data_hash = le64_get(b + OFF_DATA_HASH);

	if (x.type == LOGREC_PAD) {
		if (x.offset || x.length || x.data_hash || x.span == 0 ||
		    !IS_ALIGNED(x.span, align))
			return -EBADMSG;
	} else {
		if (x.length > UINT64_MAX - x.offset)
			return -EBADMSG;
		/* logrec_span() refuses a zero or oversized length */
		if (x.span == 0 ||
		    x.span != logrec_span(x.type, x.length, align_shift))
			return -EBADMSG;
		if (x.type != LOGREC_WRITE && x.data_hash)
			return -EBADMSG;
	}
	*r = x;
	return 0;
}

int logrec_check_data(const struct logrec *r, const void *data)
{
	if (r->type != LOGREC_WRITE)
		return 0; /* no data: nothing to check */
	if (!data && r->length)
		return -EBADMSG;
	return XXH3_64bits(data, r->length) == r->data_hash ? 0 : -EBADMSG;
}
