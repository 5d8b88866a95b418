/* checkpoint.c - encode and decode one part of a checkpoint (see
 * checkpoint.h).
 *
 * The raw payload interleaves each chunk's entry with its extents, so
 * it is read sequentially: an entry's `next` is only trusted as far as
 * the bytes it claims are there.  The rules on entries and extents
 * (check_info, check_part) are shared by the encoder and the decoder:
 * ckpt_encode refuses with -EINVAL exactly what ckpt_decode would
 * refuse with -EBADMSG, so a part that was written can be read.
 *
 * ckpt_decode checks, in order:
 *   1. len >= 128 and the magic                     else -EBADMSG
 *   2. version == 1                                 else -ENOTSUP
 *   3. header hash                                  else -EBADMSG
 *   4. payload_len == len - 128, raw_len == nentries * 40 + nextents *
 *      32 <= CKPT_PART_MAX_RAW, an empty payload exactly when raw_len
 *      is 0, a payload lz4 could have made of raw_len bytes (at most
 *      LZ4_compressBound(raw_len), and at least raw_len / 256: no
 *      allocation of raw_len for a payload that cannot fill it)
 *                                                   else -EBADMSG
 *   5. the header's fields (check_info)             else -EBADMSG
 *   6. the payload decompresses to exactly raw_len bytes whose hash
 *      matches                                      else -EBADMSG
 *   7. the entries and extents, as read (check_part) else -EBADMSG
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/cachemap.h"
#include "proto/checkpoint.h"

/* Byte offsets of the header fields (the table in checkpoint.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_KIND = 10,
	OFF_CHUNK_SHIFT = 11,
	OFF_EPOCH = 12,
	OFF_NUM = 16,
	OFF_DEVICE_ID = 24,
	OFF_DEVICE_SIZE = 32,
	OFF_SEG_SEQ = 40,
	OFF_PREV_NUM = 48,
	OFF_PREV_EPOCH = 56,
	OFF_PART = 60,
	OFF_NPARTS = 62,
	OFF_GEN_FLOOR = 64,
	OFF_CREATED = 72,
	OFF_DEV_CREATED = 80,
	OFF_NENTRIES = 88,
	OFF_NEXTENTS = 92,
	OFF_RAW_LEN = 96,
	OFF_PAYLOAD_LEN = 100,
	OFF_DATA_HASH = 104,
	OFF_SPARE = 112,
	OFF_HEADER_HASH = 124,
};

/* An entry and an extent in the raw payload. */
enum {
	EN_INDEX = 0,
	EN_GEN = 8,
	EN_HASH = 16,
	EN_HEAT = 24,
	EN_TICK = 28,
	EN_NEXT = 32,
	EN_SPARE = 36,
};
enum {
	EX_OFF = 0,
	EX_LEN = 4,
	EX_SEQ = 8,
	EX_POS = 16,
	EX_FLEN = 20,
	EX_FSTART = 24,
	EX_SPARE = 28,
};

