/* fuzz-checkpoint.c - fuzz target for the checkpoint decoder
 * (proto/checkpoint.c).
 *
 * Each input is used three ways:
 *   1. decoded as it is;
 *   2. decoded with its header hash recomputed;
 *   3. read as a header followed by an uncompressed payload, which is
 *      compressed here and the header's sizes and hashes made to fit:
 *      so that mutations of entries and extents reach the rules behind
 *      lz4 and the data hash, instead of all dying there.
 * Whatever decodes must satisfy the rules of checkpoint.h, checked here
 * again plainly, and encode again to an object that decodes the same.
 * Seeds are encoded parts of each kind, and a FULL part in the raw form
 * of (3).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

static struct {
	unsigned long ok, badmsg, notsup, reseal_ok, raw_ok, roundtrips;
} st;

static void die(const char *what, long v) __attribute__((noreturn));
static void die(const char *what, long v)
{
	fprintf(stderr, "fuzz-checkpoint: %s (%ld)\n", what, v);
	abort();
}

/* The rules of checkpoint.h on a decoded part, written out again. */
static void check_rules(const struct ckpt_info *in, const struct ckpt_entry *e,
			const struct ckpt_extent *x)
{
	uint64_t c = UINT64_C(1) << in->chunk_shift;
	uint64_t nchunks = in->device_size / c + (in->device_size % c != 0);
	uint64_t nx = 0;

	if (in->kind < 1 || in->kind > 3 || in->chunk_shift < 16 ||
	    in->chunk_shift > 26 || in->device_size == 0 || in->num == 0 ||
	    in->part >= in->nparts ||
	    (in->kind == CKPT_DELTA) != (in->prev_num != 0) ||
	    (in->kind != CKPT_DELTA && in->prev_epoch != 0))
		die("accepted a bad header", 0);
	for (uint32_t i = 0; i < in->nentries; i++) {
		uint64_t csize = MIN(c, in->device_size - e[i].index * c);
		uint64_t prev = 0;

		if (e[i].index >= nchunks ||
		    (i && e[i].index <= e[i - 1].index) ||
		    e[i].gen >= in->gen_floor || e[i].first != nx)
			die("accepted a bad entry", i);
		if ((in->kind == CKPT_FULL && !e[i].gen && !e[i].next) ||
		    (in->kind == CKPT_LOCAL && !e[i].next))
			die("accepted an entry that holds nothing", i);
		for (uint32_t j = 0; j < e[i].next; j++, nx++) {
			const struct ckpt_extent *t = &x[nx];
			uint64_t end = (uint64_t)t->off + t->len;

			if (nx >= in->nextents)
				die("more extents than counted", i);
			if (!t->len || t->off < prev || end > csize ||
			    !t->seq || t->seq > in->seg_seq)
				die("accepted a bad extent", nx);
			if (t->pos == CKPT_ZERO_POS
				    ? t->flen || t->fstart != t->off
				    : t->fstart > t->off ||
					      end > (uint64_t)t->fstart +
							      t->flen ||
					      (uint64_t)t->fstart + t->flen >
						      csize)
				die("accepted a bad frame reference", nx);
			prev = end;
		}
	}
	if (nx != in->nextents)
		die("extents left over", nx);
}

static bool ext_eq(const struct ckpt_extent *a, const struct ckpt_extent *b)
{
	return a->off == b->off && a->len == b->len && a->seq == b->seq &&
	       a->pos == b->pos && a->flen == b->flen && a->fstart == b->fstart;
}

