/* replay.c - replay a block trace through the engine's tiering policy
 * (server/policy.c, linked as is), beside LRU and Belady's OPT.
 *
 *   replay [options] TRACE
 *
 * TRACE is the engine's trace=FILE format, one request per line:
 *     <microseconds since start> <R|W|T|Z|F> <offset> <length>
 * Lines starting with '#' are comments; bench/policy/gen writes one
 * giving the geometry ("# tierbd-trace size=... chunk=... populated=1
 * name=...").  Without populated=1 (or --populated) the device starts
 * empty, every chunk ABSENT, as a newly created tierbd device does.
 *
 * Every request is applied to a model of the device that follows the
 * engine's chunk states (server/device.c), which depend on the trace
 * only, not on what is cached:
 *   R  each chunk touched is an access, unless it is ABSENT (never
 *      written, or trimmed): the engine serves zeros without the cache;
 *   W  each chunk touched is an access; the chunk becomes present;
 *   T  whole chunks become ABSENT and leave the cache; parts: nothing;
 *   Z  whole chunks as T; a part of a present chunk is a write access;
 *   F  nothing.
 * Hit ratio = hits / accesses, one access per (request, chunk) pair.
 * An access to a chunk not in the cache is a miss (a fetch, or a slot
 * for a first write), and the chunk is admitted: every policy here
 * must cache what it serves, as the engine does.
 *
 * tierbd: the calls server/device.c makes, in its order:
 *   device_read/device_write: seq = policy_note_io(off, len)
 *   per chunk (chunk_read skips ABSENT chunks; a partial zero goes to
 *   chunk_write with seq = false):
 *     policy_touch(heat, tick, now, seq)
 *     cached: a hit; policy_hit(slot) unless seq
 *     else:   slot_alloc: a free slot, or a synchronous batch of
 *             min(64, slots/32) victims (policy_victim, policy_remove);
 *             then policy_admit(slot, chunk, heat, seq, pinned=false);
 *             a partial write to a COLD chunk (fetch, then the write
 *             lands on the slot) also does policy_hit unless seq;
 *             over the high watermark (cache-high, 95% of the slots)
 *             the background evictor (server/pull.c) evicts down to
 *             the low one (cache-low, 85%): here at once, as it runs
 *             as soon as slot_alloc signals it;
 *             a fetch (read, partial write of a COLD chunk) first
 *             tries to take back the slot the chunk was evicted from
 *             (server/cache.c: free slots are handed out oldest freed
 *             first; a victim record per free slot, found through a
 *             direct-mapped hint table of one entry per slot, dropped
 *             when the slot is handed out, when the chunk is written
 *             whole or trimmed, or when another eviction takes the
 *             hint entry): that is counted as a hit, since no store
 *             GET is made, but the policy sees it as the engine does,
 *             a miss admitted with policy_admit (--no-reclaim: off);
 *   whole-chunk trim/zero of a cached chunk: policy_remove(slot).
 * The heat and tick of every chunk live here, as the engine keeps them
 * in its map; now = the trace's time in whole seconds (the engine: the
 * device's age).  Nothing is ever dirty, busy or pinned in a replay, so
 * policy_skip is never called: write-back does not hold chunks in the
 * cache as it does in the engine.
 * tierbd_policy: the same without watermarks or batches (one victim per
 *      miss when the cache is full): the policy alone, at the same size
 *      as LRU and OPT.
 * LRU: the least recently accessed chunk goes.
 * OPT: Belady's MIN: the cached chunk whose next access is farthest
 *      (never, or only after it is trimmed, counts as farthest).
 * STATIC: not a cache; the hits of holding the N most accessed chunks
 *      of the whole trace from their first access: the best a policy
 *      without foresight can do on a stationary trace (on Zipf, OPT's
 *      foresight of each next access is worth more than any online
 *      policy can get).
 *
 * Output: one tab-separated line per cache size (hits in each column):
 *   trace pct slots accesses tierbd tierbd_policy lru opt static
 *   small_accesses tierbd_small lru_small opt_small
 * where small_* count only the accesses of requests of at most
 * SMALL_MAX bytes (on the Zipf traces: the random reads, without the
 * scans' 128 KiB requests); with --stats, the policy's counters on
 * stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/policy.h"

#define NONE UINT32_MAX
#define SMALL_MAX 65536 /* bytes: a "small" request (see Output) */

