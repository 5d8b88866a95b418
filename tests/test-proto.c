/* test-proto.c - unit tests of the proto/ byte formats.
 *
 * Chunk objects: round trips of compressible, incompressible and zero
 * data; every header bit flip, every truncation and payload corruption
 * detected; each rejection class of the decoder reached with an
 * otherwise valid (re-hashed) header, so each check is tested on its
 * own and not only through the header hash.  Superblock: round trip,
 * exact byte layout, each rejection class.  Map: a valid map with every
 * state passes, each bad-entry class is reported at its index.
 *
 * Every check runs; failures are printed and the exit status is 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/cachemap.h"
#include "proto/chunk_object.h"

static unsigned long nchecks, nfailed;

static void check_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	nfailed++;
}

/* CHECK(cond, "context %d", ...): counts, and on failure says what. */
#define CHECK(cond, ...)                                         \
	({                                                       \
		bool _ok = (cond);                               \
		nchecks++;                                       \
		if (!_ok)                                        \
			check_fail(__FILE__, __LINE__,           \
				   "!(" #cond ") " __VA_ARGS__); \
		_ok;                                             \
	})

/* Up to four results in one message. */
static const char *errname(long r)
{
	static char bufs[4][32];
	static unsigned next;
	char *buf = bufs[next++ % 4];

	switch (r) {
	case 0:
		return "0";
	case -EBADMSG:
		return "-EBADMSG";
	case -ENOTSUP:
		return "-ENOTSUP";
	case -ESTALE:
		return "-ESTALE";
	case -EINVAL:
		return "-EINVAL";
	case -ENOMEM:
		return "-ENOMEM";
	}
	snprintf(buf, sizeof bufs[0], "%ld", r);
	return buf;
}

static const char *context(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *context(const char *fmt, ...)
{
	static char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return buf;
}

/* CHECK_RC(expr, want[, "context", ...]): expr returns exactly want. */
#define CHECK_RC(expr, want, ...)                                       \
	({                                                              \
		long _r = (expr), _w = (want);                          \
		nchecks++;                                              \
		if (_r != _w)                                           \
			check_fail(__FILE__, __LINE__,                  \
				   "%s returned %s, want %s;%s", #expr, \
				   errname(_r), errname(_w),            \
				   context(" " __VA_ARGS__));           \
		_r == _w;                                               \
	})

/* A failure inside a loop of thousands is reported once per loop. */
#define LOOP_CHECK(failed_flag, cond, ...)                       \
	do {                                                     \
		if (!(failed_flag) && !CHECK(cond, __VA_ARGS__)) \
			(failed_flag) = true;                    \
	} while (0)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		perror("malloc");
		exit(1);
	}
	return p;
}

/* ---- data generators -------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* splitmix64: deterministic, so a failure reproduces. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

enum kind { K_TEXT, K_RANDOM, K_ZERO };
static const char *const kind_name[] = { "text", "random", "zero" };

/* Compressible but not trivially so: words drawn from a small list. */
static void fill(uint8_t *p, size_t n, enum kind k)
{
	static const char *const words[] = {
		"block ", "chunk ",  "cache ", "cold ", "hot ",	 "dirty ",
		"flush ", "commit ", "epoch ", "slot ", "heat ", "store\n",
	};
	size_t i = 0;

	switch (k) {
	case K_ZERO:
		memset(p, 0, n);
		break;
	case K_RANDOM:
		for (; i < n; i++)
			p[i] = (uint8_t)rng();
		break;
	case K_TEXT:
		while (i < n) {
			const char *w = words[rng() % ARRAY_SIZE(words)];
			size_t l = MIN(strlen(w), n - i);

			memcpy(p + i, w, l);
			i += l;
		}
		break;
	}
}

/* ---- chunk objects ---------------------------------------------------- */

#define GUARD 64
#define GUARD_BYTE 0xa5

/* A decode buffer of data_size bytes followed by GUARD canary bytes;
 * decoded data must never spill into them. */
static uint8_t *guarded_alloc(size_t data_size)
{
	uint8_t *p = xmalloc(data_size + GUARD);

	memset(p, GUARD_BYTE, data_size + GUARD);
	return p;
}

static bool guard_intact(const uint8_t *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != GUARD_BYTE)
			return false;
	return true;
}

/* Re-hash a header after editing it, so that the check under test and
 * not the header hash is what rejects it. */
static void reseal(uint8_t *obj)
{
	le32_put(obj + 60, XXH32(obj, 60, 0));
}

struct obj {
	struct chunk_obj_info info;
	uint8_t *data;
	uint8_t *buf;
	size_t len;
};

static void make_obj(struct obj *o, uint32_t raw_len, enum kind k)
{
	long n;

	o->info = (struct chunk_obj_info){
		.index = 0x0102030405060708ull,
		.generation = 0x1112131415161718ull,
		.device_id = 0x2122232425262728ull,
		.raw_len = raw_len,
	};
	o->data = xmalloc(raw_len);
	fill(o->data, raw_len, k);
	o->buf = xmalloc(chunk_obj_bound(raw_len));
	n = chunk_obj_encode(&o->info, o->data, o->buf,
			     chunk_obj_bound(raw_len));
	if (!CHECK(n >= CHUNK_OBJ_HEADER_SIZE, "encode %s %u: %s", kind_name[k],
		   raw_len, errname(n)))
		exit(1);
	o->len = (size_t)n;
}

static void free_obj(struct obj *o)
{
	free(o->data);
	free(o->buf);
}

