/* fuzz-segment.c - fuzz target for the segment decoders
 * (proto/segment.c).
 *
 * The input is a whole segment object.  Its header and index are
 * decoded as they are and again with both hashes recomputed (so that
 * mutations of lengths and entries reach the checks behind the hashes).
 * Whatever decodes must satisfy what a reader relies on: frames inside
 * the device, within one chunk (DATA, ZERO) or exactly one chunk (BASE,
 * TRIM), not overlapping, DATA frames inside the payload area in pos
 * order.  Every DATA frame the input holds is then checked alone by its
 * pos (seg_frame_check, as a reader from a checkpoint would), and when
 * all of them check, the segment is encoded again from the decoded
 * frames and must decode to the same frames.  The device size is taken
 * from the input's last byte (a whole number of chunks, or one byte
 * short of it), so BASE/TRIM of a short last chunk are reached too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

static struct {
	unsigned long hdr_ok, idx_ok, badmsg, notsup, reseal_ok;
	unsigned long frames_ok, frames_bad, roundtrips;
} st;

static void die(const char *what, long v) __attribute__((noreturn));
static void die(const char *what, long v)
{
	fprintf(stderr, "fuzz-segment: %s (%ld)\n", what, v);
	abort();
}

static void count(int r)
{
	if (r == -EBADMSG)
		st.badmsg++;
	else if (r == -ENOTSUP)
		st.notsup++;
	else if (r != 0)
		die("unexpected result", r);
}

/* What a reader relies on, checked plainly (O(n^2): inputs are small). */
static void check_frames(const struct seg_info *in, const struct seg_frame *f,
			 uint64_t dev)
{
	uint64_t c = UINT64_C(1) << in->chunk_shift;
	uint64_t prev = in->header_len;

	for (uint32_t i = 0; i < in->nframes; i++) {
		uint64_t end = f[i].offset + f[i].length;

		if (f[i].length == 0 || end < f[i].offset || end > dev)
			die("a frame outside the device", i);
		if (f[i].flags & ~SEG_F_GC)
			die("an unknown flag", i);
		switch (f[i].kind) {
		case SEG_DATA:
			if (f[i].pos < prev ||
			    (uint64_t)f[i].pos + SEG_FRAME_HDR + f[i].length >
				    (uint64_t)in->header_len + in->payload_len)
				die("a DATA frame outside the payload", i);
			prev = (uint64_t)f[i].pos + SEG_FRAME_HDR + f[i].length;
			/* fall through */
		case SEG_ZERO:
			if (f[i].offset / c != (end - 1) / c)
				die("a frame across chunks", i);
			break;
		case SEG_BASE:
		case SEG_TRIM:
			if (f[i].offset % c ||
			    f[i].length != MIN(c, dev - f[i].offset))
				die("BASE/TRIM not one chunk", i);
			if (f[i].kind == SEG_BASE && f[i].a == 0)
				die("BASE of gen 0", i);
			break;
		default:
			die("an unknown kind", f[i].kind);
		}
		for (uint32_t j = 0; j < i; j++)
			if (f[j].offset < end &&
			    f[i].offset < f[j].offset + f[j].length)
				die("overlapping frames", i);
	}
}

/* Encode the decoded segment again (DATA from the input) and compare:
 * the same frames, DATA packed from header_len on (the input may have
 * left gaps). */