enum ev_kind { EV_ACCESS, EV_DROP };

struct req {
	uint64_t off;
	uint32_t len;
	uint32_t now; /* seconds */
	char op;
};

static struct {
	uint64_t size, chunk_size;
	unsigned chunk_shift;
	uint32_t half_life;
	unsigned probation_pct;
	const char *name;
	bool stats;
	unsigned cache_high, cache_low; /* percent: the engine's watermarks */
	bool no_reclaim;		/* model the engine before reclaim */
	double pcts[16];
	unsigned npcts;
} opt = {
	.half_life = 0,	  /* the policy's default */
	.cache_high = 95, /* the engine's defaults (cache-high, cache-low) */
	.cache_low = 85,
};

static bool present_at_start; /* --populated, or populated=1 */
static struct req *reqs;
static size_t nreqs;
static uint64_t nchunks;

/* The event sequence, the same for every policy. */
static uint32_t *ev_chunk;
static uint8_t *ev_kind;
static uint8_t *ev_small; /* the access is by a request <= SMALL_MAX */
static size_t nev, naccess, nsmall;

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p) {
		perror("replay: calloc");
		exit(1);
	}
	return p;
}

static void die(const char *msg)
{
	fprintf(stderr, "replay: %s\n", msg);
	exit(1);
}

/* ---- reading the trace ----------------------------------------------- */

static void read_trace(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char line[512];
	size_t cap = 1 << 20, lineno = 0;
	uint64_t hdr_size = 0, hdr_chunk = 0, maxend = 0;
	static char name[128];

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	reqs = xcalloc(cap, sizeof(*reqs));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long us, off, len;
		char op;
		char *p;

		lineno++;
		if (line[0] == '#') {
			if ((p = strstr(line, "size=")))
				hdr_size = strtoull(p + 5, NULL, 10);
			if ((p = strstr(line, "chunk=")))
				hdr_chunk = strtoull(p + 6, NULL, 10);
			if ((p = strstr(line, "populated=")))
				present_at_start |= p[10] == '1';
			if ((p = strstr(line, "name=")) &&
			    sscanf(p + 5, "%127s", name) == 1 && !opt.name)
				opt.name = name;
			continue;
		}
		if (line[0] == '\n')
			continue;
		if (sscanf(line, "%llu %c %llu %llu", &us, &op, &off, &len) !=
			    4 ||
		    !strchr("RWTZF", op) || len > UINT32_MAX) {
			fprintf(stderr, "replay: %s:%zu: bad line: %s", path,
				lineno, line);
			exit(1);
		}
		if (nreqs == cap) {
			cap *= 2;
			reqs = realloc(reqs, cap * sizeof(*reqs));
			if (!reqs)
				die("out of memory");
		}
		reqs[nreqs++] = (struct req){ .off = off,
					      .len = (uint32_t)len,
					      .now = (uint32_t)(us / 1000000),
					      .op = op };
		if (op != 'F' && off + len > maxend)
			maxend = off + len;
	}
	if (ferror(f))
		die("read error");
	if (f != stdin)
		fclose(f);
	if (!opt.chunk_size)
		opt.chunk_size = hdr_chunk ? hdr_chunk : 1 << 20;
	if (!opt.size)
		opt.size = hdr_size ? hdr_size : maxend;
	if (opt.chunk_size & (opt.chunk_size - 1))
		die("chunk size is not a power of two");
	while ((1ull << opt.chunk_shift) < opt.chunk_size)
		opt.chunk_shift++;
	if (maxend > opt.size)
		die("a request ends beyond the device size");
	nchunks = (opt.size + opt.chunk_size - 1) >> opt.chunk_shift;
	if (nchunks >= NONE)
		die("too many chunks");
	if (!opt.name)
		opt.name = path;
}

