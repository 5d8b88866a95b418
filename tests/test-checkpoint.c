/* test-checkpoint.c - checkpoint parts (proto/checkpoint.c).
 *
 * A reference writer here lays out a part from the table in
 * checkpoint.h, without any check: the encoder must produce the same
 * bytes for valid input, and objects the encoder refuses are made with
 * it, so every rule is tested twice: ckpt_encode refuses it (-EINVAL)
 * and ckpt_decode refuses the object (-EBADMSG).  Also round trips of
 * every kind, no entry, the device's short last chunk, a large FULL
 * split into parts, every truncation, every flipped bit of a small
 * part, each header field edited with the hash recomputed, and the
 * size limits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/checkpoint.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define KiB 1024u

/* Header offsets, from the table in checkpoint.h. */
enum {
	H_VERSION = 8,
	H_KIND = 10,
	H_SHIFT = 11,
	H_NUM = 16,
	H_DEVSIZE = 32,
	H_SEG_SEQ = 40,
	H_PREV_NUM = 48,
	H_PREV_EPOCH = 56,
	H_PART = 60,
	H_NPARTS = 62,
	H_GEN_FLOOR = 64,
	H_NENTRIES = 88,
	H_NEXTENTS = 92,
	H_RAW_LEN = 96,
	H_PAYLOAD_LEN = 100,
	H_DATA_HASH = 104,
	H_SPARE = 112,
	H_HASH = 124,
};

/* ---- the reference writer ---------------------------------------------- */

static void *ref_encode(const struct ckpt_info *in, const struct ckpt_entry *e,
			const struct ckpt_extent *x, size_t *len)
{
	size_t raw_len = (size_t)in->nentries * 40 + (size_t)in->nextents * 32;
	uint8_t *raw = calloc(1, raw_len + 1), *p = raw, *obj;
	size_t nx = 0;
	int bound = LZ4_compressBound((int)raw_len), clen = 0;

	CHECK(raw);
	for (uint32_t i = 0; i < in->nentries; i++) {
		le64_put(p, e[i].index);
		le64_put(p + 8, e[i].gen);
		le64_put(p + 16, e[i].hash);
		le32_put(p + 24, e[i].heat);
		le32_put(p + 28, e[i].tick);
		le32_put(p + 32, e[i].next);
		p += 40;
		for (uint32_t j = 0; j < e[i].next && nx < in->nextents;
		     j++, nx++) {
			le32_put(p, x[nx].off);
			le32_put(p + 4, x[nx].len);
			le64_put(p + 8, x[nx].seq);
			le32_put(p + 16, x[nx].pos);
			le32_put(p + 20, x[nx].flen);
			le32_put(p + 24, x[nx].fstart);
			p += 32;
		}
	}
	/* extents the entries do not claim still fill raw_len */
	for (; nx < in->nextents; nx++) {
		le32_put(p, x[nx].off);
		le32_put(p + 4, x[nx].len);
		p += 32;
	}
	CHECK((size_t)(p - raw) == raw_len);
	obj = calloc(1, 128 + (size_t)bound);
	CHECK(obj);
	if (raw_len)
		clen = LZ4_compress_default((char *)raw, (char *)obj + 128,
					    (int)raw_len, bound);
	memcpy(obj, CKPT_MAGIC, 8);
	le16_put(obj + 8, 1);
	obj[10] = in->kind;
	obj[11] = (uint8_t)in->chunk_shift;
	le32_put(obj + 12, in->epoch);
	le64_put(obj + 16, in->num);
	le64_put(obj + 24, in->device_id);
	le64_put(obj + 32, in->device_size);
	le64_put(obj + 40, in->seg_seq);
	le64_put(obj + 48, in->prev_num);
	le32_put(obj + 56, in->prev_epoch);
	le16_put(obj + 60, in->part);
	le16_put(obj + 62, in->nparts);
	le64_put(obj + 64, in->gen_floor);
	le64_put(obj + 72, in->created);
	le64_put(obj + 80, in->dev_created);
	le32_put(obj + 88, in->nentries);
	le32_put(obj + 92, in->nextents);
	le32_put(obj + 96, (uint32_t)raw_len);
	le32_put(obj + 100, (uint32_t)clen);
	le64_put(obj + 104, XXH3_64bits(raw, raw_len));
	le32_put(obj + 124, XXH32(obj, 124, 0));
	free(raw);
	*len = 128 + (size_t)clen;
	return obj;
}

