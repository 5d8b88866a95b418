/* test-device.c - the engine without nbdkit: map, states, recovery.
 *
 * Runs the device API against a `dir` store in a temporary directory:
 * create/reopen and parameter checks, a threaded random workload over a
 * device 16x its cache checked against a model, single-flight fetches,
 * trim and extents, a corrupt store object (EIO, never wrong bytes),
 * recovery after a child process dies without closing (as kill -9),
 * and the cache-directory lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/device.h"
#include "server/device_priv.h" /* ents[]: whether a chunk is resident */

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHUNK (64u * 1024)
#define NCHUNKS 64
#define SIZE ((uint64_t)NCHUNKS * CHUNK)

static char top[64], cache_dir[128], store_spec[160];
static unsigned char *model;

static void quiet(void *o, enum log_level l, const char *fmt, va_list ap)
{
	if (getenv("VERBOSE") || l == LOG_ERROR) {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

static struct device_conf conf_new(void)
{
	struct device_conf c;

	device_conf_init(&c);
	c.log.fn = quiet;
	c.cache_dir = cache_dir;
	c.size = SIZE;
	c.chunk_size = CHUNK;
	c.cache_size = 4 * CHUNK;
	c.store.spec = store_spec;
	c.writeback_delay_ms = 0;
	return c;
}

static struct device *reopen_ra(bool readahead)
{
	struct device_conf c;
	struct device *d;

	device_conf_init(&c);
	c.log.fn = quiet;
	c.cache_dir = cache_dir;
	c.writeback_delay_ms = 0;
	/* Background pulls would blur the fetch counts some tests check. */
	c.readahead_off = !readahead;
	c.prefetch_none = !readahead;
	d = device_open(&c);
	CHECK(d);
	CHECK(device_start(d) == 0);
	return d;
}

static struct device *reopen(void)
{
	return reopen_ra(false);
}

static void check_all(struct device *d)
{
	unsigned char *buf = malloc(SIZE);

	CHECK(device_read(d, buf, (uint32_t)SIZE, 0) == 0);
	CHECK(memcmp(buf, model, SIZE) == 0);
	free(buf);
}

static void test_params(void)
{
	struct device_conf c;
	struct stat st;

	c = conf_new();
	c.size = 0;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.cache_size = CHUNK / 2;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.chunk_size = 3 * 65536;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.chunk_size = 32768;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.store.spec = "ftp://x";
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	/* None of that created anything. */
	CHECK(stat(cache_dir, &st) < 0 && errno == ENOENT);
}

static void test_create_reopen(void)
{
	struct device_conf c = conf_new();
	struct device *d = device_open(&c), *d2;

	CHECK(d);
	CHECK(device_start(d) == 0);
	CHECK(device_size(d) == SIZE);
	/* A second opener of the same cache directory is refused. */
	CHECK(device_open(&c) == NULL && errno == EBUSY);
	memset(model, 0, SIZE);
	check_all(d);
	device_close(d);

	c.size = SIZE * 2;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.chunk_size = CHUNK * 2;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.cache_size = 2 * CHUNK;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	d2 = reopen();
	CHECK(device_size(d2) == SIZE);
	device_close(d2);
}

struct worker {
	struct device *d;
	unsigned seed;
	unsigned first, n; /* chunks this worker owns */
};

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[3 * CHUNK];

	for (int i = 0; i < 300; i++) {
		uint64_t lo = (uint64_t)w->first * CHUNK;
		uint64_t span = (uint64_t)w->n * CHUNK;
		uint32_t len = 1 + (uint32_t)(rand_r(&w->seed) % (2 * CHUNK));
		uint64_t off;

		if (rand_r(&w->seed) % 3 == 0)
			len = (uint32_t)(rand_r(&w->seed) % 3 + 1) * 4096;
		if (len > span)
			len = (uint32_t)span;
		off = lo + (uint64_t)rand_r(&w->seed) % (span - len + 1);
		if (rand_r(&w->seed) % 2) {
			for (uint32_t k = 0; k < len; k++)
				buf[k] = (unsigned char)rand_r(&w->seed);
			CHECK(device_write(w->d, buf, len, off, 0) == 0);
			memcpy(model + off, buf, len);
		} else {
			CHECK(device_read(w->d, buf, len, off) == 0);
			CHECK(memcmp(buf, model + off, len) == 0);
		}
		if (i % 50 == 0)
			CHECK(device_flush(w->d) == 0);
	}
	return NULL;
}

static void test_workload(void)
{
	struct device *d = reopen();
	pthread_t t[8];
	struct worker w[8];
	struct device_stats st;

	for (unsigned i = 0; i < 8; i++) {
		w[i] = (struct worker){ .d = d,
					.seed = i + 1,
					.first = i * (NCHUNKS / 8),
					.n = NCHUNKS / 8 };
		CHECK(pthread_create(&t[i], NULL, worker_fn, &w[i]) == 0);
	}
	for (unsigned i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	check_all(d);
	CHECK(device_drain(d) == 0);
	device_get_stats(d, &st);
	CHECK(st.hot_dirty == 0);
	CHECK(st.evictions > 0 && st.uploads > 0 && st.fetches > 0);
	CHECK(st.nslots == 4 && st.hot_clean <= 4);
	device_close(d);

	/* Everything comes back after a clean restart. */
	d = reopen();
	check_all(d);
	device_close(d);
}

struct reader {
	struct device *d;
	uint64_t off;
};

static void *reader_fn(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[4096];

	CHECK(device_read(r->d, buf, sizeof(buf), r->off) == 0);
	CHECK(memcmp(buf, model + r->off, sizeof(buf)) == 0);
	return NULL;
}

static void test_single_flight(void)
{
	struct device *d = reopen();
	struct device_stats a, b;
	pthread_t t[16];
	struct reader r[16];
	unsigned char buf[CHUNK];
	uint64_t target = 0;

	/* Store the last chunk, then push it out of the cache. */
	memset(buf, 0x33, CHUNK);
	memset(model + (NCHUNKS - 1) * (uint64_t)CHUNK, 0x33, CHUNK);
	CHECK(device_write(d, buf, CHUNK, (NCHUNKS - 1) * (uint64_t)CHUNK, 0) ==
	      0);
	CHECK(device_drain(d) == 0);
	/* Read other chunks until the policy has evicted it: which reads
	 * do that depends on its scan protection, not on this test. */
	for (unsigned i = 0;
	     i < 64 * 32 && __atomic_load_n(&d->ents[NCHUNKS - 1].state,
					    __ATOMIC_ACQUIRE) != CHUNK_COLD;
	     i++)
		CHECK(device_read(d, buf, CHUNK,
				  (uint64_t)((i * 7) % (NCHUNKS - 1)) *
					  CHUNK) == 0);
	CHECK(d->ents[NCHUNKS - 1].state == CHUNK_COLD);
	target = (NCHUNKS - 1) * (uint64_t)CHUNK;
	device_get_stats(d, &a);
	for (unsigned i = 0; i < 16; i++) {
		r[i] = (struct reader){ d, target + i * 4096 };
		CHECK(pthread_create(&t[i], NULL, reader_fn, &r[i]) == 0);
	}
	for (unsigned i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	device_get_stats(d, &b);
	/* One GET, or one take-back of the slot it left (reclaim). */
	CHECK((b.fetches - a.fetches) + (b.reclaims - a.reclaims) == 1);
	CHECK(b.reclaim_fails == a.reclaim_fails);
	device_close(d);
}

static int count_holes(void *opaque, uint64_t off, uint64_t len, bool hole)
{
	uint64_t *holes = opaque;

	if (hole)
		*holes += len;
	return 0;
}

static void test_trim(void)
{
	struct device *d = reopen();
	uint64_t holes = 0;
	unsigned char buf[CHUNK];

	/* Chunks 10..12 trimmed whole; chunk 9's tail trim is advisory. */
	CHECK(device_trim(d, 3 * CHUNK + 100, 10 * (uint64_t)CHUNK - 100, 0) ==
	      0);
	memset(model + 10 * (uint64_t)CHUNK, 0, 3 * CHUNK);
	CHECK(device_extents(d, 5 * CHUNK, 9 * (uint64_t)CHUNK, count_holes,
			     &holes) == 0);
	CHECK(holes == 3 * CHUNK);
	CHECK(device_read(d, buf, CHUNK, 11 * (uint64_t)CHUNK) == 0);
	for (unsigned i = 0; i < CHUNK; i++)
		CHECK(buf[i] == 0);
	/* Zero of a partial chunk really zeroes. */
	CHECK(device_zero(d, 1000, 20 * (uint64_t)CHUNK + 5, 0) == 0);
	memset(model + 20 * (uint64_t)CHUNK + 5, 0, 1000);
	check_all(d);
	device_close(d);
}

static void test_crash_recovery(void)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		struct device *d = reopen();
		unsigned char buf[CHUNK];

		for (unsigned i = 0; i < 6; i++) {
			memset(buf, 0x40 + (int)i, CHUNK);
			CHECK(device_write(d, buf, CHUNK,
					   (uint64_t)(30 + i) * CHUNK, 0) == 0);
		}
		CHECK(device_flush(d) == 0);
		_exit(0); /* no close: the map stays marked unclean */
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);
	for (unsigned i = 0; i < 6; i++)
		memset(model + (uint64_t)(30 + i) * CHUNK, 0x40 + (int)i,
		       CHUNK);
	struct device *d = reopen();
	check_all(d);
	device_close(d);
}

static int find_object(const char *dir, char *out, size_t n)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "ls -d %s/store/chunks/%012x/* | sort | tail -1", dir, 40);
	f = popen(cmd, "r");
	CHECK(f);
	if (!fgets(out, (int)n, f)) {
		pclose(f);
		return -1;
	}
	pclose(f);
	out[strcspn(out, "\n")] = 0;
	return 0;
}