/* ---- the device model: the event sequence ---------------------------- */

/* Split request r into its chunks: c is the chunk, whole says the
 * piece covers all of it.  The model's presence bitmap is the only
 * state, so every policy sees the same events. */
#define FOR_EACH_PIECE(r, c, whole)                                          \
	for (uint64_t _pos = (r)->off, _end = (r)->off + (r)->len, c, _next; \
	     _pos < _end; _pos = _next)                                      \
		if (c = _pos >> opt.chunk_shift,                             \
		    _next = MIN_END((c + 1) << opt.chunk_shift, _end),       \
		    whole = _next - _pos == opt.chunk_size, true)
#define MIN_END(a, b) ((a) < (b) ? (a) : (b))

/* What happens to chunk c in request r; updates presence. */
static int piece_kind(const struct req *r, uint64_t c, bool whole,
		      uint8_t *present)
{
	switch (r->op) {
	case 'R':
		return present[c] ? EV_ACCESS : -1;
	case 'W':
		present[c] = 1;
		return EV_ACCESS;
	case 'T':
		if (!whole)
			return -1;
		present[c] = 0;
		return EV_DROP;
	case 'Z':
		if (whole) {
			present[c] = 0;
			return EV_DROP;
		}
		return present[c] ? EV_ACCESS : -1;
	}
	return -1;
}

static void build_events(void)
{
	uint8_t *present = xcalloc(nchunks, 1);
	size_t cap = nreqs + 16;

	memset(present, present_at_start, nchunks);
	ev_chunk = xcalloc(cap, sizeof(*ev_chunk));
	ev_kind = xcalloc(cap, 1);
	ev_small = xcalloc(cap, 1);
	for (size_t i = 0; i < nreqs; i++) {
		const struct req *r = &reqs[i];
		bool whole;

		FOR_EACH_PIECE(r, c, whole)
		{
			int k = piece_kind(r, c, whole, present);
			if (k < 0)
				continue;
			if (nev == cap) {
				cap *= 2;
				ev_chunk = realloc(ev_chunk,
						   cap * sizeof(*ev_chunk));
				ev_kind = realloc(ev_kind, cap);
				ev_small = realloc(ev_small, cap);
				if (!ev_chunk || !ev_kind || !ev_small)
					die("out of memory");
			}
			ev_chunk[nev] = (uint32_t)c;
			ev_kind[nev] = (uint8_t)k;
			ev_small[nev++] = r->len <= SMALL_MAX;
			naccess += k == EV_ACCESS;
			nsmall += k == EV_ACCESS && r->len <= SMALL_MAX;
		}
	}
	free(present);
}

/* ---- tierbd: the engine's policy -------------------------------------- */

struct heat {
	uint32_t heat, tick;
};

static void heat_of(void *opaque, uint64_t chunk, uint32_t *heat,
		    uint32_t *tick)
{
	const struct heat *h = opaque;

	*heat = h[chunk].heat;
	*tick = h[chunk].tick;
}

/* The engine's cache: slots, the policy, and its eviction
 * (server/device.c slot_alloc and dev_evict, server/pull.c bg_worker),
 * and the allocator (server/cache.c): free slots oldest freed first,
 * victim records. */
struct tcache {
	struct policy *p;
	struct heat *heat;
	uint32_t *slot_of;	 /* per chunk: its slot, or NONE */
	uint32_t *fnext, *fprev; /* free FIFO links */
	uint32_t fhead, ftail;
	uint32_t *vowner; /* per free slot: the chunk it still holds */
	uint32_t *hint;	  /* per chunk % nslots: slot of its record */
	uint64_t nslots, nfree, high, low, batch, reclaims;
};

