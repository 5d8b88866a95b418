/* test-segment.c - the segment object (proto/segment.c).
 *
 * Round trips (no frame, every kind, frames in index order unlike device
 * order, the device's short last chunk, chunk shifts 16 and 26, a 64 MiB
 * DATA frame), every frame fetched alone by its pos and checked; the
 * encoder's refusals one by one (each field of a frame, overlaps, the
 * 4 GiB limit); the decoders' rejections one by one, with the edited
 * header or index resealed so the check under test answers, not the
 * hash; every truncation; every flipped bit of the header, the index
 * and a frame header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/segment.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define KiB 1024u
#define MiB (1024u * 1024u)

/* Field offsets, from the table in segment.h (not from segment.c). */
enum {
	H_VERSION = 8,
	H_FLAGS = 10,
	H_HEADER_LEN = 12,
	H_SEQ = 24,
	H_NFRAMES = 36,
	H_LSN_START = 40,
	H_LSN_END = 48,
	H_PAYLOAD_LEN = 64,
	H_CHUNK_SHIFT = 72,
	H_SPARE = 73,
	H_INDEX_HASH = 120,
	H_HEADER_HASH = 124,
	X_OFFSET = 0,
	X_LENGTH = 8,
	X_KIND = 12,
	X_FLAGS = 13,
	X_SPARE = 14,
	X_POS = 16,
	X_A = 24,
	X_B = 32,
	FH_LENGTH = 4,
	FH_OFFSET = 8,
	FH_SEQ = 16,
	FH_DEV = 24,
	FH_HASH = 32,
	FH_HDR_HASH = 44,
};

#define DEV_ID 0x0123456789abcdefull
#define DEV_SIZE (UINT64_C(1) << 40)

static uint8_t pattern[1 << 20];

static struct seg_info base_info(unsigned shift)
{
	return (struct seg_info){ .device_id = DEV_ID,
				  .seq = 77,
				  .epoch = 3,
				  .lsn_start = 4096,
				  .lsn_end = 1 << 20,
				  .created = 1700000000,
				  .chunk_shift = shift };
}

static struct seg_frame data_frame(uint64_t off, uint32_t len)
{
	return (struct seg_frame){ .offset = off,
				   .length = len,
				   .kind = SEG_DATA,
				   .data = pattern + (off % 4096) };
}

static struct seg_frame other_frame(uint8_t kind, uint64_t off, uint32_t len,
				    uint64_t a, uint64_t b)
{
	return (struct seg_frame){
		.offset = off, .length = len, .kind = kind, .a = a, .b = b
	};
}

/* Encode into a malloc'd buffer; *len its length. */
static uint8_t *encode(struct seg_info *info, struct seg_frame *f, uint32_t n,
		       size_t *len)
{
	size_t want = seg_encoded_len(f, n);
	uint8_t *obj = malloc(want);
	long r;

	CHECK(obj);
	r = seg_encode(info, f, n, obj, want);
	CHECK(r == (long)want);
	*len = want;
	return obj;
}

/* Recompute both hashes of obj (len bytes), as a writer would. */
static void reseal_len(uint8_t *obj, size_t len)
{
	uint64_t n = le32_get(obj + H_NFRAMES);
	size_t ix = (size_t)MIN(n * SEG_INDEX_ENTRY,
				(uint64_t)(len - SEG_HDR_SIZE));

	le32_put(obj + H_INDEX_HASH, XXH32(obj + SEG_HDR_SIZE, ix, 0));
	le32_put(obj + H_HEADER_HASH, XXH32(obj, H_HEADER_HASH, 0));
}

/* Both decoders on obj; the frames are freed. */
static int decode_all(const uint8_t *obj, size_t len, uint64_t device_size)
{
	struct seg_info info;
	struct seg_frame *f = NULL;
	int r = seg_decode_header(obj, len, &info);

	if (r < 0)
		return r;
	r = seg_decode_index(obj, len, &info, device_size, &f);
	CHECK(r == 0 || f == NULL);
	free(f);
	return r;
}

/* Decode obj and check it against what was encoded, frame by frame,
 * each DATA frame fetched alone as a checkpoint reader would. */
