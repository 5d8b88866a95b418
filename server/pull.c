/* pull.c - background eviction, prioritised pulls, rate limits, pins.
 *
 * Background work never sits on a client's path.  Demand fetches (a
 * client's miss) run on the client's own thread, so they never queue
 * behind anything; everything else is here:
 *
 *   the evictor   one thread: when the cache is fuller than cache-high
 *                 (percent of the slots) it evicts in the policy's order
 *                 down to cache-low, so a miss or a first write usually
 *                 finds a free slot; the gap is the hysteresis.
 *   the pullers   pull-threads threads (default 4, the in-flight cap of
 *                 background fetches) take COLD chunks from four queues,
 *                 highest priority first (DESIGN "Background work"):
 *                   PINNED     pinned chunks not hot yet
 *                   WARM       warm restart: the previous session's hot
 *                              chunks, hottest first
 *                   READAHEAD  chunks ahead of a sequential stream
 *                              (readahead=, admitted at the cold end)
 *                   HYDRATE    every chunk, with prefetch=all
 *                 WARM and HYDRATE never make room: they stop at the low
 *                 watermark rather than evict what clients use.
 *   rate limits   pull-rate= and push-rate= (bytes/s) are token buckets
 *                 in front of background fetches and uploads; demand
 *                 fetches are not limited.
 *
 * A chunk is queued once (CE_F_PULLQ, run-time) until a puller takes it.
 *
 * Pins: a pinned chunk (CE_F_PINNED, persisted in the map) is never
 * evicted.  Pins are byte ranges given at start (pin=) or at run time
 * (device_pin); they may cover at most 90% of the cache, so that the
 * rest of the device can still be served.
 */
#include <errno.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/parse.h"
#include "device_priv.h"

#define PIN_MAX_PCT 90
#define WARM_MIN_HEAT HEAT_ONE /* pulled at start if at least this warm */

/* ---- token buckets ---------------------------------------------------- */

void tb_init(struct tbucket *tb, uint64_t rate)
{
	pthread_mutex_init(&tb->lock, NULL);
	tb->rate = rate;
	tb->tokens = (double)rate; /* a second's burst */
	tb->last_ns = 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

void tb_take(struct tbucket *tb, uint64_t n)
{
	double wait_s = 0;

	if (!tb->rate)
		return;
	pthread_mutex_lock(&tb->lock);
	uint64_t now = mono_ns();
	if (tb->last_ns)
		tb->tokens +=
			(double)(now - tb->last_ns) * 1e-9 * (double)tb->rate;
	if (tb->tokens > (double)tb->rate)
		tb->tokens = (double)tb->rate;
	tb->last_ns = now;
	/* Take now, pay later: the debt is slept off outside the lock. */
	tb->tokens -= (double)n;
	if (tb->tokens < 0)
		wait_s = -tb->tokens / (double)tb->rate;
	pthread_mutex_unlock(&tb->lock);
	if (wait_s > 0) {
		struct timespec ts = {
			(time_t)wait_s,
			(long)((wait_s - (double)(time_t)wait_s) * 1e9)
		};
		nanosleep(&ts, NULL);
	}
}

/* ---- the pull queues --------------------------------------------------- */

static void q_push(struct pullq *q, uint64_t idx)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap ? 2 * q->cap : 64;
		uint64_t *n = malloc(ncap * sizeof(*n));

		if (!n)
			return; /* a pull is an optimisation */
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = n;
		q->cap = ncap;
		q->head = 0;
	}
	q->v[(q->head + q->len++) % q->cap] = idx;
}

static uint64_t q_pop(struct pullq *q)
{
	uint64_t idx = q->v[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
	return idx;
}

void dev_pull(struct device *d, uint64_t idx, enum pull_prio prio)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	bool queue;

	if (!d->npullers)
		return;
	pthread_mutex_lock(&s->lock);
	queue = e->state == CHUNK_COLD &&
		!(e->flags & (CE_F_BUSY | CE_F_PULLQ));
	if (queue)
		e->flags |= CE_F_PULLQ;
	pthread_mutex_unlock(&s->lock);
	if (!queue)
		return;
	pthread_mutex_lock(&d->bg_lock);
	q_push(&d->pullq[prio], idx);
	pthread_cond_signal(&d->pull_work);
	pthread_mutex_unlock(&d->bg_lock);
}

static uint64_t used_slots(struct device *d)
{
	return cache_nslots(d->cache) - cache_free_slots(d->cache);
}

