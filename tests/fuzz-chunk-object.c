/* fuzz-chunk-object.c - fuzz target for chunk_obj_decode/encode.
 *
 * Built two ways: with libFuzzer (clang -fsanitize=fuzzer; meson
 * -Dfuzz=true), and with tests/fuzz-driver.c, a plain main() that
 * mutates the seeds made by fuzz_seed() (the smoke test, any compiler).
 *
 * Each input is used three ways:
 *   1. decoded as it is;
 *   2. decoded after its header hash is recomputed, so that mutations of
 *      the sizes, flags and payload reach the checks behind the hash
 *      (lz4 and the data hash) instead of all dying at the hash;
 *   3. encoded as chunk data and decoded back.
 * The decode buffer is exactly the size asked for, followed by canary
 * bytes: lz4 is not built with the sanitizers, so an overrun into the
 * canary is what shows it.  Any result other than those allowed, a
 * decoded chunk whose hash or re-encoding disagrees, or a broken canary
 * aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/chunk_object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

/* Decode buffers are capped: an object may claim up to 4 GiB. */
#define DATA_CAP (256u << 10)
#define CANARY 32
#define CANARY_BYTE 0xc3

static struct {
	unsigned long ok, badmsg, notsup, stale, reseal_ok, roundtrips;
} st;

static void die(const char *what, long r) __attribute__((noreturn));
static void die(const char *what, long r)
{
	fprintf(stderr, "fuzz-chunk-object: %s (%ld)\n", what, r);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		die("out of memory", 0);
	return p;
}

static void count(int r)
{
	switch (r) {
	case 0:
		st.ok++;
		break;
	case -EBADMSG:
		st.badmsg++;
		break;
	case -ENOTSUP:
		st.notsup++;
		break;
	case -ESTALE:
		st.stale++;
		break;
	default:
		die("unexpected result", r);
	}
}

/* A successfully decoded chunk must hash right, and encode and decode
 * back to the same data and info. */
static void check_decoded(const uint8_t *out, const struct chunk_obj_info *g)
{
	struct chunk_obj_info info = *g, g2;
	size_t bound = chunk_obj_bound(g->raw_len);
	uint8_t *obj = xmalloc(bound);
	uint8_t *back = xmalloc(g->raw_len);
	long n;
	int r;

	if (XXH3_64bits(out, g->raw_len) != g->data_hash)
		die("decoded data does not match its hash", 0);
	n = chunk_obj_encode(&info, out, obj, bound);
	if (n < CHUNK_OBJ_HEADER_SIZE || (size_t)n > bound)
		die("re-encode", n);
	if (info.data_hash != g->data_hash)
		die("re-encode changed the hash", 0);
	r = chunk_obj_decode(obj, (size_t)n, g, back, g->raw_len, &g2);
	if (r != 0)
		die("re-encoded object does not decode", r);
	if (memcmp(back, out, g->raw_len) != 0 || g2.index != g->index ||
	    g2.generation != g->generation || g2.device_id != g->device_id ||
	    g2.raw_len != g->raw_len || g2.data_hash != g->data_hash)
		die("re-encoded object differs", 0);
	free(back);
	free(obj);
}

/* The decoder's contract (chunk_object.h, and the order of checks in
 * chunk_object.c), written out again plainly: the result expected. */
