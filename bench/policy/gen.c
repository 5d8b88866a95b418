/* gen.c - synthetic block traces for bench/policy/replay.
 *
 * Writes a trace in the format of the engine's trace=FILE parameter,
 * one request per line:
 *     <microseconds since start> <R|W|T|Z|F> <offset> <length>
 * preceded by one comment line that replay reads for the geometry:
 *     # tierbd-trace size=<bytes> chunk=<bytes> populated=1 name=<name>
 * (populated: every chunk holds data from the start, as on a device in
 * use: a read of any chunk is a hit or a fetch, never zeros for free).
 *
 *   gen zipf [--alpha A] [--scan-every K] ...
 *       4 KiB reads at random 4 KiB-aligned offsets inside a chunk drawn
 *       from Zipf(alpha) over the device's chunks; ranks are a random
 *       permutation of the chunks, so hot chunks are scattered.  With
 *       --scan-every K, after every K random reads a one-pass sequential
 *       read of the whole device in 128 KiB requests (a backup, grep -r)
 *       starts and runs beside the random reads, one scan request after
 *       each random one (--scan-ratio), until it reaches the end.
 *   gen fs ...
 *       A filesystem-like mix on ext4's layout: block groups of 128
 *       MiB, each starting with a metadata chunk (bitmaps, inode table;
 *       group 0 also the superblock, descriptors, root directories), in
 *       all ~1.2% of the device, read and written in 4 KiB blocks with
 *       a skewed popularity; a working set of files (64 KiB..16 MiB,
 *       ~12% of the device, Zipf 0.9 popularity) read whole or in a few
 *       random pieces, with a metadata access per file operation; large
 *       files (32..256 MiB) each read once sequentially by a stream
 *       running beside the rest; and new files written sequentially
 *       into a log area.
 *
 * Common options: --chunks N (4096), --chunk-size BYTES (1 MiB),
 * --requests N (random reads for zipf, file operations for fs),
 * --rate REQ_PER_S (1000: timestamps), --seed S, --name NAME.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((uint64_t)1024)
#define MiB ((uint64_t)1024 * 1024)

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rnd01(void) /* [0, 1) */
{
	return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		perror("gen: calloc");
		exit(1);
	}
	return p;
}

/* ---- Zipf sampler: CDF table, binary search ------------------------- */

struct zipf {
	uint64_t n;
	double *cdf;
};

static void zipf_init(struct zipf *z, uint64_t n, double alpha)
{
	double sum = 0;

	z->n = n;
	z->cdf = xcalloc(n, sizeof(double));
	for (uint64_t i = 0; i < n; i++) {
		sum += 1.0 / pow((double)(i + 1), alpha);
		z->cdf[i] = sum;
	}
	for (uint64_t i = 0; i < n; i++)
		z->cdf[i] /= sum;
}