static void reseal(uint8_t *obj)
{
	le32_put(obj + H_HASH, XXH32(obj, H_HASH, 0));
}

/* ---- a sample part -------------------------------------------------- */

#define CHUNK (64 * KiB)

static struct ckpt_info info_of(uint8_t kind, uint32_t ne, uint32_t nx)
{
	return (struct ckpt_info){ .kind = kind,
				   .chunk_shift = 16,
				   .epoch = 4,
				   .num = 12,
				   .device_id = 0xdeadbeefcafef00dull,
				   .device_size = 10 * CHUNK + 1000,
				   .seg_seq = 500,
				   .prev_num = kind == CKPT_DELTA ? 11 : 0,
				   .prev_epoch = kind == CKPT_DELTA ? 3 : 0,
				   .part = 0,
				   .nparts = 1,
				   .gen_floor = 100,
				   .created = 1700000001,
				   .dev_created = 1600000000,
				   .nentries = ne,
				   .nextents = nx };
}

/* Four chunks: a base alone; a base with a data and a zero overlay;
 * an overlay on zeros; the short last chunk (1000 bytes), overlaid up
 * to its end. */
static struct ckpt_entry S_ENTS[4] = {
	{ 1, 5, 0x1111, 2048, 7, 0, 0 },
	{ 3, 6, 0x2222, 1024, 8, 2, 0 },
	{ 4, 0, 0, 0, 0, 1, 2 },
	{ 10, 7, 0x3333, 0, 9, 1, 3 },
};
static struct ckpt_extent S_EXTS[4] = {
	{ 100, 50, 400, 4096, 200, 0 },		 /* frame [0, 200) */
	{ 150, 10, 401, CKPT_ZERO_POS, 0, 150 }, /* zeros after it */
	{ 0, CHUNK, 500, 200000, CHUNK, 0 },	 /* the whole chunk */
	{ 900, 100, 1, 168, 300, 700 },		 /* to the device's end */
};

/* Field by field: struct ckpt_extent has padding. */
static bool ext_eq(const struct ckpt_extent *a, const struct ckpt_extent *b)
{
	return a->off == b->off && a->len == b->len && a->seq == b->seq &&
	       a->pos == b->pos && a->flen == b->flen && a->fstart == b->fstart;
}

static bool exts_eq(const struct ckpt_extent *a, const struct ckpt_extent *b,
		    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!ext_eq(&a[i], &b[i]))
			return false;
	return true;
}

static int decode(const void *obj, size_t len)
{
	struct ckpt_info info;
	struct ckpt_entry *e = NULL;
	struct ckpt_extent *x = NULL;
	int r = ckpt_decode(obj, len, &info, &e, &x);

	CHECK(r == 0 || (e == NULL && x == NULL));
	free(e);
	free(x);
	return r;
}

