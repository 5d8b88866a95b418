/* test-store.c - conformance test of the store ops table (store.h).
 *
 *   test-store [OPTIONS] [SPEC]      run the conformance suite on SPEC
 *
 * SPEC is a store= string (dir:PATH, s3://BUCKET/PREFIX), else
 * $TIERBD_TEST_STORE, else a fresh temporary dir: store.  The store must
 * hold nothing under SPEC; the suite removes what it writes.  Modes:
 *
 *   --mode=conform    (default) round trips, overwrite, ENOENT, EINVAL,
 *                     head, batched delete, listing in key order across
 *                     more than 1000 keys, 8 threads at once, counters
 *   --mode=open-fail  store_open must fail within --max-open-ms, with a
 *                     message containing every --expect=TEXT
 *   --mode=smoke      open, then one put, get, head, list, del
 *   --mode=outage     --threads threads put/get/verify for --seconds;
 *                     every op must succeed (the script kills and
 *                     restarts the server meanwhile), retries are shown
 *   --mode=xml        the S3 XML reader and encoders, no server
 *   --mode=faults     the s3 store against a scripted fake server on
 *                     127.0.0.1: errno mapping, retries and give-up
 *                     times, what goes on the wire, open messages
 *
 * S3 options: --endpoint= --region= --access-key= --secret-key=
 * --credentials-file= --profile= --virtual-host --timeout-ms=
 * --retry-ms= --connections= --ca-bundle= --insecure.  No logged
 * message may contain the secret key or any --forbid=TEXT.  Exit 0 =
 * pass, 1 = fail.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/s3_int.h"
#include "backends/store.h"

#define MiB (1024 * 1024)

static struct store_conf conf;
static const char *mode = "conform";
static const char *expect[8];
static unsigned nexpect;
static const char *forbid[8];
static unsigned nforbid;
static unsigned max_open_ms = 10000;
static unsigned seconds = 10;
static unsigned nthreads = 8;
static unsigned nlist = 1100;
static bool is_s3;
static int failures;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, \
				__LINE__, #cond);                     \
			fprintf(stderr, __VA_ARGS__);                 \
			fputc('\n', stderr);                          \
			failures++;                                   \
		}                                                     \
	} while (0)

#define CHECK_R(call, want)                                                    \
	do {                                                                   \
		int _r = (call);                                               \
		CHECK(_r == (want), "%s returned %d (%s), want %d", #call, _r, \
		      strerror(-_r), (want));                                  \
	} while (0)

/* ---- the logger: captured, checked for secrets ------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[64 * 1024]; /* everything logged, truncated */
static size_t log_len;

static void test_log(void *opaque, enum log_level level, const char *fmt,
		     va_list ap)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (level == LOG_DEBUG && !getenv("TEST_STORE_DEBUG"))
		return;
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "  [%s] %s\n", names[level], msg);
	size_t n = strlen(msg);
	if (log_len + n + 2 < sizeof(log_text)) {
		memcpy(log_text + log_len, msg, n);
		log_len += n;
		log_text[log_len++] = '\n';
		log_text[log_len] = '\0';
	}
	if (conf.s3_secret_key && *conf.s3_secret_key &&
	    strstr(msg, conf.s3_secret_key)) {
		fprintf(stderr, "FAIL: a message shows the secret key\n");
		failures++;
	}
	for (unsigned i = 0; i < nforbid; i++) {
		if (strstr(msg, forbid[i])) {
			fprintf(stderr, "FAIL: a message shows \"%s\"\n",
				forbid[i]);
			failures++;
		}
	}
	pthread_mutex_unlock(&log_lock);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(xorshift(&s) >> 32);
}

/* ---- conformance ------------------------------------------------------ */

/* Returns the errors it provoked on purpose (the store counts them). */
static int roundtrip(struct store *st, const char *key, size_t len,
		     uint64_t seed)
{
	int errors = 0;
	void *buf = malloc(len ? len : 1), *got = NULL;
	size_t glen = 0;
	uint64_t size = 0;

	fill(buf, len, seed);
	CHECK_R(st->ops->put(st, key, buf, len), 0);
	CHECK_R(st->ops->get(st, key, &got, &glen), 0);
	CHECK(got && glen == len && memcmp(got, buf, len) == 0,
	      "%s: read back %zu bytes, wrote %zu", key, glen, len);
	CHECK_R(st->ops->head(st, key, &size), 0);
	CHECK(size == len, "%s: head says %" PRIu64 ", want %zu", key, size,
	      len);
	/* Into a caller's buffer: exactly the size fits, one byte less
	 * is refused without writing past it. */
	memset(got, 0, len ? len : 1);
	glen = 0;
	CHECK_R(store_get_into(st, key, got, len, &glen), 0);
	CHECK(glen == len && memcmp(got, buf, len) == 0,
	      "%s: get_into read back %zu bytes, wrote %zu", key, glen, len);
	if (len > 1) {
		CHECK_R(store_get_into(st, key, got, len - 1, &glen), -EFBIG);
		errors++;
	}
	free(got);
	free(buf);
	return errors;
}

struct listed {
	char **keys;
	uint64_t *sizes;
	size_t n, cap;
	size_t stop_after; /* 0: never stop */
};

static int collect(void *opaque, const char *key, uint64_t size)
{
	struct listed *l = opaque;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->keys = realloc(l->keys, l->cap * sizeof(*l->keys));
		l->sizes = realloc(l->sizes, l->cap * sizeof(*l->sizes));
		assert(l->keys && l->sizes);
	}
	l->keys[l->n] = strdup(key);
	l->sizes[l->n++] = size;
	if (l->stop_after && l->n == l->stop_after)
		return 42;
	return 0;
}

static void listed_free(struct listed *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

/* list prefix and compare with want[0..n) (already in order) */
static void check_list(struct store *st, const char *prefix,
		       const char *const *want, size_t n)
{
	struct listed l = { 0 };

	CHECK_R(st->ops->list(st, prefix, collect, &l), 0);
	CHECK(l.n == n, "list \"%s\": %zu keys, want %zu", prefix, l.n, n);
	for (size_t i = 0; i < l.n && i < n; i++)
		CHECK(strcmp(l.keys[i], want[i]) == 0,
		      "list \"%s\" [%zu]: %s, want %s", prefix, i, l.keys[i],
		      want[i]);
	listed_free(&l);
}

/* Threads: put keys "l/k%05u" for i = t, t + nthreads, ... < nlist. */
struct worker {
	struct store *st;
	unsigned t;
	unsigned iterations;
	int errors;
	uint64_t ops;
	volatile bool *stop;
};

static void *put_many(void *arg)
{
	struct worker *w = arg;
	char key[64], val[16];

	for (unsigned i = w->t; i < nlist; i += nthreads) {
		snprintf(key, sizeof(key), "l/k%05u", i);
		snprintf(val, sizeof(val), "%u", i);
		if (w->st->ops->put(w->st, key, val, strlen(val)) != 0)
			w->errors++;
	}
	return NULL;
}

static void test_list_many(struct store *st)
{
	pthread_t th[64];
	struct worker w[64];
	struct listed l = { 0 };
	uint64_t t0 = now_ms();

	for (unsigned t = 0; t < nthreads; t++) {
		w[t] = (struct worker){ .st = st, .t = t };
		pthread_create(&th[t], NULL, put_many, &w[t]);
	}
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		CHECK(w[t].errors == 0, "thread %u: %d puts failed", t,
		      w[t].errors);
	}
	uint64_t t1 = now_ms();
	CHECK_R(st->ops->list(st, "l/", collect, &l), 0);
	CHECK(l.n == nlist, "list l/: %zu keys, want %u", l.n, nlist);
	for (size_t i = 0; i < l.n; i++) {
		char want[64];

		snprintf(want, sizeof(want), "l/k%05zu", i);
		CHECK(strcmp(l.keys[i], want) == 0, "list l/ [%zu]: %s", i,
		      l.keys[i]);
		snprintf(want, sizeof(want), "%zu", i);
		CHECK(l.sizes[i] == strlen(want),
		      "list l/ [%zu]: size %" PRIu64, i, l.sizes[i]);
		if (failures > 20)
			break;
	}
	uint64_t t2 = now_ms();
	/* a narrower prefix, ending inside a name */
	struct listed l2 = { 0 };
	CHECK_R(st->ops->list(st, "l/k0100", collect, &l2), 0);
	CHECK(l2.n == (nlist > 1009 ? 10 : 0), "list l/k0100: %zu keys", l2.n);
	listed_free(&l2);
	/* a callback that stops the listing */
	l2.stop_after = 3;
	CHECK_R(st->ops->list(st, "l/", collect, &l2), 42);
	CHECK(l2.n == 3, "stopped list: %zu calls", l2.n);
	listed_free(&l2);
	/* delete them all in one call: S3 batches by 1000 */
	CHECK_R(st->ops->del(st, (const char *const *)l.keys, l.n), 0);
	uint64_t t3 = now_ms();
	check_list(st, "l/", NULL, 0);
	fprintf(stderr,
		"  %u keys: put in %" PRIu64 " ms, listed in %" PRIu64
		" ms, deleted in %" PRIu64 " ms\n",
		nlist, t1 - t0, t2 - t1, t3 - t2);
	listed_free(&l);
}

