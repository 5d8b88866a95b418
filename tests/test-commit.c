/* test-commit.c - the commit format (proto/commit.c).
 *
 * Round trips (empty, small, large), and each rejection: truncation at
 * every length, any flipped bit in the header or payload, an unknown
 * version, entries out of order, past the device, with gen 0 or at the
 * generation floor, and encoder refusals.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/commit.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

static struct commit_info base(uint64_t n)
{
	return (struct commit_info){ .seq = 9,
				     .device_id = 42,
				     .device_size = UINT64_C(1) << 40,
				     .chunk_shift = 20,
				     .nentries = n,
				     .gen_floor = 1000,
				     .created = 1,
				     .dev_created = 77 };
}

static void fill(struct commit_entry *e, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		e[i] = (struct commit_entry){ i * 3, 1 + i % 998, ~i,
					      (uint32_t)(i * 1024),
					      (uint32_t)i };
}

static void reseal(uint8_t *obj)
{
	le32_put(obj + 124, XXH32(obj, 124, 0));
}

static void roundtrip(uint64_t n)
{
	struct commit_info in = base(n), out;
	struct commit_entry *e = calloc(n ? n : 1, sizeof(*e)), *got;
	void *obj;
	size_t len;

	fill(e, n);
	CHECK(commit_encode(&in, e, &obj, &len) == 0);
	CHECK(commit_decode(obj, len, &out, &got) == 0);
	CHECK(out.dev_created == 77);
	CHECK(out.seq == 9 && out.device_id == 42 && out.nentries == n &&
	      out.gen_floor == 1000 && out.chunk_shift == 20 &&
	      out.device_size == UINT64_C(1) << 40);
	CHECK(n == 0 ? got == NULL : memcmp(got, e, n * sizeof(*e)) == 0);
	free(got);
	free(obj);
	free(e);
}

static int decode(const void *obj, size_t len)
{
	struct commit_info info;
	struct commit_entry *e = NULL;
	int r = commit_decode(obj, len, &info, &e);

	free(e);
	return r;
}

static void corruption(void)
{
	struct commit_info in = base(50);
	struct commit_entry e[50];
	uint8_t *obj;
	void *p;
	size_t len;

	fill(e, 50);
	CHECK(commit_encode(&in, e, &p, &len) == 0);
	obj = p;
	CHECK(decode(obj, len) == 0);
	for (size_t l = 0; l < len; l++)
		CHECK(decode(obj, l) == -EBADMSG);
	/* Any flipped bit is refused, except in the lz4 payload where a
	 * different encoding may decode to the very same entries (a match
	 * offset into repeated bytes): then the result must be exact. */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			struct commit_info info;
			struct commit_entry *got = NULL;

			obj[i] ^= (uint8_t)(1 << b);
			int r = commit_decode(obj, len, &info, &got);
			if (i < COMMIT_HEADER_SIZE)
				CHECK(r == -EBADMSG || r == -ENOTSUP);
			else
				CHECK(r == -EBADMSG ||
				      (r == 0 && info.nentries == 50 &&
				       memcmp(got, e, sizeof(e)) == 0));
			free(got);
			obj[i] ^= (uint8_t)(1 << b);
		}
	}
	/* Unknown version, even with a valid header hash. */
	le16_put(obj + 8, 2);
	reseal(obj);
	CHECK(decode(obj, len) == -ENOTSUP);
	le16_put(obj + 8, 1);
	reseal(obj);
	CHECK(decode(obj, len) == 0);
	/* A smaller device: entries past its end are refused. */
	le64_put(obj + 32, UINT64_C(100) << 20);
	reseal(obj);
	CHECK(decode(obj, len) == -EBADMSG);
	le64_put(obj + 32, UINT64_C(1) << 40);
	/* A generation floor at or below an entry's generation. */
	le64_put(obj + 56, 50);
	reseal(obj);
	CHECK(decode(obj, len) == -EBADMSG);
	free(obj);
}

static void encoder_refusals(void)
{
	struct commit_info in = base(3);
	struct commit_entry e[3] = { { 5, 1, 0, 0, 0 },
				     { 4, 1, 0, 0, 0 },
				     { 9, 1, 0, 0, 0 } };
	void *obj;
	size_t len;

	CHECK(commit_encode(&in, e, &obj, &len) == -EINVAL); /* unsorted */
	e[1].index = 6;
	e[2].gen = 0;
	CHECK(commit_encode(&in, e, &obj, &len) == -EINVAL); /* gen 0 */
	e[2].gen = 3;
	CHECK(commit_encode(&in, e, &obj, &len) == 0);
	free(obj);
}

int main(void)
{
	roundtrip(0);
	roundtrip(1);
	roundtrip(1000);
	roundtrip(300000);
	corruption();
	encoder_refusals();
	printf("test-commit: ok\n");
	return 0;
}