static void t_push_free(struct tcache *t, uint32_t s)
{
	t->fnext[s] = NONE;
	t->fprev[s] = t->ftail;
	if (t->ftail != NONE)
		t->fnext[t->ftail] = s;
	else
		t->fhead = s;
	t->ftail = s;
	t->nfree++;
}

static void t_unlink_free(struct tcache *t, uint32_t s)
{
	if (t->fprev[s] != NONE)
		t->fnext[t->fprev[s]] = t->fnext[s];
	else
		t->fhead = t->fnext[s];
	if (t->fnext[s] != NONE)
		t->fprev[t->fnext[s]] = t->fprev[s];
	else
		t->ftail = t->fprev[s];
	t->nfree--;
}

static void t_victim_clear(struct tcache *t, uint32_t s)
{
	uint32_t *h;

	if (t->vowner[s] == NONE)
		return;
	h = &t->hint[t->vowner[s] % t->nslots];
	if (*h == s)
		*h = NONE;
	t->vowner[s] = NONE;
}

/* cache_free / cache_free_victim (victim = NONE: no record). */
static void t_free(struct tcache *t, uint32_t s, uint32_t victim)
{
	t_victim_clear(t, s);
	if (victim != NONE && !opt.no_reclaim) {
		uint32_t *h = &t->hint[victim % t->nslots];

		if (*h != NONE)
			t_victim_clear(t, *h);
		t->vowner[s] = victim;
		*h = s;
	}
	t_push_free(t, s);
}

/* cache_forget: chunk c's content changes. */
static void t_forget(struct tcache *t, uint64_t c)
{
	uint32_t s = t->hint[c % t->nslots];

	if (s != NONE && t->vowner[s] == c)
		t_victim_clear(t, s);
}

/* cache_reclaim (the engine then checks the content: it matches in a
 * replay). */
static uint32_t t_reclaim(struct tcache *t, uint64_t c)
{
	uint32_t s = t->hint[c % t->nslots];

	if (s == NONE || t->vowner[s] != c)
		return NONE;
	t_victim_clear(t, s);
	t_unlink_free(t, s);
	t->reclaims++;
	return s;
}

/* dev_evict: up to `want` victims in the policy's order.  Nothing is
 * dirty, busy or pinned here, so every victim offered is evicted. */
static uint64_t t_evict(struct tcache *t, uint64_t want, uint32_t now)
{
	uint64_t freed = 0;

	while (freed < want) {
		uint32_t s;
		uint64_t victim;

		if (policy_victim(t->p, now, &s, &victim) < 0)
			break;
		if (victim >= nchunks || t->slot_of[victim] != s)
			die("policy_victim named a slot its chunk does not "
			    "hold");
		t->slot_of[victim] = NONE;
		policy_remove(t->p, s);
		t_free(t, s, (uint32_t)victim);
		freed++;
	}
	return freed;
}

/* slot_alloc: a free slot, evicting a batch synchronously if there is
 * none; then, over the high watermark, the background evictor brings
 * the cache down to the low one.  It runs as soon as it is signalled,
 * long before the next request at these rates: here, at once. */
static uint32_t t_slot_alloc(struct tcache *t, uint32_t now)
{
	uint32_t s;

	while (!t->nfree)
		if (!t_evict(t, t->batch, now))
			die("nothing to evict");
	s = t->fhead; /* the oldest freed */
	t_unlink_free(t, s);
	t_victim_clear(t, s);
	return s;
}

/* Over the high watermark after taking a slot (slot_alloc, or a
 * reclaim): the background evictor down to the low one. */
static void t_watermark(struct tcache *t, uint32_t now)
{
	while (t->nslots - t->nfree > t->high) {
		uint64_t used = t->nslots - t->nfree;
		uint64_t n = used - t->low < 1024 ? used - t->low : 1024;
		if (!t_evict(t, n, now))
			break;
	}
}

/* A miss: fetch (read, partial write) or fill_new (first write, whole
 * chunk write): a slot, then policy_admit with the chunk's heat.  A
 * fetch first tries to take back the slot c was evicted from: true if
 * it did (no store GET). */
