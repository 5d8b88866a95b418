/* test-logrec.c - the write-log record header (proto/logrec.c).
 *
 * Round trips of every type at every alignment (9..12), spans at their
 * boundaries, a 64 MiB WRITE and its data check, and each rejection the
 * contract lists reached on its own: the field is edited and the header
 * hash recomputed, so that the check under test, not the hash, refuses
 * it.  Also every truncation and every flipped bit of the header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/logrec.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* Field offsets, from the table in logrec.h (not from logrec.c). */
enum {
	F_TYPE = 4,
	F_FLAGS = 5,
	F_SHIFT = 6,
	F_SPARE0 = 7,
	F_LSN = 8,
	F_DEV = 16,
	F_OFFSET = 24,
	F_LENGTH = 32,
	F_SPAN = 36,
	F_HASH = 40,
	F_SPARE1 = 48,
	F_HDR_HASH = 60,
};

#define BLOCK_MAX 4096

static void reseal(uint8_t *b)
{
	le32_put(b + F_HDR_HASH, XXH32(b, F_HDR_HASH, 0));
}

static struct logrec rec(enum logrec_type type, uint64_t offset,
			 uint32_t length, unsigned shift)
{
	struct logrec r = { .type = type,
			    .lsn = UINT64_C(0x123456789) << shift,
			    .device_id = 0xfeedfacecafebeefull,
			    .offset = offset,
			    .length = length };

	r.span = type == LOGREC_PAD ? 3u << shift
				    : logrec_span(type, length, shift);
	if (type == LOGREC_PAD)
		r.offset = r.length = 0;
	return r;
}

static int decode(const uint8_t *b, size_t len, unsigned shift)
{
	struct logrec r;

	return logrec_decode(b, len, shift, &r);
}

static void test_span(void)
{
	for (unsigned s = LOGREC_ALIGN_SHIFT_MIN; s <= LOGREC_ALIGN_SHIFT_MAX;
	     s++) {
		uint32_t a = 1u << s;

		CHECK(logrec_span(LOGREC_WRITE, 1, s) == 2 * a);
		CHECK(logrec_span(LOGREC_WRITE, a - 1, s) == 2 * a);
		CHECK(logrec_span(LOGREC_WRITE, a, s) == 2 * a);
		CHECK(logrec_span(LOGREC_WRITE, a + 1, s) == 3 * a);
		CHECK(logrec_span(LOGREC_WRITE, LOGREC_MAX_LENGTH, s) ==
		      a + LOGREC_MAX_LENGTH);
		CHECK(logrec_span(LOGREC_WRITE, LOGREC_MAX_LENGTH - 1, s) ==
		      a + LOGREC_MAX_LENGTH);
		CHECK(logrec_span(LOGREC_ZERO, LOGREC_MAX_LENGTH, s) == a);
		CHECK(logrec_span(LOGREC_ZERO, LOGREC_MAX_LENGTH + 1, s) == 0);
		CHECK(logrec_span(LOGREC_TRIM, UINT32_MAX, s) == 0);
		CHECK(logrec_span(LOGREC_TRIM, 1, s) == a);
		/* what no record carries */
		CHECK(logrec_span(LOGREC_WRITE, 0, s) == 0);
		CHECK(logrec_span(LOGREC_WRITE, LOGREC_MAX_LENGTH + 1, s) == 0);
		CHECK(logrec_span(LOGREC_WRITE, UINT32_MAX, s) == 0);
		CHECK(logrec_span(LOGREC_ZERO, 0, s) == 0);
		CHECK(logrec_span(LOGREC_TRIM, 0, s) == 0);
		CHECK(logrec_span(LOGREC_PAD, 0, s) == 0);
		CHECK(logrec_span((enum logrec_type)5, 1, s) == 0);
	}
	CHECK(logrec_span(LOGREC_WRITE, 1, 8) == 0);
	CHECK(logrec_span(LOGREC_WRITE, 1, 13) == 0);
}