static void test_bound(void)
{
	uint32_t sizes[] = { 0, 1, 100, 65536, 1u << 20, 1u << 26 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		CHECK(chunk_obj_bound(sizes[i]) ==
			      CHUNK_OBJ_HEADER_SIZE +
				      (size_t)LZ4_compressBound((int)sizes[i]),
		      "size %u", sizes[i]);
	/* Beyond lz4's limit the data is stored raw: still a real bound. */
	CHECK(chunk_obj_bound(UINT32_MAX) >=
	      CHUNK_OBJ_HEADER_SIZE + (size_t)UINT32_MAX);
}

/* Encode, inspect the header byte by byte, decode into an exact and into
 * a larger buffer, and check the data and what was reported. */
static void test_roundtrip(uint32_t raw_len, enum kind k)
{
	const char *kn = kind_name[k];
	struct chunk_obj_info got, expect;
	struct obj o;
	uint8_t *out;
	uint32_t flags;

	make_obj(&o, raw_len, k);
	const uint8_t *h = o.buf;

	CHECK(memcmp(h, CHUNK_OBJ_MAGIC, 8) == 0, "%s %u", kn, raw_len);
	CHECK(le16_get(h + 8) == CHUNK_OBJ_VERSION, "%s %u", kn, raw_len);
	CHECK(le16_get(h + 10) == CHUNK_OBJ_HEADER_SIZE, "%s %u", kn, raw_len);
	flags = le32_get(h + 12);
	CHECK(le64_get(h + 16) == o.info.index, "%s %u", kn, raw_len);
	CHECK(le64_get(h + 24) == o.info.generation, "%s %u", kn, raw_len);
	CHECK(le32_get(h + 32) == raw_len, "%s %u", kn, raw_len);
	CHECK(le32_get(h + 36) == o.len - CHUNK_OBJ_HEADER_SIZE, "%s %u", kn,
	      raw_len);
	CHECK(o.info.data_hash == XXH3_64bits(o.data, raw_len),
	      "encode stores the hash back into info: %s %u", kn, raw_len);
	CHECK(le64_get(h + 40) == o.info.data_hash, "%s %u", kn, raw_len);
	CHECK(le64_get(h + 48) == o.info.device_id, "%s %u", kn, raw_len);
	CHECK(le32_get(h + 56) == 0, "spare: %s %u", kn, raw_len);
	CHECK(le32_get(h + 60) == XXH32(h, 60, 0), "%s %u", kn, raw_len);

	if (k == K_RANDOM || raw_len < 2) {
		CHECK(flags == 0, "stored raw: %s %u", kn, raw_len);
		CHECK(o.len == CHUNK_OBJ_HEADER_SIZE + (size_t)raw_len,
		      "%s %u: len %zu", kn, raw_len, o.len);
		CHECK(raw_len == 0 || memcmp(h + CHUNK_OBJ_HEADER_SIZE, o.data,
					     raw_len) == 0,
		      "raw payload is the data: %s %u", kn, raw_len);
	} else if (raw_len >= 4096) {
		CHECK(flags == CHUNK_OBJ_F_LZ4, "%s %u", kn, raw_len);
		CHECK(o.len < CHUNK_OBJ_HEADER_SIZE + (size_t)raw_len / 2,
		      "compressed: %s %u: len %zu", kn, raw_len, o.len);
	}

	/* Exact buffer, expecting everything. */
	expect = o.info;
	out = guarded_alloc(raw_len);
	memset(&got, 0, sizeof got);
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &expect, out, raw_len, &got), 0,
		 "%s %u", kn, raw_len);
	CHECK(raw_len == 0 || memcmp(out, o.data, raw_len) == 0, "%s %u", kn,
	      raw_len);
	CHECK(guard_intact(out, raw_len, raw_len + GUARD), "%s %u", kn,
	      raw_len);
	CHECK(got.index == o.info.index &&
		      got.generation == o.info.generation &&
		      got.device_id == o.info.device_id &&
		      got.raw_len == raw_len &&
		      got.data_hash == o.info.data_hash,
	      "got: %s %u", kn, raw_len);
	free(out);

	/* In place: a raw payload is not copied, a compressed one is
	 * decoded into the scratch buffer; the same checks as decode. */
	{
		const void *view = NULL;

		out = guarded_alloc(raw_len);
		CHECK_RC(chunk_obj_view(o.buf, o.len, &expect, out, raw_len,
					&view, NULL),
			 0, "view: %s %u", kn, raw_len);
		CHECK(view == (flags & CHUNK_OBJ_F_LZ4
				       ? (const void *)out
				       : (const void *)(h +
							CHUNK_OBJ_HEADER_SIZE)),
		      "view: where: %s %u", kn, raw_len);
		CHECK(raw_len == 0 || memcmp(view, o.data, raw_len) == 0,
		      "view: %s %u", kn, raw_len);
		CHECK(guard_intact(out, raw_len, raw_len + GUARD),
		      "view: %s %u", kn, raw_len);
		if (raw_len && (flags & CHUNK_OBJ_F_LZ4))
			CHECK_RC(chunk_obj_view(o.buf, o.len, NULL, out,
						raw_len - 1, &view, NULL),
				 -EBADMSG, "view: short scratch: %s %u", kn,
				 raw_len);
		free(out);
	}

	/* A larger buffer, nothing expected: bytes past raw_len untouched. */
	out = guarded_alloc(raw_len + 100);
	CHECK_RC(chunk_obj_decode(o.buf, o.len, NULL, out, raw_len + 100, NULL),
		 0, "%s %u", kn, raw_len);
	CHECK(raw_len == 0 || memcmp(out, o.data, raw_len) == 0, "%s %u", kn,
	      raw_len);
	CHECK(guard_intact(out, raw_len, raw_len + 100 + GUARD),
	      "decode wrote past raw_len: %s %u", kn, raw_len);
	free(out);

	/* A buffer one byte short. */
	if (raw_len) {
		out = guarded_alloc(raw_len - 1);
		CHECK_RC(chunk_obj_decode(o.buf, o.len, NULL, out, raw_len - 1,
					  NULL),
			 -EBADMSG, "%s %u", kn, raw_len);
		CHECK(guard_intact(out, raw_len - 1, raw_len - 1 + GUARD),
		      "%s %u", kn, raw_len);
		free(out);
	}

	/* The object in a larger buffer: len is what counts. */
	{
		uint8_t *big = xmalloc(o.len + 16);
		memcpy(big, o.buf, o.len);
		memset(big + o.len, 0, 16);
		out = xmalloc(raw_len);
		CHECK_RC(chunk_obj_decode(big, o.len, NULL, out, raw_len, NULL),
			 0, "%s %u", kn, raw_len);
		CHECK_RC(chunk_obj_decode(big, o.len + 1, NULL, out, raw_len,
					  NULL),
			 -EBADMSG, "trailing byte: %s %u", kn, raw_len);
		free(out);
		free(big);
	}
	free_obj(&o);
}

/* Every single-bit flip in the 64-byte header is detected: -ENOTSUP in
 * the version field, -EBADMSG anywhere else; nothing is written past
 * the data. */
static void test_header_flips(uint32_t raw_len, enum kind k)
{
	struct obj o;
	uint8_t *out = guarded_alloc(raw_len);
	bool failed = false;

	make_obj(&o, raw_len, k);
	for (unsigned bit = 0; bit < CHUNK_OBJ_HEADER_SIZE * 8; bit++) {
		unsigned byte = bit / 8;
		long want = (byte == 8 || byte == 9) ? -ENOTSUP : -EBADMSG;
		long r;

		o.buf[byte] ^= (uint8_t)(1u << (bit % 8));
		r = chunk_obj_decode(o.buf, o.len, NULL, out, raw_len, NULL);
		o.buf[byte] ^= (uint8_t)(1u << (bit % 8));
		LOOP_CHECK(failed, r == want, "%s %u: bit %u: got %s want %s",
			   kind_name[k], raw_len, bit, errname(r),
			   errname(want));
	}
	CHECK(guard_intact(out, raw_len, raw_len + GUARD));
	/* And the object is intact again. */
	CHECK_RC(chunk_obj_decode(o.buf, o.len, NULL, out, raw_len, NULL), 0,
		 "%s %u", kind_name[k], raw_len);
	free(out);
	free_obj(&o);
}