static bool t_admit(struct tcache *t, uint64_t c, uint32_t now, bool seq,
		    bool fetch)
{
	uint32_t s = fetch ? t_reclaim(t, c) : NONE;
	bool reclaimed = s != NONE;

	if (!fetch)
		t_forget(t, c);
	if (!reclaimed)
		s = t_slot_alloc(t, now);
	t_watermark(t, now);
	t->slot_of[c] = s;
	policy_admit(t->p, s, c, t->heat[c].heat, seq, false);
	return reclaimed;
}

static uint64_t run_tierbd(uint64_t nslots, bool policy_only,
			   uint64_t *small_hits)
{
	struct tcache t = { .nslots = nslots };
	uint8_t *present = xcalloc(nchunks, 1);
	uint64_t hits = 0, accesses = 0, events = 0;
	struct policy_conf conf = { .nslots = nslots,
				    .half_life = opt.half_life,
				    .probation_pct = opt.probation_pct };

	/* devopen.c: the watermarks; device.c: the synchronous batch. */
	t.high = nslots * opt.cache_high / 100;
	t.low = nslots * opt.cache_low / 100;
	if (t.high >= nslots)
		t.high = nslots - 1;
	if (t.low > t.high)
		t.low = t.high;
	t.batch = nslots / 32 < 64 ? nslots / 32 : 64;
	if (t.batch < 1)
		t.batch = 1;
	if (policy_only) {
		t.high = nslots; /* never: evict one victim per miss */
		t.batch = 1;
	}
	t.heat = xcalloc(nchunks, sizeof(*t.heat));
	t.slot_of = xcalloc(nchunks, sizeof(*t.slot_of));
	t.fnext = xcalloc(nslots, sizeof(*t.fnext));
	t.fprev = xcalloc(nslots, sizeof(*t.fprev));
	t.vowner = xcalloc(nslots, sizeof(*t.vowner));
	t.hint = xcalloc(nslots, sizeof(*t.hint));
	t.p = policy_new(&conf, heat_of, t.heat);
	if (!t.p)
		die("policy_new failed");
	memset(present, present_at_start, nchunks);
	for (uint64_t i = 0; i < nchunks; i++)
		t.slot_of[i] = NONE;
	t.fhead = t.ftail = NONE;
	for (uint64_t i = 0; i < nslots; i++) {
		t.vowner[i] = NONE;
		t.hint[i] = NONE;
		t_push_free(&t, (uint32_t)i);
	}

	for (size_t i = 0; i < nreqs; i++) {
		const struct req *r = &reqs[i];
		uint32_t now = r->now;
		bool seq = false, whole;

		/* device_read, device_write: one call per request.  A
		 * partial zero goes to chunk_write with seq = false. */
		if (r->op == 'R' || r->op == 'W')
			seq = policy_note_io(t.p, r->off, r->len,
					     opt.chunk_shift);
		FOR_EACH_PIECE(r, c, whole)
		{
			bool was_present = present[c];
			int k = piece_kind(r, c, whole, present);
			if (k < 0)
				continue;
			if (ev_chunk[events] != c || ev_kind[events] != k)
				die("tierbd replay diverged from the events");
			events++;
			if (k == EV_DROP) { /* chunk_discard, dev_slot_free */
				t_forget(&t, c);
				if (t.slot_of[c] != NONE) {
					policy_remove(t.p, t.slot_of[c]);
					t_free(&t, t.slot_of[c], NONE);
					t.slot_of[c] = NONE;
				}
				continue;
			}
			accesses++;
			policy_touch(t.p, &t.heat[c].heat, &t.heat[c].tick, now,
				     seq);
			if (t.slot_of[c] != NONE) {
				hits++;
				*small_hits += ev_small[events - 1];
				if (!seq)
					policy_hit(t.p, t.slot_of[c]);
				continue;
			}
			bool got;
			if (r->op == 'R') { /* chunk_read: fetch */
				got = t_admit(&t, c, now, seq, true);
			} else if (!was_present || whole) { /* fill_new */
				got = t_admit(&t, c, now, seq, false);
			} else {
				/* chunk_write of part of a COLD chunk: fetch,
				 * then the write lands on the slot as on a
				 * hit (policy_hit unless sequential). */
				got = t_admit(&t, c, now, seq, true);
				if (!seq)
					policy_hit(t.p, t.slot_of[c]);
			}
			if (got) { /* taken back: no store GET */
				hits++;
				*small_hits += ev_small[events - 1];
			}
		}
	}
	if (accesses != naccess)
		die("tierbd replay counted other accesses");
	if (opt.stats) {
		struct policy_stats st;
		policy_get_stats(t.p, &st);
		fprintf(stderr,
			"%s %" PRIu64 " slots: probation %" PRIu64
			" main %" PRIu64 " promotions %" PRIu64
			" ghost_admits %" PRIu64 " seq_admits %" PRIu64
			" victims_probation %" PRIu64 " victims_main %" PRIu64
			" seq_streams %" PRIu64 " tau %" PRIu64
			" regrets_freq %" PRIu64 " regrets_recency %" PRIu64
			" reclaims %" PRIu64 "%s\n",
			opt.name, nslots, st.probation, st.main, st.promotions,
			st.ghost_admits, st.seq_admits, st.victims_probation,
			st.victims_main, st.seq_streams, st.tau,
			st.regrets_freq, st.regrets_recency, t.reclaims,
			policy_only ? " (policy alone)" : "");
	}
	policy_free(t.p);
	free(t.heat);
	free(t.slot_of);
	free(t.fnext);
	free(t.fprev);
	free(t.vowner);
	free(t.hint);
	free(present);
	return hits;
}