static void check_decodes_to(const uint8_t *obj, size_t len,
			     const struct seg_info *in,
			     const struct seg_frame *f, uint32_t n,
			     uint64_t device_size)
{
	struct seg_info info;
	struct seg_frame *got = NULL;
	uint64_t pos = SEG_HDR_SIZE + (uint64_t)SEG_INDEX_ENTRY * n;

	CHECK(seg_decode_header(obj, SEG_HDR_SIZE, &info) == 0);
	CHECK(info.device_id == in->device_id && info.seq == in->seq &&
	      info.epoch == in->epoch && info.nframes == n &&
	      info.lsn_start == in->lsn_start && info.lsn_end == in->lsn_end &&
	      info.created == in->created &&
	      info.chunk_shift == in->chunk_shift);
	CHECK(info.header_len == pos && in->header_len == pos);
	CHECK(info.header_len + info.payload_len == len &&
	      info.payload_len == in->payload_len);
	CHECK(seg_decode_index(obj, info.header_len, &info, device_size,
			       &got) == 0);
	CHECK(n ? got != NULL : got == NULL);
	for (uint32_t i = 0; i < n; i++) {
		const void *data = NULL;

		CHECK(got[i].offset == f[i].offset &&
		      got[i].length == f[i].length &&
		      got[i].kind == f[i].kind && got[i].flags == f[i].flags &&
		      got[i].pos == f[i].pos && got[i].a == f[i].a &&
		      got[i].b == f[i].b && got[i].data == NULL);
		if (f[i].kind != SEG_DATA) {
			CHECK(got[i].pos == 0);
			continue;
		}
		/* frames follow one another from header_len on: pos is an
		 * object offset */
		CHECK(got[i].pos == pos);
		CHECK(got[i].a == XXH3_64bits(f[i].data, f[i].length));
		CHECK(seg_frame_check(obj + pos, SEG_FRAME_HDR + f[i].length,
				      DEV_ID, in->seq, f[i].offset, f[i].length,
				      &data) == 0);
		CHECK(data == obj + pos + SEG_FRAME_HDR &&
		      memcmp(data, f[i].data, f[i].length) == 0);
		pos += SEG_FRAME_HDR + f[i].length;
	}
	CHECK(pos == len);
	free(got);
}

static void test_roundtrips(void)
{
	struct seg_info info;
	uint8_t *obj;
	size_t len;

	/* no frame: lsn_start == lsn_end, nothing after the header */
	info = base_info(20);
	info.lsn_end = info.lsn_start;
	obj = encode(&info, NULL, 0, &len);
	CHECK(len == SEG_HDR_SIZE && info.nframes == 0 &&
	      info.header_len == SEG_HDR_SIZE && info.payload_len == 0);
	check_decodes_to(obj, len, &info, NULL, 0, DEV_SIZE);
	free(obj);

	/* every kind, in an index order that is not device order, the
	 * GC flag, at the smallest and largest chunk size */
	for (unsigned shift = 16; shift <= 26; shift += 10) {
		uint64_t c = UINT64_C(1) << shift;
		struct seg_frame f[] = {
			data_frame(5 * c + 100, 3000),
			other_frame(SEG_BASE, 2 * c, (uint32_t)c, 9, 0xabc),
			data_frame(5 * c, 100), /* touches the first */
			other_frame(SEG_ZERO, 5 * c + 3100, 1, 0, 0),
			other_frame(SEG_TRIM, 0, (uint32_t)c, 0, 0),
			data_frame(6 * c - 1, 1), /* a chunk's last byte */
			data_frame(7 * c,
				   (uint32_t)MIN(c, sizeof(pattern) - 4096)),
		};
		uint32_t n = ARRAY_SIZE(f);

		f[1].flags = SEG_F_GC;
		f[5].flags = SEG_F_GC;
		info = base_info(shift);
		obj = encode(&info, f, n, &len);
		CHECK(len == seg_encoded_len(f, n));
		check_decodes_to(obj, len, &info, f, n, DEV_SIZE);
		/* the device ends right after the last frame */
		uint64_t end = f[n - 1].offset + f[n - 1].length;
		check_decodes_to(obj, len, &info, f, n, end);
		CHECK(decode_all(obj, len, end - 1) == -EBADMSG);
		free(obj);
	}

	/* the device's last chunk is short: BASE and TRIM cover what
	 * there is of it */
	{
		uint64_t c = 64 * KiB, dev = 3 * c + 1000;
		struct seg_frame f[] = {
			other_frame(SEG_BASE, 3 * c, 1000, 1, 2),
			other_frame(SEG_TRIM, 2 * c, (uint32_t)c, 0, 0),
		};

		info = base_info(16);
		obj = encode(&info, f, 2, &len);
		check_decodes_to(obj, len, &info, f, 2, dev);
		/* the encoder cannot know; the decoder can */
		CHECK(decode_all(obj, len, dev + 1) == -EBADMSG);
		CHECK(decode_all(obj, len, 4 * c) == -EBADMSG);
		CHECK(decode_all(obj, len, dev - 1) == -EBADMSG);
		free(obj);
	}
	/* the largest device, 2^64 - 1 bytes: its last chunk is one byte
	 * short, and only there may a BASE be */
	{
		uint64_t c = 64 * KiB, last = UINT64_MAX - (c - 1);
		struct seg_frame f[] = {
			other_frame(SEG_BASE, last, (uint32_t)c - 1, 1, 2),
			data_frame(last - 1, 1),
		};

		info = base_info(16);
		obj = encode(&info, f, 2, &len);
		check_decodes_to(obj, len, &info, f, 2, UINT64_MAX);
		free(obj);
		f[0].offset = 0;
		obj = encode(&info, f, 2, &len);
		CHECK(decode_all(obj, len, UINT64_MAX) == -EBADMSG);
		free(obj);
	}
}