static void test_roundtrip(void)
{
	static uint8_t b[BLOCK_MAX + 1];
	static const enum logrec_type types[] = { LOGREC_WRITE, LOGREC_ZERO,
						  LOGREC_TRIM, LOGREC_PAD };

	for (unsigned s = LOGREC_ALIGN_SHIFT_MIN; s <= LOGREC_ALIGN_SHIFT_MAX;
	     s++) {
		for (size_t t = 0; t < 4; t++) {
			struct logrec in = rec(types[t], 1u << 20, 5000, s),
				      out;

			if (in.type == LOGREC_WRITE)
				in.data_hash = 0x1122334455667788ull;
			in.flags = (uint8_t)(t & 1 ? LOGREC_F_FUA : 0);
			/* the whole block is written: no garbage is left */
			memset(b, 0xa5, sizeof(b));
			logrec_encode(&in, s, b);
			for (size_t i = LOGREC_HDR_LEN; i < (1u << s); i++)
				CHECK(b[i] == 0);
			CHECK(b[1u << s] == 0xa5); /* and no more */
			CHECK(memcmp(b, LOGREC_MAGIC, 4) == 0);
			CHECK(b[F_SHIFT] == s);
			memset(&out, 0, sizeof(out));
			CHECK(logrec_decode(b, 1u << s, s, &out) == 0);
			CHECK(out.type == in.type && out.flags == in.flags &&
			      out.lsn == in.lsn &&
			      out.device_id == in.device_id &&
			      out.offset == in.offset &&
			      out.length == in.length && out.span == in.span &&
			      out.data_hash == in.data_hash);
			/* the header alone is enough */
			CHECK(decode(b, LOGREC_HDR_LEN, s) == 0);
			/* a record of another alignment is not ours */
			for (unsigned o = 0; o < 16; o++)
				if (o != s)
					CHECK(decode(b, 1u << s, o) ==
					      -EBADMSG);
		}
	}
	/* extreme values */
	{
		struct logrec in = rec(LOGREC_WRITE, UINT64_MAX - 1, 1, 12),
			      out;

		in.lsn = UINT64_MAX;
		in.device_id = 0;
		in.data_hash = UINT64_MAX;
		logrec_encode(&in, 12, b);
		CHECK(logrec_decode(b, 4096, 12, &out) == 0);
		CHECK(out.offset == UINT64_MAX - 1 && out.lsn == UINT64_MAX);
	}
}

/* Every truncation and every flipped bit of the header is refused; the
 * rest of the block is not read. */
static void test_damage(void)
{
	static uint8_t b[BLOCK_MAX];
	struct logrec in = rec(LOGREC_WRITE, 4096, 4096, 9);

	in.data_hash = 42;
	logrec_encode(&in, 9, b);
	CHECK(decode(b, 512, 9) == 0);
	CHECK(logrec_decode(NULL, 512, 9, &in) == -EBADMSG);
	for (size_t l = 0; l < LOGREC_HDR_LEN; l++)
		CHECK(decode(b, l, 9) == -EBADMSG);
	for (size_t i = 0; i < LOGREC_HDR_LEN; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1 << bit);
			CHECK(decode(b, 512, 9) == -EBADMSG);
			b[i] ^= (uint8_t)(1 << bit);
		}
	}
	for (size_t i = LOGREC_HDR_LEN; i < 512; i++)
		b[i] = (uint8_t)i;
	CHECK(decode(b, 512, 9) == 0);
}

/* Edit one field of a valid record of `type` at shift s, reseal, decode. */
static int edit(enum logrec_type type, unsigned s, size_t off, unsigned width,
		uint64_t v)
{
	static uint8_t b[BLOCK_MAX];
	struct logrec in = rec(type, 8192, 700, s);

	if (type == LOGREC_WRITE)
		in.data_hash = 7;
	logrec_encode(&in, s, b);
	CHECK(decode(b, 1u << s, s) == 0);
	if (width == 1)
		b[off] = (uint8_t)v;
	else if (width == 4)
		le32_put(b + off, (uint32_t)v);
	else
		le64_put(b + off, v);
	reseal(b);
	return decode(b, 1u << s, s);
}

