/* mmap-pattern - write and verify a pattern through a shared mapping.
 *
 *   mmap-pattern write FILE SEED OFFSET LENGTH
 *	maps FILE (a block device or a regular file) MAP_SHARED, writes
 *	the pattern of SEED over [OFFSET, OFFSET+LENGTH) through memory,
 *	msync(MS_SYNC)s, munmaps and closes; any error exits 1.
 *   mmap-pattern verify FILE SEG...
 *	maps FILE read-only (MAP_SHARED) and checks every byte: SEG is
 *	SEED:OFFSET:LENGTH, applied in order (a later one overwrites an
 *	earlier one); bytes in no segment must be zero.  Exits 1 on the
 *	first wrong 4 KiB block, saying what it holds (another seed's
 *	pattern, zeros, or neither).
 *
 * The pattern is a function of the byte's offset in FILE and the seed,
 * so a block written at the wrong place, or a stale one, is recognised.
 * Numbers are bytes, decimal or 0x hex.  tests/test-mmap.sh drives it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAXSEG 16

struct seg {
	uint64_t seed, off, len;
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The pattern byte at file offset o for seed s (never all zero over a
 * word, so a zeroed block never passes for a pattern). */
static inline uint8_t pat(uint64_t s, uint64_t o)
{
	uint64_t w =
		mix(s * 0x100000001b3ull ^ (o >> 3)) | 0x0101010101010101ull;
	return (uint8_t)(w >> ((o & 7) * 8));
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "mmap-pattern: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

static uint64_t file_size(int fd, const char *path)
{
	struct stat st;
	uint64_t sz;

	if (fstat(fd, &st) < 0) {
		perror(path);
		exit(1);
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			perror("BLKGETSIZE64");
			exit(1);
		}
		return sz;
	}
	return (uint64_t)st.st_size;
}

static int do_write(const char *path, uint64_t seed, uint64_t off, uint64_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	uint64_t size = file_size(fd, path);
	if (off + len > size || len == 0) {
		fprintf(stderr,
			"mmap-pattern: [%" PRIu64 ", +%" PRIu64
			") is not inside %s (%" PRIu64 " bytes)\n",
			off, len, path, size);
		return 1;
	}
	uint64_t moff = off & ~(uint64_t)(pg - 1);
	size_t mlen = (size_t)(off + len - moff);
	double t0 = now();
	uint8_t *m = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			  (off_t)moff);
	if (m == MAP_FAILED) {
		fprintf(stderr, "mmap-pattern: mmap MAP_SHARED %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	for (uint64_t o = off; o < off + len; o++)
		m[o - moff] = pat(seed, o);
	double t1 = now();
	if (msync(m, mlen, MS_SYNC) < 0) {
		fprintf(stderr, "mmap-pattern: msync %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	double t2 = now();
	if (munmap(m, mlen) < 0 || close(fd) < 0) {
		perror("munmap/close");
		return 1;
	}
	printf("wrote seed %" PRIu64 " over [%" PRIu64 ", %" PRIu64
	       ") of %s through a shared mapping: stores %.2f s, msync %.2f "
	       "s\n",
	       seed, off, off + len, path, t1 - t0, t2 - t1);
	return 0;
}

/* What the bytes at p (file offset o, up to n) hold instead: a seed's
 * pattern, zeros, or something else. */
static void describe(const uint8_t *p, uint64_t o, size_t n,
		     const struct seg *segs, int nseg)
{
	size_t i;
	int k;

	if (n > 64)
		n = 64; /* the first bytes tell */
	for (i = 0; i < n && !p[i]; i++)
		;
	if (i == n) {
		fprintf(stderr, "  from there it holds zeros\n");
		return;
	}
	for (k = 0; k < nseg; k++) {
		for (i = 0; i < n && p[i] == pat(segs[k].seed, o + i); i++)
			;
		if (i == n) {
			fprintf(stderr,
				"  from there it holds the pattern of seed "
				"%" PRIu64 " (another write)\n",
				segs[k].seed);
			return;
		}
	}
	fprintf(stderr,
		"  from there it holds neither zeros nor a known pattern:");
	for (i = 0; i < 16 && i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, " ...\n");
}

static int do_verify(const char *path, struct seg *segs, int nseg)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	uint64_t size = file_size(fd, path);
	double t0 = now();
	const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "mmap-pattern: mmap %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	uint64_t bad = 0, first = UINT64_MAX;
	for (uint64_t b = 0; b < size; b += BLOCK) {
		uint64_t end = b + BLOCK < size ? b + BLOCK : size;
		for (uint64_t o = b; o < end; o++) {
			int k, which = -1;
			for (k = nseg - 1; k >= 0; k--)
				if (o >= segs[k].off &&
				    o < segs[k].off + segs[k].len) {
					which = k;
					break;
				}
			uint8_t want = which < 0 ? 0 : pat(segs[which].seed, o);
			if (m[o] != want) {
				if (bad < 8) {
					fprintf(stderr,
						"mmap-pattern: %s: byte "
						"%" PRIu64 " (block %" PRIu64
						", MiB %" PRIu64
						") is %02x, expected %02x "
						"(%s)\n",
						path, o, o / BLOCK, o >> 20,
						m[o], want,
						which < 0
							? "zero: never written"
							: "pattern");
					describe(m + o, o, (size_t)(end - o),
						 segs, nseg);
				}
				if (first == UINT64_MAX)
					first = o;
				bad++;
				break; /* one report per block */
			}
		}
	}
	munmap((void *)m, size);
	close(fd);
	if (bad) {
		fprintf(stderr,
			"mmap-pattern: %s: %" PRIu64
			" wrong 4 KiB blocks, the first at byte %" PRIu64 "\n",
			path, bad, first);
		return 1;
	}
	printf("verified every byte of %s (%" PRIu64 " bytes, %d segments) "
	       "through a shared mapping in %.2f s\n",
	       path, size, nseg, now() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "write") == 0)
		return do_write(argv[2], num(argv[3]), num(argv[4]),
				num(argv[5]));
	if (argc >= 3 && argc - 3 <= MAXSEG && strcmp(argv[1], "verify") == 0) {
		struct seg segs[MAXSEG];
		int i;
		for (i = 3; i < argc; i++) {
			char *a = strdup(argv[i]), *p1, *p2;
			if (!a || !(p1 = strchr(a, ':')) ||
			    !(p2 = strchr(p1 + 1, ':'))) {
				fprintf(stderr,
					"mmap-pattern: bad segment %s "
					"(SEED:OFFSET:LENGTH)\n",
					argv[i]);
				return 2;
			}
			*p1++ = 0;
			*p2++ = 0;
			segs[i - 3] = (struct seg){ num(a), num(p1), num(p2) };
			free(a);
		}
		return do_verify(argv[2], segs, argc - 3);
	}
	fprintf(stderr,
		"usage: mmap-pattern write FILE SEED OFFSET LENGTH\n"
		"       mmap-pattern verify FILE [SEED:OFFSET:LENGTH]...\n");
	return 2;
}