/* Threads: own keys round trips, and everyone replacing one shared key
 * whose every version must read back whole. */
static void *mixed(void *arg)
{
	struct worker *w = arg;
	struct store *st = w->st;
	uint64_t seed = w->t + 1;
	size_t cap = 256 * 1024;
	uint8_t *buf = malloc(cap + 16);
	char key[64];

	for (unsigned i = 0; i < w->iterations; i++) {
		size_t len = (size_t)(xorshift(&seed) % cap);
		void *got = NULL;
		size_t glen = 0;
		int r;

		snprintf(key, sizeof(key), "p/t%u/%u", w->t, i % 8);
		fill(buf, len, seed + i);
		if (st->ops->put(st, key, buf, len) != 0 ||
		    st->ops->get(st, key, &got, &glen) != 0 || glen != len ||
		    memcmp(got, buf, len) != 0)
			w->errors++;
		free(got);
		got = NULL;

		/* shared key: [u64 seed][fill(seed)] */
		uint64_t s = ((uint64_t)w->t << 32) | i;
		size_t sl = 8 + (size_t)(s % 4096);
		memcpy(buf, &s, 8);
		fill(buf + 8, sl - 8, s);
		if (st->ops->put(st, "p/shared", buf, sl) != 0)
			w->errors++;
		r = st->ops->get(st, "p/shared", &got, &glen);
		if (r == 0 && glen >= 8) {
			memcpy(&s, got, 8);
			fill(buf, glen - 8, s);
			if (glen != 8 + (size_t)(s % 4096) ||
			    memcmp(buf, (uint8_t *)got + 8, glen - 8) != 0) {
				fprintf(stderr, "torn read of p/shared\n");
				w->errors++;
			}
		} else {
			w->errors++;
		}
		free(got);
		w->ops += 4;
	}
	free(buf);
	return NULL;
}

static void test_parallel(struct store *st)
{
	pthread_t th[64];
	struct worker w[64];
	uint64_t t0 = now_ms(), ops = 0;

	for (unsigned t = 0; t < nthreads; t++) {
		w[t] = (struct worker){ .st = st, .t = t, .iterations = 24 };
		pthread_create(&th[t], NULL, mixed, &w[t]);
	}
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		CHECK(w[t].errors == 0, "thread %u: %d errors", t, w[t].errors);
		ops += w[t].ops;
	}
	fprintf(stderr,
		"  parallel: %u threads, %" PRIu64 " ops in %" PRIu64 " ms\n",
		nthreads, ops, now_ms() - t0);

	struct listed l = { 0 };
	CHECK_R(st->ops->list(st, "p/", collect, &l), 0);
	CHECK(l.n == nthreads * 8 + 1, "list p/: %zu keys", l.n);
	CHECK_R(st->ops->del(st, (const char *const *)l.keys, l.n), 0);
	listed_free(&l);
}

/* dir only: temporaries are not objects; open explains bad paths */
static void test_dir_specific(struct store *st)
{
	const char *root = conf.spec + 4;
	char path[512];
	struct store_conf c = conf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/.tmp.123.4", root);
	f = fopen(path, "w");
	CHECK(f != NULL, "create %s", path);
	if (f)
		fclose(f);
	CHECK_R(st->ops->put(st, "x/y", "1", 1), 0);
	snprintf(path, sizeof(path), "%s/x/.tmp.5.6", root);
	f = fopen(path, "w");
	if (f)
		fclose(f);
	{
		const char *want[] = { "x/y" };

		check_list(st, "", want, 1);
	}
	/* a key cannot be both an object and a directory */
	CHECK_R(st->ops->put(st, "x/y/z", "1", 1), -EINVAL);
	CHECK_R(st->ops->put(st, "x", "1", 1), -EINVAL);
	CHECK_R(st->ops->del(st, (const char *[]){ "x/y" }, 1), 0);
	snprintf(path, sizeof(path), "%s/.tmp.123.4", root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/x/.tmp.5.6", root);
	unlink(path);

	/* a file where the directory should be */
	snprintf(path, sizeof(path), "dir:%s/x/.tmp.5.6", root);
	f = fopen(path + 4, "w");
	if (f)
		fclose(f);
	c.spec = path;
	log_len = 0;
	CHECK(store_open(&c) == NULL && errno == ENOTDIR, "open a file");
	CHECK(strstr(log_text, "give the path of a directory"), "message");
	unlink(path + 4);
	snprintf(path, sizeof(path), "dir:/proc/self/no/such/dir");
	log_len = 0;
	CHECK(store_open(&c) == NULL, "open in /proc");
	CHECK(strstr(log_text, "cannot create the directory"), "message");
	log_len = 0;
}

/* get_range (store.h): bytes [off, off + len) of an object, through the
 * store's own op and through store_get_range's fallback (get and copy,
 * the store's op hidden).  Whole, more than whole, middle, across the
 * end, the last byte, at and past the end, an offset whose end wraps,
 * nothing asked for, an empty object, absent keys, bad arguments; no
 * byte written past len; the counters of the store's own op. */
static void test_get_range(struct store *st)
{
	const size_t size = 300000;
	uint8_t *obj = malloc(size);
	const struct {
		uint64_t off;
		size_t len, want;
	} cases[] = {
		{ 0, size, size },
		{ 0, size + 1000, size },
		{ 12345, 5000, 5000 },
		{ 70000, 100000, 100000 },
		{ size - 1000, 5000, 1000 },
		{ size - 1, 1, 1 },
		{ 0, 1, 1 },
		{ size, 10, 0 },
		{ size + 1, 10, 0 },
		{ UINT64_C(1) << 40, 10, 0 },
		{ UINT64_MAX - 5, 10, 0 },
		{ 5, 0, 0 },
	};
	const struct store_ops *own = st->ops;
	struct store_ops fallback = *own;
	struct store_stats s0, s1;

	fallback.get_range = NULL;
	fill(obj, size, 11);
	CHECK_R(st->ops->put(st, "r/obj", obj, size), 0);
	CHECK_R(st->ops->put(st, "r/empty", "", 0), 0);
	for (int pass = 0; pass < 2; pass++) {
		const char *how = pass ? "fallback" : "get_range";
		uint64_t got_bytes = 0;
		unsigned ok = 0;

		st->ops = pass ? &fallback : own;
		st->ops->stats(st, &s0);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			size_t len = cases[i].len, got = 12345;
			uint8_t *buf = malloc(len + 64);

			memset(buf, 0xc3, len + 64);
			CHECK_R(store_get_range(st, "r/obj", cases[i].off, len,
						buf, &got),
				0);
			CHECK(got == cases[i].want &&
				      (!got || memcmp(buf, obj + cases[i].off,
						      got) == 0),
			      "%s [%" PRIu64 ", +%zu): %zu bytes, want %zu",
			      how, cases[i].off, len, got, cases[i].want);
			for (size_t j = len; j < len + 64; j++)
				if (buf[j] != 0xc3) {
					CHECK(0,
					      "%s [%" PRIu64 ", +%zu): "
					      "written past len",
					      how, cases[i].off, len);
					break;
				}
			free(buf);
			got_bytes += got;
			ok++;
		}
		{
			uint8_t b[16];
			size_t got = 1;

			CHECK_R(store_get_range(st, "r/empty", 0, 10, b, &got),
				0);
			CHECK(got == 0, "%s: empty object: %zu", how, got);
			got = 1;
			CHECK_R(store_get_range(st, "r/empty", 0, 0, NULL,
						&got),
				0);
			CHECK(got == 0, "%s: empty object, nothing asked", how);
			ok += 2;
			CHECK_R(store_get_range(st, "r/missing", 0, 10, b,
						&got),
				-ENOENT);
			CHECK_R(store_get_range(st, "nodir/x", 0, 10, b, &got),
				-ENOENT);
			CHECK_R(store_get_range(st, "r", 0, 10, b, &got),
				-ENOENT);
			CHECK_R(store_get_range(st, "r/missing", 0, 0, NULL,
						&got),
				-ENOENT);
			CHECK_R(store_get_range(st, "", 0, 10, b, &got),
				-EINVAL);
			CHECK_R(store_get_range(st, "../r/obj", 0, 10, b, &got),
				-EINVAL);
			CHECK_R(store_get_range(st, "r/obj", 0, 10, NULL, &got),
				-EINVAL);
		}
		st->ops->stats(st, &s1);
		if (pass == 0) {
			/* a get per call that returned 0, an error (and a
			 * not_found) per one that did not */
			CHECK(s1.gets - s0.gets == ok,
			      "%s: gets %" PRIu64 ", want %u", how,
			      s1.gets - s0.gets, ok);
			CHECK(s1.errors - s0.errors == 7, "%s: errors %" PRIu64,
			      how, s1.errors - s0.errors);
			CHECK(s1.not_found - s0.not_found == 4,
			      "%s: not_found %" PRIu64, how,
			      s1.not_found - s0.not_found);
			/* the bytes returned; s3 also fetches byte 0 to learn
			 * that an object exists when nothing is asked for */
			CHECK(s1.bytes_in - s0.bytes_in >= got_bytes &&
				      s1.bytes_in - s0.bytes_in <=
					      got_bytes + 4,
			      "%s: bytes_in %" PRIu64 ", want %" PRIu64, how,
			      s1.bytes_in - s0.bytes_in, got_bytes);
		}
	}
	st->ops = own;
	CHECK_R(st->ops->del(st, (const char *[]){ "r/obj", "r/empty" }, 2), 0);
	free(obj);
}