_Static_assert(sizeof(CKPT_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(OFF_HEADER_HASH + 4 == CKPT_HEADER_SIZE, "header size");
_Static_assert(EN_SPARE + 4 == CKPT_ENTRY_SIZE, "entry size");
_Static_assert(EX_SPARE + 4 == CKPT_EXTENT_SIZE, "extent size");
_Static_assert(CKPT_PART_MAX_RAW <= LZ4_MAX_INPUT_SIZE, "lz4 takes a part");

/* DIV_ROUND_UP(size, 1 << shift) without overflow near UINT64_MAX. */
static uint64_t chunks_for(uint64_t size, unsigned int shift)
{
	return (size >> shift) + ((size & ((UINT64_C(1) << shift) - 1)) != 0);
}

/* The header's own rules; raw_len is checked by the callers. */
static bool check_info(const struct ckpt_info *in)
{
	if (in->kind < CKPT_FULL || in->kind > CKPT_LOCAL)
		return false;
	if (in->chunk_shift < CHUNK_SHIFT_MIN ||
	    in->chunk_shift > CHUNK_SHIFT_MAX)
		return false;
	if (in->device_size == 0 || in->num == 0)
		return false;
	if (in->nparts == 0 || in->part >= in->nparts)
		return false;
	if (in->kind == CKPT_DELTA ? in->prev_num == 0
				   : in->prev_num != 0 || in->prev_epoch != 0)
		return false;
	return in->nentries <= chunks_for(in->device_size, in->chunk_shift);
}

/* Every entry and extent (ents[i].first set), the rules of ckpt_decode
 * in checkpoint.h. */
static bool check_part(const struct ckpt_info *in,
		       const struct ckpt_entry *ents,
		       const struct ckpt_extent *exts)
{
	uint64_t nchunks = chunks_for(in->device_size, in->chunk_shift);
	uint64_t chunk = UINT64_C(1) << in->chunk_shift;
	uint64_t nx = 0;

	for (uint32_t i = 0; i < in->nentries; i++) {
		const struct ckpt_entry *e = &ents[i];
		uint64_t csize, prev_end = 0;

		if (e->index >= nchunks || (i && e->index <= ents[i - 1].index))
			return false;
		if (e->gen >= in->gen_floor)
			return false;
		if (in->kind == CKPT_FULL && e->gen == 0 && e->next == 0)
			return false;
		if (in->kind == CKPT_LOCAL && e->next == 0)
			return false;
		if (e->first != nx || e->next > in->nextents - nx)
			return false;
		/* the last chunk may be short */
		csize = MIN(chunk,
			    in->device_size - (e->index << in->chunk_shift));
		for (uint32_t j = 0; j < e->next; j++) {
			const struct ckpt_extent *x = &exts[nx + j];
			uint64_t end = (uint64_t)x->off + x->len;

			if (x->len == 0 || x->off < prev_end || end > csize)
				return false;
			if (x->seq == 0 || x->seq > in->seg_seq)
				return false;
			if (x->pos == CKPT_ZERO_POS) {
				if (x->flen != 0 || x->fstart != x->off)
					return false;
			} else if (x->fstart > x->off ||
				   end > (uint64_t)x->fstart + x->flen ||
				   (uint64_t)x->fstart + x->flen > csize) {
				return false;
			}
			prev_end = end;
		}
		nx += e->next;
	}
	return nx == in->nextents;
}

int ckpt_encode(const struct ckpt_info *info, const struct ckpt_entry *ents,
		const struct ckpt_extent *exts, void **out, size_t *len)
{
	uint64_t raw64 = (uint64_t)info->nentries * CKPT_ENTRY_SIZE +
			 (uint64_t)info->nextents * CKPT_EXTENT_SIZE;
	size_t raw_len = (size_t)raw64, at = 0;
	struct ckpt_entry *e = NULL;
	uint8_t *raw = NULL, *obj = NULL;
	uint64_t nx = 0;
	int bound, clen = 0, r = -EINVAL;

	if (raw64 > CKPT_PART_MAX_RAW)
		return -EFBIG;
	if (!check_info(info) || (info->nentries && !ents) ||
	    (info->nextents && !exts))
		return -EINVAL;
	/* check_part wants `first`, which the caller need not set */
	if (info->nentries && !(e = malloc(info->nentries * sizeof(*e))))
		return -ENOMEM;
	for (uint32_t i = 0; i < info->nentries; i++) {
		e[i] = ents[i];
		e[i].first = (uint32_t)MIN(nx, (uint64_t)UINT32_MAX);
		nx += ents[i].next;
	}
	if (!check_part(info, e, exts))
		goto out;

	r = -ENOMEM;
	if (raw_len && !(raw = malloc(raw_len)))
		goto out;
	for (uint32_t i = 0; i < info->nentries; i++) {
		uint8_t *p = raw + at;

		le64_put(p + EN_INDEX, e[i].index);
		le64_put(p + EN_GEN, e[i].gen);
		le64_put(p + EN_HASH, e[i].hash);
		le32_put(p + EN_HEAT, e[i].heat);
		le32_put(p + EN_TICK, e[i].tick);
		le32_put(p + EN_NEXT, e[i].next);
		le32_put(p + EN_SPARE, 0);
		at += CKPT_ENTRY_SIZE;
		for (uint32_t j = 0; j < e[i].next; j++) {
			const struct ckpt_extent *x = &exts[e[i].first + j];

			p = raw + at;
			le32_put(p + EX_OFF, x->off);
			le32_put(p + EX_LEN, x->len);
			le64_put(p + EX_SEQ, x->seq);
			le32_put(p + EX_POS, x->pos);
			le32_put(p + EX_FLEN, x->flen);
			le32_put(p + EX_FSTART, x->fstart);
			le32_put(p + EX_SPARE, 0);
			at += CKPT_EXTENT_SIZE;
		}
	}

	bound = raw_len ? LZ4_compressBound((int)raw_len) : 0;
	obj = calloc(1, CKPT_HEADER_SIZE + (size_t)bound);
	if (!obj)
		goto out;
	if (raw_len) {
		clen = LZ4_compress_default((const char *)raw,
					    (char *)obj + CKPT_HEADER_SIZE,
					    (int)raw_len, bound);
		if (clen <= 0) {
			r = -EIO;
			goto out;
		}
	}
	memcpy(obj + OFF_MAGIC, CKPT_MAGIC, 8);
	le16_put(obj + OFF_VERSION, CKPT_VERSION);
	obj[OFF_KIND] = info->kind;
	obj[OFF_CHUNK_SHIFT] = (uint8_t)info->chunk_shift;
	le32_put(obj + OFF_EPOCH, info->epoch);
	le64_put(obj + OFF_NUM, info->num);
	le64_put(obj + OFF_DEVICE_ID, info->device_id);
	le64_put(obj + OFF_DEVICE_SIZE, info->device_size);
	le64_put(obj + OFF_SEG_SEQ, info->seg_seq);
	le64_put(obj + OFF_PREV_NUM, info->prev_num);
	le32_put(obj + OFF_PREV_EPOCH, info->prev_epoch);
	le16_put(obj + OFF_PART, info->part);
	le16_put(obj + OFF_NPARTS, info->nparts);
	le64_put(obj + OFF_GEN_FLOOR, info->gen_floor);
	le64_put(obj + OFF_CREATED, info->created);
	le64_put(obj + OFF_DEV_CREATED, info->dev_created);
	le32_put(obj + OFF_NENTRIES, info->nentries);
	le32_put(obj + OFF_NEXTENTS, info->nextents);
	le32_put(obj + OFF_RAW_LEN, (uint32_t)raw_len);
	le32_put(obj + OFF_PAYLOAD_LEN, (uint32_t)clen);
	le64_put(obj + OFF_DATA_HASH, XXH3_64bits(raw, raw_len));
	le32_put(obj + OFF_HEADER_HASH, XXH32(obj, OFF_HEADER_HASH, 0));
	*out = obj;
	*len = CKPT_HEADER_SIZE + (size_t)clen;
	obj = NULL;
	r = 0;
out:
	free(obj);
	free(raw);
	free(e);
	return r;
}

int ckpt_decode(const void *obj, size_t len, struct ckpt_info *info,
		struct ckpt_entry **ents, struct ckpt_extent **exts)
{
	const uint8_t *p = obj;
	struct ckpt_info in;
	uint32_t raw_len, payload_len;
	struct ckpt_entry *e = NULL;
	struct ckpt_extent *x = NULL;
	uint8_t *raw = NULL;
	size_t at = 0;
	uint64_t nx = 0;
	int r = -EBADMSG;

	*ents = NULL;
	*exts = NULL;
	if (!obj || len < CKPT_HEADER_SIZE ||
	    memcmp(p + OFF_MAGIC, CKPT_MAGIC, 8) != 0)
		return -EBADMSG;
	if (le16_get(p + OFF_VERSION) != CKPT_VERSION)
		return -ENOTSUP;
	if (le32_get(p + OFF_HEADER_HASH) != XXH32(p, OFF_HEADER_HASH, 0))
		return -EBADMSG;

	/* The header is authentic from here on. */
	memset(&in, 0, sizeof(in));
	in.kind = p[OFF_KIND];
	in.chunk_shift = p[OFF_CHUNK_SHIFT];
	in.epoch = le32_get(p + OFF_EPOCH);
	in.num = le64_get(p + OFF_NUM);
	in.device_id = le64_get(p + OFF_DEVICE_ID);
	in.device_size = le64_get(p + OFF_DEVICE_SIZE);
	in.seg_seq = le64_get(p + OFF_SEG_SEQ);
	in.prev_num = le64_get(p + OFF_PREV_NUM);
	in.prev_epoch = le32_get(p + OFF_PREV_EPOCH);
	in.part = le16_get(p + OFF_PART);
	in.nparts = le16_get(p + OFF_NPARTS);
	in.gen_floor = le64_get(p + OFF_GEN_FLOOR);
	in.created = le64_get(p + OFF_CREATED);
	in.dev_created = le64_get(p + OFF_DEV_CREATED);
	in.nentries = le32_get(p + OFF_NENTRIES);
	in.nextents = le32_get(p + OFF_NEXTENTS);
	raw_len = le32_get(p + OFF_RAW_LEN);
	payload_len = le32_get(p + OFF_PAYLOAD_LEN);

	if ((uint64_t)payload_len != (uint64_t)(len - CKPT_HEADER_SIZE))
		return -EBADMSG;
	if ((uint64_t)raw_len !=
		    (uint64_t)in.nentries * CKPT_ENTRY_SIZE +
			    (uint64_t)in.nextents * CKPT_EXTENT_SIZE ||
	    raw_len > CKPT_PART_MAX_RAW)
		return -EBADMSG;
	if ((raw_len == 0) != (payload_len == 0))
		return -EBADMSG;
	/* lz4 turns a byte into at most 255 */
	if (raw_len &&
	    (payload_len > (uint32_t)LZ4_compressBound((int)raw_len) ||
	     raw_len / 256 > payload_len))
		return -EBADMSG;
	if (!check_info(&in))
		return -EBADMSG;
	if (raw_len == 0) {
		if (XXH3_64bits(NULL, 0) != le64_get(p + OFF_DATA_HASH))
			return -EBADMSG;
		*info = in;
		return 0;
	}

	raw = malloc(raw_len);
	if (in.nentries)
		e = malloc(in.nentries * sizeof(*e));
	if (in.nextents)
		x = malloc(in.nextents * sizeof(*x));
	if (!raw || (in.nentries && !e) || (in.nextents && !x)) {
		r = -ENOMEM;
		goto out;
	}
	if (LZ4_decompress_safe((const char *)p + CKPT_HEADER_SIZE, (char *)raw,
				(int)payload_len,
				(int)raw_len) != (int)raw_len ||
	    XXH3_64bits(raw, raw_len) != le64_get(p + OFF_DATA_HASH))
		goto out;

	/* Entry, its extents, next entry...: a `next` is read only as far
	 * as the extents it claims are in the payload. */
	for (uint32_t i = 0; i < in.nentries; i++) {
		const uint8_t *q = raw + at;

		if (raw_len - at < CKPT_ENTRY_SIZE)
			goto out;
		e[i].index = le64_get(q + EN_INDEX);
		e[i].gen = le64_get(q + EN_GEN);
		e[i].hash = le64_get(q + EN_HASH);
		e[i].heat = le32_get(q + EN_HEAT);
		e[i].tick = le32_get(q + EN_TICK);
		e[i].next = le32_get(q + EN_NEXT);
		e[i].first = (uint32_t)nx;
		at += CKPT_ENTRY_SIZE;
		if (e[i].next > in.nextents - nx ||
		    (uint64_t)e[i].next * CKPT_EXTENT_SIZE > raw_len - at)
			goto out;
		for (uint32_t j = 0; j < e[i].next; j++, nx++) {
			q = raw + at;
			x[nx].off = le32_get(q + EX_OFF);
			x[nx].len = le32_get(q + EX_LEN);
			x[nx].seq = le64_get(q + EX_SEQ);
			x[nx].pos = le32_get(q + EX_POS);
			x[nx].flen = le32_get(q + EX_FLEN);
			x[nx].fstart = le32_get(q + EX_FSTART);
			at += CKPT_EXTENT_SIZE;
		}
	}
	if (at != raw_len || nx != in.nextents || !check_part(&in, e, x))
		goto out;
	*info = in;
	*ents = e;
	*exts = x;
	e = NULL;
	x = NULL;
	r = 0;
out:
	free(raw);
	free(e);
	free(x);
	return r;
}