static void test_corrupt_object(void)
{
	struct device *d = reopen();
	unsigned char buf[CHUNK];
	char obj[512];
	struct device_stats st;

	memset(buf, 0x5a, CHUNK);
	memset(model + 40 * (uint64_t)CHUNK, 0x5a, CHUNK);
	CHECK(device_write(d, buf, CHUNK, 40 * (uint64_t)CHUNK, 0) == 0);
	CHECK(device_drain(d) == 0);
	/* Push chunk 40 out of the 4-slot cache. */
	for (unsigned i = 0; i < 8; i++)
		CHECK(device_read(d, buf, CHUNK, (uint64_t)i * CHUNK) == 0);
	device_close(d);

	CHECK(find_object(top, obj, sizeof(obj)) == 0);
	FILE *f = fopen(obj, "r+b");
	CHECK(f);
	fseek(f, 100, SEEK_SET);
	int ch = fgetc(f);
	fseek(f, 100, SEEK_SET);
	fputc(ch ^ 0x01, f);
	fclose(f);

	d = reopen();
	CHECK(device_read(d, buf, 4096, 40 * (uint64_t)CHUNK) == -EIO);
	device_get_stats(d, &st);
	CHECK(st.checksum_errors >= 1);
	/* Other chunks still work. */
	CHECK(device_read(d, buf, 4096, 41 * (uint64_t)CHUNK) == 0);
	CHECK(memcmp(buf, model + 41 * (uint64_t)CHUNK, 4096) == 0);
	device_close(d);
}