/* Encode with both writers: equal bytes, and it decodes to the input. */
static void roundtrip(const struct ckpt_info *in, const struct ckpt_entry *e,
		      const struct ckpt_extent *x)
{
	struct ckpt_info out;
	struct ckpt_entry *ge;
	struct ckpt_extent *gx;
	void *obj, *ref;
	size_t len, rlen;
	uint32_t nx = 0;

	CHECK(ckpt_encode(in, e, x, &obj, &len) == 0);
	ref = ref_encode(in, e, x, &rlen);
	CHECK(len == rlen && memcmp(obj, ref, len) == 0);
	CHECK(len == CKPT_HEADER_SIZE || in->nentries);
	CHECK(ckpt_decode(obj, len, &out, &ge, &gx) == 0);
	CHECK(out.kind == in->kind && out.chunk_shift == in->chunk_shift &&
	      out.epoch == in->epoch && out.num == in->num &&
	      out.device_id == in->device_id &&
	      out.device_size == in->device_size &&
	      out.seg_seq == in->seg_seq && out.prev_num == in->prev_num &&
	      out.prev_epoch == in->prev_epoch && out.part == in->part &&
	      out.nparts == in->nparts && out.gen_floor == in->gen_floor &&
	      out.created == in->created &&
	      out.dev_created == in->dev_created &&
	      out.nentries == in->nentries && out.nextents == in->nextents);
	CHECK(in->nentries ? ge != NULL : ge == NULL);
	CHECK(in->nextents ? gx != NULL : gx == NULL);
	for (uint32_t i = 0; i < in->nentries; i++) {
		CHECK(ge[i].index == e[i].index && ge[i].gen == e[i].gen &&
		      ge[i].hash == e[i].hash && ge[i].heat == e[i].heat &&
		      ge[i].tick == e[i].tick && ge[i].next == e[i].next);
		CHECK(ge[i].first == nx);
		nx += e[i].next;
	}
	CHECK(exts_eq(gx, x, in->nextents));
	free(ge);
	free(gx);
	free(obj);
	free(ref);
}

static void test_roundtrips(void)
{
	struct ckpt_info in;

	for (uint8_t k = CKPT_FULL; k <= CKPT_DELTA; k++) {
		in = info_of(k, 4, 4);
		roundtrip(&in, S_ENTS, S_EXTS);
		in = info_of(k, 0, 0); /* nothing: no lz4 block */
		roundtrip(&in, NULL, NULL);
	}
	/* LOCAL: the chunks with overlays */
	in = info_of(CKPT_LOCAL, 3, 4);
	roundtrip(&in, S_ENTS + 1, S_EXTS);
	in = info_of(CKPT_LOCAL, 0, 0);
	roundtrip(&in, NULL, NULL);
	/* DELTA: a chunk that holds nothing now */
	{
		struct ckpt_entry e[2] = { { 0, 0, 0, 0, 0, 0, 0 },
					   { 9, 99, 1, 2, 3, 0, 0 } };

		in = info_of(CKPT_DELTA, 2, 0);
		roundtrip(&in, e, NULL);
	}
	/* extreme header values */
	in = info_of(CKPT_FULL, 4, 4);
	in.device_size = UINT64_MAX; /* last chunk 64 KiB - 1 */
	in.gen_floor = UINT64_MAX;
	in.seg_seq = UINT64_MAX;
	in.num = UINT64_MAX;
	in.part = UINT16_MAX - 1;
	in.nparts = UINT16_MAX;
	in.chunk_shift = 16;
	{
		struct ckpt_entry e[4];

		memcpy(e, S_ENTS, sizeof(e));
		e[3].index = (UINT64_MAX >> 16); /* the last chunk */
		roundtrip(&in, e, S_EXTS);
	}
	in.chunk_shift = 26;
	roundtrip(&in, S_ENTS, S_EXTS);
}

/* A FULL checkpoint of 200000 chunks split into parts of at most
 * ~1 MiB raw, each decoded alone and put together again. */
