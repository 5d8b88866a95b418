/* test-cache.c - the slot file and its allocator (server/cache.c).
 *
 * Checks: slots are handed out once each and -ENOSPC when none is
 * free; claims at open time; freed slots are reused; aligned, unaligned and read-modify-write
 * I/O land on the right bytes, with and without O_DIRECT; zeroing a
 * slot; a full disk at creation is an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cache.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHUNK 65536u
#define NSLOTS 8

static struct cache *open_cache(const char *dir, bool direct)
{
	char path[512];
	struct cache_conf conf = { .nslots = NSLOTS,
				   .chunk_size = CHUNK,
				   .direct_io = direct,
				   .create = true };

	snprintf(path, sizeof(path), "%s/slots-%d", dir, direct);
	conf.path = path;
	return cache_open(&conf);
}

static void test_alloc(struct cache *c)
{
	uint32_t s, seen = 0;

	for (unsigned i = 0; i < NSLOTS; i++) {
		CHECK(cache_alloc(c, 100 + i, &s) == 0);
		CHECK(s < NSLOTS);
		CHECK(!(seen & (1u << s)));
		seen |= 1u << s;
		CHECK(cache_owner(c, s) == 100 + i);
	}
	CHECK(cache_alloc(c, 999, &s) == -ENOSPC);

	/* The only free slot is the next one allocated. */
	cache_free(c, 3);
	CHECK(cache_owner(c, 3) == OWNER_NONE);
	CHECK(cache_free_slots(c) == 1);
	CHECK(cache_alloc(c, 7, &s) == 0 && s == 3);
	CHECK(cache_free_slots(c) == 0);

	for (unsigned i = 0; i < NSLOTS; i++)
		cache_free(c, i);
	struct cache_stats st;
	cache_get_stats(c, &st);
	CHECK(st.free_slots == NSLOTS);

	/* Claims (map load) take specific slots out of the free list. */
	CHECK(cache_claim(c, 5, 55) == 0);
	CHECK(cache_claim(c, 5, 56) == -EBUSY);
	CHECK(cache_claim(c, NSLOTS, 1) == -ERANGE);
	for (unsigned i = 0; i < NSLOTS - 1; i++) {
		CHECK(cache_alloc(c, i, &s) == 0);
		CHECK(s != 5);
	}
	CHECK(cache_alloc(c, 0, &s) == -ENOSPC);
	for (unsigned i = 0; i < NSLOTS; i++)
		cache_free(c, i);
}

/* Free slots go oldest first; victim records: reclaimed once, only
 * with their tag, gone when the slot is handed out or claimed, when
 * forgotten, and when a newer record takes their hint entry. */
static void test_victims(struct cache *c)
{
	uint32_t s;

	for (unsigned i = 0; i < NSLOTS; i++) /* test_alloc freed 0..7 */
		CHECK(cache_alloc(c, 10 + i, &s) == 0 && s == i);
	cache_free_victim(c, 2, 12, 1000);
	cache_free_victim(c, 5, 15, 1001);
	cache_free(c, 6);
	CHECK(cache_reclaim(c, 12, 999, &s) == -ENOENT); /* drops it */
	CHECK(cache_reclaim(c, 12, 1000, &s) == -ENOENT);
	CHECK(cache_reclaim(c, 15, 1001, &s) == 0 && s == 5);
	CHECK(cache_owner(c, 5) == 15 && cache_free_slots(c) == 2);
	CHECK(cache_reclaim(c, 15, 1001, &s) == -ENOENT);

	cache_free_victim(c, 5, 15, 1002);
	cache_free_victim(c, 7, 17, 1003);
	CHECK(cache_alloc(c, 40, &s) == 0 && s == 2); /* freed first */
	CHECK(cache_alloc(c, 41, &s) == 0 && s == 6);
	CHECK(cache_alloc(c, 42, &s) == 0 && s == 5);
	CHECK(cache_reclaim(c, 15, 1002, &s) == -ENOENT); /* handed out */
	cache_forget(c, 17);
	CHECK(cache_reclaim(c, 17, 1003, &s) == -ENOENT);
	CHECK(cache_free_slots(c) == 1);
	CHECK(cache_alloc(c, 43, &s) == 0 && s == 7);

	/* Owner 17 + NSLOTS shares owner 17's hint entry. */
	cache_free_victim(c, 7, 17, 2000);
	cache_free_victim(c, 3, 17 + NSLOTS, 2001);
	CHECK(cache_reclaim(c, 17, 2000, &s) == -ENOENT);
	CHECK(cache_reclaim(c, 17 + NSLOTS, 2001, &s) == 0 && s == 3);
	cache_free_victim(c, 3, 13, 3000);
	CHECK(cache_claim(c, 3, 99) == 0);
	CHECK(cache_reclaim(c, 13, 3000, &s) == -ENOENT);

	for (unsigned i = 0; i < NSLOTS; i++)
		if (cache_owner(c, i) != OWNER_NONE)
			cache_free(c, i);
	CHECK(cache_free_slots(c) == NSLOTS);
}

