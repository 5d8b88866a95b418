/* segment.c - encode and decode a segment object (see segment.h).
 *
 * Three hashes guard a segment: an XXH32 over the fixed header (checked
 * before any length in it is used), an XXH32 over the index (so a frame
 * is not looked for where a flipped bit says), and, per DATA frame, an
 * XXH32 over its inline frame header and an XXH3_64bits over its data.
 * The inline frame header repeats the frame's offset, length, the
 * segment's seq and the device id, so a frame fetched alone by a ranged
 * GET (at `pos`, from a checkpoint's extent) is checked without the
 * index, and a frame of another segment or device is refused.
 *
 * The frame rules (check_frame) are shared by the encoder and the
 * decoder, so what one accepts the other does: the encoder refuses
 * (-EINVAL) exactly the frames the decoder would refuse (-EBADMSG),
 * but for the bound by the device's size, which only the decoder is
 * given.  Overlap is checked on a sorted copy of the frames' ranges:
 * the index is in payload order, not device order.
 *
 * seg_decode_header checks, in order:
 *   1. len >= 128 and the magic                     else -EBADMSG
 *   2. version == 1                                 else -ENOTSUP
 *   3. header hash                                  else -EBADMSG
 *   4. flags == 0                                   else -ENOTSUP
 *   5. chunk_shift 16..26, seq != 0, lsn_start <= lsn_end,
 *      header_len == 128 + 40 * nframes, header_len + payload_len <=
 *      SEG_MAX_LEN                                  else -EBADMSG
 * seg_decode_index then re-reads that header from its own buffer (it
 * must be the one *info came from), checks the index hash, and every
 * entry; unknown frame flags are -ENOTSUP, anything else -EBADMSG.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/cachemap.h"
#include "proto/segment.h"

/* Byte offsets of the header fields (the table in segment.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_FLAGS = 10,
	OFF_HEADER_LEN = 12,
	OFF_DEVICE_ID = 16,
	OFF_SEQ = 24,
	OFF_EPOCH = 32,
	OFF_NFRAMES = 36,
	OFF_LSN_START = 40,
	OFF_LSN_END = 48,
	OFF_CREATED = 56,
	OFF_PAYLOAD_LEN = 64,
	OFF_CHUNK_SHIFT = 72,
	OFF_SPARE = 73,
	OFF_INDEX_HASH = 120,
	OFF_HEADER_HASH = 124,
};

/* An index entry. */
enum {
	IX_OFFSET = 0,
	IX_LENGTH = 8,
	IX_KIND = 12,
	IX_FLAGS = 13,
	IX_POS = 16,
	IX_A = 24,
	IX_B = 32,
};

/* An inline DATA frame header. */
enum {
	FH_MAGIC = 0,
	FH_LENGTH = 4,
	FH_OFFSET = 8,
	FH_SEQ = 16,
	FH_DEVICE_ID = 24,
	FH_DATA_HASH = 32,
	FH_SPARE = 40,
	FH_HDR_HASH = 44,
};