static void test_parts(void)
{
	const uint32_t n = 200000;
	struct ckpt_entry *e = calloc(n, sizeof(*e));
	struct ckpt_extent *x = calloc(n, sizeof(*x));
	struct ckpt_info in = info_of(CKPT_FULL, 0, 0);
	uint32_t nx = 0, parts = 0, ge = 0, gx = 0;
	size_t total = 0;

	CHECK(e && x);
	in.device_size = (uint64_t)n * 3 * CHUNK;
	in.gen_floor = UINT64_C(1) << 40;
	for (uint32_t i = 0; i < n; i++) {
		e[i] = (struct ckpt_entry){
			(uint64_t)i * 3, i + 1, i * 77ull, i, i, i % 3 == 0, 0
		};
		if (i % 3 == 0)
			x[nx++] = (struct ckpt_extent){
				i % 1000, 4096, i + 1, 168 + i, 8192, i % 1000
			};
	}
	in.seg_seq = n;
	/* split: whole chunks, up to the raw limit chosen */
	for (uint32_t i = 0, xi = 0; i < n;) {
		uint32_t j = i, xj = xi;

		while (j < n && ckpt_raw_len(j - i + 1, xj - xi + e[j].next) <=
					(1u << 20)) {
			xj += e[j].next;
			j++;
		}
		parts++;
		i = j;
		xi = xj;
	}
	CHECK(parts > 5 && parts < 20);
	in.nparts = (uint16_t)parts;
	for (uint32_t p = 0, i = 0, xi = 0; p < parts; p++) {
		uint32_t j = i, xj = xi;
		struct ckpt_info out;
		struct ckpt_entry *de;
		struct ckpt_extent *dx;
		void *obj;
		size_t len;

		while (j < n && ckpt_raw_len(j - i + 1, xj - xi + e[j].next) <=
					(1u << 20)) {
			xj += e[j].next;
			j++;
		}
		in.part = (uint16_t)p;
		in.nentries = j - i;
		in.nextents = xj - xi;
		CHECK(ckpt_encode(&in, e + i, x + xi, &obj, &len) == 0);
		CHECK(len < ckpt_raw_len(in.nentries, in.nextents)); /* lz4 */
		total += len;
		CHECK(ckpt_decode(obj, len, &out, &de, &dx) == 0);
		/* the same header but for part and the counts */
		CHECK(out.part == p && out.nparts == parts &&
		      out.num == in.num && out.kind == CKPT_FULL &&
		      out.seg_seq == in.seg_seq);
		/* indexes increase from part to part */
		CHECK(p == 0 || de[0].index > e[i - 1].index);
		for (uint32_t k = 0; k < out.nentries; k++, ge++) {
			CHECK(de[k].index == e[ge].index &&
			      de[k].gen == e[ge].gen &&
			      de[k].next == e[ge].next);
			CHECK(de[k].first + xi == (uint32_t)(gx));
			gx += de[k].next;
		}
		CHECK(exts_eq(dx, x + xi, out.nextents));
		free(de);
		free(dx);
		free(obj);
		i = j;
		xi = xj;
	}
	CHECK(ge == n && gx == nx);
	printf("parts: %u chunks, %u extents in %u parts, %zu bytes\n", n, nx,
	       parts, total);
	free(e);
	free(x);
}

/* Every truncation, every flipped bit: refused, except a payload bit
 * lz4 reads the same way (then the result must be exact). */
static void test_damage(void)
{
	struct ckpt_info in = info_of(CKPT_FULL, 4, 4);
	uint8_t *obj;
	void *p;
	size_t len;

	CHECK(ckpt_encode(&in, S_ENTS, S_EXTS, &p, &len) == 0);
	obj = p;
	CHECK(decode(obj, len) == 0);
	CHECK(decode(NULL, len) == -EBADMSG);
	for (size_t l = 0; l < len; l++)
		CHECK(decode(obj, l) == -EBADMSG);
	obj = realloc(obj, len + 1);
	obj[len] = 0;
	CHECK(decode(obj, len + 1) == -EBADMSG); /* a trailing byte */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			struct ckpt_info info;
			struct ckpt_entry *e = NULL;
			struct ckpt_extent *x = NULL;
			int r;

			obj[i] ^= (uint8_t)(1 << b);
			r = ckpt_decode(obj, len, &info, &e, &x);
			if (i >= H_VERSION && i < H_VERSION + 2)
				CHECK(r == -ENOTSUP);
			else if (i < CKPT_HEADER_SIZE)
				CHECK(r == -EBADMSG);
			else
				CHECK(r == -EBADMSG ||
				      (r == 0 &&
				       memcmp(e, S_ENTS, sizeof(S_ENTS)) == 0 &&
				       exts_eq(x, S_EXTS, 4)));
			free(e);
			free(x);
			obj[i] ^= (uint8_t)(1 << b);
		}
	}
	free(obj);
}