static void test_fields(void)
{
	for (unsigned s = LOGREC_ALIGN_SHIFT_MIN; s <= LOGREC_ALIGN_SHIFT_MAX;
	     s += 3) {
		uint32_t a = 1u << s;
		uint32_t r700 = (uint32_t)ROUND_UP(700, a), span = a + r700;

		/* magic (its hash resealed) */
		CHECK(edit(LOGREC_WRITE, s, 0, 1, 'X') == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, 3, 1, 'r') == -EBADMSG);
		/* the header's alignment is not the log's */
		CHECK(edit(LOGREC_WRITE, s, F_SHIFT, 1, s ^ 1) == -EBADMSG);
		CHECK(edit(LOGREC_PAD, s, F_SHIFT, 1, 0) == -EBADMSG);
		/* unknown types and flags; an unknown type of another
		 * alignment is still not ours */
		CHECK(edit(LOGREC_WRITE, s, F_TYPE, 1, 0) == -ENOTSUP);
		CHECK(edit(LOGREC_WRITE, s, F_TYPE, 1, 5) == -ENOTSUP);
		CHECK(edit(LOGREC_WRITE, s, F_TYPE, 1, 255) == -ENOTSUP);
		CHECK(edit(LOGREC_WRITE, s, F_FLAGS, 1, 2) == -ENOTSUP);
		CHECK(edit(LOGREC_WRITE, s, F_FLAGS, 1, 0x80) == -ENOTSUP);
		CHECK(edit(LOGREC_WRITE, s, F_FLAGS, 1, LOGREC_F_FUA) == 0);
		/* WRITE: span, length, offset + length */
		CHECK(edit(LOGREC_WRITE, s, F_SPAN, 4, span) == 0);
		CHECK(edit(LOGREC_WRITE, s, F_SPAN, 4, span + a) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_SPAN, 4, span - a) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_SPAN, 4, span + 1) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_SPAN, 4, 0) == -EBADMSG);
		/* any length the span rounds to is consistent */
		CHECK(edit(LOGREC_WRITE, s, F_LENGTH, 4, r700) == 0);
		CHECK(edit(LOGREC_WRITE, s, F_LENGTH, 4, r700 - a + 1) == 0);
		CHECK(edit(LOGREC_WRITE, s, F_LENGTH, 4, r700 + 1) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_LENGTH, 4, r700 - a) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_LENGTH, 4, 0) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_LENGTH, 4,
			   LOGREC_MAX_LENGTH + 1) == -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_OFFSET, 8, UINT64_MAX - 700) ==
		      0);
		CHECK(edit(LOGREC_WRITE, s, F_OFFSET, 8, UINT64_MAX - 699) ==
		      -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_OFFSET, 8, UINT64_MAX) ==
		      -EBADMSG);
		CHECK(edit(LOGREC_WRITE, s, F_HASH, 8, 0) == 0);
		/* ZERO and TRIM: one block, no data hash, a length */
		for (enum logrec_type t = LOGREC_ZERO; t <= LOGREC_TRIM; t++) {
			CHECK(edit(t, s, F_SPAN, 4, a) == 0);
			CHECK(edit(t, s, F_SPAN, 4, 2 * a) == -EBADMSG);
			CHECK(edit(t, s, F_SPAN, 4, 0) == -EBADMSG);
			CHECK(edit(t, s, F_HASH, 8, 1) == -EBADMSG);
			CHECK(edit(t, s, F_LENGTH, 4, 0) == -EBADMSG);
			CHECK(edit(t, s, F_LENGTH, 4, LOGREC_MAX_LENGTH) == 0);
			CHECK(edit(t, s, F_LENGTH, 4, LOGREC_MAX_LENGTH + 1) ==
			      -EBADMSG);
			CHECK(edit(t, s, F_OFFSET, 8, UINT64_MAX) == -EBADMSG);
		}
		/* PAD: no range, no hash, a whole number of blocks */
		CHECK(edit(LOGREC_PAD, s, F_SPAN, 4, a) == 0);
		CHECK(edit(LOGREC_PAD, s, F_SPAN, 4, UINT32_MAX & ~(a - 1)) ==
		      0);
		CHECK(edit(LOGREC_PAD, s, F_SPAN, 4, 0) == -EBADMSG);
		CHECK(edit(LOGREC_PAD, s, F_SPAN, 4, a + a / 2) == -EBADMSG);
		CHECK(edit(LOGREC_PAD, s, F_SPAN, 4, a - 1) == -EBADMSG);
		CHECK(edit(LOGREC_PAD, s, F_OFFSET, 8, 1) == -EBADMSG);
		CHECK(edit(LOGREC_PAD, s, F_LENGTH, 4, 1) == -EBADMSG);
		CHECK(edit(LOGREC_PAD, s, F_HASH, 8, 1) == -EBADMSG);
		/* lsn and device id are the caller's to check */
		CHECK(edit(LOGREC_WRITE, s, F_LSN, 8, 3) == 0);
		CHECK(edit(LOGREC_PAD, s, F_DEV, 8, UINT64_MAX) == 0);
		/* spare bytes are hashed but not checked */
		CHECK(edit(LOGREC_WRITE, s, F_SPARE0, 1, 1) == 0);
		CHECK(edit(LOGREC_WRITE, s, F_SPARE1, 8, UINT64_MAX) == 0);
	}
}

