/* fuzz-driver.c - run a libFuzzer target without libFuzzer.
 *
 * Linked with one fuzz target (tests/fuzz-<format>.c), which provides
 * LLVMFuzzerTestOneInput and its valid seeds (fuzz_seed).  This is the
 * smoke test that runs in every build, with any compiler:
 *
 *   fuzz-<format>-smoke [ITERATIONS [RNG-SEED]]   (default 20000, 1)
 *   fuzz-<format>-smoke --write-seeds DIR         the libFuzzer corpus
 *
 * It first checks that every unmutated seed is accepted by the decoder
 * (fuzz_seed_check), so a decoder that rejects everything fails here,
 * then feeds ITERATIONS deterministic mutations of the seeds: bit
 * flips, byte and integer sets, truncations, extensions, insertions,
 * erasures and splices.  The target aborts on any wrong behaviour; a
 * sanitizer build catches memory errors.  Exit 0 = pass.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

/* From the target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

#define MAX_SEEDS 32

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform-ish in [0, n); n > 0. */
static size_t below(size_t n)
{
	return (size_t)(rng() % n);
}

static void reserve(struct buf *b, size_t len)
{
	if (len <= b->cap)
		return;
	b->cap = MAX(len, b->cap * 2);
	b->p = realloc(b->p, b->cap);
	if (!b->p) {
		perror("realloc");
		exit(1);
	}
}

static const uint64_t interesting[] = {
	0,	    1,		2,	    0x7f,	0x80,
	0xff,	    0x100,	0x7fff,	    0x8000,	0xffff,
	0x10000,    0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
	UINT64_MAX, INT64_MAX,	64,	    63,		4096,
	4095,	    1u << 20,	32,	    16,		26,
};

/* One mutation of b; seeds are the other inputs to splice from. */
static void mutate(struct buf *b, const struct buf *seeds, size_t nseeds,
		   size_t max_len)
{
	size_t pos, n;

	switch (below(9)) {
	case 0: /* flip a bit */
		if (b->len)
			b->p[below(b->len)] ^= (uint8_t)(1u << below(8));
		break;
	case 1: /* set a byte */
		if (b->len)
			b->p[below(b->len)] =
				below(2) ? (uint8_t)rng()
					 : (uint8_t)interesting[below(
						   ARRAY_SIZE(interesting))];
		break;
	case 2: { /* set a little-endian integer, often at a field offset */
		size_t w = (size_t)1 << below(4); /* 1, 2, 4, 8 bytes */
		uint64_t v = interesting[below(ARRAY_SIZE(interesting))];

		if (below(4) == 0)
			v += (uint64_t)(int64_t)(below(5) - 2);
		if (b->len < w)
			break;
		pos = below(2) ? below(b->len - w + 1)
			       : MIN(below(16) * 4, b->len - w);
		for (size_t i = 0; i < w; i++)
			b->p[pos + i] = (uint8_t)(v >> (8 * i));
		break;
	}
	case 3: /* truncate */
		if (b->len)
			b->len = below(2) ? below(b->len) : b->len - 1;
		break;
	case 4: /* extend with random bytes or zeros */
		n = 1 + below(below(2) ? 8 : 256);
		if (b->len + n > max_len)
			break;
		reserve(b, b->len + n);
		for (size_t i = 0; i < n; i++)
			b->p[b->len + i] = below(2) ? 0 : (uint8_t)rng();
		b->len += n;
		break;
	case 5: /* insert a copy of one of its own pieces */
		if (!b->len)
			break;
		pos = below(b->len);
		n = 1 + below(MIN(b->len - pos, (size_t)64));
		if (b->len + n > max_len)
			break;
		reserve(b, b->len + n);
		{
			size_t at = below(b->len + 1);
			uint8_t tmp[64];

			memcpy(tmp, b->p + pos, n);
			memmove(b->p + at + n, b->p + at, b->len - at);
			memcpy(b->p + at, tmp, n);
			b->len += n;
		}
		break;
	case 6: /* erase a range */
		if (!b->len)
			break;
		pos = below(b->len);
		n = 1 + below(MIN(b->len - pos, (size_t)64));
		memmove(b->p + pos, b->p + pos + n, b->len - pos - n);
		b->len -= n;
		break;
	case 7: { /* splice: a piece of another seed over this one */
		const struct buf *s = &seeds[below(nseeds)];

		if (!s->len || !b->len)
			break;
		pos = below(s->len);
		n = 1 + below(s->len - pos);
		{
			size_t at = below(b->len);

			if (at + n > max_len)
				n = max_len - at;
			reserve(b, at + n);
			memcpy(b->p + at, s->p + pos, n);
			b->len = MAX(b->len, at + n);
		}
		break;
	}
	case 8: /* splice: this one's head and another's tail */
	{
		const struct buf *s = &seeds[below(nseeds)];
		size_t head = b->len ? below(b->len + 1) : 0;
		size_t from = s->len ? below(s->len + 1) : 0;

		n = MIN(s->len - from, max_len - head);
		reserve(b, head + n);
		memcpy(b->p + head, s->p + from, n);
		b->len = head + n;
		break;
	}
	}
}

