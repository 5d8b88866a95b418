/* fuzz-cachemap.c - fuzz target for sb_decode and map_check.
 *
 * Built with libFuzzer (meson -Dfuzz=true, clang) or with
 * tests/fuzz-driver.c (the smoke test).  The input is a map file: the
 * first 4096 bytes are the superblock, the rest are 32-byte entries.
 *
 *   1. sb_decode on the first min(size, 4096) bytes as they are, and
 *      again with the hash recomputed, so that mutated fields reach the
 *      checks behind the hash.  A decoded superblock must satisfy its
 *      own invariants and encode and decode back to itself.
 *   2. map_check on the entries, with the decoded superblock or, when
 *      none decodes, one synthesized from the superblock bytes (nslots
 *      and gen_reserved taken from their usual offsets), so that entry
 *      mutations are checked even when the superblock is broken.  Up to
 *      a few hundred entries, the result is compared with a slow
 *      reference checker written from the rules in cachemap.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/cachemap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

#define REF_MAX 512

static struct {
	unsigned long sb_ok, sb_badmsg, sb_notsup, sb_reseal_ok;
	unsigned long map_ok, map_bad, map_ents, ref_compared;
} st;

static void die(const char *what, long r) __attribute__((noreturn));
static void die(const char *what, long r)
{
	fprintf(stderr, "fuzz-cachemap: %s (%ld)\n", what, r);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		die("out of memory", 0);
	return p;
}

static bool sb_same(const struct superblock *a, const struct superblock *b)
{
	return a->flags == b->flags && a->device_size == b->device_size &&
	       a->chunk_shift == b->chunk_shift && a->nchunks == b->nchunks &&
	       a->nslots == b->nslots && a->gen_reserved == b->gen_reserved &&
	       a->device_id == b->device_id && a->created == b->created &&
	       a->heat_tick == b->heat_tick &&
	       strcmp(a->store_spec, b->store_spec) == 0;
}

/* sb_decode's contract (cachemap.h, and the order of checks in
 * cachemap.c), written out again plainly: the result expected. */
static int ref_sb_decode(const uint8_t *b, size_t len)
{
	uint64_t size, nchunks, chunk;
	unsigned int shift;

	if (len < 4096 || memcmp(b, "TIERBDSB", 8) != 0)
		return -EBADMSG;
	if ((b[8] | b[9] << 8) != 1)
		return -ENOTSUP;
	if ((b[10] | b[11] << 8) != 4096 ||
	    le32_get(b + 4092) != XXH32(b, 4092, 0))
		return -EBADMSG;
	if (le32_get(b + 12) > 1)
		return -ENOTSUP;
	size = le64_get(b + 16);
	shift = b[24];
	nchunks = le64_get(b + 32);
	if (shift < 16 || shift > 26 || b[25] != 32 || size == 0)
		return -EBADMSG;
	chunk = 1ull << shift;
	if (nchunks != size / chunk + (size % chunk != 0))
		return -EBADMSG;
	if (!memchr(b + 80, 0, 256))
		return -EBADMSG;
	return 0;
}

static int decode_checked(const uint8_t *buf, size_t len, struct superblock *sb)
{
	struct superblock again;
	uint8_t enc[SB_SIZE];
	int r = sb_decode(buf, len, sb);

	if (r != ref_sb_decode(buf, len))
		die("sb_decode disagrees with the reference; it returned", r);

	switch (r) {
	case 0:
		st.sb_ok++;
		break;
	case -EBADMSG:
		st.sb_badmsg++;
		return r;
	case -ENOTSUP:
		st.sb_notsup++;
		return r;
	default:
		die("sb_decode: unexpected result", r);
	}

	if (sb->chunk_shift < CHUNK_SHIFT_MIN ||
	    sb->chunk_shift > CHUNK_SHIFT_MAX || sb->device_size == 0 ||
	    sb->nchunks == 0 ||
	    sb->nchunks !=
		    (sb->device_size - 1) / (1ull << sb->chunk_shift) + 1 ||
	    (sb->flags & ~SB_F_CLEAN) ||
	    memchr(sb->store_spec, 0, SB_STORE_SPEC_MAX) == NULL)
		die("decoded superblock breaks its invariants", 0);
	/* The fields, from their offsets in the table of cachemap.h. */
	if (sb->flags != le32_get(buf + 12) ||
	    sb->device_size != le64_get(buf + 16) ||
	    sb->chunk_shift != buf[24] || sb->nchunks != le64_get(buf + 32) ||
	    sb->nslots != le64_get(buf + 40) ||
	    sb->gen_reserved != le64_get(buf + 48) ||
	    sb->device_id != le64_get(buf + 56) ||
	    sb->created != le64_get(buf + 64) ||
	    sb->heat_tick != le64_get(buf + 72) ||
	    strcmp(sb->store_spec, (const char *)buf + 80) != 0)
		die("decoded superblock fields differ from the bytes", 0);

	sb_encode(sb, enc);
	r = sb_decode(enc, SB_SIZE, &again);
	if (r != 0)
		die("re-encoded superblock does not decode", r);
	if (!sb_same(sb, &again))
		die("re-encoded superblock differs", 0);
	return 0;
}