/* The largest frame: a whole 64 MiB chunk of data. */
static void test_big_frame(void)
{
	uint32_t len = 64 * MiB;
	uint8_t *data = malloc(len);
	struct seg_info info = base_info(26);
	struct seg_frame f;
	const void *p;
	uint8_t *obj;
	size_t olen;

	CHECK(data);
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 11);
	f = data_frame(UINT64_C(5) << 26, len);
	f.data = data;
	obj = encode(&info, &f, 1, &olen);
	CHECK(olen == SEG_HDR_SIZE + SEG_INDEX_ENTRY + SEG_FRAME_HDR + len);
	check_decodes_to(obj, olen, &info, &f, 1, DEV_SIZE);
	CHECK(seg_frame_check(obj + f.pos, olen - f.pos, DEV_ID, 77, f.offset,
			      len, &p) == 0);
	obj[olen - 1] ^= 1;
	CHECK(seg_frame_check(obj + f.pos, olen - f.pos, DEV_ID, 77, f.offset,
			      len, &p) == -EBADMSG);
	free(obj);
	free(data);
}

/* seg_encode on one frame (besides two valid ones far away). */
static long encode_one(struct seg_frame x, unsigned shift)
{
	static uint8_t out[1 << 20];
	struct seg_info info = base_info(shift);
	struct seg_frame f[3] = {
		data_frame(UINT64_C(100) << shift, 10),
		x,
		other_frame(SEG_ZERO, UINT64_C(200) << shift, 10, 0, 0),
	};

	return seg_encode(&info, f, 3, out, sizeof(out));
}