/* Every truncation, including to nothing, is -EBADMSG. */
static void test_truncation(uint32_t raw_len, enum kind k)
{
	struct obj o;
	uint8_t *out = guarded_alloc(raw_len);
	bool failed = false;

	make_obj(&o, raw_len, k);
	for (size_t l = 0; l < o.len; l++) {
		/* Mostly an exact-size copy, so that a read past l is caught
		 * by the address sanitizer (not every length of a large
		 * object: that would be quadratic). */
		bool copy = l < 4096 || l + 4096 > o.len || l % 4099 == 0;
		uint8_t *t = o.buf;
		long r;

		if (copy) {
			t = xmalloc(l);
			memcpy(t, o.buf, l);
		}
		r = chunk_obj_decode(t, l, NULL, out, raw_len, NULL);
		if (copy)
			free(t);
		LOOP_CHECK(failed, r == -EBADMSG, "%s %u: len %zu of %zu: %s",
			   kind_name[k], raw_len, l, o.len, errname(r));
	}
	CHECK(guard_intact(out, raw_len, raw_len + GUARD));
	free(out);
	free_obj(&o);
}

/* A changed payload byte.  A raw payload is checked by its hash alone:
 * every byte must be caught.  An lz4 payload may, rarely, decode to the
 * same data after a change (a match offset into a run of equal bytes);
 * that is not corruption, so decode may then succeed but must give the
 * right data.  The last byte of an lz4 block is always a literal, so
 * changing it must be caught. */
static void test_payload_corruption(uint32_t raw_len, enum kind k)
{
	struct obj o;
	uint8_t *out = guarded_alloc(raw_len);
	bool failed = false;
	size_t plen, step, ncaught = 0, ntried = 0;

	make_obj(&o, raw_len, k);
	plen = o.len - CHUNK_OBJ_HEADER_SIZE;
	step = plen > 1024 ? plen / 1024 : 1;
	for (size_t i = 0; i < plen; i += step) {
		uint8_t *p = o.buf + CHUNK_OBJ_HEADER_SIZE + i;
		long r;

		*p ^= 0x5a;
		r = chunk_obj_decode(o.buf, o.len, NULL, out, raw_len, NULL);
		*p ^= 0x5a;
		ntried++;
		if (r == -EBADMSG) {
			ncaught++;
			continue;
		}
		LOOP_CHECK(failed,
			   (o.buf[12] & CHUNK_OBJ_F_LZ4) && r == 0 &&
				   memcmp(out, o.data, raw_len) == 0,
			   "%s %u: payload byte %zu: %s", kind_name[k], raw_len,
			   i, errname(r));
	}
	CHECK(guard_intact(out, raw_len, raw_len + GUARD));
	if (!(o.buf[12] & CHUNK_OBJ_F_LZ4))
		CHECK(ncaught == ntried, "%s %u", kind_name[k], raw_len);
	else
		CHECK(ncaught * 10 >= ntried * 9, "%s %u: %zu of %zu caught",
		      kind_name[k], raw_len, ncaught, ntried);

	o.buf[o.len - 1] ^= 0x01;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, NULL, out, raw_len, NULL),
		 -EBADMSG, "last payload byte: %s %u", kind_name[k], raw_len);
	o.buf[o.len - 1] ^= 0x01;
	free(out);
	free_obj(&o);
}