static int conform(void)
{
	struct store_stats s0, s1;
	struct store *st;
	void *got;
	size_t glen;
	uint64_t size;
	int expected_errors = 0, expected_enoent = 0;

	st = store_open(&conf);
	if (!st) {
		fprintf(stderr, "FAIL: cannot open %s: %s\n", conf.spec,
			strerror(errno));
		return 1;
	}
	CHECK(strcmp(st->ops->name, is_s3 ? "s3" : "dir") == 0, "name %s",
	      st->ops->name);
	st->ops->stats(st, &s0);
	fprintf(stderr, "  store %s (%s)\n", conf.spec, st->ops->name);

	/* the store starts empty */
	check_list(st, "", NULL, 0);

	/* round trips */
	expected_errors += roundtrip(st, "a/empty", 0, 1);
	expected_errors += roundtrip(st, "a/one", 1, 2);
	expected_errors += roundtrip(st, "a/big", 4 * MiB, 3);
	expected_errors += roundtrip(st, "a/odd", 1 * MiB + 4097,
				     4); /* above curl's 1 MiB */
	expected_errors += roundtrip(st, "top", 100, 5);
	/* overwrite, shorter */
	expected_errors += roundtrip(st, "a/big", 3, 6);
	expected_errors += roundtrip(st, "a/one", 70000, 7);
	if (is_s3) {
		/* PUTs as UNSIGNED-PAYLOAD: the server takes them (its own
		 * counters; the object is gone before the listings below). */
		struct store_conf uc = conf;
		struct store *u;
		const char *k = "a/unsigned";

		uc.s3_unsigned_payload = 1;
		u = store_open(&uc);
		CHECK(u, "open with s3_unsigned_payload: %s", strerror(errno));
		roundtrip(u, k, 2 * MiB + 5, 8);
		CHECK_R(u->ops->del(u, &k, 1), 0);
		store_destroy(u);
	}

	/* absent */
	got = NULL;
	CHECK_R(st->ops->get(st, "a/missing", &got, &glen), -ENOENT);
	CHECK_R(st->ops->head(st, "a/missing", &size), -ENOENT);
	CHECK_R(st->ops->get(st, "nodir/missing", &got, &glen), -ENOENT);
	CHECK_R(st->ops->get(st, "a", &got, &glen), -ENOENT); /* a prefix */
	CHECK_R(st->ops->head(st, "a", &size), -ENOENT);
	expected_errors += 5;
	expected_enoent += 5;

	/* bad keys */
	static const char *const bad[] = { "",	   "/a",    "a/",   "a//b",
					   "../x", "a/./b", ".tmp", "a\nb" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *k = bad[i];

		CHECK_R(st->ops->put(st, k, "x", 1), -EINVAL);
		CHECK_R(st->ops->get(st, k, &got, &glen), -EINVAL);
		CHECK_R(st->ops->head(st, k, &size), -EINVAL);
		CHECK_R(st->ops->del(st, &k, 1), -EINVAL);
		expected_errors += 4;
	}

	/* listing order: strcmp of whole keys, '/' is 0x2f */
	static const char *const okeys[] = { "o/a-c",	"o/a.x", "o/a/b",
					     "o/a/c/d", "o/a0",	 "o/b" };
	for (size_t i = 0; i < 6; i++)
		CHECK_R(st->ops->put(st, okeys[i], okeys[i], strlen(okeys[i])),
			0);
	check_list(st, "o/", okeys, 6);
	check_list(st, "o/a", okeys, 5);
	check_list(st, "o/a/", okeys + 2, 2);
	check_list(st, "o/a/c/d", okeys + 3, 1);
	check_list(st, "o/zz", NULL, 0);
	check_list(st, "nothing/", NULL, 0);
	{
		const char *all[] = { "a/big", "a/empty", "a/odd", "a/one",
				      "o/a-c", "o/a.x",	  "o/a/b", "o/a/c/d",
				      "o/a0",  "o/b",	  "top" };
		check_list(st, "", all, 11);
	}
	{
		struct listed l = { 0 };

		CHECK_R(st->ops->list(st, "a/", collect, &l), 0);
		CHECK(l.n == 4 && l.sizes[0] == 3 && l.sizes[1] == 0 &&
			      l.sizes[2] == MiB + 4097 && l.sizes[3] == 70000,
		      "list a/ sizes");
		listed_free(&l);
	}

	/* delete several, some missing */
	{
		const char *keys[] = { "a/empty", "a/missing", "o/a/b",
				       "o/a/c/d", "zz/never",  "top" };

		CHECK_R(st->ops->del(st, keys, 6), 0);
		CHECK_R(st->ops->del(st, keys, 6), 0); /* again: all gone */
		CHECK_R(st->ops->del(st, keys, 0), 0);
		for (size_t i = 0; i < 6; i++) {
			CHECK_R(st->ops->head(st, keys[i], &size), -ENOENT);
			expected_errors++;
			expected_enoent++;
		}
		const char *left[] = { "a/big", "a/odd", "a/one", "o/a-c",
				       "o/a.x", "o/a0",	 "o/b" };
		check_list(st, "", left, 7);
		CHECK_R(st->ops->del(st, left, 7), 0);
		check_list(st, "", NULL, 0);
	}

	if (!is_s3) {
		test_dir_specific(st);
		expected_errors += 2;
	}
	test_list_many(st);
	test_parallel(st);
	check_list(st, "", NULL, 0);

	/* counters */
	st->ops->stats(st, &s1);
	fprintf(stderr,
		"  stats: gets %" PRIu64 " puts %" PRIu64 " dels %" PRIu64
		" heads %" PRIu64 " lists %" PRIu64 " in %" PRIu64
		" out %" PRIu64 " retries %" PRIu64 " errors %" PRIu64
		" not_found %" PRIu64 " denied %" PRIu64 " timeouts %" PRIu64
		" server %" PRIu64 " net %" PRIu64 "\n",
		s1.gets, s1.puts, s1.dels, s1.heads, s1.lists, s1.bytes_in,
		s1.bytes_out, s1.retries, s1.errors, s1.not_found, s1.denied,
		s1.timeouts, s1.server_errors, s1.net_errors);
	uint64_t want_puts = 7 + 6 + nlist + nthreads * 24 * 2 + !is_s3;
	/* roundtrip: a get and a get_into each */
	uint64_t want_gets = 7 * 2 + nthreads * 24 * 2;
	CHECK(s1.puts - s0.puts == want_puts, "puts %" PRIu64 ", want %" PRIu64,
	      s1.puts - s0.puts, want_puts);
	CHECK(s1.gets - s0.gets == want_gets, "gets %" PRIu64 ", want %" PRIu64,
	      s1.gets - s0.gets, want_gets);
	CHECK(s1.heads - s0.heads == 7, "heads %" PRIu64, s1.heads - s0.heads);
	CHECK(s1.dels - s0.dels == (uint64_t)(6 + !is_s3), "dels %" PRIu64,
	      s1.dels - s0.dels);
	CHECK(s1.lists - s0.lists >= 15, "lists %" PRIu64, s1.lists - s0.lists);
	CHECK(s1.bytes_out - s0.bytes_out > 5 * MiB, "bytes_out");
	CHECK(s1.bytes_in - s0.bytes_in > 5 * MiB, "bytes_in");
	CHECK(s1.errors - s0.errors == (uint64_t)expected_errors,
	      "errors %" PRIu64 ", want %d", s1.errors - s0.errors,
	      expected_errors);
	CHECK(s1.not_found - s0.not_found == (uint64_t)expected_enoent,
	      "not_found %" PRIu64 ", want %d", s1.not_found - s0.not_found,
	      expected_enoent);
	CHECK(s1.denied == 0, "denied %" PRIu64, s1.denied);

	test_get_range(st);
	store_destroy(st);
	return failures ? 1 : 0;
}

/* ---- open must fail --------------------------------------------------- */

