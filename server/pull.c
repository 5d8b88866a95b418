/* pull.c - background eviction between watermarks, pulls, and pins.
 *
 * One background thread does two things, neither on a client's path:
 *   - eviction: when the cache is fuller than the high watermark
 *     (cache-high, percent of the slots), evict in the policy's order
 *     down to the low watermark (cache-low), so a miss or a first write
 *     usually finds a free slot without evicting synchronously; the gap
 *     between the two is the hysteresis;
 *   - pulls: fetch queued COLD chunks ahead of use: pinned chunks that
 *     are not hot yet, and, at start, the hottest chunks of the previous
 *     session (warm restart), hottest first.  Pulls never evict a hotter
 *     chunk than the one they bring, and stop when the cache would have
 *     to go over the low watermark for them.
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

/* ---- the pull queue -------------------------------------------------- */

static void pullq_push(struct device *d, uint64_t idx)
{
	if (d->pull_len == d->pull_cap) {
		size_t ncap = d->pull_cap ? 2 * d->pull_cap : 64;
		uint64_t *n = malloc(ncap * sizeof(*n));

		if (!n)
			return; /* a pull is an optimisation */
		for (size_t i = 0; i < d->pull_len; i++)
			n[i] = d->pullq[(d->pull_head + i) % d->pull_cap];
		free(d->pullq);
		d->pullq = n;
		d->pull_cap = ncap;
		d->pull_head = 0;
	}
	d->pullq[(d->pull_head + d->pull_len++) % d->pull_cap] = idx;
}

void dev_pull(struct device *d, uint64_t idx)
{
	pthread_mutex_lock(&d->bg_lock);
	pullq_push(d, idx);
	pthread_cond_signal(&d->bg_work);
	pthread_mutex_unlock(&d->bg_lock);
}

static uint64_t used_slots(struct device *d)
{
	return cache_nslots(d->cache) - cache_free_slots(d->cache);
}

static void *bg_worker(void *arg)
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
		if (d->pull_len && used < d->evict_low) {
			uint64_t idx = d->pullq[d->pull_head];

			d->pull_head = (d->pull_head + 1) % d->pull_cap;
			d->pull_len--;
			pthread_mutex_unlock(&d->bg_lock);
			dev_bg_pace(d); /* probe.c: yield to clients */
			if (dev_prefetch(d, idx) < 0)
				STAT_INC(d, prefetch_errors);
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

struct warm {
	uint64_t idx;
	uint32_t heat;
};

static int warm_cmp(const void *a, const void *b)
{
	const struct warm *x = a, *y = b;

	return x->heat < y->heat ? 1 : x->heat > y->heat ? -1 : 0;
}

/* Warm restart: queue the chunks that were hot, hottest first. */
static void queue_warm(struct device *d)
{
	uint64_t n = 0, cap = MIN(d->evict_low, d->nchunks);
	struct warm *w;
	uint32_t now = dev_now(d);
	uint32_t half_life = policy_half_life(d->policy);

	if (!cap)
		return;
	w = malloc(d->nchunks * sizeof(*w));
	if (!w)
		return;
	for (uint64_t i = 0; i < d->nchunks; i++) {
		struct chunk_ent *e = &d->ents[i];
		uint32_t h;

		if (e->state != CHUNK_COLD)
			continue;
		h = heat_at(e->heat, e->tick, now, half_life);
		if (h >= WARM_MIN_HEAT || (e->flags & CE_F_PINNED))
			w[n++] = (struct warm){ i, (e->flags & CE_F_PINNED)
							   ? UINT32_MAX
							   : h };
	}
	/* Hottest first (pinned count as hottest). */
	qsort(w, n, sizeof(*w), warm_cmp);
	pthread_mutex_lock(&d->bg_lock);
	for (uint64_t i = 0; i < MIN(n, cap); i++)
		pullq_push(d, w[i].idx);
	pthread_mutex_unlock(&d->bg_lock);
	if (n)
		tlog(&d->log, LOG_INFO,
		     "warm restart: pulling %" PRIu64 " chunks that were hot",
		     MIN(n, cap));
	free(w);
}

int dev_bg_start(struct device *d)
{
	int r;

	queue_warm(d);
	r = pthread_create(&d->bg_thread, NULL, bg_worker, d);
	if (r) {
		tlog(&d->log, LOG_ERROR,
		     "cannot start the background thread: %s", strerror(r));
		return -r;
	}
	d->bg_running = true;
	return 0;
}

void dev_bg_stop(struct device *d)
{
	if (!d->bg_running)
		return;
	pthread_mutex_lock(&d->bg_lock);
	d->bg_stop = true;
	pthread_cond_broadcast(&d->bg_work);
	pthread_mutex_unlock(&d->bg_lock);
	pthread_join(d->bg_thread, NULL);
	d->bg_running = false;
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
			dev_pull(d, i);
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
