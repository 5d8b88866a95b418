/* fuzz-logrec.c - fuzz target for the write-log record header
 * (proto/logrec.c).
 *
 * The input is a header block followed by the record's data.  It is
 * decoded at the alignment its own align_shift byte names (else 9) and
 * at another, as it is and with its header hash recomputed (so that
 * mutations reach the checks behind the hash).  Every result is
 * compared with a plain reference of the contract in logrec.h; a
 * record that decodes must re-encode to a block that decodes the same,
 * and a WRITE whose data follows in the input has its data checked
 * against a hash computed here.  Seeds: each type at each alignment.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/logrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

static struct {
	unsigned long ok, badmsg, notsup, reseal_ok, data_ok, data_bad;
} st;

static void die(const char *what, long v) __attribute__((noreturn));
static void die(const char *what, long v)
{
	fprintf(stderr, "fuzz-logrec: %s (%ld)\n", what, v);
	abort();
}

/* The contract of logrec_decode, written out again plainly. */
static int ref_decode(const uint8_t *b, size_t len, unsigned shift)
{
	uint64_t a = UINT64_C(1) << (shift & 63), off, hash;
	uint32_t length, span;
	uint8_t type, flags;

	if (len < 64 || memcmp(b, "TBLR", 4) != 0 ||
	    le32_get(b + 60) != XXH32(b, 60, 0))
		return -EBADMSG;
	if (b[6] != shift || shift < 9 || shift > 12)
		return -EBADMSG;
	type = b[4];
	flags = b[5];
	if (type < 1 || type > 4 || flags > 1)
		return -ENOTSUP;
	off = le64_get(b + 24);
	length = le32_get(b + 32);
	span = le32_get(b + 36);
	hash = le64_get(b + 40);
	if (type == 4)
		return off == 0 && length == 0 && hash == 0 && span != 0 &&
				       span % a == 0
			       ? 0
			       : -EBADMSG;
	if (length == 0 || length > (64u << 20) || off + length < off)
		return -EBADMSG;
	if (type != 1 && hash != 0)
		return -EBADMSG;
	if (type == 1)
		return span == a + (length + a - 1) / a * a ? 0 : -EBADMSG;
	return span == a ? 0 : -EBADMSG;
}

static int decode_checked(const uint8_t *b, size_t size, unsigned shift)
{
	struct logrec r, r2;
	int ret = logrec_decode(b, size, shift, &r);
	uint8_t *blk;

	if (ret != ref_decode(b, size, shift))
		die("decode disagrees with the reference; it returned", ret);
	if (ret == -EBADMSG) {
		st.badmsg++;
		return ret;
	}
	if (ret == -ENOTSUP) {
		st.notsup++;
		return ret;
	}
	if (ret != 0)
		die("unexpected result", ret);
	st.ok++;
	if (r.type != LOGREC_PAD &&
	    r.span != logrec_span(r.type, r.length, shift))
		die("span disagrees with logrec_span", r.span);

	/* re-encode: the same record */
	blk = malloc((size_t)1 << shift);
	if (!blk)
		die("out of memory", 0);
	logrec_encode(&r, shift, blk);
	if (logrec_decode(blk, (size_t)1 << shift, shift, &r2) != 0 ||
	    r2.type != r.type || r2.flags != r.flags || r2.lsn != r.lsn ||
	    r2.device_id != r.device_id || r2.offset != r.offset ||
	    r2.length != r.length || r2.span != r.span ||
	    r2.data_hash != r.data_hash)
		die("round trip differs", 0);
	if (memcmp(blk + 8, b + 8, 40) != 0)
		die("re-encoded fields differ", 0);
	free(blk);

	/* the data, if the input holds it after the header block */
	if (r.type == LOGREC_WRITE && size >= ((size_t)1 << shift) + r.length) {
		const uint8_t *d = b + ((size_t)1 << shift);
		int c = logrec_check_data(&r, d);

		if (c !=
		    (XXH3_64bits(d, r.length) == r.data_hash ? 0 : -EBADMSG))
			die("data check", c);
		if (c == 0)
			st.data_ok++;
		else
			st.data_bad++;
	} else if (r.type != LOGREC_WRITE && logrec_check_data(&r, NULL) != 0) {
		die("a record without data fails its data check", 0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b = calloc(1, size ? size : 1);
	unsigned shift = 9;

	if (!b)
		die("out of memory", 0);
	if (size)
		memcpy(b, data, size);
	if (size > 6 && b[6] >= LOGREC_ALIGN_SHIFT_MIN &&
	    b[6] <= LOGREC_ALIGN_SHIFT_MAX)
		shift = b[6];
	decode_checked(b, size, shift);
	decode_checked(b, size, shift == 12 ? 9 : shift + 1);
	if (size >= LOGREC_HDR_LEN) {
		le32_put(b + 60, XXH32(b, 60, 0));
		if (decode_checked(b, size, shift) == 0)
			st.reseal_ok++;
	}
	free(b);
	return 0;
}

/* A record of type t at alignment 2^shift, with its data after the
 * header block for a WRITE. */
static size_t make_seed(enum logrec_type t, unsigned shift, uint32_t length,
			uint8_t **out)
{
	size_t align = (size_t)1 << shift;
	struct logrec r = { .type = t,
			    .flags = length & 1 ? LOGREC_F_FUA : 0,
			    .lsn = (uint64_t)length << 12,
			    .device_id = 0xfeedfacecafebeefull,
			    .offset = t == LOGREC_PAD ? 0 : 1u << 20,
			    .length = t == LOGREC_PAD ? 0 : length };
	size_t size = align + (t == LOGREC_WRITE ? length : 0);
	uint8_t *b = calloc(1, size);

	if (!b)
		die("out of memory", 0);
	r.span = t == LOGREC_PAD ? 2 * (uint32_t)align
				 : logrec_span(t, length, shift);
	if (t == LOGREC_WRITE) {
		for (uint32_t i = 0; i < length; i++)
			b[align + i] = (uint8_t)(i * 7 + (i >> 8));
		r.data_hash = XXH3_64bits(b + align, length);
	}
	logrec_encode(&r, shift, b);
	*out = b;
	return size;
}

size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	switch (n) {
	case 0:
		return make_seed(LOGREC_WRITE, 9, 1000, out);
	case 1:
		return make_seed(LOGREC_WRITE, 12, 4096, out);
	case 2:
		return make_seed(LOGREC_ZERO, 9, 1u << 20, out);
	case 3:
		return make_seed(LOGREC_TRIM, 10, 1u << 26, out);
	case 4:
		return make_seed(LOGREC_PAD, 11, 0, out);
	case 5:
		return make_seed(LOGREC_WRITE, 11, 1, out);
	}
	*out = NULL;
	return 0;
}

int fuzz_seed_check(const uint8_t *data, size_t size)
{
	unsigned long before = st.data_ok;
	int r = decode_checked(data, size, data[6]);

	/* a WRITE seed carries its data, which must check */
	if (r == 0 && data[4] == LOGREC_WRITE && st.data_ok != before + 1)
		return -EBADMSG;
	return r;
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"logrec decodes: %lu ok, %lu -EBADMSG, %lu -ENOTSUP; %lu "
		"decoded after resealing the header; data %lu ok, %lu bad\n",
		st.ok, st.badmsg, st.notsup, st.reseal_ok, st.data_ok,
		st.data_bad);
}