/* ---- reclaim: a miss takes back the slot its chunk was evicted from */

static char rc_dir[160], rc_store[192];

static struct device *rc_open(bool create)
{
	struct device_conf c;
	struct device *d;

	device_conf_init(&c);
	c.log.fn = quiet;
	c.cache_dir = rc_dir;
	if (create) {
		c.size = SIZE;
		c.chunk_size = CHUNK;
		c.cache_size = 16 * CHUNK;
	}
	c.store.spec = rc_store;
	c.writeback_delay_ms = 0;
	c.readahead_off = true;
	c.prefetch_none = true;
	d = device_open(&c);
	CHECK(d);
	CHECK(device_start(d) == 0);
	return d;
}

static void rc_pattern(unsigned char *buf, uint64_t idx, unsigned seed)
{
	for (unsigned i = 0; i < CHUNK; i++)
		buf[i] = (unsigned char)(idx * 31 + seed * 7 + i / 512 + i);
}

static void rc_write(struct device *d, uint64_t idx, unsigned seed)
{
	unsigned char buf[CHUNK];

	rc_pattern(buf, idx, seed);
	CHECK(device_write(d, buf, CHUNK, idx * CHUNK, 0) == 0);
}

static void rc_check(struct device *d, uint64_t idx, unsigned seed)
{
	unsigned char buf[CHUNK], want[CHUNK];

	rc_pattern(want, idx, seed);
	CHECK(device_read(d, buf, CHUNK, idx * CHUNK) == 0);
	CHECK(memcmp(buf, want, CHUNK) == 0);
}