static int decode_checked(const uint8_t *obj, size_t size)
{
	struct ckpt_info in, in2;
	struct ckpt_entry *e = NULL, *e2 = NULL;
	struct ckpt_extent *x = NULL, *x2 = NULL;
	void *again;
	size_t len;
	int r = ckpt_decode(obj, size, &in, &e, &x);

	if (r == -EBADMSG || r == -ENOTSUP) {
		if (e || x)
			die("arrays returned with an error", r);
		if (r == -EBADMSG)
			st.badmsg++;
		else
			st.notsup++;
		return r;
	}
	if (r != 0)
		die("unexpected result", r);
	st.ok++;
	check_rules(&in, e, x);
	if (ckpt_encode(&in, e, x, &again, &len) != 0)
		die("re-encode", 0);
	if (ckpt_decode(again, len, &in2, &e2, &x2) != 0)
		die("re-encoded part does not decode", 0);
	if (in2.kind != in.kind || in2.chunk_shift != in.chunk_shift ||
	    in2.epoch != in.epoch || in2.num != in.num ||
	    in2.device_id != in.device_id ||
	    in2.device_size != in.device_size || in2.seg_seq != in.seg_seq ||
	    in2.prev_num != in.prev_num || in2.prev_epoch != in.prev_epoch ||
	    in2.part != in.part || in2.nparts != in.nparts ||
	    in2.gen_floor != in.gen_floor || in2.created != in.created ||
	    in2.dev_created != in.dev_created || in2.nentries != in.nentries ||
	    in2.nextents != in.nextents)
		die("round trip differs in the header", 0);
	if (in.nentries && memcmp(e, e2, in.nentries * sizeof(*e)) != 0)
		die("round trip differs in an entry", 0);
	for (uint32_t i = 0; i < in.nextents; i++)
		if (!ext_eq(&x[i], &x2[i]))
			die("round trip differs in an extent", i);
	st.roundtrips++;
	free(again);
	free(e);
	free(x);
	free(e2);
	free(x2);
	return 0;
}

/* Way 3: the input is a header and a raw payload.  The counts are cut
 * to what the payload holds, which is compressed and sealed. */
static int decode_raw_form(const uint8_t *data, size_t size)
{
	uint64_t raw = size - CKPT_HEADER_SIZE, ne, nx;
	uint8_t *obj;
	int bound, clen = 0, r;

	if (size < CKPT_HEADER_SIZE || raw > CKPT_PART_MAX_RAW)
		return -EBADMSG;
	ne = MIN((uint64_t)le32_get(data + 88), raw / CKPT_ENTRY_SIZE);
	nx = (raw - ne * CKPT_ENTRY_SIZE) / CKPT_EXTENT_SIZE;
	raw = ne * CKPT_ENTRY_SIZE + nx * CKPT_EXTENT_SIZE;
	bound = LZ4_compressBound((int)raw);
	obj = malloc(CKPT_HEADER_SIZE + (size_t)bound + 1);
	if (!obj)
		die("out of memory", 0);
	memcpy(obj, data, CKPT_HEADER_SIZE);
	if (raw)
		clen = LZ4_compress_default(
			(const char *)data + CKPT_HEADER_SIZE,
			(char *)obj + CKPT_HEADER_SIZE, (int)raw, bound);
	if (raw && clen <= 0)
		die("lz4", clen);
	le32_put(obj + 88, (uint32_t)ne);
	le32_put(obj + 92, (uint32_t)nx);
	le32_put(obj + 96, (uint32_t)raw);
	le32_put(obj + 100, (uint32_t)clen);
	le64_put(obj + 104, XXH3_64bits(data + CKPT_HEADER_SIZE, raw));
	le32_put(obj + 124, XXH32(obj, 124, 0));
	r = decode_checked(obj, CKPT_HEADER_SIZE + (size_t)clen);
	free(obj);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *obj = calloc(1, size ? size : 1);

	if (!obj)
		die("out of memory", 0);
	if (size)
		memcpy(obj, data, size);
	decode_checked(obj, size);
	if (size >= CKPT_HEADER_SIZE) {
		le32_put(obj + 124, XXH32(obj, 124, 0));
		if (decode_checked(obj, size) == 0)
			st.reseal_ok++;
		if (decode_raw_form(data, size) == 0)
			st.raw_ok++;
	}
	free(obj);
	return 0;
}