static void test_encoder_refusals(void)
{
	uint64_t c = 64 * KiB;
	static uint8_t out[64 * KiB];
	struct seg_info info = base_info(16);
	struct seg_frame f[3], d = data_frame(c, 10);

	CHECK(encode_one(d, 16) > 0);
	/* kinds and flags */
	CHECK(encode_one(other_frame(0, c, 10, 0, 0), 16) == -EINVAL);
	CHECK(encode_one(other_frame(5, c, 10, 0, 0), 16) == -EINVAL);
	d.flags = 2;
	CHECK(encode_one(d, 16) == -EINVAL);
	d.flags = SEG_F_GC;
	CHECK(encode_one(d, 16) > 0);
	/* DATA: data, length, one chunk, b zero */
	d = data_frame(c, 10);
	d.data = NULL;
	CHECK(encode_one(d, 16) == -EINVAL);
	CHECK(encode_one(data_frame(c, 0), 16) == -EINVAL);
	CHECK(encode_one(data_frame(2 * c - 10, 10), 16) > 0);
	CHECK(encode_one(data_frame(2 * c - 10, 11), 16) == -EINVAL);
	CHECK(encode_one(data_frame(UINT64_MAX - 9, 10), 16) == -EINVAL);
	d = data_frame(c, 10);
	d.b = 1;
	CHECK(encode_one(d, 16) == -EINVAL);
	/* DATA's pos and a are computed, whatever the caller left there */
	d.b = 0;
	d.pos = 12345;
	d.a = 99;
	CHECK(encode_one(d, 16) > 0);
	/* ZERO: within a chunk, no a, b */
	CHECK(encode_one(other_frame(SEG_ZERO, c + 5, 10, 0, 0), 16) > 0);
	CHECK(encode_one(other_frame(SEG_ZERO, c + 5, (uint32_t)c, 0, 0), 16) ==
	      -EINVAL);
	CHECK(encode_one(other_frame(SEG_ZERO, c, 0, 0, 0), 16) == -EINVAL);
	CHECK(encode_one(other_frame(SEG_ZERO, c, 10, 1, 0), 16) == -EINVAL);
	CHECK(encode_one(other_frame(SEG_ZERO, c, 10, 0, 1), 16) == -EINVAL);
	/* BASE: aligned, at most a chunk, gen != 0 */
	CHECK(encode_one(other_frame(SEG_BASE, c, (uint32_t)c, 1, 5), 16) > 0);
	CHECK(encode_one(other_frame(SEG_BASE, c, 100, 1, 5), 16) > 0);
	CHECK(encode_one(other_frame(SEG_BASE, c + 512, 100, 1, 5), 16) ==
	      -EINVAL);
	CHECK(encode_one(other_frame(SEG_BASE, c, (uint32_t)c + 1, 1, 5), 16) ==
	      -EINVAL);
	CHECK(encode_one(other_frame(SEG_BASE, c, (uint32_t)c, 0, 5), 16) ==
	      -EINVAL);
	/* TRIM: aligned, at most a chunk, no a, b */
	CHECK(encode_one(other_frame(SEG_TRIM, c, (uint32_t)c, 0, 0), 16) > 0);
	CHECK(encode_one(other_frame(SEG_TRIM, c + 1, 10, 0, 0), 16) ==
	      -EINVAL);
	CHECK(encode_one(other_frame(SEG_TRIM, c, (uint32_t)c * 2, 0, 0), 16) ==
	      -EINVAL);
	CHECK(encode_one(other_frame(SEG_TRIM, c, (uint32_t)c, 1, 0), 16) ==
	      -EINVAL);
	CHECK(encode_one(other_frame(SEG_TRIM, c, (uint32_t)c, 0, 1), 16) ==
	      -EINVAL);
	/* overlaps, whatever the index order */
	CHECK(encode_one(data_frame((UINT64_C(100) << 16) + 9, 10), 16) ==
	      -EINVAL);
	CHECK(encode_one(data_frame((UINT64_C(100) << 16) + 10, 10), 16) > 0);
	CHECK(encode_one(
		      other_frame(SEG_ZERO, (UINT64_C(100) << 16) + 5, 1, 0, 0),
		      16) == -EINVAL);
	CHECK(encode_one(data_frame((UINT64_C(100) << 16) - 1, 1), 16) > 0);
	CHECK(encode_one(other_frame(SEG_TRIM, UINT64_C(200) << 16, (uint32_t)c,
				     0, 0),
			 16) == -EINVAL);
	CHECK(encode_one(other_frame(SEG_BASE, UINT64_C(100) << 16, (uint32_t)c,
				     3, 0),
			 16) == -EINVAL);
	/* info */
	f[0] = data_frame(0, 10);
	CHECK(seg_encode(&info, f, 1, out, sizeof(out)) > 0);
	info.chunk_shift = 15;
	CHECK(seg_encode(&info, f, 1, out, sizeof(out)) == -EINVAL);
	info.chunk_shift = 27;
	CHECK(seg_encode(&info, f, 1, out, sizeof(out)) == -EINVAL);
	info = base_info(16);
	info.seq = 0;
	CHECK(seg_encode(&info, f, 1, out, sizeof(out)) == -EINVAL);
	info = base_info(16);
	info.lsn_start = info.lsn_end + 1;
	CHECK(seg_encode(&info, f, 1, out, sizeof(out)) == -EINVAL);
	/* room */
	info = base_info(16);
	size_t need = seg_encoded_len(f, 1);
	CHECK(need == SEG_HDR_SIZE + SEG_INDEX_ENTRY + SEG_FRAME_HDR + 10);
	CHECK(seg_encode(&info, f, 1, out, need - 1) == -EINVAL);
	CHECK(seg_encode(&info, f, 1, out, need) == (long)need);
	CHECK(seg_encode(&info, NULL, 1, out, need) == -EINVAL);
	CHECK(seg_encode(&info, f, 1, NULL, need) == -EINVAL);
}