static int open_fail(void)
{
	uint64_t t0 = now_ms();
	struct store *st = store_open(&conf);
	uint64_t ms = now_ms() - t0;
	int err = errno;

	if (st) {
		fprintf(stderr, "FAIL: %s opened\n", conf.spec);
		store_destroy(st);
		return 1;
	}
	fprintf(stderr, "  open failed in %" PRIu64 " ms: %s\n", ms,
		strerror(err));
	CHECK(ms <= max_open_ms, "open took %" PRIu64 " ms, max %u", ms,
	      max_open_ms);
	CHECK(log_len > 0, "no message");
	for (unsigned i = 0; i < nexpect; i++)
		CHECK(strstr(log_text, expect[i]), "no \"%s\" in the message",
		      expect[i]);
	return failures ? 1 : 0;
}

/* ---- outage: every op must succeed while the server comes and goes ---- */

static void *outage_worker(void *arg)
{
	struct worker *w = arg;
	struct store *st = w->st;
	uint64_t seed = w->t + 77;
	uint8_t *buf = malloc(64 * 1024);
	char key[64];

	for (unsigned i = 0; !*w->stop; i++) {
		size_t len = 1 + (size_t)(xorshift(&seed) % (64 * 1024 - 1));
		void *got = NULL;
		size_t glen = 0;
		int r;

		snprintf(key, sizeof(key), "outage/t%u/%u", w->t, i % 4);
		fill(buf, len, seed);
		r = st->ops->put(st, key, buf, len);
		if (r == 0)
			r = st->ops->get(st, key, &got, &glen);
		if (r != 0 || glen != len || memcmp(got, buf, len) != 0) {
			fprintf(stderr, "thread %u: op %u failed: %s\n", w->t,
				i, r ? strerror(-r) : "wrong data");
			w->errors++;
		}
		free(got);
		w->ops += 2;
	}
	free(buf);
	return NULL;
}

static int outage(void)
{
	pthread_t th[64];
	struct worker w[64];
	struct store_stats s;
	volatile bool stop = false;
	struct store *st = store_open(&conf);
	uint64_t ops = 0;

	if (!st) {
		fprintf(stderr, "FAIL: cannot open %s\n", conf.spec);
		return 1;
	}
	for (unsigned t = 0; t < nthreads; t++) {
		w[t] = (struct worker){ .st = st, .t = t, .stop = &stop };
		pthread_create(&th[t], NULL, outage_worker, &w[t]);
	}
	fprintf(stderr, "  outage: %u threads for %u s\n", nthreads, seconds);
	sleep(seconds);
	stop = true;
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		CHECK(w[t].errors == 0, "thread %u: %d ops failed", t,
		      w[t].errors);
		ops += w[t].ops;
	}
	st->ops->stats(st, &s);
	fprintf(stderr,
		"  outage: %" PRIu64 " ops, retries %" PRIu64
		" timeouts %" PRIu64 " net errors %" PRIu64
		" server errors %" PRIu64 " errors %" PRIu64 "\n",
		ops, s.retries, s.timeouts, s.net_errors, s.server_errors,
		s.errors);
	printf("retries=%" PRIu64 "\n", s.retries);

	struct listed l = { 0 };
	CHECK_R(st->ops->list(st, "outage/", collect, &l), 0);
	CHECK_R(st->ops->del(st, (const char *const *)l.keys, l.n), 0);
	listed_free(&l);
	store_destroy(st);
	return failures ? 1 : 0;
}

/* ---- smoke: the store opens and works ------------------------------- */

static int smoke(void)
{
	struct store *st = store_open(&conf);
	const char *key = "smoke/key";
	void *got = NULL;
	size_t glen = 0;
	uint64_t size = 0;
	struct listed l = { 0 };

	if (!st) {
		fprintf(stderr, "FAIL: cannot open %s: %s\n", conf.spec,
			strerror(errno));
		return 1;
	}
	CHECK_R(st->ops->put(st, key, "hello", 5), 0);
	CHECK_R(st->ops->get(st, key, &got, &glen), 0);
	CHECK(glen == 5 && got && memcmp(got, "hello", 5) == 0, "get");
	free(got);
	CHECK_R(st->ops->head(st, key, &size), 0);
	CHECK(size == 5, "head %" PRIu64, size);
	CHECK_R(st->ops->list(st, "smoke/", collect, &l), 0);
	CHECK(l.n == 1 && strcmp(l.keys[0], key) == 0, "list");
	listed_free(&l);
	CHECK_R(st->ops->del(st, &key, 1), 0);
	CHECK_R(st->ops->head(st, key, &size), -ENOENT);
	store_destroy(st);
	return failures ? 1 : 0;
}

/* ---- the S3 XML reader ------------------------------------------------ */

static int xml_collect(void *opaque, const char *key, uint64_t size)
{
	struct listed *l = opaque;

	return collect(l, key, size);
}

static int xml_delerr(void *opaque, const char *key, const char *code,
		      const char *msg)
{
	struct listed *l = opaque;
	char buf[512];

	snprintf(buf, sizeof(buf), "%s|%s|%s", key, code, msg);
	return collect(l, buf, 0);
}

static int xml_list(const char *xml, struct listed *l, bool *trunc,
		    char **token)
{
	*token = NULL;
	return s3_xml_list(xml, strlen(xml), xml_collect, l, trunc, token);
}

static int xml(void)
{
	struct listed l = { 0 };
	bool trunc;
	char *token;
	char code[16], msg[64], region[32];

	const char *page =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/"
		"2006-03-01/\"><Name>b</Name><Prefix>v/</Prefix>"
		"<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
		"<IsTruncated>true</IsTruncated>"
		"<Contents><Key>v/a&amp;b &lt;&gt;&quot;&apos;</Key>"
		"<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
		"<ETag>&quot;abc&quot;</ETag><Size>12</Size>"
		"<StorageClass>STANDARD</StorageClass></Contents>\n"
		"<!-- a comment --><Contents><Size>0</Size>"
		"<Key><![CDATA[v/<x>]]>&#233;&#x4e2d;</Key>"
		"<Owner><ID>x</ID></Owner></Contents>"
		"<Contents><Key>v/big</Key><Size>18446744073709551615</Size>"
		"</Contents><NextContinuationToken>1/tok+=="
		"</NextContinuationToken></ListBucketResult>\n";
	CHECK_R(xml_list(page, &l, &trunc, &token), 0);
	CHECK(l.n == 3, "%zu keys", l.n);
	if (l.n == 3) {
		CHECK(strcmp(l.keys[0], "v/a&b <>\"'") == 0, "%s", l.keys[0]);
		CHECK(l.sizes[0] == 12, "size");
		CHECK(strcmp(l.keys[1], "v/<x>\xc3\xa9\xe4\xb8\xad") == 0, "%s",
		      l.keys[1]);
		CHECK(l.sizes[2] == UINT64_MAX, "size max");
	}
	CHECK(trunc && token && strcmp(token, "1/tok+==") == 0, "token %s",
	      token ? token : "(null)");
	free(token);
	listed_free(&l);

	CHECK_R(xml_list("<ListBucketResult><IsTruncated>false</IsTruncated>"
			 "</ListBucketResult>",
			 &l, &trunc, &token),
		0);
	CHECK(l.n == 0 && !trunc && !token, "empty page");
	listed_free(&l);
	/* a namespace prefix and a self-closing element */
	CHECK_R(xml_list("<s3:ListBucketResult><s3:Contents><s3:Key>k</s3:Key>"
			 "<s3:Size>1</s3:Size><s3:Owner/></s3:Contents>"
			 "</s3:ListBucketResult>",
			 &l, &trunc, &token),
		0);
	CHECK(l.n == 1 && strcmp(l.keys[0], "k") == 0, "ns");
	listed_free(&l);

	static const char *const broken[] = {
		"",
		"<ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size>"
		"</Contents>",
		"<ListBucketResult></ListBucket>",
		"<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&#0;</Key><Size>1</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size>99999999999999"
		"999999999</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		"</ListBucketResult>",
		"<Error><Code>x</Code></Error>",
		"<ListBucketResult></ListBucketResult><ListBucketResult>"
		"</ListBucketResult>",
		"junk<ListBucketResult></ListBucketResult>",
		"<ListBucketResult><![CDATA[x</ListBucketResult>",
		"<ListBucketResult><a><b><c><d><e><f><g><h><i><j><k><l><m><n>"
		"<o><p><q></q></p></o></n></m></l></k></j></i></h></g></f></e>"
		"</d></c></b></a></ListBucketResult>",
		"<ListBucketResult attr=\"></ListBucketResult>",
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		CHECK_R(xml_list(broken[i], &l, &trunc, &token), -EIO);
		listed_free(&l);
	}
	/* a truncated real page at every length */
	for (size_t n = 0; n + 2 < strlen(page); n++) {
		char *cut = strndup(page, n);

		CHECK(s3_xml_list(cut, n, xml_collect, &l, &trunc, &token) ==
			      -EIO,
		      "cut at %zu parses", n);
		listed_free(&l);
		free(cut);
	}

	const char *err = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket"
			  "</Code><Message>The bucket &quot;b&quot; is "
			  "gone</Message><Region>eu-west-1</Region>"
			  "<RequestId>1</RequestId></Error>";
	CHECK_R(s3_xml_error(err, strlen(err), code, sizeof(code), msg,
			     sizeof(msg), region, sizeof(region)),
		0);
	CHECK(strcmp(code, "NoSuchBucket") == 0, "%s", code);
	CHECK(strcmp(msg, "The bucket \"b\" is gone") == 0, "%s", msg);
	CHECK(strcmp(region, "eu-west-1") == 0, "%s", region);
	const char *lerr = "<Error><Code>AVeryLongCodeIndeed</Code></Error>";
	CHECK_R(s3_xml_error(lerr, strlen(lerr), code, 8, NULL, 0, NULL, 0), 0);
	CHECK(strcmp(code, "AVeryLo") == 0, "truncated %s", code);
	CHECK_R(s3_xml_error("<html>nope</html>", 17, code, 8, NULL, 0, NULL,
			     0),
		-EIO);

	const char *del = "<DeleteResult><Deleted><Key>a</Key></Deleted>"
			  "<Error><Key>b&amp;c</Key><Code>AccessDenied</Code>"
			  "<Message>no</Message></Error><Error><Key>d</Key>"
			  "<Code>InternalError</Code></Error></DeleteResult>";
	CHECK_R(s3_xml_delete_result(del, strlen(del), xml_delerr, &l), 0);
	CHECK(l.n == 2 && strcmp(l.keys[0], "b&c|AccessDenied|no") == 0 &&
		      strcmp(l.keys[1], "d|InternalError|") == 0,
	      "delete errors");
	listed_free(&l);
	CHECK_R(s3_xml_delete_result("<DeleteResult/>", 15, xml_delerr, &l), 0);
	CHECK(l.n == 0, "no delete errors");

	struct s3_buf b = { 0 };
	CHECK_R(s3_xml_escape(&b, "a&b<c>\"d'"), 0);
	CHECK(strcmp(b.data, "a&amp;b&lt;c&gt;&quot;d&apos;") == 0, "%s",
	      b.data);
	b.len = 0;
	CHECK_R(s3_uri_encode(&b, "chunks/0a/x y+z~._-\xc3\xa9", true), 0);
	CHECK(strcmp(b.data, "chunks/0a/x%20y%2Bz~._-%C3%A9") == 0, "%s",
	      b.data);
	b.len = 0;
	CHECK_R(s3_uri_encode(&b, "a/b=c&d", false), 0);
	CHECK(strcmp(b.data, "a%2Fb%3Dc%26d") == 0, "%s", b.data);
	s3_buf_free(&b);

	char sha[65], md5[32];
	s3_sha256_hex("abc", 3, sha);
	CHECK(strcmp(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb41"
			  "0ff61f20015ad") == 0,
	      "%s", sha);
	s3_sha256_hex(NULL, 0, sha);
	CHECK(strcmp(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
			  "95991b7852b855") == 0,
	      "%s", sha);
	s3_md5_base64("abc", 3, md5);
	CHECK(strcmp(md5, "kAFQmDzST7DWlj99KOF/cg==") == 0, "%s", md5);
	return failures ? 1 : 0;
}