/* Each check of the decoder reached with a correctly hashed header. */
static void test_decode_checks(void)
{
	const uint32_t raw_len = 65536;
	struct obj c, r;
	uint8_t *out = guarded_alloc(raw_len);
	uint8_t *t = xmalloc(chunk_obj_bound(raw_len) + 256);

	make_obj(&c, raw_len, K_TEXT);
	make_obj(&r, raw_len, K_RANDOM);
	CHECK(c.buf[12] == CHUNK_OBJ_F_LZ4 && r.buf[12] == 0);

	/* Magic. */
	for (int i = 0; i < 8; i++) {
		memcpy(t, c.buf, c.len);
		t[i] = 'x';
		reseal(t);
		CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL),
			 -EBADMSG, "magic byte %d", i);
	}

	/* Versions: unknown ones are -ENOTSUP, hash or no hash. */
	const uint16_t versions[] = { 0, 2, 3, 0x100, 0xffff };
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
		memcpy(t, c.buf, c.len);
		le16_put(t + 8, versions[i]);
		CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL),
			 -ENOTSUP, "version %u", versions[i]);
		reseal(t);
		CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL),
			 -ENOTSUP, "resealed version %u", versions[i]);
	}

	/* header_size below 64, or beyond len. */
	const uint16_t hsizes[] = { 0, 1, 32, 63 };
	for (size_t i = 0; i < ARRAY_SIZE(hsizes); i++) {
		memcpy(t, c.buf, c.len);
		le16_put(t + 10, hsizes[i]);
		le32_put(t + 36, (uint32_t)(c.len - hsizes[i]));
		reseal(t);
		CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL),
			 -EBADMSG, "header_size %u", hsizes[i]);
	}
	memcpy(t, c.buf, CHUNK_OBJ_HEADER_SIZE);
	le16_put(t + 10, 65);
	le32_put(t + 36, 0);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, 64, NULL, out, raw_len, NULL), -EBADMSG,
		 "header_size > len");

	/* A larger header is accepted, its extra bytes skipped. */
	memcpy(t, c.buf, CHUNK_OBJ_HEADER_SIZE);
	memset(t + 64, 0xee, 64);
	memcpy(t + 128, c.buf + 64, c.len - 64);
	le16_put(t + 10, 128);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len + 64, NULL, out, raw_len, NULL), 0,
		 "header_size 128");
	CHECK(memcmp(out, c.data, raw_len) == 0, "header_size 128");

	/* payload_len one off either way. */
	for (int d = -1; d <= 1; d += 2) {
		memcpy(t, c.buf, c.len);
		le32_put(t + 36, le32_get(t + 36) + (uint32_t)d);
		reseal(t);
		CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL),
			 -EBADMSG, "payload_len %+d", d);
	}
	/* ... consistently with len, when len is cut short. */
	memcpy(t, c.buf, c.len);
	le32_put(t + 36, (uint32_t)(c.len - 65));
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len - 1, NULL, out, raw_len, NULL),
		 -EBADMSG, "lz4 stream cut short");

	/* Unknown flags, correctly hashed: a feature we do not know. */
	memcpy(t, c.buf, c.len);
	le32_put(t + 12, CHUNK_OBJ_F_LZ4 | 0x2);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL), -ENOTSUP,
		 "flag 0x2");
	memcpy(t, c.buf, c.len);
	le32_put(t + 12, 0x80000000u);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL), -ENOTSUP,
		 "flag 0x80000000");

	/* The lz4 flag cleared on a compressed payload: it is then taken
	 * as raw, and payload_len != raw_len. */
	memcpy(t, c.buf, c.len);
	le32_put(t + 12, 0);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "compressed payload read as raw");

	/* The lz4 flag set on a raw payload. */
	memcpy(t, r.buf, r.len);
	le32_put(t + 12, CHUNK_OBJ_F_LZ4);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, r.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "raw payload read as lz4");
	CHECK(guard_intact(out, raw_len, raw_len + GUARD));

	/* raw_len larger than the stream yields (lz4), or than the raw
	 * payload; raw_len smaller than the stream yields. */
	memcpy(t, c.buf, c.len);
	le32_put(t + 32, raw_len - 1);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "lz4 output longer than raw_len");
	CHECK(guard_intact(out, raw_len, raw_len + GUARD));
	{
		uint8_t *big = guarded_alloc(raw_len + 1);

		memcpy(t, c.buf, c.len);
		le32_put(t + 32, raw_len + 1);
		reseal(t);
		CHECK_RC(chunk_obj_decode(t, c.len, NULL, big, raw_len + 1,
					  NULL),
			 -EBADMSG, "lz4 output shorter than raw_len");
		memcpy(t, r.buf, r.len);
		le32_put(t + 32, raw_len + 1);
		reseal(t);
		CHECK_RC(chunk_obj_decode(t, r.len, NULL, big, raw_len + 1,
					  NULL),
			 -EBADMSG, "raw payload shorter than raw_len");
		CHECK(guard_intact(big, raw_len + 1, raw_len + 1 + GUARD));
		free(big);
	}
	memcpy(t, r.buf, r.len);
	le32_put(t + 32, raw_len - 1);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, r.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "raw payload longer than raw_len");
	/* ... even with the hash of the first raw_len bytes. */
	le64_put(t + 40, XXH3_64bits(r.data, raw_len - 1));
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, r.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "raw payload longer than raw_len, hash of its head");

	/* A hand-made lz4 block (one literal run, "hello") that yields one
	 * byte less than raw_len says, with a data hash that matches what
	 * the buffer then holds: rejected for its length, not its hash.
	 * (Checked on a tiny block: on a large one lz4 may scribble past
	 * its output, up to the capacity, so the buffer is unpredictable.) */
	{
		static const uint8_t blk[] = { 0x50, 'h', 'e', 'l', 'l', 'o' };
		uint8_t small[6 + GUARD], hb[6] = { 'h', 'e', 'l', 'l', 'o' };

		memset(t, 0, CHUNK_OBJ_HEADER_SIZE);
		memcpy(t, CHUNK_OBJ_MAGIC, 8);
		le16_put(t + 8, 1);
		le16_put(t + 10, 64);
		le32_put(t + 12, CHUNK_OBJ_F_LZ4);
		le32_put(t + 32, 5);
		le32_put(t + 36, sizeof blk);
		le64_put(t + 40, XXH3_64bits(hb, 5));
		memcpy(t + 64, blk, sizeof blk);
		reseal(t);
		memset(small, GUARD_BYTE, sizeof small);
		CHECK_RC(chunk_obj_decode(t, 64 + sizeof blk, NULL, small, 6,
					  NULL),
			 0, "hand-made lz4 block");
		CHECK(memcmp(small, "hello", 5) == 0 && small[5] == GUARD_BYTE);

		hb[5] = GUARD_BYTE;
		le32_put(t + 32, 6);
		le64_put(t + 40, XXH3_64bits(hb, 6));
		reseal(t);
		memset(small, GUARD_BYTE, sizeof small);
		CHECK_RC(chunk_obj_decode(t, 64 + sizeof blk, NULL, small, 6,
					  NULL),
			 -EBADMSG, "lz4 output short, hash of the buffer");
	}

	/* A wrong data hash, all else fine: the hash check itself. */
	memcpy(t, c.buf, c.len);
	le64_put(t + 40, le64_get(t + 40) ^ 1);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "data hash (lz4)");
	memcpy(t, r.buf, r.len);
	le64_put(t + 40, le64_get(t + 40) ^ 0x8000000000000000ull);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, r.len, NULL, out, raw_len, NULL), -EBADMSG,
		 "data hash (raw)");

	/* Non-zero spare, correctly hashed, is ignored. */
	memcpy(t, c.buf, c.len);
	le32_put(t + 56, 0xdeadbeef);
	reseal(t);
	CHECK_RC(chunk_obj_decode(t, c.len, NULL, out, raw_len, NULL), 0,
		 "spare");

	/* A NULL or short object. */
	CHECK_RC(chunk_obj_decode(NULL, 0, NULL, out, raw_len, NULL), -EBADMSG,
		 "NULL");

	CHECK(guard_intact(out, raw_len, raw_len + GUARD));
	free(t);
	free(out);
	free_obj(&c);
	free_obj(&r);
}