/* Past SEG_MAX_LEN (3.75 GiB): -EFBIG, found before any data is read. */
static void test_too_big(void)
{
	const uint32_t c = 64 * MiB;
	uint32_t fit = (SEG_MAX_LEN - SEG_HDR_SIZE) /
		       (c + SEG_INDEX_ENTRY + SEG_FRAME_HDR);
	struct seg_frame *f = calloc(fit + 1, sizeof(*f));
	struct seg_info info = base_info(26);
	uint8_t out[1];

	CHECK(f && fit == 59);
	for (uint32_t i = 0; i <= fit; i++) {
		f[i] = data_frame((uint64_t)i * c, c);
		f[i].data = out; /* never read */
	}
	CHECK(seg_encoded_len(f, fit) <= SEG_MAX_LEN);
	CHECK(seg_encoded_len(f, fit + 1) > SEG_MAX_LEN);
	/* fits: then only the buffer is too small */
	CHECK(seg_encode(&info, f, fit, out, sizeof(out)) == -EINVAL);
	CHECK(seg_encode(&info, f, fit + 1, out, sizeof(out)) == -EFBIG);
	/* too many frames for a u32 header_len */
	CHECK(seg_encode(&info, f,
			 (SEG_MAX_LEN - SEG_HDR_SIZE) / SEG_INDEX_ENTRY + 1,
			 out, sizeof(out)) == -EFBIG);
	free(f);
}

/* A small valid segment for the damage tests: two DATA frames, a ZERO,
 * a BASE, a TRIM. */
static uint8_t *sample(size_t *len, struct seg_frame *f)
{
	uint64_t c = 64 * KiB;
	struct seg_info info = base_info(16);

	f[0] = data_frame(3 * c + 10, 40);
	f[1] = other_frame(SEG_ZERO, 3 * c, 10, 0, 0);
	f[2] = data_frame(c, 30);
	f[3] = other_frame(SEG_BASE, 4 * c, (uint32_t)c, 12, 34);
	f[4] = other_frame(SEG_TRIM, 5 * c, (uint32_t)c, 0, 0);
	return encode(&info, f, 5, len);
}

static void test_header_damage(void)
{
	struct seg_frame f[5];
	struct seg_info info;
	size_t len;
	uint8_t *obj = sample(&len, f);

	CHECK(decode_all(obj, len, DEV_SIZE) == 0);
	CHECK(seg_decode_header(NULL, 128, &info) == -EBADMSG);
	for (size_t l = 0; l < SEG_HDR_SIZE; l++)
		CHECK(seg_decode_header(obj, l, &info) == -EBADMSG);
	/* any flipped bit: the version is read before the hash */
	for (size_t i = 0; i < SEG_HDR_SIZE; i++) {
		for (int b = 0; b < 8; b++) {
			obj[i] ^= (uint8_t)(1 << b);
			int r = seg_decode_header(obj, len, &info);
			CHECK(i >= H_VERSION && i < H_VERSION + 2
				      ? r == -ENOTSUP
				      : r == -EBADMSG);
			obj[i] ^= (uint8_t)(1 << b);
		}
	}

#define HDR_EDIT(off, width, v, want)                                \
	do {                                                         \
		uint8_t save[8];                                     \
		memcpy(save, obj + (off), width);                    \
		if ((width) == 1)                                    \
			obj[off] = (uint8_t)(v);                     \
		else if ((width) == 2)                               \
			le16_put(obj + (off), (uint16_t)(v));        \
		else if ((width) == 4)                               \
			le32_put(obj + (off), (uint32_t)(v));        \
		else                                                 \
			le64_put(obj + (off), (uint64_t)(v));        \
		reseal_len(obj, len);                                \
		CHECK(seg_decode_header(obj, len, &info) == (want)); \
		memcpy(obj + (off), save, width);                    \
		reseal_len(obj, len);                                \
	} while (0)

	uint32_t hl = SEG_HDR_SIZE + 5 * SEG_INDEX_ENTRY;
	obj[0] = 'X';
	reseal_len(obj, len);
	CHECK(seg_decode_header(obj, len, &info) == -EBADMSG);
	obj[0] = 'T';
	HDR_EDIT(H_VERSION, 2, 2, -ENOTSUP);
	HDR_EDIT(H_VERSION, 2, 0, -ENOTSUP);
	HDR_EDIT(H_FLAGS, 2, 1, -ENOTSUP);
	HDR_EDIT(H_FLAGS, 2, 0x8000, -ENOTSUP);
	HDR_EDIT(H_CHUNK_SHIFT, 1, 15, -EBADMSG);
	HDR_EDIT(H_CHUNK_SHIFT, 1, 27, -EBADMSG);
	HDR_EDIT(H_CHUNK_SHIFT, 1, 26, 0);
	HDR_EDIT(H_SEQ, 8, 0, -EBADMSG);
	HDR_EDIT(H_LSN_START, 8, UINT64_MAX, -EBADMSG);
	HDR_EDIT(H_LSN_END, 8, 4095, -EBADMSG);
	HDR_EDIT(H_LSN_END, 8, 4096, 0);
	HDR_EDIT(H_HEADER_LEN, 4, hl + 1, -EBADMSG);
	HDR_EDIT(H_HEADER_LEN, 4, hl - SEG_INDEX_ENTRY, -EBADMSG);
	HDR_EDIT(H_NFRAMES, 4, 4, -EBADMSG);
	HDR_EDIT(H_NFRAMES, 4, 6, -EBADMSG);
	/* header_len wrapped around u32 for a huge nframes */
	le32_put(obj + H_NFRAMES, 0xFFFFFFFFu);
	HDR_EDIT(H_HEADER_LEN, 4,
		 (uint32_t)(SEG_HDR_SIZE + 40ull * 0xFFFFFFFFu), -EBADMSG);
	le32_put(obj + H_NFRAMES, 5);
	reseal_len(obj, len);
	/* header_len + payload_len within SEG_MAX_LEN, without overflow */
	HDR_EDIT(H_PAYLOAD_LEN, 8, SEG_MAX_LEN - hl, 0);
	HDR_EDIT(H_PAYLOAD_LEN, 8, SEG_MAX_LEN - hl + 1, -EBADMSG);
	HDR_EDIT(H_PAYLOAD_LEN, 8, UINT64_MAX, -EBADMSG);
	HDR_EDIT(H_PAYLOAD_LEN, 8, UINT64_MAX - hl + 1, -EBADMSG);
	/* spare bytes are hashed, not checked */
	HDR_EDIT(H_SPARE, 8, UINT64_MAX, 0);
	HDR_EDIT(H_SPARE + 39, 8, UINT64_MAX, 0);
	CHECK(decode_all(obj, len, DEV_SIZE) == 0);
	free(obj);
}