/* ---- LRU ------------------------------------------------------------- */

static uint64_t run_lru(uint64_t nslots, uint64_t *small_hits)
{
	uint32_t *prev = xcalloc(nchunks, sizeof(*prev));
	uint32_t *next = xcalloc(nchunks, sizeof(*next));
	uint8_t *in = xcalloc(nchunks, 1);
	uint32_t head = NONE, tail = NONE; /* head: most recent */
	uint64_t used = 0, hits = 0;

#define UNLINK(c)                                \
	do {                                     \
		if (prev[c] != NONE)             \
			next[prev[c]] = next[c]; \
		else                             \
			head = next[c];          \
		if (next[c] != NONE)             \
			prev[next[c]] = prev[c]; \
		else                             \
			tail = prev[c];          \
	} while (0)
#define PUSH_HEAD(c)                    \
	do {                            \
		prev[c] = NONE;         \
		next[c] = head;         \
		if (head != NONE)       \
			prev[head] = c; \
		else                    \
			tail = c;       \
		head = c;               \
	} while (0)

	for (size_t i = 0; i < nev; i++) {
		uint32_t c = ev_chunk[i];

		if (ev_kind[i] == EV_DROP) {
			if (in[c]) {
				UNLINK(c);
				in[c] = 0;
				used--;
			}
			continue;
		}
		if (in[c]) {
			hits++;
			*small_hits += ev_small[i];
			UNLINK(c);
		} else {
			if (used == nslots) {
				uint32_t v = tail;
				UNLINK(v);
				in[v] = 0;
				used--;
			}
			in[c] = 1;
			used++;
		}
		PUSH_HEAD(c);
	}
#undef UNLINK
#undef PUSH_HEAD
	free(prev);
	free(next);
	free(in);
	return hits;
}

/* ---- OPT (Belady) ---------------------------------------------------- */

static uint64_t *next_use; /* per event; >= nev: never (unique) */