/* ---- seeds ------------------------------------------------------------ */

static struct ckpt_info seed_info(uint8_t kind, uint32_t ne, uint32_t nx)
{
	return (struct ckpt_info){ .kind = kind,
				   .chunk_shift = 16,
				   .epoch = 2,
				   .num = 5,
				   .device_id = 0xfeedfacecafebeefull,
				   .device_size = (UINT64_C(40) << 16) + 4000,
				   .seg_seq = 90,
				   .prev_num = kind == CKPT_DELTA ? 4 : 0,
				   .prev_epoch = kind == CKPT_DELTA ? 2 : 0,
				   .nparts = 1,
				   .gen_floor = 1000,
				   .created = 1700000000,
				   .dev_created = 1600000000,
				   .nentries = ne,
				   .nextents = nx };
}

static const struct ckpt_entry seed_ents[] = {
	{ 0, 3, 0xaaaa, 1024, 1, 0, 0 },
	{ 2, 4, 0xbbbb, 2048, 2, 2, 0 },
	{ 7, 0, 0, 0, 0, 1, 0 },
	{ 40, 5, 0xcccc, 0, 3, 1, 0 },
};
static const struct ckpt_extent seed_exts[] = {
	{ 10, 100, 80, 4096, 300, 0 },
	{ 200, 50, 81, CKPT_ZERO_POS, 0, 200 },
	{ 0, 65536, 90, 168, 65536, 0 },
	{ 3000, 1000, 1, 500, 2000, 2000 },
};

static size_t encode_seed(const struct ckpt_info *in,
			  const struct ckpt_entry *e,
			  const struct ckpt_extent *x, uint8_t **out)
{
	void *obj;
	size_t len;

	if (ckpt_encode(in, e, x, &obj, &len) != 0)
		die("seed encode", 0);
	*out = obj;
	return len;
}

size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	struct ckpt_info in;

	switch (n) {
	case 0:
		in = seed_info(CKPT_FULL, 4, 4);
		return encode_seed(&in, seed_ents, seed_exts, out);
	case 1:
		in = seed_info(CKPT_DELTA, 4, 4);
		return encode_seed(&in, seed_ents, seed_exts, out);
	case 2:
		in = seed_info(CKPT_LOCAL, 3, 4);
		return encode_seed(&in, seed_ents + 1, seed_exts, out);
	case 3:
		in = seed_info(CKPT_FULL, 0, 0);
		return encode_seed(&in, NULL, NULL, out);
	case 4: {
		/* the raw form: the header of seed 0, then its payload
		 * uncompressed */
		uint8_t *obj, *raw;
		size_t len = fuzz_seed(0, &obj), rl = 4 * 40 + 4 * 32;

		raw = malloc(CKPT_HEADER_SIZE + rl);
		if (!raw || LZ4_decompress_safe((char *)obj + CKPT_HEADER_SIZE,
						(char *)raw + CKPT_HEADER_SIZE,
						(int)(len - CKPT_HEADER_SIZE),
						(int)rl) != (int)rl)
			die("seed 4", 0);
		memcpy(raw, obj, CKPT_HEADER_SIZE);
		free(obj);
		*out = raw;
		return CKPT_HEADER_SIZE + rl;
	}
	}
	*out = NULL;
	return 0;
}

/* Seeds 0..3 decode as they are, seed 4 in the raw form. */
int fuzz_seed_check(const uint8_t *data, size_t size)
{
	if (decode_checked(data, size) == 0)
		return 0;
	return decode_raw_form(data, size);
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"checkpoint decodes: %lu ok, %lu -EBADMSG, %lu -ENOTSUP; %lu "
		"after resealing the header, %lu in the raw form; %lu round "
		"trips\n",
		st.ok, st.badmsg, st.notsup, st.reseal_ok, st.raw_ok,
		st.roundtrips);
}