/* Evict chunks 0..3, clean after a drain (others may stay: the policy
 * holds back the chunks of a stream still in progress). */
static void rc_evict_all(struct device *d)
{
	CHECK(device_drain(d) == 0);
	for (int i = 0; i < 100; i++) {
		bool hot = false;

		dev_evict(d, 16);
		for (uint64_t c = 0; c < 4; c++)
			hot |= __atomic_load_n(&d->ents[c].state,
					       __ATOMIC_ACQUIRE) != CHUNK_COLD;
		if (!hot)
			return;
	}
	CHECK(!"chunks 0..3 are still cached");
}

static void test_reclaim(void)
{
	struct device *d = rc_open(true);
	struct device_stats a, b;
	unsigned char buf[CHUNK], want[CHUNK];
	uint32_t s0, s1, s2;
	uint64_t next = 20;

	for (uint64_t c = 0; c < 4; c++)
		rc_write(d, c, 1);
	CHECK(device_drain(d) == 0);
	s0 = d->ents[0].slot;
	s2 = d->ents[2].slot;
	rc_evict_all(d);
	CHECK(d->ents[0].state == CHUNK_COLD && d->ents[2].state == CHUNK_COLD);

	/* (a) The slot was not reused: no GET, the slot taken back. */
	device_get_stats(d, &a);
	rc_check(d, 0, 1);
	device_get_stats(d, &b);
	CHECK(b.fetches == a.fetches && b.reclaims == a.reclaims + 1);
	CHECK(b.misses == a.misses + 1 && b.reclaim_fails == a.reclaim_fails);
	CHECK(d->ents[0].state == CHUNK_HOT_CLEAN && d->ents[0].slot == s0);
	/* Part of a chunk, too. */
	rc_pattern(want, 1, 1);
	CHECK(device_read(d, buf, 4096, 1 * CHUNK + 8192) == 0);
	CHECK(memcmp(buf, want + 8192, 4096) == 0);
	device_get_stats(d, &a);
	CHECK(a.fetches == b.fetches && a.reclaims == b.reclaims + 1);

	/* (b) Chunk 2's slot goes to new chunks: its read fetches. */
	while (cache_owner(d->cache, s2) == OWNER_NONE) {
		CHECK(next < NCHUNKS);
		rc_write(d, next, 1);
		next += 2; /* not a sequential stream */
	}
	CHECK(cache_owner(d->cache, s2) != 2);
	device_get_stats(d, &a);
	rc_check(d, 2, 1);
	device_get_stats(d, &b);
	CHECK(b.fetches == a.fetches + 1 && b.reclaims == a.reclaims);
	CHECK(b.reclaim_fails == a.reclaim_fails);
	for (uint64_t c = 20; c < next; c += 2)
		rc_check(d, c, 1);

	/* (c) Chunk 1's free slot corrupted behind the engine's back: the
	 * hash check refuses it, the chunk is fetched.  (Chunk 1: no even
	 * chunk evicted after it takes its hint entry, cache.c.) */
	rc_evict_all(d);
	s1 = d->ents[1].slot;
	CHECK(s1 == SLOT_NONE);
	CHECK(device_read(d, buf, 4096, 1 * CHUNK) == 0); /* taken back */
	s1 = d->ents[1].slot;
	rc_evict_all(d);
	CHECK(cache_owner(d->cache, s1) == OWNER_NONE);
	{
		char path[256];
		unsigned char junk[4096];
		FILE *f;

		memset(junk, 0xee, sizeof(junk));
		snprintf(path, sizeof(path), "%s/slots", rc_dir);
		f = fopen(path, "r+b");
		CHECK(f);
		CHECK(fseek(f, (long)s1 * CHUNK + 4096, SEEK_SET) == 0);
		CHECK(fwrite(junk, sizeof(junk), 1, f) == 1);
		CHECK(fclose(f) == 0);
	}
	device_get_stats(d, &a);
	rc_check(d, 1, 1);
	device_get_stats(d, &b);
	CHECK(b.fetches == a.fetches + 1 && b.reclaims == a.reclaims);
	CHECK(b.reclaim_fails == a.reclaim_fails + 1);

	/* (d) Written after eviction: the new data, never the old slot's.
	 * Whole chunk 3; part of chunk 0 (fetch or take back, then the
	 * write); then both evicted again and read back. */
	rc_evict_all(d);
	rc_write(d, 3, 2);
	rc_check(d, 3, 2);
	rc_pattern(want, 0, 1);
	rc_pattern(buf, 0, 3);
	CHECK(device_write(d, buf, 4096, 0, 0) == 0);
	memcpy(want, buf, 4096);
	CHECK(device_read(d, buf, CHUNK, 0) == 0);
	CHECK(memcmp(buf, want, CHUNK) == 0);
	rc_evict_all(d);
	rc_check(d, 3, 2);
	CHECK(device_read(d, buf, CHUNK, 0) == 0);
	CHECK(memcmp(buf, want, CHUNK) == 0);
	/* Trimmed after eviction, then partly written: zeros around the
	 * write, not the slot it was evicted from. */
	rc_evict_all(d);
	CHECK(device_trim(d, CHUNK, 3 * CHUNK, 0) == 0);
	CHECK(device_read(d, buf, CHUNK, 3 * CHUNK) == 0);
	for (unsigned i = 0; i < CHUNK; i++)
		CHECK(buf[i] == 0);
	memset(buf, 0x99, 4096);
	CHECK(device_write(d, buf, 4096, 3 * CHUNK, 0) == 0);
	CHECK(device_read(d, buf, CHUNK, 3 * CHUNK) == 0);
	for (unsigned i = 0; i < CHUNK; i++)
		CHECK(buf[i] == (i < 4096 ? 0x99 : 0));

	/* (e) No record survives a restart: evicted, closed, reopened,
	 * read: a fetch. */
	rc_evict_all(d);
	device_close(d);
	d = rc_open(false);
	device_get_stats(d, &a);
	rc_check(d, 2, 1);
	device_get_stats(d, &b);
	CHECK(b.fetches == a.fetches + 1 && b.reclaims == 0);
	device_close(d);
}