/* A caller's alignment outside 9..12 never matches. */
static void test_bad_log_alignment(void)
{
	static uint8_t b[BLOCK_MAX];
	struct logrec in = rec(LOGREC_ZERO, 0, 1, 9);

	logrec_encode(&in, 9, b);
	for (unsigned s = 0; s < 64; s++) {
		if (s >= LOGREC_ALIGN_SHIFT_MIN && s <= LOGREC_ALIGN_SHIFT_MAX)
			continue;
		b[F_SHIFT] = (uint8_t)s;
		le32_put(b + F_SPAN, 1u << (s & 31));
		reseal(b);
		CHECK(decode(b, 512, s) == -EBADMSG);
	}
}

static void test_data(void)
{
	size_t big = LOGREC_MAX_LENGTH;
	uint8_t *data = malloc(big), *b = calloc(1, 4096);
	struct logrec in, out;

	CHECK(data && b);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	/* a 64 MiB WRITE: the largest; its span fits u32 */
	for (unsigned s = LOGREC_ALIGN_SHIFT_MIN; s <= LOGREC_ALIGN_SHIFT_MAX;
	     s += 3) {
		in = rec(LOGREC_WRITE, UINT64_C(1) << 40, (uint32_t)big, s);
		in.data_hash = XXH3_64bits(data, big);
		CHECK(in.span == (1u << s) + LOGREC_MAX_LENGTH);
		logrec_encode(&in, s, b);
		CHECK(logrec_decode(b, 1u << s, s, &out) == 0);
		CHECK(out.length == big && out.span == in.span);
		CHECK(logrec_check_data(&out, data) == 0);
		data[big - 1] ^= 1;
		CHECK(logrec_check_data(&out, data) == -EBADMSG);
		data[big - 1] ^= 1;
		data[0] ^= 0x80;
		CHECK(logrec_check_data(&out, data) == -EBADMSG);
		data[0] ^= 0x80;
	}
	/* the hash covers exactly `length` bytes */
	in = rec(LOGREC_WRITE, 0, 1000, 9);
	in.data_hash = XXH3_64bits(data, 1000);
	CHECK(logrec_check_data(&in, data) == 0);
	in.length = 999;
	CHECK(logrec_check_data(&in, data) == -EBADMSG);
	in.length = 1000;
	CHECK(logrec_check_data(&in, NULL) == -EBADMSG);
	/* records without data: nothing read */
	in = rec(LOGREC_ZERO, 0, 1u << 30, 9);
	CHECK(logrec_check_data(&in, NULL) == 0);
	in = rec(LOGREC_TRIM, 0, 1u << 20, 9);
	CHECK(logrec_check_data(&in, NULL) == 0);
	in = rec(LOGREC_PAD, 0, 0, 9);
	CHECK(logrec_check_data(&in, NULL) == 0);
	free(data);
	free(b);
}

int main(void)
{
	test_span();
	test_roundtrip();
	test_damage();
	test_fields();
	test_bad_log_alignment();
	test_data();
	printf("test-logrec: ok\n");
	return 0;
}