static int ref_decode(const uint8_t *o, size_t len,
		      const struct chunk_obj_info *ex, size_t data_size)
{
	struct {
		unsigned int version, header_size;
		uint32_t flags, raw_len, payload_len, hash;
		uint64_t index, gen, data_hash, dev;
	} h;
	uint8_t *tmp;
	uint64_t dh;
	int n;

	if (len < 64 || memcmp(o, "TIERBDC1", 8) != 0)
		return -EBADMSG;
	h.version = o[8] | o[9] << 8;
	h.header_size = o[10] | o[11] << 8;
	h.flags = le32_get(o + 12);
	h.index = le64_get(o + 16);
	h.gen = le64_get(o + 24);
	h.raw_len = le32_get(o + 32);
	h.payload_len = le32_get(o + 36);
	h.data_hash = le64_get(o + 40);
	h.dev = le64_get(o + 48);
	h.hash = le32_get(o + 60);
	if (h.version != 1)
		return -ENOTSUP;
	if (h.header_size < 64 || h.header_size > len ||
	    h.payload_len != len - h.header_size || h.hash != XXH32(o, 60, 0))
		return -EBADMSG;
	if (h.flags > 1)
		return -ENOTSUP;
	if (ex && ((ex->index != UINT64_MAX && ex->index != h.index) ||
		   (ex->generation != UINT64_MAX && ex->generation != h.gen) ||
		   (ex->device_id != UINT64_MAX && ex->device_id != h.dev) ||
		   (ex->raw_len != UINT32_MAX && ex->raw_len != h.raw_len)))
		return -ESTALE;
	if (h.raw_len > data_size)
		return -EBADMSG;
	if (!h.flags) {
		if (h.payload_len != h.raw_len)
			return -EBADMSG;
		dh = XXH3_64bits(o + h.header_size, h.raw_len);
	} else {
		tmp = xmalloc(h.raw_len);
		n = LZ4_decompress_safe((const char *)o + h.header_size,
					(char *)tmp, (int)h.payload_len,
					(int)h.raw_len);
		dh = XXH3_64bits(tmp, h.raw_len);
		free(tmp);
		if (n != (int)h.raw_len)
			return -EBADMSG;
	}
	return dh == h.data_hash ? 0 : -EBADMSG;
}

/* Decode obj into a buffer of the size its header claims (capped), or
 * if vary, sometimes a little less or more; then again expecting other
 * identities.  Returns the first result. */
static int decode_checked(const uint8_t *obj, size_t len, bool vary)
{
	struct chunk_obj_info got, expect;
	size_t data_size = 4096;
	uint8_t *out;
	int r, r2;

	/* The size claimed, one byte short of it, or a few bytes more,
	 * chosen by the last byte (data, in a valid object). */
	if (len >= CHUNK_OBJ_HEADER_SIZE && le32_get(obj + 32) <= DATA_CAP) {
		data_size = le32_get(obj + 32);
		if (vary && obj[len - 1] % 4 == 1 && data_size)
			data_size--;
		else if (vary && obj[len - 1] % 4 == 2)
			data_size += obj[len - 1] % 67;
	}
	out = xmalloc(data_size + CANARY);
	memset(out + data_size, CANARY_BYTE, CANARY);

	r = chunk_obj_decode(obj, len, NULL, out, data_size, &got);
	if (r == -ESTALE)
		die("-ESTALE with nothing expected", r);
	count(r);
	if (r != ref_decode(obj, len, NULL, data_size))
		die("decode disagrees with the reference; it returned", r);
	for (size_t i = 0; i < CANARY; i++)
		if (out[data_size + i] != CANARY_BYTE)
			die("decode wrote past data_size", (long)i);
	if (r == 0) {
		if (got.raw_len > data_size)
			die("raw_len beyond data_size", got.raw_len);
		check_decoded(out, &got);

		/* Each expected field, right and wrong. */
		expect = got;
		r2 = chunk_obj_decode(obj, len, &expect, out, data_size, NULL);
		if (r2 != 0)
			die("decode with the right expectations", r2);
		expect.generation = got.generation == UINT64_MAX - 1
					    ? 0
					    : got.generation + 1;
		r2 = chunk_obj_decode(obj, len, &expect, out, data_size, NULL);
		if (r2 != -ESTALE)
			die("decode with a wrong generation", r2);
		expect = got;
		expect.raw_len = got.raw_len + 1;
		r2 = chunk_obj_decode(obj, len, &expect, out, data_size, NULL);
		if (r2 != -ESTALE)
			die("decode with a wrong raw_len", r2);
	} else {
		/* Whatever else: other expectations give an allowed result. */
		expect = (struct chunk_obj_info){ 0, UINT64_MAX, UINT64_MAX,
						  UINT32_MAX, 0 };
		r2 = chunk_obj_decode(obj, len, &expect, out, data_size, NULL);
		count(r2);
		if (r2 != ref_decode(obj, len, &expect, data_size))
			die("decode disagrees with the reference (expect)", r2);
		if (r == -EBADMSG && r2 == 0)
			die("a rejected object decoded with expectations", r2);
		if (r == -ENOTSUP && r2 != -ENOTSUP)
			die("-ENOTSUP depends on expectations", r2);
	}
	for (size_t i = 0; i < CANARY; i++)
		if (out[data_size + i] != CANARY_BYTE)
			die("decode wrote past data_size", (long)i);
	free(out);
	return r;
}