/* Wrong index, generation, device or length: -ESTALE; ~0 not checked. */
static void test_expect(void)
{
	const uint32_t raw_len = 65536;
	struct chunk_obj_info e, got;
	struct obj o;
	uint8_t *out = xmalloc(raw_len * 2);

	make_obj(&o, raw_len, K_TEXT);

	e = o.info;
	e.index++;
	memset(&got, 0, sizeof got);
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, &got),
		 -ESTALE, "index");
	CHECK(got.index == o.info.index && got.generation == o.info.generation,
	      "-ESTALE reports what was found");
	e = o.info;
	e.generation--;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, NULL),
		 -ESTALE, "generation");
	e = o.info;
	e.device_id ^= 1ull << 63;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, NULL),
		 -ESTALE, "device_id");
	e = o.info;
	e.raw_len = raw_len * 2;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len * 2, NULL),
		 -ESTALE, "raw_len");

	/* data_hash of expect is not one of the checked fields. */
	e = o.info;
	e.data_hash ^= 1;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, NULL), 0,
		 "data_hash not checked");

	/* Wildcards, one at a time and all together. */
	e = o.info;
	e.index = UINT64_MAX;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, NULL), 0,
		 "index ~0");
	e = o.info;
	e.generation = UINT64_MAX;
	e.device_id = UINT64_MAX;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, NULL), 0,
		 "gen, dev ~0");
	e = (struct chunk_obj_info){ UINT64_MAX, UINT64_MAX, UINT64_MAX,
				     UINT32_MAX, 0 };
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len * 2, &got), 0,
		 "all ~0");
	CHECK(got.raw_len == raw_len);
	/* A wildcard matches, the others still count. */
	e.generation = 7;
	CHECK_RC(chunk_obj_decode(o.buf, o.len, &e, out, raw_len, NULL),
		 -ESTALE, "gen 7 among wildcards");

	/* An object whose real index is ~0 is not a wildcard match issue:
	 * it decodes with expect ~0. */
	{
		struct chunk_obj_info in = o.info;
		uint8_t *buf = xmalloc(chunk_obj_bound(raw_len));
		long n;

		in.index = UINT64_MAX;
		n = chunk_obj_encode(&in, o.data, buf,
				     chunk_obj_bound(raw_len));
		CHECK(n > 0);
		e = o.info;
		e.index = UINT64_MAX;
		CHECK_RC(chunk_obj_decode(buf, (size_t)n, &e, out, raw_len,
					  NULL),
			 0, "index ~0 in object");
		e.index = 0;
		CHECK_RC(chunk_obj_decode(buf, (size_t)n, &e, out, raw_len,
					  NULL),
			 -ESTALE, "index ~0 in object, 0 expected");
		free(buf);
	}
	free(out);
	free_obj(&o);
}

static void test_encode_args(void)
{
	uint8_t data[1000], out[2000];
	struct chunk_obj_info in = { .raw_len = sizeof data };

	memset(data, 7, sizeof data);
	CHECK_RC(chunk_obj_encode(&in, data, out,
				  chunk_obj_bound(sizeof data) - 1),
		 -EINVAL, "out_size below the bound");
	CHECK_RC(chunk_obj_encode(&in, NULL, out, sizeof out), -EINVAL,
		 "NULL data");
	in.raw_len = 0;
	CHECK_RC(chunk_obj_encode(&in, NULL, out, sizeof out),
		 CHUNK_OBJ_HEADER_SIZE, "empty");
	CHECK_RC(chunk_obj_decode(out, CHUNK_OBJ_HEADER_SIZE, NULL, NULL, 0,
				  NULL),
		 0, "empty");
}

/* ---- superblock ------------------------------------------------------- */

static void sample_sb(struct superblock *sb)
{
	memset(sb, 0, sizeof *sb);
	sb->flags = SB_F_CLEAN;
	sb->device_size = (100ull << 30) + 12345; /* not a chunk multiple */
	sb->chunk_shift = 20;
	sb->nchunks = DIV_ROUND_UP(sb->device_size, 1ull << 20);
	sb->nslots = 20480;
	sb->gen_reserved = 0x0807060504030201ull;
	sb->device_id = 0x1817161514131211ull;
	sb->created = 0x3837363534333231ull;
	sb->heat_tick = 0x2827262524232221ull;
	strcpy(sb->store_spec, "s3://bucket/vol1");
}

static bool sb_equal(const struct superblock *a, const struct superblock *b)
{
	return a->flags == b->flags && a->device_size == b->device_size &&
	       a->chunk_shift == b->chunk_shift && a->nchunks == b->nchunks &&
	       a->nslots == b->nslots && a->gen_reserved == b->gen_reserved &&
	       a->device_id == b->device_id && a->created == b->created &&
	       a->heat_tick == b->heat_tick &&
	       memcmp(a->store_spec, b->store_spec, SB_STORE_SPEC_MAX) == 0;
}

static void sb_reseal(uint8_t *b)
{
	le32_put(b + SB_SIZE - 4, XXH32(b, SB_SIZE - 4, 0));
}

static void test_sb_roundtrip(void)
{
	struct superblock sb, d;
	uint8_t b[SB_SIZE + 1];
	bool zero = true;

	sample_sb(&sb);
	memset(b, 0xcc, sizeof b);
	sb_encode(&sb, b);
	CHECK(b[SB_SIZE] == 0xcc, "sb_encode wrote past 4096");

	/* The layout drawn in cachemap.h. */
	CHECK(memcmp(b, "TIERBDSB", 8) == 0);
	CHECK(le16_get(b + 8) == 1);
	CHECK(le16_get(b + 10) == 4096);
	CHECK(le32_get(b + 12) == SB_F_CLEAN);
	CHECK(le64_get(b + 16) == sb.device_size);
	CHECK(b[24] == 20);
	CHECK(b[25] == 32);
	CHECK(le64_get(b + 32) == sb.nchunks);
	CHECK(le64_get(b + 40) == sb.nslots);
	CHECK(le64_get(b + 48) == sb.gen_reserved);
	CHECK(le64_get(b + 56) == sb.device_id);
	CHECK(le64_get(b + 64) == sb.created);
	CHECK(le64_get(b + 72) == sb.heat_tick);
	CHECK(strcmp((char *)b + 80, "s3://bucket/vol1") == 0);
	CHECK(le32_get(b + 4092) == XXH32(b, 4092, 0));
	for (size_t i = 26; i < 32; i++)
		zero &= b[i] == 0;
	for (size_t i = 80 + strlen(sb.store_spec); i < 4092; i++)
		zero &= b[i] == 0;
	CHECK(zero, "spare bytes are zero");

	memset(&d, 0x5a, sizeof d);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "round trip");
	CHECK(sb_equal(&sb, &d), "round trip fields");
	memset(&d, 0x5a, sizeof d);
	CHECK_RC(sb_decode(b, SB_SIZE + 1, &d), 0, "longer buffer");
	CHECK(sb_equal(&sb, &d));

	/* Garbage after the NUL in the caller's struct is not written. */
	memset(sb.store_spec, 'q', sizeof sb.store_spec);
	strcpy(sb.store_spec, "dir:/x");
	sb_encode(&sb, b);
	CHECK(b[80 + 6] == 0 && b[80 + 7] == 0 && b[80 + 255] == 0);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0);
	CHECK(strcmp(d.store_spec, "dir:/x") == 0 && d.store_spec[7] == 0 &&
	      d.store_spec[255] == 0);

	/* The longest spec: 255 bytes and a NUL. */
	memset(sb.store_spec, 'a', 255);
	sb.store_spec[255] = 0;
	sb_encode(&sb, b);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "255-byte store_spec");
	CHECK(strlen(d.store_spec) == 255);

	/* The chunk sizes at both ends, and the largest device. */
	sample_sb(&sb);
	for (unsigned s = CHUNK_SHIFT_MIN; s <= CHUNK_SHIFT_MAX; s++) {
		sb.chunk_shift = s;
		sb.nchunks = DIV_ROUND_UP(sb.device_size, 1ull << s);
		sb_encode(&sb, b);
		CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "chunk_shift %u", s);
		CHECK(d.chunk_shift == s);
	}
	sb.device_size = UINT64_MAX;
	sb.chunk_shift = 16;
	sb.nchunks = 1ull << 48;
	sb_encode(&sb, b);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0,
		 "device_size UINT64_MAX (no overflow in DIV_ROUND_UP)");
	sb.device_size = 1;
	sb.nchunks = 1;
	sb_encode(&sb, b);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "device_size 1");
	sb.device_size = 1ull << 20;
	sb.chunk_shift = 20;
	sb.nchunks = 1;
	sb_encode(&sb, b);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "one whole chunk");
	sb.flags = 0;
	sb_encode(&sb, b);
	CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "flags 0");
	CHECK(d.flags == 0);
}