/* Edit index entry i of the sample, reseal, decode both parts. */
static int idx_edit(unsigned i, size_t off, unsigned width, uint64_t v)
{
	struct seg_frame f[5];
	size_t len;
	uint8_t *obj = sample(&len, f);
	uint8_t *e = obj + SEG_HDR_SIZE + i * SEG_INDEX_ENTRY + off;
	int r;

	if (width == 1)
		*e = (uint8_t)v;
	else if (width == 2)
		le16_put(e, (uint16_t)v);
	else if (width == 4)
		le32_put(e, (uint32_t)v);
	else
		le64_put(e, v);
	reseal_len(obj, len);
	r = decode_all(obj, len, DEV_SIZE);
	free(obj);
	return r;
}

static void test_index_damage(void)
{
	uint64_t c = 64 * KiB;
	struct seg_frame f[5], *got;
	struct seg_info info, other;
	size_t len;
	uint8_t *obj = sample(&len, f);
	uint32_t hl = SEG_HDR_SIZE + 5 * SEG_INDEX_ENTRY;

	CHECK(seg_decode_header(obj, len, &info) == 0);
	/* a short buffer: every length up to the end of the index */
	for (size_t l = 0; l < hl; l++)
		CHECK(seg_decode_index(obj, l, &info, DEV_SIZE, &got) ==
			      -EBADMSG &&
		      got == NULL);
	CHECK(seg_decode_index(obj, hl, &info, DEV_SIZE, &got) == 0);
	free(got);
	/* an info that is not this header's */
	other = info;
	other.seq++;
	CHECK(seg_decode_index(obj, len, &other, DEV_SIZE, &got) == -EBADMSG);
	other = info;
	other.header_len -= SEG_INDEX_ENTRY;
	other.nframes--;
	CHECK(seg_decode_index(obj, len, &other, DEV_SIZE, &got) == -EBADMSG);
	/* any flipped bit in the index: its hash */
	for (size_t i = SEG_HDR_SIZE; i < hl; i++) {
		for (int b = 0; b < 8; b++) {
			obj[i] ^= (uint8_t)(1 << b);
			CHECK(seg_decode_index(obj, len, &info, DEV_SIZE,
					       &got) == -EBADMSG);
			obj[i] ^= (uint8_t)(1 << b);
		}
	}
	free(obj);

	/* one field of one entry at a time, resealed */
	CHECK(idx_edit(0, X_SPARE, 2, 0xffff) == 0); /* not checked */
	CHECK(idx_edit(0, X_KIND, 1, 0) == -EBADMSG);
	CHECK(idx_edit(1, X_KIND, 1, 5) == -EBADMSG);
	CHECK(idx_edit(0, X_FLAGS, 1, SEG_F_GC) == 0);
	CHECK(idx_edit(0, X_FLAGS, 1, 2) == -ENOTSUP);
	CHECK(idx_edit(3, X_FLAGS, 1, 0x80) == -ENOTSUP);
	/* DATA frames inside the payload area, in pos order */
	CHECK(idx_edit(0, X_POS, 4, hl - 1) == -EBADMSG);
	CHECK(idx_edit(0, X_POS, 4, 0) == -EBADMSG);
	CHECK(idx_edit(2, X_POS, 4, hl) == -EBADMSG); /* on frame 0 */
	CHECK(idx_edit(2, X_POS, 4, hl + 48 + 39) == -EBADMSG);
	CHECK(idx_edit(2, X_POS, 4, hl + 48 + 40 + 1) == -EBADMSG); /* end */
	CHECK(idx_edit(0, X_POS, 4, hl + 1) == -EBADMSG);	    /* onto 2 */
	CHECK(idx_edit(2, X_LENGTH, 4, 31) == -EBADMSG);	    /* past */
	CHECK(idx_edit(2, X_LENGTH, 4, 29) == 0);
	CHECK(idx_edit(2, X_POS, 4, UINT32_MAX) == -EBADMSG);
	/* the frames' own rules */
	CHECK(idx_edit(0, X_LENGTH, 4, 0) == -EBADMSG);
	CHECK(idx_edit(0, X_OFFSET, 8, 4 * c - 40) == 0);
	CHECK(idx_edit(0, X_OFFSET, 8, 4 * c - 39) == -EBADMSG); /* 2 chunks */
	CHECK(idx_edit(0, X_OFFSET, 8, UINT64_MAX - 10) == -EBADMSG);
	CHECK(idx_edit(0, X_OFFSET, 8, DEV_SIZE - 40) == 0);
	CHECK(idx_edit(0, X_OFFSET, 8, DEV_SIZE - 39) == -EBADMSG); /* past */
	CHECK(idx_edit(0, X_B, 8, 1) == -EBADMSG);
	CHECK(idx_edit(0, X_A, 8, 1) == 0); /* a data hash: per frame */
	CHECK(idx_edit(1, X_A, 8, 1) == -EBADMSG);
	CHECK(idx_edit(1, X_B, 8, 1) == -EBADMSG);
	CHECK(idx_edit(1, X_POS, 4, 1) == -EBADMSG);
	CHECK(idx_edit(1, X_LENGTH, 4, 11) == -EBADMSG); /* overlaps 0 */
	CHECK(idx_edit(1, X_OFFSET, 8, 3 * c + 50) == 0);
	CHECK(idx_edit(1, X_OFFSET, 8, 3 * c + 49) == -EBADMSG);
	CHECK(idx_edit(1, X_OFFSET, 8, c + 29) == -EBADMSG); /* on 2 */
	CHECK(idx_edit(3, X_A, 8, 0) == -EBADMSG);	     /* gen 0 */
	CHECK(idx_edit(3, X_B, 8, 0) == 0);
	CHECK(idx_edit(3, X_POS, 4, hl) == -EBADMSG);
	CHECK(idx_edit(3, X_OFFSET, 8, 4 * c + 1) == -EBADMSG);
	CHECK(idx_edit(3, X_LENGTH, 4, c - 1) == -EBADMSG); /* not the last */
	CHECK(idx_edit(3, X_OFFSET, 8, 5 * c) == -EBADMSG); /* on the TRIM */
	CHECK(idx_edit(3, X_OFFSET, 8, 3 * c) == -EBADMSG); /* on 0 and 1 */
	CHECK(idx_edit(3, X_OFFSET, 8, DEV_SIZE - c) == 0);
	CHECK(idx_edit(3, X_OFFSET, 8, DEV_SIZE) == -EBADMSG);
	CHECK(idx_edit(4, X_A, 8, 1) == -EBADMSG);
	CHECK(idx_edit(4, X_B, 8, 1) == -EBADMSG);
	CHECK(idx_edit(4, X_LENGTH, 4, c + 1) == -EBADMSG);
	CHECK(idx_edit(4, X_OFFSET, 8, 6 * c) == 0);
	CHECK(idx_edit(4, X_OFFSET, 8, c) == -EBADMSG); /* on frame 2 */

	/* a gap between frames is allowed, if the payload area holds it */
	obj = sample(&len, f);
	le32_put(obj + SEG_HDR_SIZE + 2 * SEG_INDEX_ENTRY + X_POS, hl + 88 + 8);
	le64_put(obj + H_PAYLOAD_LEN, 166 + 8);
	reseal_len(obj, len);
	CHECK(decode_all(obj, len, DEV_SIZE) == 0);
	le64_put(obj + H_PAYLOAD_LEN, 166 + 7);
	reseal_len(obj, len);
	CHECK(decode_all(obj, len, DEV_SIZE) == -EBADMSG);
	free(obj);
}

