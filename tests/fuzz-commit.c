/* fuzz-commit.c - fuzz target for the commit decoder (proto/commit.c).
 *
 * Any input: commit_decode must return 0, -EBADMSG or -ENOTSUP, never
 * crash or read out of bounds, and whatever it accepts must satisfy the
 * invariants the engine relies on when it builds a map from a commit
 * (entries strictly increasing, inside the device, 0 < gen < floor);
 * re-encoding an accepted commit must give an object that decodes to
 * the same entries.  With the header hash resealed, mutations reach the
 * payload checks too.  Seeds for the driver (fuzz-driver.c) and the
 * libFuzzer corpus come from commit_encode.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/commit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

static struct {
	unsigned long ok, badmsg, notsup, reseal_ok;
} st;

static void die(const char *what, long v)
{
	fprintf(stderr, "fuzz-commit: %s (%ld)\n", what, v);
	abort();
}

static int decode_checked(const uint8_t *obj, size_t size)
{
	struct commit_info info;
	struct commit_entry *e = NULL;
	int r = commit_decode(obj, size, &info, &e);

	if (r == -EBADMSG) {
		st.badmsg++;
		return r;
	}
	if (r == -ENOTSUP) {
		st.notsup++;
		return r;
	}
	if (r != 0)
		die("unexpected error", r);
	st.ok++;
	uint64_t nchunks =
		DIV_ROUND_UP(info.device_size, UINT64_C(1) << info.chunk_shift);
	for (uint64_t i = 0; i < info.nentries; i++) {
		if (e[i].index >= nchunks || e[i].gen == 0 ||
		    e[i].gen >= info.gen_floor ||
		    (i && e[i].index <= e[i - 1].index))
			die("accepted a bad entry", (long)i);
	}
	/* Round trip what was accepted. */
	void *again;
	size_t len;
	struct commit_info info2;
	struct commit_entry *e2 = NULL;
	if (commit_encode(&info, e, &again, &len) != 0)
		die("re-encode", 0);
	if (commit_decode(again, len, &info2, &e2) != 0 ||
	    info2.nentries != info.nentries ||
	    (info.nentries && memcmp(e, e2, info.nentries * sizeof(*e)) != 0))
		die("round trip differs", 0);
	free(again);
	free(e2);
	free(e);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *obj = calloc(1, size ? size : 1);

	if (!obj)
		abort();
	if (size)
		memcpy(obj, data, size);
	decode_checked(obj, size);
	if (size >= COMMIT_HEADER_SIZE) {
		le32_put(obj + 124, XXH32(obj, 124, 0));
		if (decode_checked(obj, size) == 0)
			st.reseal_ok++;
	}
	free(obj);
	return 0;
}

static size_t make_seed(uint64_t n, unsigned shift, uint64_t step,
			uint8_t **out)
{
	struct commit_entry *e = calloc(n ? n : 1, sizeof(*e));
	struct commit_info info = { .seq = 3,
				    .device_id = 0xfeedfacecafebeefull,
				    .chunk_shift = shift,
				    .nentries = n,
				    .gen_floor = 5000,
				    .created = 1700000000 };
	void *obj;
	size_t len;

	info.device_size = (n * step + 1) << shift;
	for (uint64_t i = 0; i < n; i++)
		e[i] = (struct commit_entry){ i * step, 1 + (i * 7) % 4000,
					      i * 0x9e3779b97f4a7c15ull,
					      (uint32_t)(i * 100),
					      (uint32_t)i };
	if (commit_encode(&info, e, &obj, &len) != 0)
		die("seed encode", 0);
	free(e);
	*out = obj;
	return len;
}

size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	switch (n) {
	case 0:
		return make_seed(0, 20, 1, out);
	case 1:
		return make_seed(5, 16, 3, out);
	case 2:
		return make_seed(300, 20, 1, out);
	}
	*out = NULL;
	return 0;
}

int fuzz_seed_check(const uint8_t *data, size_t size)
{
	return decode_checked(data, size);
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"commit decodes: %lu ok, %lu -EBADMSG, %lu -ENOTSUP; %lu "
		"decoded after resealing the header\n",
		st.ok, st.badmsg, st.notsup, st.reseal_ok);
}