/* Edit an encoded sample superblock with fn, reseal it, decode it. */
static int sb_edit_decode(void (*fn)(uint8_t *b, long arg), long arg, bool seal)
{
	struct superblock sb, d;
	uint8_t b[SB_SIZE];

	sample_sb(&sb);
	sb_encode(&sb, b);
	fn(b, arg);
	if (seal)
		sb_reseal(b);
	return sb_decode(b, SB_SIZE, &d);
}

static void ed_magic(uint8_t *b, long i)
{
	b[i] ^= 0x20;
}
static void ed_version(uint8_t *b, long v)
{
	le16_put(b + 8, (uint16_t)v);
}
static void ed_header_size(uint8_t *b, long v)
{
	le16_put(b + 10, (uint16_t)v);
}
static void ed_flags(uint8_t *b, long v)
{
	le32_put(b + 12, (uint32_t)v);
}
/* Change chunk_shift and keep nchunks consistent, so that only the
 * range check can reject it. */
static void ed_shift(uint8_t *b, long s)
{
	uint64_t size = le64_get(b + 16);

	b[24] = (uint8_t)s;
	if (s < 64)
		le64_put(b + 32, (size >> s) + !!(size & ((1ull << s) - 1)));
}
static void ed_entry_size(uint8_t *b, long v)
{
	b[25] = (uint8_t)v;
}
static void ed_nchunks(uint8_t *b, long d)
{
	le64_put(b + 32, le64_get(b + 32) + (uint64_t)d);
}
static void ed_size0(uint8_t *b, long nchunks)
{
	le64_put(b + 16, 0);
	le64_put(b + 32, (uint64_t)nchunks);
}
static void ed_size(uint8_t *b, long d)
{
	/* The sample's size is 100 GiB + 12345 bytes, nchunks 102401. */
	le64_put(b + 16, (100ull << 30) + (uint64_t)d);
}
static void ed_spec(uint8_t *b, long v)
{
	memset(b + 80, (int)v, 256);
}
static void ed_spare(uint8_t *b, long off)
{
	b[off] = 0x77;
}

static void test_sb_reject(void)
{
	uint8_t b[SB_SIZE];
	struct superblock sb, d;

	sample_sb(&sb);
	sb_encode(&sb, b);

	/* Short buffers. */
	CHECK_RC(sb_decode(b, 0, &d), -EBADMSG, "len 0");
	CHECK_RC(sb_decode(b, 64, &d), -EBADMSG, "len 64");
	CHECK_RC(sb_decode(b, SB_SIZE - 1, &d), -EBADMSG, "len 4095");
	CHECK_RC(sb_decode(NULL, SB_SIZE, &d), -EBADMSG, "NULL");

	for (long i = 0; i < 8; i++)
		CHECK_RC(sb_edit_decode(ed_magic, i, true), -EBADMSG,
			 "magic byte %ld", i);
	const long versions[] = { 0, 2, 0xffff };
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
		CHECK_RC(sb_edit_decode(ed_version, versions[i], false),
			 -ENOTSUP, "version %ld", versions[i]);
		CHECK_RC(sb_edit_decode(ed_version, versions[i], true),
			 -ENOTSUP, "resealed version %ld", versions[i]);
	}
	const long hsizes[] = { 0, 64, 4095, 4097, 8192 };
	for (size_t i = 0; i < ARRAY_SIZE(hsizes); i++)
		CHECK_RC(sb_edit_decode(ed_header_size, hsizes[i], true),
			 -EBADMSG, "header_size %ld", hsizes[i]);
	CHECK_RC(sb_edit_decode(ed_flags, 0x2, true), -ENOTSUP, "flag 0x2");
	CHECK_RC(sb_edit_decode(ed_flags, 0x80000001, true), -ENOTSUP,
		 "flag 0x80000000");

	/* chunk_shift out of range, nchunks consistent. */
	const long shifts[] = { 0, 12, 15, 27, 32, 63, 255 };
	for (size_t i = 0; i < ARRAY_SIZE(shifts); i++)
		CHECK_RC(sb_edit_decode(ed_shift, shifts[i], true), -EBADMSG,
			 "chunk_shift %ld", shifts[i]);
	CHECK_RC(sb_edit_decode(ed_shift, 16, true), 0, "chunk_shift 16");
	CHECK_RC(sb_edit_decode(ed_shift, 26, true), 0, "chunk_shift 26");

	const long esizes[] = { 0, 16, 31, 33, 64 };
	for (size_t i = 0; i < ARRAY_SIZE(esizes); i++)
		CHECK_RC(sb_edit_decode(ed_entry_size, esizes[i], true),
			 -EBADMSG, "entry_size %ld", esizes[i]);

	CHECK_RC(sb_edit_decode(ed_nchunks, 1, true), -EBADMSG, "nchunks +1");
	CHECK_RC(sb_edit_decode(ed_nchunks, -1, true), -EBADMSG, "nchunks -1");
	CHECK_RC(sb_edit_decode(ed_size0, 0, true), -EBADMSG,
		 "device_size 0, nchunks 0");
	CHECK_RC(sb_edit_decode(ed_size0, 1, true), -EBADMSG,
		 "device_size 0, nchunks 1");
	/* device_size moved across a chunk boundary without nchunks. */
	CHECK_RC(sb_edit_decode(ed_size, 0, true), -EBADMSG,
		 "exact multiple: one chunk fewer");
	CHECK_RC(sb_edit_decode(ed_size, 1, true), 0, "one byte into the last");
	CHECK_RC(sb_edit_decode(ed_size, 1 << 20, true), 0, "last byte");
	CHECK_RC(sb_edit_decode(ed_size, (1 << 20) + 1, true), -EBADMSG,
		 "one byte more than nchunks covers");

	CHECK_RC(sb_edit_decode(ed_spec, 'x', true), -EBADMSG,
		 "store_spec without NUL");
	CHECK_RC(sb_edit_decode(ed_spec, 0, true), 0, "empty store_spec");

	/* Spare bytes are not checked (but are hashed). */
	CHECK_RC(sb_edit_decode(ed_spare, 26, true), 0, "spare at 26");
	CHECK_RC(sb_edit_decode(ed_spare, 2000, true), 0, "spare at 2000");
	CHECK_RC(sb_edit_decode(ed_spare, 2000, false), -EBADMSG,
		 "spare at 2000, unsealed");

	/* Every single-bit flip in the 4096 bytes. */
	{
		bool failed = false;

		for (unsigned bit = 0; bit < SB_SIZE * 8; bit++) {
			unsigned byte = bit / 8;
			long want =
				(byte == 8 || byte == 9) ? -ENOTSUP : -EBADMSG;
			long r;

			b[byte] ^= (uint8_t)(1u << (bit % 8));
			r = sb_decode(b, SB_SIZE, &d);
			b[byte] ^= (uint8_t)(1u << (bit % 8));
			LOOP_CHECK(failed, r == want, "sb bit %u: %s", bit,
				   errname(r));
		}
		CHECK_RC(sb_decode(b, SB_SIZE, &d), 0, "restored");
	}
}