static void build_next_use(void)
{
	uint64_t *last = xcalloc(nchunks, sizeof(*last));

	next_use = xcalloc(nev, sizeof(*next_use));
	for (uint64_t c = 0; c < nchunks; c++)
		last[c] = UINT64_MAX;
	for (size_t i = nev; i-- > 0;) {
		uint32_t c = ev_chunk[i];

		if (ev_kind[i] == EV_DROP) {
			last[c] = UINT64_MAX;
			continue;
		}
		next_use[i] = last[c] == UINT64_MAX ? nev + i : last[c];
		last[c] = i;
	}
	free(last);
}

struct hent {
	uint64_t key;
	uint32_t chunk;
};

static uint64_t run_opt(uint64_t nslots, uint64_t *small_hits)
{
	/* Max-heap of (next use, chunk) with lazy deletion: an entry is
	 * current if its chunk is cached with that key. */
	size_t hcap = nslots + 1024, hn = 0;
	struct hent *h = xcalloc(hcap, sizeof(*h));
	uint64_t *key = xcalloc(nchunks, sizeof(*key));
	uint8_t *in = xcalloc(nchunks, 1);
	uint64_t used = 0, hits = 0;

	for (size_t i = 0; i < nev; i++) {
		uint32_t c = ev_chunk[i];

		if (ev_kind[i] == EV_DROP) {
			if (in[c]) {
				in[c] = 0;
				used--;
			}
			continue;
		}
		if (in[c]) {
			hits++;
			*small_hits += ev_small[i];
		} else {
			while (used == nslots) {
				struct hent top = h[0];
				/* pop */
				h[0] = h[--hn];
				for (size_t j = 0;;) {
					size_t l = 2 * j + 1, r = l + 1, m = j;
					if (l < hn && h[l].key > h[m].key)
						m = l;
					if (r < hn && h[r].key > h[m].key)
						m = r;
					if (m == j)
						break;
					struct hent t = h[j];
					h[j] = h[m];
					h[m] = t;
					j = m;
				}
				if (in[top.chunk] &&
				    key[top.chunk] == top.key) {
					in[top.chunk] = 0;
					used--;
				}
			}
			in[c] = 1;
			used++;
		}
		key[c] = next_use[i];
		/* push */
		if (hn == hcap) {
			/* Rebuild from the cached set when stale entries
			 * fill the heap. */
			size_t w = 0;
			for (size_t j = 0; j < hn; j++)
				if (in[h[j].chunk] &&
				    key[h[j].chunk] == h[j].key)
					h[w++] = h[j];
			hn = w;
			if (hn > hcap / 2) {
				hcap *= 2;
				h = realloc(h, hcap * sizeof(*h));
				if (!h)
					die("out of memory");
			}
			/* heapify */
			for (size_t k = hn / 2; k-- > 0;) {
				for (size_t j = k;;) {
					size_t l = 2 * j + 1, r = l + 1, m = j;
					if (l < hn && h[l].key > h[m].key)
						m = l;
					if (r < hn && h[r].key > h[m].key)
						m = r;
					if (m == j)
						break;
					struct hent t = h[j];
					h[j] = h[m];
					h[m] = t;
					j = m;
				}
			}
		}
		h[hn] = (struct hent){ next_use[i], c };
		for (size_t j = hn++; j > 0;) {
			size_t pj = (j - 1) / 2;
			if (h[pj].key >= h[j].key)
				break;
			struct hent t = h[j];
			h[j] = h[pj];
			h[pj] = t;
			j = pj;
		}
	}
	free(h);
	free(key);
	free(in);
	return hits;
}

/* ---- STATIC: the most accessed chunks, held from their first access */

static uint64_t *static_sorted; /* accesses per chunk, descending */

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void build_static(void)
{
	static_sorted = xcalloc(nchunks, sizeof(*static_sorted));
	for (size_t i = 0; i < nev; i++)
		if (ev_kind[i] == EV_ACCESS)
			static_sorted[ev_chunk[i]]++;
	qsort(static_sorted, nchunks, sizeof(*static_sorted), cmp_desc);
}