/* One header field of the sample edited, hash recomputed. */
static int hdr_edit(uint8_t kind, size_t off, unsigned width, uint64_t v)
{
	/* LOCAL: the chunks with overlays */
	uint32_t skip = kind == CKPT_LOCAL;
	struct ckpt_info in = info_of(kind, 4 - skip, 4);
	uint8_t *obj;
	size_t len;
	int r;

	obj = ref_encode(&in, S_ENTS + skip, S_EXTS, &len);
	CHECK(decode(obj, len) == 0);
	if (width == 1)
		obj[off] = (uint8_t)v;
	else if (width == 2)
		le16_put(obj + off, (uint16_t)v);
	else if (width == 4)
		le32_put(obj + off, (uint32_t)v);
	else
		le64_put(obj + off, v);
	reseal(obj);
	r = decode(obj, len);
	free(obj);
	return r;
}

static void test_header(void)
{
	CHECK(hdr_edit(CKPT_FULL, 0, 1, 'X') == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_VERSION, 2, 2) == -ENOTSUP);
	CHECK(hdr_edit(CKPT_FULL, H_VERSION, 2, 0) == -ENOTSUP);
	CHECK(hdr_edit(CKPT_FULL, H_KIND, 1, 0) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_KIND, 1, 4) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_KIND, 1, CKPT_LOCAL) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_SHIFT, 1, 15) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_SHIFT, 1, 27) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_SHIFT, 1, 17) == -EBADMSG); /* geometry */
	CHECK(hdr_edit(CKPT_FULL, H_NUM, 8, 0) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_DEVSIZE, 8, 0) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_DEVSIZE, 8, 3 * CHUNK) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_DEVSIZE, 8, 10 * CHUNK + 999) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_DEVSIZE, 8, 11 * CHUNK) == 0);
	CHECK(hdr_edit(CKPT_FULL, H_PART, 2, 1) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_NPARTS, 2, 0) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_NPARTS, 2, 2) == 0);
	CHECK(hdr_edit(CKPT_FULL, H_PREV_NUM, 8, 1) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_PREV_EPOCH, 4, 1) == -EBADMSG);
	CHECK(hdr_edit(CKPT_LOCAL, H_PREV_NUM, 8, 1) == -EBADMSG);
	CHECK(hdr_edit(CKPT_DELTA, H_PREV_NUM, 8, 0) == -EBADMSG);
	CHECK(hdr_edit(CKPT_DELTA, H_PREV_EPOCH, 4, 0) == 0);
	CHECK(hdr_edit(CKPT_FULL, H_GEN_FLOOR, 8, 7) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_GEN_FLOOR, 8, 8) == 0);
	CHECK(hdr_edit(CKPT_FULL, H_SEG_SEQ, 8, 499) == -EBADMSG);
	/* sizes: nentries, nextents and raw_len agree with each other and
	 * with the payload */
	CHECK(hdr_edit(CKPT_FULL, H_NENTRIES, 4, 3) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_NEXTENTS, 4, 5) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_RAW_LEN, 4, 4 * 40 + 4 * 32 + 1) ==
	      -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_PAYLOAD_LEN, 4, 0) == -EBADMSG);
	CHECK(hdr_edit(CKPT_FULL, H_DATA_HASH, 8, 0) == -EBADMSG);
	/* the spare bytes are hashed, not checked */
	CHECK(hdr_edit(CKPT_FULL, H_SPARE, 8, UINT64_MAX) == 0);
	CHECK(hdr_edit(CKPT_FULL, H_SPARE + 4, 8, UINT64_MAX) == 0);
}

/* Lengths that cannot be: refused from the header, before any
 * allocation of raw_len. */