/* ---- map entries ------------------------------------------------------ */

#define NSLOTS 8
#define GEN_RES 1000

static struct chunk_ent ent(uint8_t state, uint32_t slot, uint64_t gen)
{
	return (struct chunk_ent){
		.state = state,
		.slot = slot,
		.gen = gen,
		.hash = 0x123456789abcdefull,
		.heat = 17,
		.tick = 99,
	};
}

static void map_sb(struct superblock *sb, uint64_t nchunks)
{
	sample_sb(sb);
	sb->chunk_shift = 16;
	sb->device_size = nchunks << 16;
	sb->nchunks = nchunks;
	sb->nslots = NSLOTS;
	sb->gen_reserved = GEN_RES;
}

/* A valid map with each state, flag and boundary value. */
#define VALID_N 10
static void valid_map(struct chunk_ent *m)
{
	m[0] = ent(CHUNK_ABSENT, SLOT_NONE, 0);
	m[1] = ent(CHUNK_COLD, SLOT_NONE, 1);
	m[2] = ent(CHUNK_COLD, SLOT_NONE, GEN_RES - 1);
	m[3] = ent(CHUNK_HOT_CLEAN, 0, 5);
	m[4] = ent(CHUNK_HOT_DIRTY, NSLOTS - 1, 0);
	m[5] = ent(CHUNK_HOT_DIRTY, 3, GEN_RES - 1);
	m[6] = ent(CHUNK_HOT_CLEAN, 4, GEN_RES - 1);
	m[7] = ent(CHUNK_ABSENT, SLOT_NONE, 0);
	m[8] = ent(CHUNK_COLD, SLOT_NONE, 7);
	m[9] = ent(CHUNK_HOT_DIRTY, 1, 2);
	/* Persistent and run-time flags, and a killed process's leftovers. */
	m[3].flags = CE_F_PINNED | CE_F_SEQ;
	m[4].flags = CE_F_BUSY | CE_F_UPLOADING | CE_F_REDIRTY;
	m[6].flags = CE_F_VERIFY;
	m[8].flags = 0xff;
	m[1].spare = 0xffff;
}

/* Place bad at index 6 of a valid map (and a bad state at index 8, so
 * "first bad" is tested too) and check it is reported at 6. */
static void expect_bad(struct chunk_ent bad, const char *what, bool dup)
{
	struct chunk_ent m[VALID_N];
	struct superblock sb;
	uint64_t at = 12345;

	map_sb(&sb, VALID_N);
	valid_map(m);
	m[6] = bad;
	m[8].state = 9;
	CHECK_RC(map_check(m, VALID_N, &sb, &at), -EBADMSG, "%s", what);
	CHECK(at == 6, "%s: reported at %" PRIu64 ", want 6", what, at);

	/* Alone, at index 0 (a duplicate claim alone is fine). */
	if (dup) {
		CHECK_RC(map_check(&bad, 1, &sb, &at), 0, "%s alone", what);
		return;
	}
	at = 12345;
	CHECK_RC(map_check(&bad, 1, &sb, &at), -EBADMSG, "%s alone", what);
	CHECK(at == 0, "%s alone: at %" PRIu64, what, at);
}