/* A sequential reader gets the next chunks pulled ahead of it. */
static void test_readahead(void)
{
	struct device *d = reopen_ra(true);
	struct device_stats st;
	unsigned char buf[16384];

	/* Evict everything: read the first 4 chunks, then others. */
	for (uint64_t off = 0; off < 20 * (uint64_t)CHUNK; off += sizeof(buf))
		CHECK(device_read(d, buf, sizeof(buf), off) == 0);
	/* Give the pullers a moment, then read the next chunks. */
	usleep(200 * 1000);
	device_get_stats(d, &st);
	CHECK(st.prefetches > 0);
	CHECK(st.seq_streams >= 1);
	device_close(d);
}

/* writeback-early: chunks a sequential writer finished go up at once,
 * long before writeback-delay; chunks it is still in, chunks it wrote
 * before it was seen as sequential, and a random write that happens to
 * end a chunk wait for the delay.  With writeback-early=false, all
 * wait. */
static struct device *early_dev(const char *name, bool early)
{
	struct device_conf c = conf_new();
	char dir[160], spec[200];
	struct device *d;

	snprintf(dir, sizeof(dir), "%s/%s-cache", top, name);
	snprintf(spec, sizeof(spec), "dir:%s/%s-store", top, name);
	c.cache_dir = dir;
	c.store.spec = spec;
	c.cache_size = NCHUNKS * CHUNK;
	c.max_dirty = NCHUNKS * CHUNK;
	c.writeback_delay_ms = 600 * 1000;
	c.writeback_late = !early;
	c.readahead_off = true;
	d = device_open(&c);
	CHECK(d);
	CHECK(device_start(d) == 0);
	return d;
}