static void test_frame_check(void)
{
	struct seg_frame f[5];
	size_t len;
	uint8_t *obj = sample(&len, f);
	uint8_t *fr = obj + f[0].pos;
	size_t flen = SEG_FRAME_HDR + 40;
	const void *data = NULL;

	CHECK(f[0].pos == SEG_HDR_SIZE + 5 * SEG_INDEX_ENTRY);
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset, 40, &data) ==
		      0 &&
	      data == fr + SEG_FRAME_HDR);
	/* bytes after the frame (the next frame) are ignored */
	CHECK(seg_frame_check(fr, len - f[0].pos, DEV_ID, 77, f[0].offset, 40,
			      &data) == 0);
	/* not the frame asked for */
	CHECK(seg_frame_check(fr, flen, DEV_ID + 1, 77, f[0].offset, 40,
			      &data) == -EBADMSG);
	CHECK(seg_frame_check(fr, flen, DEV_ID, 78, f[0].offset, 40, &data) ==
	      -EBADMSG);
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset + 1, 40,
			      &data) == -EBADMSG);
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset, 39, &data) ==
	      -EBADMSG);
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset, 41, &data) ==
	      -EBADMSG);
	/* the other frame is another frame */
	CHECK(seg_frame_check(obj + f[2].pos, SEG_FRAME_HDR + 30, DEV_ID, 77,
			      f[0].offset, 40, &data) == -EBADMSG);
	/* every truncation */
	for (size_t l = 0; l < flen; l++)
		CHECK(seg_frame_check(fr, l, DEV_ID, 77, f[0].offset, 40,
				      &data) == -EBADMSG);
	CHECK(seg_frame_check(NULL, flen, DEV_ID, 77, f[0].offset, 40, &data) ==
	      -EBADMSG);
	/* every flipped bit, header and data */
	for (size_t i = 0; i < flen; i++) {
		for (int b = 0; b < 8; b++) {
			fr[i] ^= (uint8_t)(1 << b);
			CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset,
					      40, &data) == -EBADMSG);
			fr[i] ^= (uint8_t)(1 << b);
		}
	}
	/* a resealed header that lies: the data hash still refuses it */
	le64_put(fr + FH_HASH, 1);
	le32_put(fr + FH_HDR_HASH, XXH32(fr, FH_HDR_HASH, 0));
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset, 40, &data) ==
	      -EBADMSG);
	/* a frame header that says more than is there */
	le64_put(fr + FH_HASH, XXH3_64bits(fr + SEG_FRAME_HDR, 40));
	le32_put(fr + FH_LENGTH, 41);
	le32_put(fr + FH_HDR_HASH, XXH32(fr, FH_HDR_HASH, 0));
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset, 41, &data) ==
	      -EBADMSG);
	le32_put(fr + FH_LENGTH, 40);
	le32_put(fr + FH_HDR_HASH, XXH32(fr, FH_HDR_HASH, 0));
	CHECK(seg_frame_check(fr, flen, DEV_ID, 77, f[0].offset, 40, &data) ==
	      0);
	/* the fields as the table places them */
	CHECK(le32_get(fr + FH_LENGTH) == 40 &&
	      le64_get(fr + FH_OFFSET) == f[0].offset &&
	      le64_get(fr + FH_SEQ) == 77 && le64_get(fr + FH_DEV) == DEV_ID &&
	      memcmp(fr, SEG_FRAME_MAGIC, 4) == 0);
	free(obj);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 131 + (i >> 9));
	test_roundtrips();
	test_big_frame();
	test_encoder_refusals();
	test_too_big();
	test_header_damage();
	test_index_damage();
	test_frame_check();
	printf("test-segment: ok\n");
	return 0;
}