static int write_seeds(const char *dir, const struct buf *seeds, size_t nseeds)
{
	char path[4096];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	for (size_t i = 0; i < nseeds; i++) {
		FILE *fp;

		snprintf(path, sizeof path, "%s/seed-%zu", dir, i);
		fp = fopen(path, "wb");
		if (!fp ||
		    fwrite(seeds[i].p, 1, seeds[i].len, fp) != seeds[i].len ||
		    fclose(fp) != 0) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct buf seeds[MAX_SEEDS], w = { 0 };
	size_t nseeds = 0, max_len = 0;
	unsigned long iters = 20000, i;
	int r;

	for (nseeds = 0; nseeds < MAX_SEEDS; nseeds++) {
		uint8_t *p;
		size_t len = fuzz_seed((unsigned int)nseeds, &p);

		if (!p)
			break;
		seeds[nseeds] = (struct buf){ p, len, len };
		max_len = MAX(max_len, len);
	}
	if (!nseeds) {
		fprintf(stderr, "%s: the target has no seeds\n", argv[0]);
		return 1;
	}

	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2], seeds, nseeds);
	if (argc > 1)
		iters = strtoul(argv[1], NULL, 0);
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
	max_len = max_len * 2 + 4096;

	/* The seeds themselves must be valid: a decoder that rejects
	 * everything would otherwise pass. */
	for (size_t s = 0; s < nseeds; s++) {
		r = fuzz_seed_check(seeds[s].p, seeds[s].len);
		if (r != 0) {
			fprintf(stderr,
				"%s: seed %zu (%zu bytes) is rejected: %s\n",
				argv[0], s, seeds[s].len, strerror(-r));
			return 1;
		}
		LLVMFuzzerTestOneInput(seeds[s].p, seeds[s].len);
	}

	for (i = 0; i < iters; i++) {
		const struct buf *s = &seeds[below(nseeds)];
		unsigned int nmut = 1 + (unsigned int)below(below(4) ? 3 : 12);
		uint8_t *exact;

		reserve(&w, s->len);
		memcpy(w.p, s->p, s->len);
		w.len = s->len;
		for (unsigned int m = 0; m < nmut; m++)
			mutate(&w, seeds, nseeds, max_len);

		/* An exact-size copy so overreads hit the redzone. */
		exact = malloc(w.len ? w.len : 1);
		if (!exact) {
			perror("malloc");
			return 1;
		}
		memcpy(exact, w.p, w.len);
		LLVMFuzzerTestOneInput(exact, w.len);
		free(exact);
	}

	printf("%s: %zu seeds valid, %lu mutated inputs run\n", argv[0], nseeds,
	       iters);
	fuzz_report(stdout);
	for (size_t s = 0; s < nseeds; s++)
		free(seeds[s].p);
	free(w.p);
	return 0;
}