/* ---- faults: the s3 store against a scripted fake server -------------- */

/* A tiny HTTP/1.1 server on 127.0.0.1 that answers each request with the
 * next step of a plan (a status and body, a hang until the client gives
 * up, or a dropped connection) and records what it was sent.  It checks
 * no signature: RGW does that in test-store-s3.sh; this tests the errno
 * mapping, the retries and what goes on the wire. */

enum fake_act { F_REPLY, F_HANG, F_CLOSE };

struct fake_step {
	enum fake_act act;
	int status;
	const char *body;
	const char *headers; /* extra header lines, each ending "\r\n" */
};

struct fake_req {
	char method[8];
	char target[512];
	char sha[80], md5[40], expect[40], auth[512];
	char range[80];
	char *body;
	size_t body_len;
};

#define FAKE_PLAN 64
#define FAKE_LOG 64

static struct {
	pthread_mutex_t lock; /* protects everything below but fd */
	struct fake_step plan[FAKE_PLAN];
	unsigned nplan, next;
	struct fake_req log[FAKE_LOG];
	unsigned nlog;
	unsigned nconn;
	pthread_t conn[256];
	int fd;
	int port;
	volatile bool stop;
	pthread_t acceptor;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fake_plan(unsigned n, const struct fake_step *steps)
{
	pthread_mutex_lock(&fake.lock);
	for (unsigned i = 0; i < fake.nlog; i++)
		free(fake.log[i].body);
	fake.nlog = 0;
	if (n)
		memcpy(fake.plan, steps, n * sizeof(*steps));
	fake.nplan = n;
	fake.next = 0;
	pthread_mutex_unlock(&fake.lock);
}

/* the same step n times */
static void fake_repeat(unsigned n, struct fake_step s)
{
	struct fake_step steps[FAKE_PLAN];

	for (unsigned i = 0; i < n; i++)
		steps[i] = s;
	fake_plan(n, steps);
}

static void header_value(const char *hdrs, const char *name, char *out,
			 size_t len)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	for (const char *p = hdrs; p && *p; p = strstr(p, "\r\n")) {
		if (p[0] == '\r')
			p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t n;

			while (*v == ' ')
				v++;
			n = strcspn(v, "\r");
			if (n >= len)
				n = len - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return;
		}
	}
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void *fake_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t cap = 2 * MiB + 65536, len = 0;
	char *buf = malloc(cap);

	for (;;) {
		char *end;
		ssize_t n;

		/* the header block */
		while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
			if (len == cap)
				goto out;
			n = recv(fd, buf + len, cap - len, 0);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		*end = '\0';
		struct fake_req rq = { 0 };
		char cl[32];
		const char *hdrs = strstr(buf, "\r\n");
		sscanf(buf, "%7s %511s", rq.method, rq.target);
		header_value(hdrs, "x-amz-content-sha256", rq.sha,
			     sizeof(rq.sha));
		header_value(hdrs, "Content-MD5", rq.md5, sizeof(rq.md5));
		header_value(hdrs, "Expect", rq.expect, sizeof(rq.expect));
		header_value(hdrs, "Authorization", rq.auth, sizeof(rq.auth));
		header_value(hdrs, "Range", rq.range, sizeof(rq.range));
		header_value(hdrs, "Content-Length", cl, sizeof(cl));
		rq.body_len = (size_t)strtoull(cl, NULL, 10);
		size_t hlen = (size_t)(end + 4 - buf);
		if (hlen + rq.body_len > cap)
			goto out;
		if (rq.expect[0] &&
		    !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			goto out;
		while (len < hlen + rq.body_len) {
			n = recv(fd, buf + len, cap - len, 0);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		rq.body = malloc(rq.body_len + 1);
		memcpy(rq.body, buf + hlen, rq.body_len);
		rq.body[rq.body_len] = '\0';
		memmove(buf, buf + hlen + rq.body_len,
			len - hlen - rq.body_len);
		len -= hlen + rq.body_len;

		struct fake_step st = { F_REPLY, 200, NULL, NULL };
		pthread_mutex_lock(&fake.lock);
		if (fake.next < fake.nplan)
			st = fake.plan[fake.next++];
		if (fake.nlog < FAKE_LOG)
			fake.log[fake.nlog++] = rq;
		else
			free(rq.body);
		pthread_mutex_unlock(&fake.lock);
		if (!st.body && st.status == 200 && strchr(rq.target, '?') &&
		    strcmp(rq.method, "GET") == 0)
			st.body = "<ListBucketResult><IsTruncated>false"
				  "</IsTruncated></ListBucketResult>";
		if (!st.body && st.status == 200 &&
		    strcmp(rq.method, "POST") == 0)
			st.body = "<DeleteResult></DeleteResult>";

		if (st.act == F_CLOSE)
			goto out;
		if (st.act == F_HANG) {
			/* until the client gives up and closes */
			while (!fake.stop && recv(fd, buf, cap, 0) > 0)
				;
			goto out;
		}
		char head[1024];
		size_t bl = st.body ? strlen(st.body) : 0;
		int hl = snprintf(head, sizeof(head),
				  "HTTP/1.1 %d Fake\r\n%sContent-Length: "
				  "%zu\r\n\r\n",
				  st.status, st.headers ? st.headers : "", bl);
		if (!send_all(fd, head, (size_t)hl))
			goto out;
		if (strcmp(rq.method, "HEAD") != 0 && bl &&
		    !send_all(fd, st.body, bl))
			goto out;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static void *fake_accept(void *arg)
{
	while (!fake.stop) {
		struct pollfd pfd = { .fd = fake.fd, .events = POLLIN };

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int c = accept(fake.fd, NULL, NULL);
		if (c < 0)
			continue;
		pthread_mutex_lock(&fake.lock);
		if (fake.nconn < 256 &&
		    pthread_create(&fake.conn[fake.nconn], NULL, fake_conn,
				   (void *)(intptr_t)c) == 0)
			fake.nconn++;
		else
			close(c);
		pthread_mutex_unlock(&fake.lock);
	}
	return NULL;
}

static int fake_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fake.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fake.fd < 0)
		return -1;
	setsockopt(fake.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fake.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fake.fd, 64) < 0 ||
	    getsockname(fake.fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	fake.port = ntohs(sa.sin_port);
	return pthread_create(&fake.acceptor, NULL, fake_accept, NULL);
}

/* Call with every client gone (stores destroyed). */
static void fake_stop(void)
{
	fake.stop = true;
	pthread_join(fake.acceptor, NULL);
	for (unsigned i = 0; i < fake.nconn; i++)
		pthread_join(fake.conn[i], NULL);
	close(fake.fd);
	fake_plan(0, NULL);
}

static unsigned fake_count(void)
{
	pthread_mutex_lock(&fake.lock);
	unsigned n = fake.nlog;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

static struct store *fake_open(char *endpoint, unsigned timeout_ms,
			       unsigned retry_ms)
{
	struct store_conf c = conf;

	c.spec = "s3://bkt/pfx";
	c.s3_endpoint = endpoint;
	c.s3_access_key = "AKFAKE";
	c.s3_secret_key = "fake-secret-value";
	c.s3_timeout_ms = timeout_ms;
	c.s3_retry_ms = retry_ms;
	c.s3_connections = 4;
	return store_open(&c);
}

#define ERR_XML(code)                                         \
	"<?xml version=\"1.0\"?><Error><Code>" code "</Code>" \
	"<Message>injected</Message></Error>"

static void get_expect(struct store *st, int want, unsigned requests,
		       const char *what)
{
	void *got = NULL;
	size_t glen = 0;
	int r = st->ops->get(st, "k", &got, &glen);

	CHECK(r == want, "%s: get returned %d (%s), want %d", what, r,
	      strerror(-r), want);
	CHECK(fake_count() == requests, "%s: %u requests, want %u", what,
	      fake_count(), requests);
	if (r == 0)
		CHECK(glen == 2 && memcmp(got, "ok", 2) == 0, "%s: body", what);
	free(got);
}

/* get_range on the wire: the Range header; 206 into the caller's
 * buffer; a 200 (a server that ignores Range) cut to the range; 416 =
 * no bytes and no error; an error's body never in the caller's (small)
 * buffer; retries; a 206 longer than asked is refused; what is
 * counted. */
static void faults_get_range(struct store *st)
{
	struct fake_step e500 = { F_REPLY, 500, ERR_XML("InternalError"),
				  NULL };
	struct store_stats s0, s1;
	uint8_t buf[16];
	size_t got;
	const struct {
		struct fake_step step;
		uint64_t off;
		size_t len;
		int want;
		const char *data; /* what buf holds after (0: nothing) */
		const char *range;
	} cases[] = {
		{ { F_REPLY, 206, "cdef", NULL },
		  2,
		  4,
		  0,
		  "cdef",
		  "bytes=2-5" },
		{ { F_REPLY, 206, "gh", NULL }, 6, 10, 0, "gh", "bytes=6-15" },
		{ { F_REPLY, 416, ERR_XML("InvalidRange"), NULL },
		  8,
		  4,
		  0,
		  "",
		  "bytes=8-11" },
		{ { F_REPLY, 200, "abcdefgh", NULL }, 2, 4, 0, "cdef", NULL },
		{ { F_REPLY, 200, "abcdefgh", NULL }, 6, 10, 0, "gh", NULL },
		{ { F_REPLY, 200, "abcdefgh", NULL }, 9, 4, 0, "", NULL },
		{ { F_REPLY, 404, ERR_XML("NoSuchKey"), NULL },
		  0,
		  1,
		  -ENOENT,
		  "",
		  "bytes=0-0" },
		{ { F_REPLY, 206, "cdefXX", NULL }, 2, 4, -EIO, "", NULL },
		{ { F_REPLY, 206, "a", NULL }, 5, 0, 0, "", "bytes=0-0" },
		{ { F_REPLY, 416, ERR_XML("InvalidRange"), NULL },
		  (UINT64_C(1) << 62) - 2,
		  10,
		  0,
		  "",
		  "bytes=4611686018427387902-4611686018427387904" },
	};

	st->ops->stats(st, &s0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		fake_repeat(1, cases[i].step);
		memset(buf, 0xc3, sizeof(buf));
		got = 12345;
		r = store_get_range(st, "k", cases[i].off, cases[i].len, buf,
				    &got);
		CHECK(r == cases[i].want, "range %zu: %d, want %d", i, r,
		      cases[i].want);
		CHECK(fake_count() == 1 &&
			      strcmp(fake.log[0].method, "GET") == 0 &&
			      strcmp(fake.log[0].target, "/bkt/pfx/k") == 0,
		      "range %zu: request", i);
		if (cases[i].range)
			CHECK(strcmp(fake.log[0].range, cases[i].range) == 0,
			      "range %zu: Range: %s", i, fake.log[0].range);
		if (r == 0)
			CHECK(got == strlen(cases[i].data) &&
				      memcmp(buf, cases[i].data, got) == 0,
			      "range %zu: %zu bytes", i, got);
		/* nothing past len; from any reply but a 206 (an error's
		 * body, a whole object) nothing but the bytes returned */
		{
			size_t from = cases[i].step.status == 206
					      ? cases[i].len
					      : strlen(cases[i].data);

			for (size_t j = from; j < sizeof(buf); j++)
				if (buf[j] != 0xc3) {
					CHECK(0, "range %zu: byte %zu written",
					      i, j);
					break;
				}
		}
	}
	st->ops->stats(st, &s1);
	/* 8 answers taken; the 416 bodies are not payload; the 206 that
	 * was too long is an error */
	CHECK(s1.gets - s0.gets == 8, "range gets %" PRIu64, s1.gets - s0.gets);
	CHECK(s1.bytes_in - s0.bytes_in == 4 + 2 + 8 * 3 + 1,
	      "range bytes_in %" PRIu64, s1.bytes_in - s0.bytes_in);
	CHECK(s1.errors - s0.errors == 2, "range errors %" PRIu64,
	      s1.errors - s0.errors);
	CHECK(s1.not_found - s0.not_found == 1, "range not_found");

	/* retried like any GET: a 500, then the range */
	fake_plan(2,
		  (struct fake_step[]){ e500, { F_REPLY, 206, "cd", NULL } });
	memset(buf, 0xc3, sizeof(buf));
	CHECK_R(store_get_range(st, "k", 2, 2, buf, &got), 0);
	CHECK(got == 2 && memcmp(buf, "cd", 2) == 0 && buf[2] == 0xc3 &&
		      fake_count() == 2 &&
		      strcmp(fake.log[1].range, "bytes=2-3") == 0,
	      "range retried: %u requests", fake_count());
	/* a 500 then a 200 of the whole object */
	fake_plan(2, (struct fake_step[]){
			     e500, { F_REPLY, 200, "abcdefgh", NULL } });
	CHECK_R(store_get_range(st, "k", 3, 2, buf, &got), 0);
	CHECK(got == 2 && memcmp(buf, "de", 2) == 0, "range retried, 200");
	st->ops->stats(st, &s0);
	CHECK(s0.retries - s1.retries == 2, "range retries %" PRIu64,
	      s0.retries - s1.retries);
}

static int faults(void)
{
	static const struct fake_step ok = { F_REPLY, 200, "ok", NULL };
	char endpoint[64], sha[65], md5[32];
	struct store_stats s0, s1;
	struct store *st, *quick;
	uint64_t t0;
	int r;

	if (fake_start() < 0) {
		perror("fake server");
		return 1;
	}
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fake.port);
	conf.s3_secret_key = "fake-secret-value"; /* never in a message */
	forbid[nforbid++] = "pass-word";

	/* open: the check it sends */
	fake_plan(0, NULL);
	st = fake_open(endpoint, 400, 3000);
	CHECK(st != NULL, "open");
	if (!st)
		return 1;
	CHECK(fake_count() == 1 && strcmp(fake.log[0].method, "GET") == 0 &&
		      strcmp(fake.log[0].target,
			     "/bkt?list-type=2&max-keys=1&prefix=pfx%2F") == 0,
	      "open request %s", fake.log[0].target);
	CHECK(strncmp(fake.log[0].auth, "AWS4-HMAC-SHA256 Credential=AKFAKE/",
		      35) == 0 &&
		      strstr(fake.log[0].auth, "/us-east-1/s3/aws4_request") &&
		      strstr(fake.log[0].auth, "x-amz-content-sha256"),
	      "authorization %s", fake.log[0].auth);
	s3_sha256_hex(NULL, 0, sha);
	CHECK(strcmp(fake.log[0].sha, sha) == 0, "empty payload hash");

	/* what a PUT sends: path encoding, payload hash, no Expect <= 1 MiB */
	size_t sizes[] = { 100, MiB, MiB + 1 };
	char *big = malloc(MiB + 1);
	fill(big, MiB + 1, 9);
	for (size_t i = 0; i < 3; i++) {
		fake_plan(0, NULL);
		CHECK_R(st->ops->put(st, "a/b c+d", big, sizes[i]), 0);
		struct fake_req *q = &fake.log[0];
		s3_sha256_hex(big, sizes[i], sha);
		CHECK(strcmp(q->method, "PUT") == 0 &&
			      strcmp(q->target, "/bkt/pfx/a/b%20c%2Bd") == 0,
		      "put target %s", q->target);
		CHECK(strcmp(q->sha, sha) == 0, "put payload hash");
		CHECK(q->body_len == sizes[i] &&
			      memcmp(q->body, big, sizes[i]) == 0,
		      "put body");
		/* curl adds an (unsigned) Expect only above 1 MiB */
		CHECK(!!q->expect[0] == (sizes[i] > MiB), "expect \"%s\"",
		      q->expect);
		CHECK(!strstr(q->auth, "expect"), "Expect is not signed");
	}
	free(big);

	st->ops->stats(st, &s0);
	struct fake_step e500 = { F_REPLY, 500, ERR_XML("InternalError"),
				  NULL };
	struct fake_step e502 = { F_REPLY, 502, "bad gateway", NULL };
	struct fake_step e503 = { F_REPLY, 503, ERR_XML("SlowDown"), NULL };
	struct fake_step e429 = { F_REPLY, 429, "", NULL };
	struct fake_step hang = { F_HANG, 0, NULL, NULL };
	struct fake_step drop = { F_CLOSE, 0, NULL, NULL };

	fake_plan(3, (struct fake_step[]){ e500, e502, ok });
	get_expect(st, 0, 3, "500, 502, 200");
	fake_plan(2, (struct fake_step[]){ e503, ok });
	get_expect(st, 0, 2, "503 SlowDown, 200");
	fake_plan(2, (struct fake_step[]){ e429, ok });
	get_expect(st, 0, 2, "429, 200");
	/* curl itself sends again once when a kept-alive connection turns
	 * out dead; the second drop, on a new connection, is ours */
	fake_plan(3, (struct fake_step[]){ drop, drop, ok });
	get_expect(st, 0, 3, "dropped connection twice, 200");
	fake_plan(2, (struct fake_step[]){ hang, ok });
	get_expect(st, 0, 2, "timeout, 200");
	st->ops->stats(st, &s1);
	CHECK(s1.retries - s0.retries == 6, "retries %" PRIu64,
	      s1.retries - s0.retries);
	CHECK(s1.server_errors - s0.server_errors == 4,
	      "server_errors %" PRIu64, s1.server_errors - s0.server_errors);
	CHECK(s1.net_errors - s0.net_errors == 1, "net_errors");
	CHECK(s1.timeouts - s0.timeouts == 1, "timeouts");
	CHECK(s1.errors == s0.errors, "no errors returned");

	/* final at once: no retry */
	static const struct {
		int status;
		const char *code;
		int want;
	} finals[] = {
		{ 404, "NoSuchKey", -ENOENT },
		{ 403, "AccessDenied", -EACCES },
		{ 401, "Unauthorized", -EACCES },
		{ 403, "QuotaExceeded", -ENOSPC },
		{ 400, "InvalidArgument", -EINVAL },
		{ 409, "Conflict", -EIO },
		{ 301, "PermanentRedirect", -EIO },
		{ 507, "StorageFull", -ENOSPC },
		{ 501, "NotImplemented", -EOPNOTSUPP },
		{ 405, "MethodNotAllowed", -EOPNOTSUPP },
	};
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		char body[256], what[64];

		snprintf(body, sizeof(body),
			 "<Error><Code>%s</Code><Message>m</Message></Error>",
			 finals[i].code);
		snprintf(what, sizeof(what), "%d %s", finals[i].status,
			 finals[i].code);
		fake_repeat(1, (struct fake_step){ F_REPLY, finals[i].status,
						   body, NULL });
		get_expect(st, finals[i].want, 1, what);
	}
	faults_get_range(st);

	/* giving up: the budget bounds the time */
	quick = fake_open(endpoint, 200, 800);
	CHECK(quick != NULL, "open quick");
	const struct {
		struct fake_step *step;
		int want;
	} giveup[] = { { &e500, -EIO },
		       { &e503, -EAGAIN },
		       { &hang, -ETIMEDOUT },
		       { &drop, -ETIMEDOUT } };
	for (size_t i = 0; quick && i < 4; i++) {
		void *got = NULL;
		size_t glen;

		fake_repeat(FAKE_PLAN, *giveup[i].step);
		t0 = now_ms();
		r = quick->ops->get(quick, "k", &got, &glen);
		uint64_t ms = now_ms() - t0;
		CHECK(r == giveup[i].want, "give up %zu: %d, want %d", i, r,
		      giveup[i].want);
		CHECK(ms < 800 + 400 && fake_count() >= 2,
		      "give up %zu: %" PRIu64 " ms, %u requests", i, ms,
		      fake_count());
	}

	/* DeleteObjects: MD5, batching, a transient per-key error resent */
	{
		const char *keys[] = { "d/a", "d/b&c", "d/e" };

		fake_plan(2,
			  (struct fake_step[]){
				  { F_REPLY, 200,
				    "<DeleteResult><Error><Key>pfx/d/b&amp;c"
				    "</Key><Code>InternalError</Code>"
				    "</Error></DeleteResult>",
				    NULL },
				  { F_REPLY, 200, "<DeleteResult/>", NULL } });
		CHECK_R(st->ops->del(st, keys, 3), 0);
		CHECK(fake_count() == 2, "delete: %u requests", fake_count());
		struct fake_req *q = &fake.log[0];
		CHECK(strcmp(q->method, "POST") == 0 &&
			      strcmp(q->target, "/bkt?delete=") == 0,
		      "delete target %s", q->target);
		s3_md5_base64(q->body, q->body_len, md5);
		CHECK(strcmp(q->md5, md5) == 0, "Content-MD5 %s", q->md5);
		CHECK(strstr(q->body, "<Key>pfx/d/a</Key>") &&
			      strstr(q->body, "<Key>pfx/d/b&amp;c</Key>") &&
			      strstr(q->body, "<Quiet>true</Quiet>"),
		      "delete body %s", q->body);
		q = &fake.log[1];
		CHECK(!strstr(q->body, "pfx/d/a") &&
			      strstr(q->body, "<Key>pfx/d/b&amp;c</Key>"),
		      "resent %s", q->body);

		fake_repeat(1,
			    (struct fake_step){
				    F_REPLY, 200,
				    "<DeleteResult><Error><Key>pfx/d/a</Key>"
				    "<Code>AccessDenied</Code></Error>"
				    "<Error><Key>pfx/d/e</Key><Code>NoSuchKey"
				    "</Code></Error></DeleteResult>",
				    NULL });
		CHECK_R(st->ops->del(st, keys, 3), -EACCES);

		/* no DeleteObjects: one DELETE per key */
		fake_repeat(1, (struct fake_step){ F_REPLY, 501,
						   ERR_XML("NotImplemented"),
						   NULL });
		CHECK_R(st->ops->del(st, keys, 3), 0);
		CHECK(fake_count() == 4 &&
			      strcmp(fake.log[3].method, "DELETE") == 0 &&
			      strcmp(fake.log[3].target, "/bkt/pfx/d/e") == 0,
		      "one by one");

		/* 2500 keys: 3 requests of at most 1000 */
		char **many = calloc(2500, sizeof(*many));
		for (unsigned i = 0; i < 2500; i++) {
			many[i] = malloc(16);
			snprintf(many[i], 16, "m/%u", i);
		}
		fake_plan(0, NULL);
		CHECK_R(st->ops->del(st, (const char *const *)many, 2500), 0);
		CHECK(fake_count() == 3, "2500 keys: %u requests",
		      fake_count());
		for (unsigned i = 0; i < 2500; i++)
			free(many[i]);
		free(many);
	}

	/* ListObjectsV2: the continuation token, sent back encoded */
	{
		struct listed l = { 0 };

		fake_plan(2,
			  (struct fake_step[]){
				  { F_REPLY, 200,
				    "<ListBucketResult><IsTruncated>true"
				    "</IsTruncated><Contents><Key>pfx/l/1</Key>"
				    "<Size>1</Size></Contents>"
				    "<NextContinuationToken>t/1+=</NextContinu"
				    "ationToken></ListBucketResult>",
				    NULL },
				  { F_REPLY, 200,
				    "<ListBucketResult><IsTruncated>false"
				    "</IsTruncated><Contents><Key>pfx/l/2</Key>"
				    "<Size>22</Size></Contents>"
				    "</ListBucketResult>",
				    NULL } });
		CHECK_R(st->ops->list(st, "l/", collect, &l), 0);
		CHECK(l.n == 2 && strcmp(l.keys[0], "l/1") == 0 &&
			      strcmp(l.keys[1], "l/2") == 0 && l.sizes[1] == 22,
		      "list pages");
		CHECK(fake_count() == 2 &&
			      strcmp(fake.log[0].target,
				     "/bkt?list-type=2&prefix=pfx%2Fl%2F") ==
				      0 &&
			      strcmp(fake.log[1].target,
				     "/bkt?continuation-token=t%2F1%2B%3D&"
				     "list-type=2&prefix=pfx%2Fl%2F") == 0,
		      "list queries %s", fake.log[1].target);
		listed_free(&l);
		/* a key outside the prefix: the reply is wrong */
		fake_repeat(1, (struct fake_step){
				       F_REPLY, 200,
				       "<ListBucketResult><Contents><Key>other"
				       "</Key><Size>1</Size></Contents>"
				       "</ListBucketResult>",
				       NULL });
		CHECK_R(st->ops->list(st, "", collect, &l), -EIO);
		listed_free(&l);
	}

	/* HEAD */
	{
		uint64_t size = 0;

		fake_repeat(1, (struct fake_step){ F_REPLY, 200, NULL,
						   "X-Size: 1\r\n" });
		/* Content-Length 0: an empty object */
		CHECK_R(st->ops->head(st, "k", &size), 0);
		CHECK(size == 0 && strcmp(fake.log[0].method, "HEAD") == 0,
		      "head");
	}
	store_destroy(quick);
	store_destroy(st);

	/* configuration errors, before any request */
	{
		struct store_conf c = conf;
		static const struct {
			const char *spec, *endpoint, *expect;
			int vhost;
		} bad[] = {
			{ "s3://bkt/x", "http://127.0.0.1:1",
			  "not an IP address", 1 },
			{ "s3://bkt/x", "ftp://host", "give the URL", 0 },
			{ "s3://bkt/x", "http://host/path", "without a path",
			  0 },
			{ "s3://bkt/x", "http://user:pass-word@host/p",
			  "not in the URL", 0 },
			{ "s3://b*t/x", "http://host", "bucket name", 0 },
			{ "s3://bkt/a//b", "http://host", "bad prefix", 0 },
			{ "s3://bkt/.x", "http://host", "bad prefix", 0 },
		};

		c.s3_access_key = "AKFAKE";
		c.s3_secret_key = "fake-secret-value";
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			c.spec = bad[i].spec;
			c.s3_endpoint = bad[i].endpoint;
			c.s3_virtual_host = bad[i].vhost;
			log_len = 0;
			log_text[0] = '\0';
			fake_plan(0, NULL);
			st = store_open(&c);
			CHECK(!st && errno == EINVAL && fake_count() == 0,
			      "config %zu", i);
			CHECK(strstr(log_text, bad[i].expect),
			      "config %zu: \"%s\"", i, bad[i].expect);
			store_destroy(st);
		}
		c.s3_endpoint = "http://127.0.0.1:1";
		c.spec = "s3://bkt";
		c.s3_secret_key = NULL;
		log_len = 0;
		CHECK(!store_open(&c) && strstr(log_text, "given without"),
		      "half a key pair");
	}

	/* open: what the messages say */
	static const struct {
		struct fake_step step;
		const char *expect;
		int err;
	} opens[] = {
		{ { F_REPLY, 301, ERR_XML("PermanentRedirect"),
		    "x-amz-bucket-region: eu-west-3\r\n" },
		  "set s3-region=eu-west-3",
		  EINVAL },
		{ { F_REPLY, 200, "<html>hello</html>", NULL },
		  "does not answer like S3",
		  EIO },
		{ { F_REPLY, 403, ERR_XML("RequestTimeTooSkewed"), NULL },
		  "clock",
		  EACCES },
		{ { F_REPLY, 403, ERR_XML("AccessDenied"), NULL },
		  "may list, read and write the bucket",
		  EACCES },
		{ { F_REPLY, 500, ERR_XML("InternalError"), NULL },
		  "checking bucket bkt at",
		  EIO },
	};
	for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
		fake_repeat(FAKE_PLAN, opens[i].step);
		log_len = 0;
		log_text[0] = '\0';
		st = fake_open(endpoint, 400, 3000);
		CHECK(!st && errno == opens[i].err, "open %zu: errno %d", i,
		      errno);
		CHECK(strstr(log_text, opens[i].expect), "open %zu: \"%s\"", i,
		      opens[i].expect);
		store_destroy(st);
	}

	fake_stop();
	return failures ? 1 : 0;
}