static void roundtrip(const uint8_t *data, size_t size)
{
	struct chunk_obj_info info = {
		.index = size,
		.generation = size * 3 + 1,
		.device_id = 0xfeedfacecafebeefull,
		.raw_len = (uint32_t)size,
	};
	size_t bound = chunk_obj_bound(info.raw_len);
	uint8_t *obj = xmalloc(bound);
	uint8_t *out = xmalloc(size);
	struct chunk_obj_info got;
	long n;
	int r;

	n = chunk_obj_encode(&info, data, obj, bound);
	if (n < CHUNK_OBJ_HEADER_SIZE || (size_t)n > bound)
		die("encode", n);
	if ((size_t)n > CHUNK_OBJ_HEADER_SIZE + size)
		die("encoded larger than raw", n);
	r = chunk_obj_decode(obj, (size_t)n, &info, out, size, &got);
	if (r != 0)
		die("round trip decode", r);
	if ((size && memcmp(out, data, size) != 0) || got.raw_len != size ||
	    got.data_hash != info.data_hash)
		die("round trip differs", 0);
	st.roundtrips++;
	free(out);
	free(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: libFuzzer's buffer is exact already, but the
	 * driver's may not be. */
	uint8_t *obj = xmalloc(size);

	if (size)
		memcpy(obj, data, size);
	decode_checked(obj, size, true);

	if (size >= CHUNK_OBJ_HEADER_SIZE) {
		le32_put(obj + 60, XXH32(obj, 60, 0));
		if (decode_checked(obj, size, true) == 0)
			st.reseal_ok++;
	}
	free(obj);

	if (size <= DATA_CAP)
		roundtrip(data, size);
	return 0;
}

/* ---- seeds for the driver and the corpus ------------------------------ */

static size_t make_seed(uint32_t raw_len, int kind, uint64_t index,
			uint8_t **out)
{
	struct chunk_obj_info info = {
		.index = index,
		.generation = 42,
		.device_id = 0x0123456789abcdefull,
		.raw_len = raw_len,
	};
	uint8_t *data = xmalloc(raw_len);
	uint8_t *obj = xmalloc(chunk_obj_bound(raw_len));
	uint32_t x = 2463534242u;
	long n;

	for (uint32_t i = 0; i < raw_len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		switch (kind) {
		case 0: /* text-like, compresses */
			data[i] = (uint8_t)("tierbd chunk "[x % 13]);
			break;
		case 1: /* random, stored raw */
			data[i] = (uint8_t)x;
			break;
		default: /* runs, compresses well */
			data[i] = (uint8_t)(i / 97);
			break;
		}
	}
	n = chunk_obj_encode(&info, data, obj, chunk_obj_bound(raw_len));
	free(data);
	if (n < 0)
		die("seed encode", n);
	*out = obj;
	return (size_t)n;
}

/* Seed n (malloc'd into *out) and its size; 0 past the last seed. */
size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	switch (n) {
	case 0:
		return make_seed(4096, 0, 7, out);
	case 1:
		return make_seed(1024, 1, 8, out);
	case 2:
		return make_seed(65536, 2, 9, out);
	case 3:
		return make_seed(0, 1, 10, out);
	case 4:
		return make_seed(300, 0, UINT64_MAX - 1, out);
	}
	*out = NULL;
	return 0;
}

/* 0 if the input decodes as a valid object. */
int fuzz_seed_check(const uint8_t *data, size_t size)
{
	return decode_checked(data, size, false);
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"chunk object decodes: %lu ok, %lu -EBADMSG, %lu -ENOTSUP, "
		"%lu -ESTALE; %lu decoded after resealing the header; "
		"%lu encode round trips\n",
		st.ok, st.badmsg, st.notsup, st.stale, st.reseal_ok,
		st.roundtrips);
}