static void test_io(struct cache *c)
{
	char *pat = malloc(CHUNK), *got = malloc(CHUNK + 1);

	for (unsigned i = 0; i < CHUNK; i++)
		pat[i] = (char)(i * 7 + 3);
	/* Aligned write from an unaligned buffer, then read back. */
	CHECK(cache_write(c, 2, pat, CHUNK, 0) == 0);
	CHECK(cache_read(c, 2, got + 1, CHUNK, 0) == 0);
	CHECK(memcmp(got + 1, pat, CHUNK) == 0);

	/* Unaligned writes inside one block, across blocks, at the end. */
	static const struct {
		uint32_t off, len;
	} w[] = { { 5, 10 },	 { 4090, 20 },	   { 8192, 4096 },
		  { 100, 9000 }, { CHUNK - 3, 3 }, { 0, 1 } };
	for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		char buf[9000];
		memset(buf, 'a' + (int)i, w[i].len);
		memset(pat + w[i].off, 'a' + (int)i, w[i].len);
		CHECK(cache_write(c, 2, buf, w[i].len, w[i].off) == 0);
	}
	CHECK(cache_read(c, 2, got, CHUNK, 0) == 0);
	CHECK(memcmp(got, pat, CHUNK) == 0);
	/* Unaligned reads. */
	CHECK(cache_read(c, 2, got, 77, 4093) == 0);
	CHECK(memcmp(got, pat + 4093, 77) == 0);
	/* Neighbour slots untouched. */
	CHECK(cache_write(c, 3, pat, CHUNK, 0) == 0);
	CHECK(cache_zero_slot(c, 2) == 0);
	CHECK(cache_read(c, 2, got, CHUNK, 0) == 0);
	for (unsigned i = 0; i < CHUNK; i++)
		CHECK(got[i] == 0);
	CHECK(cache_read(c, 3, got, CHUNK, 0) == 0);
	CHECK(memcmp(got, pat, CHUNK) == 0);
	CHECK(cache_sync(c) == 0);
	free(pat);
	free(got);
}

int main(void)
{
	char dir[] = "/tmp/test-cache.XXXXXX";
	struct cache *c;
	struct cache_stats st;

	CHECK(mkdtemp(dir));
	for (int direct = 0; direct <= 1; direct++) {
		c = open_cache(dir, direct);
		CHECK(c);
		test_alloc(c);
		test_victims(c);
		test_io(c);
		cache_get_stats(c, &st);
		if (direct && st.direct_io)
			CHECK(st.rmw >= 5 && st.bounces > 0);
		cache_close(c);
	}

	/* Far more than any disk: refused at creation. */
	char path[512];
	snprintf(path, sizeof(path), "%s/huge", dir);
	struct cache_conf big = { .path = path,
				  .nslots = UINT64_C(1) << 40,
				  .chunk_size = CHUNK,
				  .create = true };
	errno = 0;
	CHECK(cache_open(&big) == NULL);
	CHECK(errno != 0);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	printf("test-cache: ok\n");
	return 0;
}