_Static_assert(sizeof(SEG_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(sizeof(SEG_FRAME_MAGIC) - 1 == 4, "frame magic is 4 bytes");
_Static_assert(OFF_HEADER_HASH + 4 == SEG_HDR_SIZE, "header size");
_Static_assert(IX_B + 8 == SEG_INDEX_ENTRY, "index entry size");
_Static_assert(FH_HDR_HASH + 4 == SEG_FRAME_HDR, "frame header size");

#define SEG_F_KNOWN SEG_F_GC
/* Frames whose header_len still fits SEG_MAX_LEN. */
#define SEG_MAX_FRAMES ((SEG_MAX_LEN - SEG_HDR_SIZE) / SEG_INDEX_ENTRY)

struct range {
	uint64_t start, end;
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* 0 if no two frames overlap, -EINVAL if two do, -ENOMEM.  Frames have
 * been checked: length > 0 and no overflow. */
static int check_overlap(const struct seg_frame *frames, uint32_t n)
{
	struct range *r;
	int ret = 0;

	if (n < 2)
		return 0;
	r = malloc(n * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		r[i] = (struct range){ frames[i].offset,
				       frames[i].offset + frames[i].length };
	qsort(r, n, sizeof(*r), range_cmp);
	for (uint32_t i = 1; i < n; i++) {
		if (r[i].start < r[i - 1].end) {
			ret = -EINVAL;
			break;
		}
	}
	free(r);
	return ret;
}

/* The rules of one frame but for its flags (checked by the callers, as
 * they answer differently) and, for DATA, its pos and hash (computed
 * by the encoder, checked against the payload area by the decoder).
 * The encoder does not know the device's size (sized false): a BASE or
 * TRIM frame may then be shorter than a chunk. */
static bool check_frame(const struct seg_frame *f, unsigned chunk_shift,
			bool sized, uint64_t device_size)
{
	uint64_t chunk = UINT64_C(1) << chunk_shift;

	if (f->length == 0 || f->offset > UINT64_MAX - f->length)
		return false;
	if (sized && f->offset + f->length > device_size)
		return false;
	switch (f->kind) {
	case SEG_DATA:
	case SEG_ZERO:
		/* first and last byte in the same chunk */
		if (f->offset >> chunk_shift !=
		    (f->offset + f->length - 1) >> chunk_shift)
			return false;
		if (f->kind == SEG_ZERO && (f->a || f->pos))
			return false;
		return f->b == 0;
	case SEG_BASE:
	case SEG_TRIM:
		if (!IS_ALIGNED(f->offset, chunk) || f->length > chunk)
			return false;
		/* a whole chunk: shorter only as the device's last one */
		if (sized && f->length != MIN(chunk, device_size - f->offset))
			return false;
		if (f->pos)
			return false;
		if (f->kind == SEG_BASE)
			return f->a != 0; /* gen; b is the chunk's hash */
		return f->a == 0 && f->b == 0;
	}
	return false;
}

size_t seg_encoded_len(const struct seg_frame *frames, uint32_t nframes)
{
	uint64_t len = SEG_HDR_SIZE + (uint64_t)SEG_INDEX_ENTRY * nframes;

	for (uint32_t i = 0; i < nframes; i++) {
		if (frames[i].kind != SEG_DATA)
			continue;
		len += SEG_FRAME_HDR + (uint64_t)frames[i].length;
	}
	return len > SIZE_MAX ? SIZE_MAX : (size_t)len;
}

static void put_frame_header(uint8_t *p, const struct seg_frame *f,
			     uint64_t seq, uint64_t device_id)
{
	memcpy(p + FH_MAGIC, SEG_FRAME_MAGIC, 4);
	le32_put(p + FH_LENGTH, f->length);
	le64_put(p + FH_OFFSET, f->offset);
	le64_put(p + FH_SEQ, seq);
	le64_put(p + FH_DEVICE_ID, device_id);
	le64_put(p + FH_DATA_HASH, f->a);
	le32_put(p + FH_SPARE, 0);
	le32_put(p + FH_HDR_HASH, XXH32(p, FH_HDR_HASH, 0));
}

long seg_encode(struct seg_info *info, struct seg_frame *frames,
		uint32_t nframes, void *out, size_t out_size)
{
	uint8_t *b = out, *ix;
	uint64_t header_len, total, pos;
	int r;

	if (!info || !out || (nframes && !frames))
		return -EINVAL;
	if (info->chunk_shift < CHUNK_SHIFT_MIN ||
	    info->chunk_shift > CHUNK_SHIFT_MAX || info->seq == 0 ||
	    info->lsn_start > info->lsn_end)
		return -EINVAL;
	if (nframes > SEG_MAX_FRAMES)
		return -EFBIG;
	for (uint32_t i = 0; i < nframes; i++) {
		const struct seg_frame *f = &frames[i];

		if (f->flags & ~SEG_F_KNOWN)
			return -EINVAL;
		if (f->kind == SEG_DATA && !f->data)
			return -EINVAL;
		/* pos and DATA's a are the encoder's to set */
		struct seg_frame c = *f;
		c.pos = 0;
		if (c.kind == SEG_DATA)
			c.a = 0;
		if (!check_frame(&c, info->chunk_shift, false, 0))
			return -EINVAL;
	}
	r = check_overlap(frames, nframes);
	if (r < 0)
		return r;
	header_len = SEG_HDR_SIZE + (uint64_t)SEG_INDEX_ENTRY * nframes;
	total = seg_encoded_len(frames, nframes);
	if (total > SEG_MAX_LEN)
		return -EFBIG;
	if (out_size < total)
		return -EINVAL;

	/* the payload area: each DATA frame's header and data */
	pos = header_len;
	for (uint32_t i = 0; i < nframes; i++) {
		struct seg_frame *f = &frames[i];

		if (f->kind != SEG_DATA) {
			f->pos = 0;
			continue;
		}
		f->pos = (uint32_t)pos;
		f->a = XXH3_64bits(f->data, f->length);
		put_frame_header(b + pos, f, info->seq, info->device_id);
		memcpy(b + pos + SEG_FRAME_HDR, f->data, f->length);
		pos += SEG_FRAME_HDR + (uint64_t)f->length;
	}

	ix = b + SEG_HDR_SIZE;
	memset(ix, 0, header_len - SEG_HDR_SIZE);
	for (uint32_t i = 0; i < nframes; i++) {
		const struct seg_frame *f = &frames[i];
		uint8_t *e = ix + (size_t)i * SEG_INDEX_ENTRY;

		le64_put(e + IX_OFFSET, f->offset);
		le32_put(e + IX_LENGTH, f->length);
		e[IX_KIND] = f->kind;
		e[IX_FLAGS] = f->flags;
		le32_put(e + IX_POS, f->pos);
		le64_put(e + IX_A, f->a);
		le64_put(e + IX_B, f->b);
	}

	info->nframes = nframes;
	info->header_len = (uint32_t)header_len;
	info->payload_len = total - header_len;
	memset(b, 0, SEG_HDR_SIZE);
	memcpy(b + OFF_MAGIC, SEG_MAGIC, 8);
	le16_put(b + OFF_VERSION, SEG_VERSION);
	le16_put(b + OFF_FLAGS, 0);
	le32_put(b + OFF_HEADER_LEN, info->header_len);
	le64_put(b + OFF_DEVICE_ID, info->device_id);
	le64_put(b + OFF_SEQ, info->seq);
	le32_put(b + OFF_EPOCH, info->epoch);
	le32_put(b + OFF_NFRAMES, nframes);
	le64_put(b + OFF_LSN_START, info->lsn_start);
	le64_put(b + OFF_LSN_END, info->lsn_end);
	le64_put(b + OFF_CREATED, info->created);
	le64_put(b + OFF_PAYLOAD_LEN, info->payload_len);
	b[OFF_CHUNK_SHIFT] = (uint8_t)info->chunk_shift;
	le32_put(b + OFF_INDEX_HASH,
		 XXH32(ix, (size_t)(header_len - SEG_HDR_SIZE), 0));
	le32_put(b + OFF_HEADER_HASH, XXH32(b, OFF_HEADER_HASH, 0));
	return (long)total;
}

int seg_decode_header(const void *buf, size_t len, struct seg_info *info)
{
	const uint8_t *b = buf;
	struct seg_info x;

	if (!buf || len < SEG_HDR_SIZE)
		return -EBADMSG;
	if (memcmp(b + OFF_MAGIC, SEG_MAGIC, 8) != 0)
		return -EBADMSG;
	if (le16_get(b + OFF_VERSION) != SEG_VERSION)
		return -ENOTSUP;
	if (le32_get(b + OFF_HEADER_HASH) != XXH32(b, OFF_HEADER_HASH, 0))
		return -EBADMSG;
	/* The header is authentic from here on. */
	if (le16_get(b + OFF_FLAGS) != 0)
		return -ENOTSUP;

	x.header_len = le32_get(b + OFF_HEADER_LEN);
	x.device_id = le64_get(b + OFF_DEVICE_ID);
	x.seq = le64_get(b + OFF_SEQ);
	x.epoch = le32_get(b + OFF_EPOCH);
	x.nframes = le32_get(b + OFF_NFRAMES);
	x.lsn_start = le64_get(b + OFF_LSN_START);
	x.lsn_end = le64_get(b + OFF_LSN_END);
	x.created = le64_get(b + OFF_CREATED);
	x.payload_len = le64_get(b + OFF_PAYLOAD_LEN);
	x.chunk_shift = b[OFF_CHUNK_SHIFT];

	if (x.chunk_shift < CHUNK_SHIFT_MIN || x.chunk_shift > CHUNK_SHIFT_MAX)
		return -EBADMSG;
	if (x.seq == 0 || x.lsn_start > x.lsn_end)
		return -EBADMSG;
	if ((uint64_t)x.header_len !=
	    SEG_HDR_SIZE + (uint64_t)SEG_INDEX_ENTRY * x.nframes)
		return -EBADMSG;
	if (x.header_len > SEG_MAX_LEN ||
	    x.payload_len > SEG_MAX_LEN - x.header_len)
		return -EBADMSG;
	*info = x;
	return 0;
}

static bool same_info(const struct seg_info *a, const struct seg_info *b)
{
	return a->device_id == b->device_id && a->seq == b->seq &&
	       a->epoch == b->epoch && a->nframes == b->nframes &&
	       a->lsn_start == b->lsn_start && a->lsn_end == b->lsn_end &&
	       a->created == b->created && a->payload_len == b->payload_len &&
	       a->header_len == b->header_len &&
	       a->chunk_shift == b->chunk_shift;
}

int seg_decode_index(const void *buf, size_t len, const struct seg_info *info,
		     uint64_t device_size, struct seg_frame **frames)
{
	const uint8_t *b = buf, *ix;
	struct seg_info h;
	struct seg_frame *fr = NULL;
	uint64_t end, prev_end;
	int r;

	*frames = NULL;
	if (!buf || len < SEG_HDR_SIZE || len < info->header_len)
		return -EBADMSG;
	/* The index hash is in buf's header: it must be info's header. */
	r = seg_decode_header(buf, len, &h);
	if (r < 0)
		return r;
	if (!same_info(&h, info))
		return -EBADMSG;
	ix = b + SEG_HDR_SIZE;
	if (XXH32(ix, h.header_len - SEG_HDR_SIZE, 0) !=
	    le32_get(b + OFF_INDEX_HASH))
		return -EBADMSG;
	if (h.nframes == 0)
		return 0;

	fr = calloc(h.nframes, sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	end = (uint64_t)h.header_len + h.payload_len;
	prev_end = h.header_len;
	r = -EBADMSG;
	for (uint32_t i = 0; i < h.nframes; i++) {
		const uint8_t *e = ix + (size_t)i * SEG_INDEX_ENTRY;
		struct seg_frame *f = &fr[i];

		f->offset = le64_get(e + IX_OFFSET);
		f->length = le32_get(e + IX_LENGTH);
		f->kind = e[IX_KIND];
		f->flags = e[IX_FLAGS];
		f->pos = le32_get(e + IX_POS);
		f->a = le64_get(e + IX_A);
		f->b = le64_get(e + IX_B);
		if (f->flags & ~SEG_F_KNOWN) {
			r = -ENOTSUP;
			goto fail;
		}
		if (f->kind == SEG_DATA) {
			/* inside the payload area, after the previous
			 * frame: [pos, pos + 48 + length) */
			uint64_t fend =
				(uint64_t)f->pos + SEG_FRAME_HDR + f->length;

			if (f->pos < prev_end || fend > end)
				goto fail;
			prev_end = fend;
		}
		if (!check_frame(f, h.chunk_shift, true, device_size))
			goto fail;
	}
	r = check_overlap(fr, h.nframes);
	if (r == -EINVAL)
		r = -EBADMSG;
	if (r < 0)
		goto fail;
	*frames = fr;
	return 0;
fail:
	free(fr);
	return r;
}

int seg_frame_check(const void *buf, size_t len, uint64_t device_id,
		    uint64_t seq, uint64_t offset, uint32_t length,
		    const void **data)
{
	const uint8_t *p = buf;

	if (!buf || len < SEG_FRAME_HDR)
		return -EBADMSG;
	if (memcmp(p + FH_MAGIC, SEG_FRAME_MAGIC, 4) != 0 ||
	    le32_get(p + FH_HDR_HASH) != XXH32(p, FH_HDR_HASH, 0))
		return -EBADMSG;
	if (le32_get(p + FH_LENGTH) != length ||
	    le64_get(p + FH_OFFSET) != offset || le64_get(p + FH_SEQ) != seq ||
	    le64_get(p + FH_DEVICE_ID) != device_id)
		return -EBADMSG;
	if (len - SEG_FRAME_HDR < length)
		return -EBADMSG;
	if (XXH3_64bits(p + SEG_FRAME_HDR, length) !=
	    le64_get(p + FH_DATA_HASH))
		return -EBADMSG;
	*data = p + SEG_FRAME_HDR;
	return 0;
}