/* ---- main ------------------------------------------------------------- */

static char tmpdir[256];

static void usage(void)
{
	fprintf(stderr, "usage: test-store [--mode=conform|open-fail|smoke|"
			"outage|xml|faults] [OPTIONS] [SPEC]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	enum {
		O_MODE = 256,
		O_ENDPOINT,
		O_REGION,
		O_AK,
		O_SK,
		O_CREDS,
		O_PROFILE,
		O_VHOST,
		O_TIMEOUT,
		O_RETRY,
		O_CONN,
		O_EXPECT,
		O_FORBID,
		O_MAXOPEN,
		O_SECONDS,
		O_THREADS,
		O_KEYS,
		O_CA,
		O_INSECURE,
	};
	static const struct option opts[] = {
		{ "mode", 1, NULL, O_MODE },
		{ "endpoint", 1, NULL, O_ENDPOINT },
		{ "region", 1, NULL, O_REGION },
		{ "access-key", 1, NULL, O_AK },
		{ "secret-key", 1, NULL, O_SK },
		{ "credentials-file", 1, NULL, O_CREDS },
		{ "profile", 1, NULL, O_PROFILE },
		{ "virtual-host", 0, NULL, O_VHOST },
		{ "timeout-ms", 1, NULL, O_TIMEOUT },
		{ "retry-ms", 1, NULL, O_RETRY },
		{ "connections", 1, NULL, O_CONN },
		{ "expect", 1, NULL, O_EXPECT },
		{ "forbid", 1, NULL, O_FORBID },
		{ "max-open-ms", 1, NULL, O_MAXOPEN },
		{ "seconds", 1, NULL, O_SECONDS },
		{ "threads", 1, NULL, O_THREADS },
		{ "keys", 1, NULL, O_KEYS },
		{ "ca-bundle", 1, NULL, O_CA },
		{ "insecure", 0, NULL, O_INSECURE },
		{ NULL, 0, NULL, 0 },
	};
	int c, r;

	conf.log.fn = test_log;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_MODE:
			mode = optarg;
			break;
		case O_ENDPOINT:
			conf.s3_endpoint = optarg;
			break;
		case O_REGION:
			conf.s3_region = optarg;
			break;
		case O_AK:
			conf.s3_access_key = optarg;
			break;
		case O_SK:
			conf.s3_secret_key = optarg;
			break;
		case O_CREDS:
			conf.s3_credentials_file = optarg;
			break;
		case O_PROFILE:
			conf.s3_profile = optarg;
			break;
		case O_VHOST:
			conf.s3_virtual_host = 1;
			break;
		case O_TIMEOUT:
			conf.s3_timeout_ms = (unsigned)atoi(optarg);
			break;
		case O_RETRY:
			conf.s3_retry_ms = (unsigned)atoi(optarg);
			break;
		case O_CONN:
			conf.s3_connections = (unsigned)atoi(optarg);
			break;
		case O_EXPECT:
			if (nexpect < 8)
				expect[nexpect++] = optarg;
			break;
		case O_FORBID:
			if (nforbid < 8)
				forbid[nforbid++] = optarg;
			break;
		case O_MAXOPEN:
			max_open_ms = (unsigned)atoi(optarg);
			break;
		case O_SECONDS:
			seconds = (unsigned)atoi(optarg);
			break;
		case O_THREADS:
			nthreads = (unsigned)atoi(optarg);
			if (nthreads < 1 || nthreads > 64)
				usage();
			break;
		case O_KEYS:
			nlist = (unsigned)atoi(optarg);
			break;
		case O_CA:
			conf.s3_ca_bundle = optarg;
			break;
		case O_INSECURE:
			conf.s3_insecure = 1;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 < argc)
		usage();
	if (strcmp(mode, "xml") == 0 || strcmp(mode, "faults") == 0) {
		r = mode[0] == 'x' ? xml() : faults();
		fprintf(stderr, "%s: %s\n", r ? "FAIL" : "PASS", mode);
		return r;
	}

	conf.spec = optind < argc ? argv[optind] : getenv("TIERBD_TEST_STORE");
	if (!conf.spec || !*conf.spec) {
		const char *t = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/test-store.XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			return 1;
		}
		static char spec[300];
		/* a subdirectory: the store creates it */
		snprintf(spec, sizeof(spec), "dir:%s/store/", tmpdir);
		conf.spec = spec;
	}
	is_s3 = strncmp(conf.spec, "s3://", 5) == 0;

	if (strcmp(mode, "conform") == 0)
		r = conform();
	else if (strcmp(mode, "open-fail") == 0)
		r = open_fail();
	else if (strcmp(mode, "smoke") == 0)
		r = smoke();
	else if (strcmp(mode, "outage") == 0)
		r = outage();
	else
		usage();

	if (tmpdir[0]) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	if (failures)
		r = 1;
	fprintf(stderr, "%s: %s %s\n", r ? "FAIL" : "PASS", mode, conf.spec);
	return r;
}