static void test_sizes(void)
{
	struct ckpt_info in = info_of(CKPT_FULL, 0, 0);
	uint8_t *obj;
	size_t len;

	/* an empty part has no lz4 block at all */
	obj = ref_encode(&in, NULL, NULL, &len);
	CHECK(len == CKPT_HEADER_SIZE && decode(obj, len) == 0);
	obj = realloc(obj, len + 1);
	obj[len] = 0;
	le32_put(obj + H_PAYLOAD_LEN, 1);
	reseal(obj);
	CHECK(decode(obj, len + 1) == -EBADMSG);
	le64_put(obj + H_DATA_HASH, 0);
	le32_put(obj + H_PAYLOAD_LEN, 0);
	reseal(obj);
	CHECK(decode(obj, len) == -EBADMSG);
	free(obj);

	/* a part over CKPT_PART_MAX_RAW, however consistent */
	in = info_of(CKPT_FULL, 4, 4);
	obj = ref_encode(&in, S_ENTS, S_EXTS, &len);
	uint32_t ne = CKPT_PART_MAX_RAW / 40 + 1;
	le32_put(obj + H_NENTRIES, ne);
	le32_put(obj + H_NEXTENTS, 0);
	le32_put(obj + H_RAW_LEN, ne * 40);
	le64_put(obj + H_DEVSIZE, UINT64_MAX);
	reseal(obj);
	CHECK(decode(obj, len) == -EBADMSG);
	/* at the limit, but from a payload lz4 cannot have made it of */
	le32_put(obj + H_NENTRIES, 0);
	le32_put(obj + H_NEXTENTS, CKPT_PART_MAX_RAW / 32);
	le32_put(obj + H_RAW_LEN, CKPT_PART_MAX_RAW);
	reseal(obj);
	CHECK(decode(obj, len) == -EBADMSG);
	/* a payload longer than lz4's bound for raw_len */
	le32_put(obj + H_NENTRIES, 1);
	le32_put(obj + H_NEXTENTS, 0);
	le32_put(obj + H_RAW_LEN, 40);
	reseal(obj);
	CHECK(decode(obj, len) == -EBADMSG);
	free(obj);

	/* more entries than chunks */
	in = info_of(CKPT_FULL, 4, 4);
	in.device_size = 3 * CHUNK;
	obj = ref_encode(&in, S_ENTS, S_EXTS, &len);
	CHECK(decode(obj, len) == -EBADMSG);
	free(obj);

	/* the encoder: -EFBIG past the limit, before reading anything */
	in = info_of(CKPT_FULL, CKPT_PART_MAX_RAW / 40 + 1, 0);
	in.device_size = UINT64_MAX;
	CHECK(ckpt_encode(&in, S_ENTS, NULL, (void **)&obj, &len) == -EFBIG);
	in = info_of(CKPT_FULL, 0, CKPT_PART_MAX_RAW / 32 + 1);
	CHECK(ckpt_encode(&in, NULL, S_EXTS, (void **)&obj, &len) == -EFBIG);
	in = info_of(CKPT_FULL, UINT32_MAX, UINT32_MAX);
	CHECK(ckpt_encode(&in, S_ENTS, S_EXTS, (void **)&obj, &len) == -EFBIG);
}

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

/* A small object that claims 256 MiB of extents is refused before
 * raw_len is allocated: in a child whose address space has 64 MiB to
 * spare, the decoder must say -EBADMSG, not -ENOMEM.  (ASan reserves
 * terabytes of shadow: no address-space limit there.) */