static uint64_t zipf_draw(const struct zipf *z) /* rank 0 = hottest */
{
	double u = rnd01();
	uint64_t lo = 0, hi = z->n - 1;

	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t *permutation(uint64_t n)
{
	uint64_t *p = xcalloc(n, sizeof(*p));

	for (uint64_t i = 0; i < n; i++)
		p[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = rnd_below(i + 1), t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return p;
}

/* ---- output --------------------------------------------------------- */

static struct {
	uint64_t chunks, chunk_size, requests, rate, scan_every;
	double alpha, scan_ratio;
	const char *name;
} opt = {
	.chunks = 4096,
	.chunk_size = MiB,
	.requests = 1000000,
	.rate = 1000,
	.alpha = 1.0,
	.scan_ratio = 1.0,
};

static uint64_t nreq;

static void emit(char op, uint64_t off, uint64_t len)
{
	uint64_t us = nreq++ * 1000000 / opt.rate;

	printf("%" PRIu64 " %c %" PRIu64 " %" PRIu64 "\n", us, op, off, len);
}

/* Sequential read of [off, off+len) in requests of at most `req`. */
static void emit_seq(char op, uint64_t off, uint64_t len, uint64_t req)
{
	while (len) {
		uint64_t n = len < req ? len : req;
		emit(op, off, n);
		off += n;
		len -= n;
	}
}

/* ---- zipf ----------------------------------------------------------- */

static void gen_zipf(void)
{
	struct zipf z;
	uint64_t *chunk_of_rank = permutation(opt.chunks);
	uint64_t size = opt.chunks * opt.chunk_size;
	uint64_t blocks = opt.chunk_size / (4 * KiB);
	uint64_t scan_pos = 0;
	bool scanning = false;
	double scan_credit = 0;

	zipf_init(&z, opt.chunks, opt.alpha);
	for (uint64_t i = 0; i < opt.requests; i++) {
		uint64_t c = chunk_of_rank[zipf_draw(&z)];

		emit('R', c * opt.chunk_size + rnd_below(blocks) * 4 * KiB,
		     4 * KiB);
		if (opt.scan_every && (i + 1) % opt.scan_every == 0 &&
		    !scanning) {
			scanning = true;
			scan_pos = 0;
		}
		if (!scanning)
			continue;
		for (scan_credit += opt.scan_ratio; scan_credit >= 1;
		     scan_credit -= 1) {
			emit('R', scan_pos, 128 * KiB);
			scan_pos += 128 * KiB;
			if (scan_pos >= size) {
				scanning = false;
				scan_credit = 0;
				break;
			}
		}
	}
	free(z.cdf);
	free(chunk_of_rank);
}

/* ---- fs ------------------------------------------------------------- */

struct file {
	uint64_t off, len;
};

/* A read-once stream over a large file, advanced beside other work. */
struct stream {
	uint64_t pos, end;
};

static uint64_t log_uniform(uint64_t lo, uint64_t hi)
{
	double l = log((double)lo), h = log((double)hi);
	uint64_t v = (uint64_t)exp(l + (h - l) * rnd01());

	return v & ~(4 * KiB - 1) ? v & ~(4 * KiB - 1) : 4 * KiB;
}

static void gen_fs(void)
{
	const uint64_t group = 128 * MiB;
	uint64_t size = opt.chunks * opt.chunk_size;
	uint64_t ngroups = size / group ? size / group : 1;
	uint64_t nmeta = 0, *meta;
	uint64_t meta_perm_n;
	struct zipf zmeta, zfile;
	struct file *files;
	uint64_t nfiles = 0, ws_bytes = 0, ws_target = size * 12 / 100;
	/* Data layout, from the end of the device down: log area for new
	 * files (4%), the working set (12%), then read-once large files in
	 * the rest.  Metadata chunks are skipped by every allocator. */
	uint64_t log_lo, log_hi, log_pos, ws_pos, big_lo, big_hi, big_pos;
	struct stream st = { 0, 0 };
	uint64_t *meta_rank;

	if (opt.chunk_size > group) {
		fprintf(stderr, "gen fs: chunk size above 128 MiB\n");
		exit(2);
	}
	/* Metadata: the first chunk of each group, 16 in group 0. */
	meta = xcalloc(ngroups + 16, sizeof(*meta));
	for (uint64_t g = 0; g < ngroups; g++) {
		uint64_t n = g == 0 ? 16 : 1;
		for (uint64_t k = 0; k < n && k * opt.chunk_size < group; k++)
			meta[nmeta++] = g * group + k * opt.chunk_size;
	}
	meta_perm_n = nmeta;
	meta_rank = permutation(meta_perm_n);
	zipf_init(&zmeta, nmeta, 1.0);

	/* Allocate working-set files contiguously from ws_pos, avoiding
	 * metadata chunks (a file never spans a group start). */
	log_hi = size;
	log_lo = size - size * 4 / 100;
	ws_pos = big_hi = log_lo - ws_target - 64 * MiB;
	big_lo = 16 * opt.chunk_size;
	files = xcalloc(65536, sizeof(*files));
	while (ws_bytes < ws_target && nfiles < 65536) {
		uint64_t len = log_uniform(64 * KiB, 16 * MiB);
		uint64_t gstart = ws_pos / group * group;
		if (ws_pos < gstart + opt.chunk_size)
			ws_pos = gstart + opt.chunk_size;
		if (ws_pos + len > gstart + group)
			ws_pos = gstart + group + opt.chunk_size;
		if (ws_pos + len > log_lo)
			break;
		files[nfiles].off = ws_pos;
		files[nfiles].len = len;
		nfiles++;
		ws_bytes += len;
		ws_pos += len;
	}
	/* Shuffle popularity over files. */
	{
		uint64_t *perm = permutation(nfiles);
		struct file *f2 = xcalloc(nfiles, sizeof(*f2));
		for (uint64_t i = 0; i < nfiles; i++)
			f2[i] = files[perm[i]];
		free(files);
		free(perm);
		files = f2;
	}
	zipf_init(&zfile, nfiles, 0.9);
	log_pos = log_lo;
	big_pos = big_lo;
	fprintf(stderr,
		"gen fs: %" PRIu64 " metadata chunks, %" PRIu64
		" working files (%" PRIu64 " MiB), read-once area %" PRIu64
		" MiB\n",
		nmeta, nfiles, ws_bytes / MiB, (big_hi - big_lo) / MiB);

	for (uint64_t i = 0; i < opt.requests; i++) {
		double u = rnd01();
		uint64_t m = meta[meta_rank[zipf_draw(&zmeta)]] +
			     rnd_below(opt.chunk_size / (4 * KiB)) * 4 * KiB;

		/* The read-once stream: 1 MiB per operation. */
		if (st.pos >= st.end) {
			uint64_t len = log_uniform(32 * MiB, 256 * MiB);
			if (big_pos + len > big_hi)
				big_pos = big_lo;
			st.pos = big_pos;
			st.end = big_pos + len;
			big_pos += len;
		}
		for (int k = 0; k < 8 && st.pos < st.end; k++) {
			uint64_t n = st.end - st.pos < 128 * KiB
					     ? st.end - st.pos
					     : 128 * KiB;
			/* Skip metadata chunks at group starts. */
			if (st.pos % group < (st.pos / group == 0
						      ? 16 * opt.chunk_size
						      : opt.chunk_size)) {
				st.pos = st.pos / group * group +
					 (st.pos / group == 0 ? 16 : 1) *
						 opt.chunk_size;
				continue;
			}
			emit('R', st.pos, n);
			st.pos += n;
		}

		if (u < 0.45) {
			/* Metadata: lookups, inode updates. */
			emit(rnd01() < 0.7 ? 'R' : 'W', m, 4 * KiB);
			if (rnd01() < 0.5)
				emit('R',
				     meta[meta_rank[zipf_draw(&zmeta)]] +
					     rnd_below(opt.chunk_size /
						       (4 * KiB)) *
						     4 * KiB,
				     4 * KiB);
		} else if (u < 0.95) {
			/* A working file: inode read, then the data. */
			const struct file *f = &files[zipf_draw(&zfile)];
			emit('R', m, 4 * KiB);
			if (rnd01() < 0.7) {
				emit_seq('R', f->off, f->len, 128 * KiB);
			} else {
				int n = 1 + (int)rnd_below(4);
				for (int k = 0; k < n; k++) {
					uint64_t len = 4 * KiB << rnd_below(5);
					if (len > f->len)
						len = f->len;
					uint64_t o =
						rnd_below((f->len - len) /
								  (4 * KiB) +
							  1) *
						4 * KiB;
					emit(rnd01() < 0.8 ? 'R' : 'W',
					     f->off + o, len);
				}
			}
		} else {
			/* A new file in the log area, then its inode. */
			uint64_t len = log_uniform(256 * KiB, 4 * MiB);
			if (log_pos + len > log_hi)
				log_pos = log_lo;
			emit_seq('W', log_pos, len, 128 * KiB);
			log_pos += len;
			emit('W', m, 4 * KiB);
		}
		if (rnd01() < 0.01)
			emit('F', 0, 0);
	}
	free(zmeta.cdf);
	free(zfile.cdf);
	free(meta);
	free(meta_rank);
	free(files);
}

/* ---- main ----------------------------------------------------------- */

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s) {
		fprintf(stderr, "gen: bad %s: %s\n", what, s);
		exit(2);
	}
	switch (*end) {
	case 'K':
		v *= KiB;
		break;
	case 'M':
		v *= MiB;
		break;
	case 'G':
		v *= 1024 * MiB;
		break;
	case 0:
		break;
	default:
		fprintf(stderr, "gen: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: gen zipf|fs [--chunks N] [--chunk-size BYTES] "
		"[--requests N]\n"
		"           [--rate REQ/S] [--seed S] [--name NAME]\n"
		"           [--alpha A] [--scan-every K] [--scan-ratio R]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunks", required_argument, NULL, 'n' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "requests", required_argument, NULL, 'r' },
		{ "rate", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'N' },
		{ "alpha", required_argument, NULL, 'a' },
		{ "scan-every", required_argument, NULL, 'k' },
		{ "scan-ratio", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kind;
	int ch;

	rng_state = 42;
	if (argc < 2)
		usage();
	kind = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			opt.chunks = parse_u64(optarg, "--chunks");
			break;
		case 'c':
			opt.chunk_size = parse_u64(optarg, "--chunk-size");
			break;
		case 'r':
			opt.requests = parse_u64(optarg, "--requests");
			break;
		case 't':
			opt.rate = parse_u64(optarg, "--rate");
			break;
		case 's':
			rng_state = parse_u64(optarg, "--seed");
			break;
		case 'N':
			opt.name = optarg;
			break;
		case 'a':
			opt.alpha = atof(optarg);
			break;
		case 'k':
			opt.scan_every = parse_u64(optarg, "--scan-every");
			break;
		case 'R':
			opt.scan_ratio = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !opt.chunks || !opt.rate ||
	    opt.chunk_size < 64 * KiB ||
	    (opt.chunk_size & (opt.chunk_size - 1)) || opt.scan_ratio <= 0)
		usage();
	printf("# tierbd-trace size=%" PRIu64 " chunk=%" PRIu64
	       " populated=1 name=%s\n",
	       opt.chunks * opt.chunk_size, opt.chunk_size,
	       opt.name ? opt.name : kind);
	if (!strcmp(kind, "zipf"))
		gen_zipf();
	else if (!strcmp(kind, "fs"))
		gen_fs();
	else
		usage();
	if (fflush(stdout) || ferror(stdout)) {
		perror("gen: write");
		return 1;
	}
	return 0;
}