static void early_write(struct device *d)
{
	unsigned char buf[16384];

	for (uint64_t off = 0; off < 12 * (uint64_t)CHUNK; off += sizeof(buf)) {
		memset(buf, (int)(off / CHUNK) + 1, sizeof(buf));
		CHECK(device_write(d, buf, sizeof(buf), off, 0) == 0);
	}
	/* not sequential, though it ends chunk 40 */
	CHECK(device_write(d, buf, sizeof(buf),
			   41 * (uint64_t)CHUNK - sizeof(buf), 0) == 0);
}

static void test_early_push(void)
{
	struct device *d = early_dev("early", true);
	struct device_stats st;
	unsigned char buf[CHUNK];

	early_write(d);
	/* The stream is sequential from the write that ends chunk 3 on
	 * (POLICY_SEQ_MIN); chunk 11 is finished too. */
	for (int i = 0; i < 500; i++) {
		device_get_stats(d, &st);
		if (st.uploads >= 9)
			break;
		usleep(10 * 1000);
	}
	CHECK(st.early_pushes == 9);
	CHECK(st.uploads == 9);
	for (uint64_t i = 0; i < 12; i++)
		CHECK(d->ents[i].state ==
		      (i < 3 ? CHUNK_HOT_DIRTY : CHUNK_HOT_CLEAN));
	CHECK(d->ents[40].state == CHUNK_HOT_DIRTY);
	CHECK(device_drain(d) == 0);
	device_get_stats(d, &st);
	CHECK(st.uploads == 13);
	CHECK(device_read(d, buf, CHUNK, 7 * (uint64_t)CHUNK) == 0);
	CHECK(buf[0] == 8 && buf[CHUNK - 1] == 8);
	device_close(d);

	d = early_dev("late", false);
	early_write(d);
	usleep(300 * 1000);
	device_get_stats(d, &st);
	CHECK(st.early_pushes == 0 && st.uploads == 0);
	CHECK(device_drain(d) == 0);
	device_get_stats(d, &st);
	CHECK(st.uploads == 13);
	device_close(d);
}

/* Lose the cache directory: the store alone reopens the device. */
static void test_reopen_from_store(void)
{
	struct device *d = reopen();
	struct device_conf c;
	unsigned char buf[CHUNK];
	char cmd[256];

	/* Chunk 40 is corrupt in the store: give it new content. */
	memset(buf, 0x77, CHUNK);
	memset(model + 40 * (uint64_t)CHUNK, 0x77, CHUNK);
	CHECK(device_write(d, buf, CHUNK, 40 * (uint64_t)CHUNK, 0) == 0);
	CHECK(device_drain(d) == 0);
	device_close(d);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
	CHECK(system(cmd) == 0);

	/* A size that contradicts the device in the store is refused. */
	c = conf_new();
	c.size = SIZE / 2;
	CHECK(device_open(&c) == NULL && errno == EINVAL);
	c = conf_new();
	c.size = 0;
	c.chunk_size = 0;
	d = device_open(&c);
	CHECK(d);
	CHECK(device_start(d) == 0);
	CHECK(device_size(d) == SIZE);
	check_all(d);
	device_close(d);
}

int main(void)
{
	char cmd[128];

	snprintf(top, sizeof(top), "/tmp/test-device.XXXXXX");
	CHECK(mkdtemp(top));
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", top);
	snprintf(store_spec, sizeof(store_spec), "dir:%s/store", top);
	snprintf(rc_dir, sizeof(rc_dir), "%s/rc-cache", top);
	snprintf(rc_store, sizeof(rc_store), "dir:%s/rc-store", top);
	model = calloc(1, SIZE);
	CHECK(model);

	test_params();
	test_create_reopen();
	test_workload();
	test_single_flight();
	test_trim();
	test_crash_recovery();
	test_corrupt_object();
	test_reclaim();
	test_readahead();
	test_reopen_from_store();
	test_early_push();

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	CHECK(system(cmd) == 0);
	free(model);
	printf("test-device: ok\n");
	return 0;
}