static void roundtrip(struct seg_info in, const struct seg_frame *f,
		      uint64_t dev)
{
	size_t len = seg_encoded_len(f, in.nframes);
	uint8_t *obj = malloc(len);
	struct seg_frame *e =
		malloc((in.nframes ? in.nframes : 1) * sizeof(*e));
	struct seg_info out;
	struct seg_frame *g = NULL;
	uint64_t pos = in.header_len;
	long n;

	if (!obj || !e)
		die("out of memory", 0);
	if (in.nframes)
		memcpy(e, f, in.nframes * sizeof(*e));
	n = seg_encode(&in, e, in.nframes, obj, len);
	if (n != (long)len)
		die("re-encode", n);
	if (seg_decode_header(obj, len, &out) != 0 ||
	    seg_decode_index(obj, len, &out, dev, &g) != 0)
		die("re-encoded segment does not decode", 0);
	if (out.seq != in.seq || out.device_id != in.device_id ||
	    out.nframes != in.nframes || out.lsn_start != in.lsn_start ||
	    out.lsn_end != in.lsn_end || out.epoch != in.epoch ||
	    out.chunk_shift != in.chunk_shift)
		die("re-encoded header differs", 0);
	for (uint32_t i = 0; i < in.nframes; i++) {
		const void *d;

		if (g[i].offset != f[i].offset || g[i].length != f[i].length ||
		    g[i].kind != f[i].kind || g[i].flags != f[i].flags ||
		    g[i].a != f[i].a || g[i].b != f[i].b ||
		    g[i].pos != (f[i].kind == SEG_DATA ? pos : 0))
			die("re-encoded frame differs", i);
		if (f[i].kind == SEG_DATA)
			pos += SEG_FRAME_HDR + (uint64_t)f[i].length;
		if (g[i].kind == SEG_DATA &&
		    (seg_frame_check(obj + g[i].pos, len - g[i].pos,
				     in.device_id, in.seq, g[i].offset,
				     g[i].length, &d) != 0 ||
		     memcmp(d, f[i].data, f[i].length) != 0))
			die("re-encoded frame does not check", i);
	}
	st.roundtrips++;
	free(g);
	free(e);
	free(obj);
}

static int decode_checked(const uint8_t *b, size_t size, uint64_t dev)
{
	struct seg_info in;
	struct seg_frame *f = NULL;
	bool all = true;
	int r = seg_decode_header(b, size, &in);

	count(r);
	if (r < 0)
		return r;
	st.hdr_ok++;
	if (in.header_len !=
		    SEG_HDR_SIZE + (uint64_t)SEG_INDEX_ENTRY * in.nframes ||
	    (uint64_t)in.header_len + in.payload_len > SEG_MAX_LEN)
		die("accepted a bad header", 0);
	r = seg_decode_index(b, size, &in, dev, &f);
	count(r);
	if (r < 0) {
		if (f)
			die("frames returned with an error", r);
		return r;
	}
	st.idx_ok++;
	check_frames(&in, f, dev);

	/* each DATA frame alone, by its pos, if the input holds it */
	for (uint32_t i = 0; i < in.nframes; i++) {
		const void *d = NULL;
		int c;

		if (f[i].kind != SEG_DATA)
			continue;
		if ((uint64_t)f[i].pos + SEG_FRAME_HDR + f[i].length > size) {
			all = false;
			continue;
		}
		c = seg_frame_check(b + f[i].pos, size - f[i].pos, in.device_id,
				    in.seq, f[i].offset, f[i].length, &d);
		if (c == 0 && (d != b + f[i].pos + SEG_FRAME_HDR ||
			       XXH3_64bits(d, f[i].length) !=
				       le64_get(b + f[i].pos + 32)))
			die("a frame checks with the wrong data", i);
		if (c != 0 && c != -EBADMSG)
			die("frame check result", c);
		/* the index's hash of the frame is the frame's own */
		if (c == 0 && f[i].a != XXH3_64bits(d, f[i].length))
			c = -EBADMSG;
		if (c == 0)
			st.frames_ok++;
		else
			st.frames_bad++;
		all = all && c == 0;
		f[i].data = d;
	}
	if (all)
		roundtrip(in, f, dev);
	free(f);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b = calloc(1, size ? size : 1);
	uint64_t dev = UINT64_C(1) << 40;

	if (!b)
		die("out of memory", 0);
	if (size)
		memcpy(b, data, size);
	/* a device of a whole number of chunks, or one byte less */
	if (size > SEG_HDR_SIZE && b[72] >= 16 && b[72] <= 26) {
		dev = (uint64_t)(b[size - 1] + 1) << b[72];
		if (b[size - 1] & 1)
			dev -= 1;
	}
	decode_checked(b, size, dev);
	decode_checked(b, size, UINT64_MAX);
	if (size >= SEG_HDR_SIZE) {
		uint64_t ix = (uint64_t)le32_get(b + 36) * SEG_INDEX_ENTRY;

		if (ix <= size - SEG_HDR_SIZE)
			le32_put(b + 120,
				 XXH32(b + SEG_HDR_SIZE, (size_t)ix, 0));
		le32_put(b + 124, XXH32(b, 124, 0));
		if (decode_checked(b, size, dev) == 0)
			st.reseal_ok++;
	}
	free(b);
	return 0;
}