/* The rules of cachemap.h, written out slowly: O(n^2) duplicate search. */
static int ref_check(const struct chunk_ent *e, uint64_t n,
		     const struct superblock *sb, uint64_t *bad)
{
	for (uint64_t i = 0; i < n; i++) {
		bool hot = e[i].state == CHUNK_HOT_CLEAN ||
			   e[i].state == CHUNK_HOT_DIRTY;
		bool ok = e[i].state <= CHUNK_STATE_MAX;

		if (hot)
			ok = ok && e[i].slot != SLOT_NONE &&
			     e[i].slot < sb->nslots;
		else
			ok = ok && e[i].slot == SLOT_NONE;
		if (e[i].state == CHUNK_ABSENT)
			ok = ok && e[i].gen == 0;
		if (e[i].state == CHUNK_COLD || e[i].state == CHUNK_HOT_CLEAN)
			ok = ok && e[i].gen != 0 && e[i].gen < sb->gen_reserved;
		if (e[i].state == CHUNK_HOT_DIRTY && e[i].gen != 0)
			ok = ok && e[i].gen < sb->gen_reserved;
		for (uint64_t j = 0; ok && hot && j < i; j++)
			if ((e[j].state == CHUNK_HOT_CLEAN ||
			     e[j].state == CHUNK_HOT_DIRTY) &&
			    e[j].slot == e[i].slot)
				ok = false;
		if (!ok) {
			*bad = i;
			return -EBADMSG;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sblen = MIN(size, (size_t)SB_SIZE);
	uint8_t *sbuf = xmalloc(sblen);
	struct superblock sb;
	struct chunk_ent *ents;
	uint64_t n = 0, bad = UINT64_MAX, rbad = UINT64_MAX;
	bool have_sb;
	int r, rr;

	/* Exact-size copies, so that an overread is caught. */
	if (sblen)
		memcpy(sbuf, data, sblen);
	have_sb = decode_checked(sbuf, sblen, &sb) == 0;
	if (!have_sb && sblen == SB_SIZE) {
		le32_put(sbuf + SB_SIZE - 4, XXH32(sbuf, SB_SIZE - 4, 0));
		have_sb = decode_checked(sbuf, sblen, &sb) == 0;
		if (have_sb)
			st.sb_reseal_ok++;
	}
	if (!have_sb) {
		memset(&sb, 0, sizeof sb);
		sb.chunk_shift = 20;
		sb.nslots = sblen >= 48 ? le64_get(sbuf + 40) % (1u << 20) : 64;
		sb.gen_reserved = sblen >= 56 ? le64_get(sbuf + 48) : 1000;
		sb.nchunks = UINT64_MAX;
	}
	free(sbuf);

	if (size > SB_SIZE)
		n = MIN((size - SB_SIZE) / sizeof(struct chunk_ent),
			sb.nchunks);
	ents = xmalloc(n * sizeof *ents);
	if (n)
		memcpy(ents, data + SB_SIZE, n * sizeof *ents);

	r = map_check(ents, n, &sb, &bad);
	st.map_ents += n;
	if (r == 0) {
		st.map_ok++;
	} else if (r == -EBADMSG) {
		st.map_bad++;
		if (bad >= n)
			die("map_check: bad index out of range", (long)bad);
	} else if (r != -ENOMEM) {
		die("map_check: unexpected result", r);
	}
	if (n <= REF_MAX && r != -ENOMEM) {
		rr = ref_check(ents, n, &sb, &rbad);
		if (rr != r || (r && rbad != bad)) {
			fprintf(stderr,
				"map_check %d at %lu, reference %d at %lu\n", r,
				(unsigned long)bad, rr, (unsigned long)rbad);
			die("map_check disagrees with the reference", 0);
		}
		st.ref_compared++;
	}
	free(ents);
	return 0;
}

/* ---- seeds for the driver and the corpus ------------------------------ */

static struct chunk_ent ent(uint8_t state, uint8_t flags, uint32_t slot,
			    uint64_t gen)
{
	return (struct chunk_ent){ .state = state,
				   .flags = flags,
				   .slot = slot,
				   .gen = gen,
				   .hash = gen * 0x9e3779b97f4a7c15ull,
				   .heat = 1000 + slot,
				   .tick = 5 };
}

static size_t make_seed(uint64_t nchunks, unsigned int shift,
			const struct chunk_ent *e, size_t ne, uint8_t **out)
{
	struct superblock sb = {
		.flags = SB_F_CLEAN,
		.device_size = (nchunks << shift) - 4096,
		.chunk_shift = shift,
		.nchunks = nchunks,
		.nslots = 16,
		.gen_reserved = 4096,
		.device_id = 0x5eed5eed5eed5eedull,
		.created = 1700000000,
		.heat_tick = 77,
	};
	size_t len = SB_SIZE + ne * sizeof *e;
	uint8_t *b = xmalloc(len);

	strcpy(sb.store_spec, "s3://bucket/vol1");
	sb_encode(&sb, b);
	if (ne)
		memcpy(b + SB_SIZE, e, ne * sizeof *e);
	*out = b;
	return len;
}

/* Seed n (malloc'd into *out) and its size; 0 past the last seed. */
size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	const struct chunk_ent m[] = {
		ent(CHUNK_ABSENT, 0, SLOT_NONE, 0),
		ent(CHUNK_COLD, CE_F_SEQ, SLOT_NONE, 1),
		ent(CHUNK_HOT_CLEAN, CE_F_PINNED, 0, 2),
		ent(CHUNK_HOT_DIRTY, CE_F_BUSY, 15, 0),
		ent(CHUNK_HOT_DIRTY, CE_F_UPLOADING | CE_F_REDIRTY, 7, 4095),
		ent(CHUNK_COLD, 0, SLOT_NONE, 4095),
		ent(CHUNK_HOT_CLEAN, CE_F_VERIFY, 3, 9),
		ent(CHUNK_ABSENT, 0, SLOT_NONE, 0),
		ent(CHUNK_HOT_CLEAN, 0, 1, 10),
		ent(CHUNK_COLD, CE_F_PINNED, SLOT_NONE, 11),
		ent(CHUNK_HOT_DIRTY, 0, 2, 12),
		ent(CHUNK_HOT_CLEAN, 0, 14, 13),
	};

	switch (n) {
	case 0:
		return make_seed(ARRAY_SIZE(m), 20, m, ARRAY_SIZE(m), out);
	case 1:
		return make_seed(1, 16, m + 2, 1, out);
	case 2:
		return make_seed(3, 26, m + 3, 3, out);
	}
	*out = NULL;
	return 0;
}

/* 0 if the input is a valid superblock followed by a valid map. */
int fuzz_seed_check(const uint8_t *data, size_t size)
{
	struct superblock sb;
	struct chunk_ent *ents;
	uint64_t bad;
	int r;

	r = decode_checked(data, size, &sb);
	if (r)
		return r;
	if ((size - SB_SIZE) % sizeof *ents ||
	    (size - SB_SIZE) / sizeof *ents != sb.nchunks)
		return -EBADMSG;
	ents = xmalloc(size - SB_SIZE);
	memcpy(ents, data + SB_SIZE, size - SB_SIZE);
	r = map_check(ents, sb.nchunks, &sb, &bad);
	free(ents);
	return r;
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"superblocks: %lu ok, %lu -EBADMSG, %lu -ENOTSUP, %lu decoded "
		"after resealing; maps: %lu ok, %lu bad, %lu entries, %lu "
		"compared with the reference\n",
		st.sb_ok, st.sb_badmsg, st.sb_notsup, st.sb_reseal_ok,
		st.map_ok, st.map_bad, st.map_ents, st.ref_compared);
}