static uint64_t run_static(uint64_t nslots)
{
	uint64_t hits = 0;

	for (uint64_t i = 0; i < nslots && i < nchunks; i++)
		hits += static_sorted[i] ? static_sorted[i] - 1 : 0;
	return hits;
}

/* ---- main ------------------------------------------------------------ */

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		goto bad;
	switch (*end) {
	case 'K':
		v <<= 10;
		break;
	case 'M':
		v <<= 20;
		break;
	case 'G':
		v <<= 30;
		break;
	case 0:
		break;
	default:
		goto bad;
	}
	return v;
bad:
	fprintf(stderr, "replay: bad %s: %s\n", what, s);
	exit(2);
}

static void usage(void)
{
	fprintf(stderr, "usage: replay [--size BYTES] [--chunk-size BYTES] "
			"[--half-life S]\n"
			"              [--probation-pct P] [--pcts 5,10,20,40] "
			"[--populated]\n"
			"              [--cache-high PCT] [--cache-low PCT] "
			"[--no-reclaim]\n"
			"              [--name NAME] [--stats] TRACE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "half-life", required_argument, NULL, 'h' },
		{ "probation-pct", required_argument, NULL, 'p' },
		{ "pcts", required_argument, NULL, 'P' },
		{ "populated", no_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "stats", no_argument, NULL, 'S' },
		{ "cache-high", required_argument, NULL, 'H' },
		{ "cache-low", required_argument, NULL, 'L' },
		{ "no-reclaim", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pcts = "5,10,20,40";
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.size = parse_u64(optarg, "--size");
			break;
		case 'c':
			opt.chunk_size = parse_u64(optarg, "--chunk-size");
			break;
		case 'h':
			opt.half_life =
				(uint32_t)parse_u64(optarg, "--half-life");
			break;
		case 'p':
			opt.probation_pct =
				(unsigned)parse_u64(optarg, "--probation-pct");
			break;
		case 'P':
			pcts = optarg;
			break;
		case 'o':
			present_at_start = true;
			break;
		case 'n':
			opt.name = optarg;
			break;
		case 'S':
			opt.stats = true;
			break;
		case 'H':
			opt.cache_high =
				(unsigned)parse_u64(optarg, "--cache-high");
			break;
		case 'L':
			opt.cache_low =
				(unsigned)parse_u64(optarg, "--cache-low");
			break;
		case 'R':
			opt.no_reclaim = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || opt.cache_high > 100 ||
	    opt.cache_low >= opt.cache_high)
		usage();
	for (const char *s = pcts; *s && opt.npcts < 16;) {
		char *end;
		double v = strtod(s, &end);
		if (end == s || v <= 0 || v > 100)
			usage();
		opt.pcts[opt.npcts++] = v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			usage();
	}

	read_trace(argv[optind]);
	build_events();
	build_next_use();
	build_static();
	printf("# trace\tpct\tslots\taccesses\ttierbd\ttierbd_policy\tlru\topt"
	       "\tstatic\tsmall_accesses\ttierbd_small\tlru_small\topt_"
	       "small\n");
	for (unsigned i = 0; i < opt.npcts; i++) {
		uint64_t nslots = (uint64_t)(nchunks * opt.pcts[i] / 100 + 0.5);
		uint64_t ts = 0, tps = 0, ls = 0, os = 0;
		if (nslots < 1)
			nslots = 1;
		uint64_t t = run_tierbd(nslots, false, &ts);
		uint64_t tp = run_tierbd(nslots, true, &tps);
		uint64_t l = run_lru(nslots, &ls);
		uint64_t o = run_opt(nslots, &os);
		printf("%s\t%g\t%" PRIu64 "\t%zu\t%" PRIu64 "\t%" PRIu64
		       "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%zu\t%" PRIu64
		       "\t%" PRIu64 "\t%" PRIu64 "\n",
		       opt.name, opt.pcts[i], nslots, naccess, t, tp, l, o,
		       run_static(nslots), nsmall, ts, ls, os);
		fflush(stdout);
	}
	return 0;
}