static void test_no_allocation_bomb(void)
{
#ifndef ASAN
	struct ckpt_info in = info_of(CKPT_FULL, 4, 4);
	size_t len;
	uint8_t *obj = ref_encode(&in, S_ENTS, S_EXTS, &len);
	int status;
	pid_t pid;

	le32_put(obj + H_NENTRIES, 0);
	le32_put(obj + H_NEXTENTS, CKPT_PART_MAX_RAW / 32);
	le32_put(obj + H_RAW_LEN, CKPT_PART_MAX_RAW);
	reseal(obj);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		struct rlimit rl;

		if (!f || fscanf(f, "%ld", &pages) != 1)
			_exit(2);
		fclose(f);
		rl.rlim_cur = rl.rlim_max =
			(rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) +
			(64u << 20);
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(2);
		/* the limit bites: 256 MiB cannot be had */
		void *big = malloc(CKPT_PART_MAX_RAW);
		if (big)
			_exit(3);
		_exit(decode(obj, len) == -EBADMSG ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(obj);
#endif
}

/* A rule broken: the encoder refuses the input, the decoder the object
 * the reference writer makes of it. */
static void refused(uint8_t kind, const struct ckpt_entry *e, uint32_t ne,
		    const struct ckpt_extent *x, uint32_t nx, int line)
{
	struct ckpt_info in = info_of(kind, ne, nx);
	void *obj;
	size_t len;
	int r = ckpt_encode(&in, e, x, &obj, &len);

	if (r != -EINVAL) {
		fprintf(stderr, "line %d: ckpt_encode returned %d\n", line, r);
		exit(1);
	}
	obj = ref_encode(&in, e, x, &len);
	r = decode(obj, len);
	if (r != -EBADMSG) {
		fprintf(stderr, "line %d: ckpt_decode returned %d\n", line, r);
		exit(1);
	}
	free(obj);
}

static void accepted(uint8_t kind, const struct ckpt_entry *e, uint32_t ne,
		     const struct ckpt_extent *x, uint32_t nx, int line)
{
	struct ckpt_info in = info_of(kind, ne, nx);
	void *obj;
	size_t len;
	int r = ckpt_encode(&in, e, x, &obj, &len);

	if (r != 0 || decode(obj, len) != 0) {
		fprintf(stderr, "line %d: refused (%d)\n", line, r);
		exit(1);
	}
	free(obj);
}

/* The sample with one entry or extent changed. */
#define ENT(i, field, v, how)                              \
	do {                                               \
		struct ckpt_entry e[4];                    \
		memcpy(e, S_ENTS, sizeof(e));              \
		e[i].field = (v);                          \
		how(CKPT_FULL, e, 4, S_EXTS, 4, __LINE__); \
	} while (0)
#define EXT(i, field, v, how)                              \
	do {                                               \
		struct ckpt_extent x[4];                   \
		memcpy(x, S_EXTS, sizeof(x));              \
		x[i].field = (v);                          \
		how(CKPT_FULL, S_ENTS, 4, x, 4, __LINE__); \
	} while (0)

static void test_rules(void)
{
	/* entries: order, bounds, generations */
	ENT(1, index, 1, refused);  /* equal */
	ENT(1, index, 0, refused);  /* decreasing */
	ENT(3, index, 11, refused); /* past the device */
	ENT(3, index, 4, refused);
	ENT(0, index, 0, accepted);
	ENT(0, gen, 100, refused); /* the floor */
	ENT(0, gen, 99, accepted);
	ENT(0, gen, 0, refused);  /* FULL: holds nothing */
	ENT(1, gen, 0, accepted); /* overlays on zeros */
	ENT(0, hash, UINT64_MAX, accepted);
	/* the extent counts */
	ENT(0, next, 1, refused);	   /* claims one it has not */
	ENT(3, next, 0, refused);	   /* one left over */
	ENT(3, next, 2, refused);	   /* one more than there are */
	ENT(2, next, UINT32_MAX, refused); /* wraps the count */
	{
		/* LOCAL: every entry has extents; DELTA: none need */
		struct ckpt_entry e[1] = { { 2, 5, 0, 0, 0, 0, 0 } };

		refused(CKPT_LOCAL, e, 1, NULL, 0, __LINE__);
		accepted(CKPT_DELTA, e, 1, NULL, 0, __LINE__);
		e[0].gen = 0;
		accepted(CKPT_DELTA, e, 1, NULL, 0, __LINE__);
		refused(CKPT_FULL, e, 1, NULL, 0, __LINE__);
	}
	/* extents: within the chunk, in order, not overlapping */
	EXT(0, len, 0, refused);
	{
		struct ckpt_extent x[4];

		/* overlapping by a byte */
		memcpy(x, S_EXTS, sizeof(x));
		x[1].off = x[1].fstart = 149;
		refused(CKPT_FULL, S_ENTS, 4, x, 4, __LINE__);
		/* out of order, not overlapping */
		x[0] = (struct ckpt_extent){ 200, 10, 400, 4096, 210, 0 };
		x[1].off = x[1].fstart = 150;
		refused(CKPT_FULL, S_ENTS, 4, x, 4, __LINE__);
		x[1].off = x[1].fstart = 210;
		accepted(CKPT_FULL, S_ENTS, 4, x, 4, __LINE__);
	}
	EXT(2, len, CHUNK - 1, accepted);
	EXT(2, off, 1, refused);   /* past the chunk */
	EXT(3, len, 101, refused); /* past the short last chunk */
	EXT(3, off, UINT32_MAX, refused);
	EXT(0, seq, 0, refused);
	EXT(0, seq, 501, refused); /* after seg_seq */
	EXT(0, seq, 500, accepted);
	/* data extents: inside their frame, the frame inside the chunk */
	EXT(0, fstart, 101, refused);
	EXT(0, flen, 149, refused); /* the frame ends before the extent */
	EXT(0, flen, 150, accepted);
	EXT(2, flen, CHUNK + 1, refused); /* the frame is past the chunk */
	EXT(3, flen, 301, refused);	  /* past the short chunk */
	EXT(3, fstart, 699, refused);	  /* the frame ends before the extent */
	EXT(3, fstart, 701, refused); /* the frame is past the short chunk */
	EXT(3, flen, 299, refused);
	EXT(0, pos, CKPT_ZERO_POS - 1, accepted);
	EXT(0, pos, 0, accepted); /* the segment checks its frames */
	/* zero extents: no frame */
	EXT(1, flen, 1, refused);
	EXT(1, fstart, 0, refused);
	EXT(1, fstart, 151, refused);
	EXT(0, pos, CKPT_ZERO_POS, refused); /* zeros with a frame */
	{
		struct ckpt_extent x[4];

		memcpy(x, S_EXTS, sizeof(x));
		x[0] =
			(struct ckpt_extent){ 100,	     50, 400,
					      CKPT_ZERO_POS, 0,	 100 };
		accepted(CKPT_FULL, S_ENTS, 4, x, 4, __LINE__);
	}
}

/* Header rules, at the encoder. */
static void test_encoder_info(void)
{
	struct ckpt_info in;
	void *obj;
	size_t len;

#define ENC_INFO(field, v, want)                                       \
	do {                                                           \
		in = info_of(CKPT_FULL, 4, 4);                         \
		in.field = (v);                                        \
		int _r = ckpt_encode(&in, S_ENTS, S_EXTS, &obj, &len); \
		CHECK(_r == (want));                                   \
		if (_r == 0)                                           \
			free(obj);                                     \
	} while (0)
	ENC_INFO(kind, 0, -EINVAL);
	ENC_INFO(kind, 4, -EINVAL);
	ENC_INFO(chunk_shift, 15, -EINVAL);
	ENC_INFO(chunk_shift, 27, -EINVAL);
	ENC_INFO(num, 0, -EINVAL);
	ENC_INFO(device_size, 0, -EINVAL);
	ENC_INFO(part, 1, -EINVAL);
	ENC_INFO(nparts, 0, -EINVAL);
	ENC_INFO(prev_num, 1, -EINVAL);
	ENC_INFO(prev_epoch, 1, -EINVAL);
	ENC_INFO(nentries, 3, -EINVAL); /* the extents do not add up */
	ENC_INFO(nextents, 3, -EINVAL);
	ENC_INFO(device_id, UINT64_MAX, 0);
	ENC_INFO(epoch, UINT32_MAX, 0);
	in = info_of(CKPT_DELTA, 4, 4);
	in.prev_num = 0;
	CHECK(ckpt_encode(&in, S_ENTS, S_EXTS, &obj, &len) == -EINVAL);
	in = info_of(CKPT_FULL, 4, 4);
	CHECK(ckpt_encode(&in, NULL, S_EXTS, &obj, &len) == -EINVAL);
	CHECK(ckpt_encode(&in, S_ENTS, NULL, &obj, &len) == -EINVAL);
	/* `first` is not read */
	{
		struct ckpt_entry e[4];

		memcpy(e, S_ENTS, sizeof(e));
		for (int i = 0; i < 4; i++)
			e[i].first = 0xdead;
		CHECK(ckpt_encode(&in, e, S_EXTS, &obj, &len) == 0);
		free(obj);
	}
}

int main(void)
{
	test_roundtrips();
	test_parts();
	test_damage();
	test_header();
	test_sizes();
	test_no_allocation_bomb();
	test_rules();
	test_encoder_info();
	printf("test-checkpoint: ok\n");
	return 0;
}