static void test_map(void)
{
	struct chunk_ent m[VALID_N + 2];
	struct superblock sb;
	uint64_t at = 777;

	map_sb(&sb, VALID_N);
	valid_map(m);
	CHECK_RC(map_check(m, VALID_N, &sb, &at), 0, "valid map");
	CHECK(at == 777, "bad untouched on success");
	CHECK_RC(map_check(m, 0, &sb, &at), 0, "empty map");
	CHECK_RC(map_check(m, VALID_N, &sb, NULL), 0, "bad NULL");

	/* Each class of bad entry. */
	expect_bad(ent(4, SLOT_NONE, 0), "state 4", false);
	expect_bad(ent(255, SLOT_NONE, 0), "state 255", false);
	expect_bad(ent(CHUNK_HOT_CLEAN, SLOT_NONE, 5), "HOT_CLEAN SLOT_NONE",
		   false);
	expect_bad(ent(CHUNK_HOT_DIRTY, SLOT_NONE, 0), "HOT_DIRTY SLOT_NONE",
		   false);
	expect_bad(ent(CHUNK_HOT_CLEAN, NSLOTS, 5), "slot == nslots", false);
	expect_bad(ent(CHUNK_HOT_DIRTY, NSLOTS + 100, 0), "slot > nslots",
		   false);
	expect_bad(ent(CHUNK_COLD, 2, 5), "COLD with a slot", false);
	expect_bad(ent(CHUNK_COLD, 0, 5), "COLD with slot 0", false);
	expect_bad(ent(CHUNK_ABSENT, 2, 0), "ABSENT with a slot", false);
	expect_bad(ent(CHUNK_COLD, SLOT_NONE, 0), "COLD gen 0", false);
	expect_bad(ent(CHUNK_COLD, SLOT_NONE, GEN_RES), "COLD gen reserved",
		   false);
	expect_bad(ent(CHUNK_COLD, SLOT_NONE, UINT64_MAX), "COLD gen ~0",
		   false);
	expect_bad(ent(CHUNK_HOT_CLEAN, 2, 0), "HOT_CLEAN gen 0", false);
	expect_bad(ent(CHUNK_HOT_CLEAN, 2, GEN_RES + 1), "HOT_CLEAN gen > res",
		   false);
	expect_bad(ent(CHUNK_HOT_DIRTY, 2, GEN_RES), "HOT_DIRTY gen reserved",
		   false);
	expect_bad(ent(CHUNK_ABSENT, SLOT_NONE, 1), "ABSENT gen 1", false);

	/* Slot claimed twice: the second claim is the bad one. */
	expect_bad(ent(CHUNK_HOT_CLEAN, 0, 5), "slot 0 again (CLEAN)", true);
	expect_bad(ent(CHUNK_HOT_DIRTY, NSLOTS - 1, 0), "last slot again",
		   true);
	expect_bad(ent(CHUNK_HOT_DIRTY, 3, 0), "slot 3 again (DIRTY)", true);

	/* A duplicate before an earlier-checked class of error. */
	valid_map(m);
	m[2] = ent(CHUNK_HOT_CLEAN, 4, 9); /* m[6] also claims 4 */
	m[7].state = 200;
	CHECK_RC(map_check(m, VALID_N, &sb, &at), -EBADMSG, "dup then state");
	CHECK(at == 6, "dup at 6 before bad state at 7: %" PRIu64, at);
	valid_map(m);
	m[7] = ent(CHUNK_HOT_DIRTY, 0, 0); /* m[3] claims 0 */
	m[6].state = 77;
	CHECK_RC(map_check(m, VALID_N, &sb, &at), -EBADMSG, "state then dup");
	CHECK(at == 6, "bad state at 6 before dup at 7: %" PRIu64, at);

	/* Only nchunks entries are looked at. */
	valid_map(m);
	m[VALID_N] = ent(7, 0, 0);
	CHECK_RC(map_check(m, VALID_N, &sb, &at), 0, "entry past nchunks");
	CHECK_RC(map_check(m, VALID_N + 1, &sb, &at), -EBADMSG);
	CHECK(at == VALID_N);

	/* No slots at all: any HOT entry is bad. */
	sb.nslots = 0;
	valid_map(m);
	CHECK_RC(map_check(m, VALID_N, &sb, &at), -EBADMSG, "nslots 0");
	CHECK(at == 3, "nslots 0: at %" PRIu64, at);

	/* gen_reserved 0 or 1: no COLD/CLEAN entry can be valid. */
	map_sb(&sb, VALID_N);
	sb.gen_reserved = 1;
	CHECK_RC(map_check(m, VALID_N, &sb, &at), -EBADMSG, "gen_reserved 1");
	CHECK(at == 1, "gen_reserved 1: at %" PRIu64, at);

	/* A slot claimed twice when it is the highest claimed (the bitmap
	 * must cover it), at word boundaries, by each HOT state. */
	{
		const uint32_t slots[] = { 0, 1, 63, 64, 65, 127, 128 };
		const uint8_t st[] = { CHUNK_HOT_CLEAN, CHUNK_HOT_DIRTY };

		map_sb(&sb, 3);
		sb.nslots = 200;
		for (size_t i = 0; i < ARRAY_SIZE(slots); i++)
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 2; b++) {
					m[0] = ent(CHUNK_COLD, SLOT_NONE, 3);
					m[1] = ent(st[a], slots[i], 0);
					m[2] = ent(st[b], slots[i], 0);
					if (st[a] == CHUNK_HOT_CLEAN)
						m[1].gen = 4;
					if (st[b] == CHUNK_HOT_CLEAN)
						m[2].gen = 5;
					at = 0;
					CHECK_RC(map_check(m, 3, &sb, &at),
						 -EBADMSG,
						 "slot %u twice, %d %d",
						 slots[i], st[a], st[b]);
					CHECK(at == 2, "slot %u: at %" PRIu64,
					      slots[i], at);
					m[2].slot = slots[i] + 1;
					CHECK_RC(map_check(m, 3, &sb, &at), 0,
						 "slots %u, %u", slots[i],
						 slots[i] + 1);
				}
	}

	/* Huge nslots, slots near 2^32: no overflow of slot + 1. */
	map_sb(&sb, 4);
	sb.nslots = 1ull << 40;
	m[0] = ent(CHUNK_HOT_CLEAN, UINT32_MAX - 1, 1);
	m[1] = ent(CHUNK_HOT_DIRTY, 0, 0);
	m[2] = ent(CHUNK_HOT_DIRTY, 1u << 31, 0);
	m[3] = ent(CHUNK_HOT_DIRTY, UINT32_MAX, 0);
	CHECK_RC(map_check(m, 3, &sb, &at), 0, "slots near 2^32");
	CHECK_RC(map_check(m, 4, &sb, &at), -EBADMSG,
		 "SLOT_NONE on a HOT entry even with nslots > 2^32");
	CHECK(at == 3);
	m[3] = ent(CHUNK_HOT_DIRTY, UINT32_MAX - 1, 0);
	CHECK_RC(map_check(m, 4, &sb, &at), -EBADMSG, "dup at 2^32 - 2");
	CHECK(at == 3);
}

/* The entry layout drawn in cachemap.h, byte by byte. */
static void test_ent_layout(void)
{
	struct chunk_ent e = {
		.state = 0x01,
		.flags = 0x02,
		.spare = 0x0403,
		.slot = 0x08070605,
		.gen = 0x100f0e0d0c0b0a09ull,
		.hash = 0x1817161514131211ull,
		.heat = 0x1c1b1a19,
		.tick = 0x201f1e1d,
	};
	uint8_t b[32];

	memcpy(b, &e, sizeof b);
	for (int i = 0; i < 32; i++)
		CHECK(b[i] == i + 1, "entry byte %d is %#x", i, b[i]);
}

int main(void)
{
	const uint32_t sizes[] = { 65536, 1u << 20 };

	test_bound();
	test_encode_args();
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++)
		for (int k = K_TEXT; k <= K_ZERO; k++) {
			test_roundtrip(sizes[s], k);
			test_header_flips(sizes[s], k);
			test_truncation(sizes[s], k);
			test_payload_corruption(sizes[s], k);
		}
	/* Small and odd sizes. */
	const uint32_t odd[] = { 0, 1, 2, 17, 4095, 65537 };
	for (size_t s = 0; s < ARRAY_SIZE(odd); s++)
		for (int k = K_TEXT; k <= K_ZERO; k++) {
			test_roundtrip(odd[s], k);
			test_truncation(odd[s], k);
		}
	test_decode_checks();
	test_expect();

	test_sb_roundtrip();
	test_sb_reject();

	test_ent_layout();
	test_map();

	if (nfailed) {
		fprintf(stderr, "test-proto: %lu of %lu checks failed\n",
			nfailed, nchecks);
		return 1;
	}
	printf("test-proto: all %lu checks passed\n", nchecks);
	return 0;
}