static uint8_t seed_data[4096];

static size_t make_seed(unsigned shift, struct seg_frame *f, uint32_t n,
			uint8_t **out)
{
	struct seg_info info = { .device_id = 0xfeedfacecafebeefull,
				 .seq = 9,
				 .epoch = 2,
				 .lsn_start = 512,
				 .lsn_end = 8192,
				 .created = 1700000000,
				 .chunk_shift = shift };
	size_t len = seg_encoded_len(f, n);
	uint8_t *obj = malloc(len + 1);
	long r;

	if (!obj)
		die("out of memory", 0);
	for (size_t i = 0; i < sizeof(seed_data); i++)
		seed_data[i] = (uint8_t)(i * 13 + (i >> 7));
	r = seg_encode(&info, f, n, obj, len);
	if (r != (long)len)
		die("seed encode", r);
	/* the last byte names the device size: 64 chunks (even) */
	obj[len] = 63;
	*out = obj;
	return len + 1;
}

size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	uint64_t c = 64 * 1024;

	switch (n) {
	case 0:
		return make_seed(16, NULL, 0, out);
	case 1: {
		struct seg_frame f[] = {
			{ .offset = 3 * c + 10,
			  .length = 100,
			  .kind = SEG_DATA,
			  .data = seed_data },
			{ .offset = 3 * c, .length = 10, .kind = SEG_ZERO },
			{ .offset = c,
			  .length = 4096,
			  .kind = SEG_DATA,
			  .flags = SEG_F_GC,
			  .data = seed_data },
			{ .offset = 5 * c,
			  .length = (uint32_t)c,
			  .kind = SEG_BASE,
			  .a = 7,
			  .b = 0x1234 },
			{ .offset = 63 * c,
			  .length = (uint32_t)c,
			  .kind = SEG_TRIM },
		};

		return make_seed(16, f, ARRAY_SIZE(f), out);
	}
	case 2: {
		struct seg_frame f[] = {
			{ .offset = 1u << 20,
			  .length = 1,
			  .kind = SEG_DATA,
			  .data = seed_data },
			{ .offset = 0,
			  .length = 1u << 20,
			  .kind = SEG_BASE,
			  .a = 1 },
		};

		return make_seed(20, f, ARRAY_SIZE(f), out);
	}
	}
	*out = NULL;
	return 0;
}

int fuzz_seed_check(const uint8_t *data, size_t size)
{
	unsigned long before = st.roundtrips;
	uint64_t dev = (uint64_t)(data[size - 1] + 1) << data[72];
	int r = decode_checked(data, size, dev);

	/* a seed holds all its frames: it must round-trip */
	return r == 0 && st.roundtrips == before + 1 ? 0 : -EBADMSG;
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"segment decodes: %lu headers and %lu indexes ok, %lu "
		"-EBADMSG, %lu -ENOTSUP; %lu decoded after resealing; DATA "
		"frames %lu ok, %lu bad; %lu round trips\n",
		st.hdr_ok, st.idx_ok, st.badmsg, st.notsup, st.reseal_ok,
		st.frames_ok, st.frames_bad, st.roundtrips);
}