static void *evictor(void *arg)
{
	struct device *d = arg;

	pthread_mutex_lock(&d->bg_lock);
	while (!d->bg_stop) {
		uint64_t used = used_slots(d);

		if (used > d->evict_high) {
			pthread_mutex_unlock(&d->bg_lock);
			if (dev_evict(d, (unsigned)MIN(used - d->evict_low,
						       (uint64_t)1024)) == 0) {
				/* Nothing evictable (all dirty or in use):
				 * wait for write-back rather than spin. */
				struct timespec ts = { 0, 20 * 1000000 };
				nanosleep(&ts, NULL);
			}
			pthread_mutex_lock(&d->bg_lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&d->bg_work, &d->bg_lock, &ts);
	}
	pthread_mutex_unlock(&d->bg_lock);
	return NULL;
}

/* The next pull, highest priority first; WARM and HYDRATE only while
 * the cache is under its low watermark.  bg_lock held. */
static bool next_pull(struct device *d, uint64_t *idx, enum pull_prio *prio)
{
	bool room = used_slots(d) < d->evict_low;

	for (int p = 0; p < PULL_NPRIO; p++) {
		if (!d->pullq[p].len)
			continue;
		if (!room && (p == PULL_WARM || p == PULL_HYDRATE))
			continue;
		*idx = q_pop(&d->pullq[p]);
		*prio = (enum pull_prio)p;
		return true;
	}
	return false;
}

static void *puller(void *arg)
{
	struct device *d = arg;

	pthread_mutex_lock(&d->bg_lock);
	while (!d->bg_stop) {
		uint64_t idx;
		enum pull_prio prio;

		if (!next_pull(d, &idx, &prio)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&d->pull_work, &d->bg_lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&d->bg_lock);
		dev_bg_pace(d); /* probe.c: yield to clients */
		tb_take(&d->pull_tb, d->chunk_size);
		if (dev_prefetch(d, idx, prio == PULL_READAHEAD) < 0)
			STAT_INC(d, prefetch_errors);
		pthread_mutex_lock(&d->bg_lock);
	}
	pthread_mutex_unlock(&d->bg_lock);
	return NULL;
}

struct warm {
	uint64_t idx;
	uint32_t heat;
};

static int warm_cmp(const void *a, const void *b)
{
	const struct warm *x = a, *y = b;

	return x->heat < y->heat ? 1 : x->heat > y->heat ? -1 : 0;
}

/* At start: pinned chunks, the previous session's hot chunks hottest
 * first (up to the low watermark), and with prefetch=all the rest. */
static void queue_start(struct device *d)
{
	uint64_t n = 0, cap = MIN(d->evict_low, d->nchunks), npin = 0;
	struct warm *w;
	uint32_t now = dev_now(d);
	uint32_t half_life = policy_half_life(d->policy);

	w = malloc(MAX(d->nchunks, (uint64_t)1) * sizeof(*w));
	if (!w)
		return;
	for (uint64_t i = 0; i < d->nchunks; i++) {
		struct chunk_ent *e = &d->ents[i];
		uint32_t h;

		if (e->state != CHUNK_COLD)
			continue;
		if (e->flags & CE_F_PINNED) {
			dev_pull(d, i, PULL_PINNED);
			npin++;
			continue;
		}
		h = heat_at(e->heat, e->tick, now, half_life);
		if (h >= WARM_MIN_HEAT)
			w[n++] = (struct warm){ i, h };
	}
	qsort(w, n, sizeof(*w), warm_cmp);
	if (!d->warm)
		n = 0; /* prefetch=none */
	for (uint64_t i = 0; i < MIN(n, cap); i++)
		dev_pull(d, w[i].idx, PULL_WARM);
	if (n || npin)
		tlog(&d->log, LOG_INFO,
		     "warm restart: pulling %" PRIu64 " pinned and %" PRIu64
		     " previously hot chunks",
		     npin, MIN(n, cap));
	free(w);
	if (d->hydrate) {
		for (uint64_t i = 0; i < d->nchunks; i++)
			dev_pull(d, i, PULL_HYDRATE);
	}
}

int dev_bg_start(struct device *d)
{
	int r;

	d->pullers = calloc(d->pull_threads, sizeof(*d->pullers));
	if (!d->pullers)
		return -ENOMEM;
	r = pthread_create(&d->bg_thread, NULL, evictor, d);
	if (r)
		goto fail;
	d->bg_running = true;
	for (unsigned i = 0; i < d->pull_threads; i++) {
		r = pthread_create(&d->pullers[i], NULL, puller, d);
		if (r)
			goto fail;
		d->npullers++;
	}
	queue_start(d);
	return 0;
fail:
	tlog(&d->log, LOG_ERROR, "cannot start a background thread: %s",
	     strerror(r));
	return -r;
}

void dev_bg_stop(struct device *d)
{
	pthread_mutex_lock(&d->bg_lock);
	d->bg_stop = true;
	pthread_cond_broadcast(&d->bg_work);
	pthread_cond_broadcast(&d->pull_work);
	pthread_mutex_unlock(&d->bg_lock);
	if (d->bg_running)
		pthread_join(d->bg_thread, NULL);
	d->bg_running = false;
	for (unsigned i = 0; i < d->npullers; i++)
		pthread_join(d->pullers[i], NULL);
	d->npullers = 0;
	free(d->pullers);
	d->pullers = NULL;
}

void dev_pull_stats(struct device *d, uint64_t depth[PULL_NPRIO])
{
	pthread_mutex_lock(&d->bg_lock);
	for (int p = 0; p < PULL_NPRIO; p++)
		depth[p] = d->pullq[p].len;
	pthread_mutex_unlock(&d->bg_lock);
}

/* ---- pins ------------------------------------------------------------ */

int device_pin(struct device *d, uint64_t offset, uint64_t length, bool pin)
{
	uint64_t first, last, add = 0, limit;

	if (length == 0 || offset >= d->size || length > d->size - offset)
		return -ERANGE;
	first = offset >> d->chunk_shift;
	last = (offset + length - 1) >> d->chunk_shift;
	if (pin) {
		for (uint64_t i = first; i <= last; i++)
			add += !(__atomic_load_n(&d->ents[i].flags,
						 __ATOMIC_RELAXED) &
				 CE_F_PINNED);
		limit = cache_nslots(d->cache) * PIN_MAX_PCT / 100;
		if (__atomic_load_n(&d->npinned, __ATOMIC_RELAXED) + add >
		    limit) {
			tlog(&d->log, LOG_ERROR,
			     "pinning %" PRIu64 " more chunks would pin more "
			     "than %d%% of the cache (%" PRIu64 " of %" PRIu64
			     " slots): pin less, or grow cache-size",
			     add, PIN_MAX_PCT, limit, cache_nslots(d->cache));
			return -ENOSPC;
		}
	}
	for (uint64_t i = first; i <= last; i++) {
		struct stripe *s = stripe_of(d, i);
		struct chunk_ent *e = &d->ents[i];
		bool was, pull = false;

		pthread_mutex_lock(&s->lock);
		was = e->flags & CE_F_PINNED;
		if (pin != was) {
			if (pin)
				e->flags |= CE_F_PINNED;
			else
				e->flags &= (uint8_t)~CE_F_PINNED;
			__atomic_fetch_add(&d->npinned, pin ? 1 : (uint64_t)-1,
					   __ATOMIC_RELAXED);
			if (e->state == CHUNK_HOT_CLEAN ||
			    e->state == CHUNK_HOT_DIRTY)
				policy_pin(d->policy, e->slot, pin);
			pull = pin && e->state == CHUNK_COLD;
		}
		pthread_mutex_unlock(&s->lock);
		if (pull)
			dev_pull(d, i, PULL_PINNED);
	}
	return 0;
}

/* "START-END[,START-END...]": byte offsets with optional binary
 * suffixes (K, M, G, T); END is exclusive. */
int device_pin_spec(struct device *d, const char *spec)
{
	CLEANUP_FREE char *copy = strdup(spec);
	char *save = NULL, *tok;
	int r;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		int64_t a, b;

		if (!dash) {
			tlog(&d->log, LOG_ERROR,
			     "pin=%s: write each range as START-END, e.g. "
			     "pin=0-64M,1G-1088M (END excluded)",
			     spec);
			return -EINVAL;
		}
		*dash = 0;
		a = parse_size(tok);
		b = parse_size(dash + 1);
		if (a < 0 || b < 0 || b <= a || (uint64_t)b > d->size) {
			tlog(&d->log, LOG_ERROR,
			     "pin=%s: bad range %s-%s: START and END are byte "
			     "offsets (suffixes K, M, G allowed), START < END "
			     "<= the device size",
			     spec, tok, dash + 1);
			return -EINVAL;
		}
		r = device_pin(d, (uint64_t)a, (uint64_t)(b - a), true);
		if (r < 0)
			return r;
	}
	return 0;
}
