/* policy.c - heat, sequential streams, and the eviction order.
 *
 * See policy.h for the rules.  Data, all per slot (none per chunk: the
 * heat lives in the chunk map):
 *   seg[s]    FREE / PROBATION / MAIN / PINNED
 *   owner[s]  the chunk in the slot
 *   hit[s]    hit while in probation (set without the lock)
 *   stamp[s]  request clock at the last use (set without the lock)
 *   why[s]    offered as a victim, and by which rule (lock held)
 *   fifo      ring of probation slots, oldest first; each entry carries
 *             the slot's admission number so that an entry left behind
 *             by a removed slot is recognised and skipped
 *   ghost     2+ entries per slot: chunks MAIN gave up, by which rule
 * The lock guards all but hit[], stamp[], clock and the stream table
 * (atomics).
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "policy.h"

/* ---- heat arithmetic ---------------------------------------------------- */

/* 2^(-k/16) in 0.16 fixed point, k = 0..15. */
static const uint16_t frac_pow2[16] = {
	65535, 62757, 60097, 57549, 55109, 52773, 50535, 48393,
	46341, 44376, 42495, 40693, 38968, 37316, 35734, 34219,
};

uint32_t heat_at(uint32_t heat, uint32_t tick, uint32_t now, uint32_t half_life)
{
	uint64_t dt, halves, frac, h;

	if (!heat || (int32_t)(now - tick) <= 0)
		return heat; /* no time passed, or the clock went back */
	dt = (uint32_t)(now - tick);
	halves = dt / half_life;
	if (halves >= 32)
		return 0;
	frac = (dt % half_life) * 16 / half_life;
	h = heat >> halves;
	if (frac)
		h = h * frac_pow2[frac] >> 16;
	return (uint32_t)h;
}

void heat_touch(uint32_t *heat, uint32_t *tick, uint32_t now,
		uint32_t half_life, uint32_t amount)
{
	uint64_t h = (uint64_t)heat_at(*heat, *tick, now, half_life) + amount;

	*heat = h > UINT32_MAX ? UINT32_MAX : (uint32_t)h;
	/* A tick in the future (clock went back) stays: heat_at treats it
	 * as now, so nothing decays twice. */
	if ((int32_t)(now - *tick) > 0)
		*tick = now;
}

/* ---- the policy --------------------------------------------------------- */

enum { SEG_FREE, SEG_PROBATION, SEG_MAIN, SEG_PINNED };

struct fifo_ent {
	uint32_t slot;
	uint32_t admission; /* must equal adm[slot] to be current */
};

struct stream {
	uint64_t next; /* byte offset the stream continues at */
	uint64_t run;  /* chunks read in a row */
	uint64_t used; /* LRU stamp */
};

/* why[s]: offered as a victim, and which of MAIN's two rules alone
 * picked it: the coolest of the sample but not the longest unused
 * (frequency's choice), or the longest unused but not the coolest
 * (recency's choice). */
#define WHY_OFFERED 1
#define WHY_FREQ 2
#define WHY_RECENCY 4

struct policy {
	pthread_mutex_t lock; /* everything below but hit[] and stats */
	uint64_t nslots;
	uint32_t half_life, ghost_heat;
	uint64_t prob_target; /* slots probation may hold */
	policy_heat_fn heat_of;
	void *opaque;

	uint8_t *seg;
	uint8_t *hit;	 /* atomic bytes */
	uint8_t *parked; /* MAIN slots the caller could not evict */
	uint64_t nparked;
	uint64_t *owner;
	uint32_t *adm;
	uint64_t nprob, nmain, npinned;

	/* Probation FIFO: a deque, since sequential admissions go to the
	 * head.  Capacity 2 * nslots: stale entries are dropped when the
	 * ring is full by compaction. */
	struct fifo_ent *fifo;
	uint64_t fcap, fhead, flen;

	/* Written on every request: a line of their own, away from what
	 * the lock guards. */
	alignas(64) struct stream streams[POLICY_STREAMS]; /* atomics */
	uint64_t clock;	      /* requests seen (policy_note_io; atomic) */
	unsigned chunk_shift; /* of the last policy_note_io (atomic) */
	alignas(64) uint64_t rng;

	/* Recency in MAIN (see policy.h): a slot's score is its heat
	 * halved every tau requests since its last use; tau =
	 * nslots * 2^(bal / POLICY_BAL_OCTAVE), moved by regrets. */
	uint64_t *stamp; /* clock at the slot's last use (atomic) */
	uint8_t *why;
	uint8_t last_why; /* of the last main_victim */
	uint32_t tau;
	int32_t bal;
	uint32_t by_freq, by_recency; /* decisive victims, decayed */
	uint32_t *ghost;	      /* fingerprint << 1 | WHY_RECENCY */
	uint64_t gmask;

	struct policy_stats st;
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct policy *p)
{
	return mix64(p->rng += 0x9e3779b97f4a7c15ull);
}

/* tau = nslots * 2^(bal / POLICY_BAL_OCTAVE), in 1/16 octaves, within
 * [1, 2^31].  bal is within [POLICY_BAL_MIN, POLICY_BAL_MAX].  Lock held
 * (or not yet shared). */
static void set_tau(struct policy *p)
{
	int32_t oct = p->bal >> 8; /* floor */
	unsigned f = (unsigned)(p->bal & 255) >> 4;
	uint64_t t = p->nslots > 1u << 31 ? 1u << 31 : p->nslots;

	_Static_assert(POLICY_BAL_OCTAVE == 256, "bal's octave is 8 bits");
	_Static_assert(POLICY_BAL_MIN >= -31 * 256 && POLICY_BAL_MAX < 31 * 256,
		       "tau's shifts fit");
	if (f) /* 2^(f/16) = 2 * 2^-((16 - f)/16) */
		t = t * 2 * frac_pow2[16 - f] >> 16;
	t = oct >= 0 ? t << oct : t >> -oct;
	if (t > 1u << 31)
		t = 1u << 31;
	p->tau = t ? (uint32_t)t : 1;
}

struct policy *policy_new(const struct policy_conf *conf,
			  policy_heat_fn heat_of, void *opaque)
{
	struct policy *p;
	uint64_t n = conf->nslots;
	void *mem;

	/* Aligned for clock's cache line. */
	if (posix_memalign(&mem, 64, sizeof(*p))) {
		errno = ENOMEM;
		return NULL;
	}
	p = memset(mem, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->nslots = n;
	p->half_life = conf->half_life ? conf->half_life : 3600;
	p->ghost_heat = conf->ghost_heat ? conf->ghost_heat : 2 * HEAT_ONE;
	p->prob_target =
		n * (conf->probation_pct ? conf->probation_pct : 10) / 100;
	if (p->prob_target < 1)
		p->prob_target = 1;
	p->heat_of = heat_of;
	p->opaque = opaque;
	p->rng = conf->seed ? conf->seed : 0x7469657262640001ull;
	p->fcap = 2 * n + 16;
	for (p->gmask = 63; p->gmask < 2 * n - 1;)
		p->gmask = p->gmask << 1 | 1;
	p->bal = 0;
	set_tau(p);
	p->seg = calloc(n, 1);
	p->hit = calloc(n, 1);
	p->parked = calloc(n, 1);
	p->owner = calloc(n, sizeof(*p->owner));
	p->adm = calloc(n, sizeof(*p->adm));
	p->fifo = calloc(p->fcap, sizeof(*p->fifo));
	p->stamp = calloc(n, sizeof(*p->stamp));
	p->why = calloc(n, 1);
	p->ghost = calloc(p->gmask + 1, sizeof(*p->ghost));
	if (!p->seg || !p->hit || !p->parked || !p->owner || !p->adm ||
	    !p->fifo || !p->stamp || !p->why || !p->ghost) {
		policy_free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->st.meta_bytes = sizeof(*p) +
			   n * (1 + 1 + 1 + 1 + sizeof(*p->owner) +
				sizeof(*p->adm) + sizeof(*p->stamp)) +
			   p->fcap * sizeof(*p->fifo) +
			   (p->gmask + 1) * sizeof(*p->ghost);
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->seg);
	free(p->hit);
	free(p->parked);
	free(p->owner);
	free(p->adm);
	free(p->fifo);
	free(p->stamp);
	free(p->why);
	free(p->ghost);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool policy_note_io(struct policy *p, uint64_t off, uint64_t len,
		    unsigned chunk_shift)
{
	/* Lock-free: this runs on every request.  A stream continues only
	 * for the thread whose compare-and-swap moves its end; races make
	 * the detection approximate, never wrong about data. */
	uint64_t clock = __atomic_add_fetch(&p->clock, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&p->chunk_shift, chunk_shift, __ATOMIC_RELAXED);
	struct stream *lru = &p->streams[0];
	uint64_t lru_used = UINT64_MAX;

	for (unsigned i = 0; i < POLICY_STREAMS; i++) {
		struct stream *s = &p->streams[i];
		uint64_t next = __atomic_load_n(&s->next, __ATOMIC_RELAXED);
		uint64_t used = __atomic_load_n(&s->used, __ATOMIC_RELAXED);

		if (used && next == off &&
		    __atomic_compare_exchange_n(&s->next, &next, off + len,
						false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			/* Count chunks crossed, not requests. */
			uint64_t crossed = ((off + len) >> chunk_shift) -
					   (off >> chunk_shift);
			uint64_t run = __atomic_add_fetch(&s->run, crossed,
							  __ATOMIC_RELAXED);
			__atomic_store_n(&s->used, clock, __ATOMIC_RELAXED);
			if (run >= POLICY_SEQ_MIN &&
			    run - crossed < POLICY_SEQ_MIN)
				__atomic_add_fetch(&p->st.seq_streams, 1,
						   __ATOMIC_RELAXED);
			return run >= POLICY_SEQ_MIN;
		}
		if (used < lru_used) {
			lru = &p->streams[i];
			lru_used = used;
		}
	}
	__atomic_store_n(&lru->run, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&lru->next, off + len, __ATOMIC_RELAXED);
	__atomic_store_n(&lru->used, clock, __ATOMIC_RELAXED);
	return false;
}

void policy_touch(struct policy *p, uint32_t *heat, uint32_t *tick,
		  uint32_t now, bool sequential)
{
	/* Requests to one chunk within one tick are one use of it (a
	 * correlated reference): a chunk holding 200 small files read one
	 * after the other is not 200 times hotter than one read by a
	 * single request, and a stream of 128 KiB requests warms a chunk
	 * once, not eight times. */
	if (*heat && *tick == now)
		return;
	heat_touch(heat, tick, now, p->half_life,
		   sequential ? HEAT_SEQ : HEAT_ONE);
}

void policy_hit(struct policy *p, uint32_t slot)
{
	uint64_t now = __atomic_load_n(&p->clock, __ATOMIC_RELAXED);

	/* Loads first: no store when nothing changes. */
	if (!__atomic_load_n(&p->hit[slot], __ATOMIC_RELAXED))
		__atomic_store_n(&p->hit[slot], 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&p->stamp[slot], __ATOMIC_RELAXED) != now)
		__atomic_store_n(&p->stamp[slot], now, __ATOMIC_RELAXED);
}

/* ---- regrets: the ghosts of MAIN's decisive victims --------------------- */

/* The ghost table is direct-mapped: a new ghost overwrites whatever
 * hashed to its entry, so a ghost lives about 2 * nslots decisive
 * evictions.  An entry is a 30-bit fingerprint of the chunk and the
 * rule that picked it (WHY_RECENCY or not); 0 is empty.  Lock held. */
static uint32_t *ghost_ent(struct policy *p, uint64_t chunk, uint32_t *fp)
{
	uint64_t h = mix64(chunk);

	*fp = (uint32_t)(h >> 34) | 1u << 29; /* never 0 */
	return &p->ghost[h & p->gmask];
}

/* A decisive victim of MAIN was evicted: remember it and by which rule.
 * Lock held. */
static void regret_note(struct policy *p, uint64_t chunk, uint8_t why)
{
	uint32_t fp, *g = ghost_ent(p, chunk, &fp);

	*g = fp << 1 | !!(why & WHY_RECENCY);
	if (why & WHY_RECENCY)
		p->by_recency++;
	else
		p->by_freq++;
	if (p->by_recency + p->by_freq >= POLICY_REGRET_WINDOW) {
		p->by_recency /= 2;
		p->by_freq /= 2;
	}
}

/* Chunk is admitted again: if MAIN gave it up by one rule, that rule
 * was wrong; lean towards the other.  The step is scaled by the other
 * rule's share of the decisive victims, so that the balance settles
 * where both rules' victims come back at the same rate (not the same
 * number of times), with a floor that lets it leave either end.  Lock
 * held. */
static void regret_check(struct policy *p, uint64_t chunk)
{
	uint32_t fp, *g = ghost_ent(p, chunk, &fp);
	uint32_t total = p->by_recency + p->by_freq + 1;
	int32_t step;

	if (!*g || *g >> 1 != fp)
		return;
	if (*g & 1) { /* recency's victim came back: more frequency */
		step = (int32_t)((uint64_t)POLICY_BAL_STEP * p->by_freq /
				 total);
		p->bal +=
			step > POLICY_BAL_STEP_MIN ? step : POLICY_BAL_STEP_MIN;
		p->st.regrets_recency++;
	} else { /* frequency's victim came back: more recency */
		step = (int32_t)((uint64_t)POLICY_BAL_STEP * p->by_recency /
				 total);
		p->bal -=
			step > POLICY_BAL_STEP_MIN ? step : POLICY_BAL_STEP_MIN;
		p->st.regrets_freq++;
	}
	*g = 0;
	if (p->bal < POLICY_BAL_MIN)
		p->bal = POLICY_BAL_MIN;
	if (p->bal > POLICY_BAL_MAX)
		p->bal = POLICY_BAL_MAX;
	set_tau(p);
}

/* Drop stale entries so that one more fits.  Lock held. */
static void fifo_compact(struct policy *p)
{
	uint64_t w = 0;
	struct fifo_ent *n = malloc(p->fcap * sizeof(*n));

	if (!n) {
		/* No memory: drop the oldest entry (its slot stays in the
		 * segment, and is found again by the all-parked reset). */
		p->fhead = (p->fhead + 1) % p->fcap;
		p->flen--;
		return;
	}
	/* Into a new ring: compacting in place would overwrite entries of
	 * a ring that wraps before they are read. */
	for (uint64_t i = 0; i < p->flen; i++) {
		struct fifo_ent e = p->fifo[(p->fhead + i) % p->fcap];
		if (p->seg[e.slot] == SEG_PROBATION &&
		    p->adm[e.slot] == e.admission)
			n[w++] = e;
	}
	free(p->fifo);
	p->fifo = n;
	p->fhead = 0;
	p->flen = w;
}

static void fifo_push(struct policy *p, uint32_t slot, bool at_head)
{
	struct fifo_ent e = { slot, p->adm[slot] };

	if (p->flen == p->fcap)
		fifo_compact(p);
	if (at_head) {
		p->fhead = (p->fhead + p->fcap - 1) % p->fcap;
		p->fifo[p->fhead] = e;
	} else {
		p->fifo[(p->fhead + p->flen) % p->fcap] = e;
	}
	p->flen++;
}

static void set_seg(struct policy *p, uint32_t slot, uint8_t seg)
{
	if (p->parked[slot]) {
		p->parked[slot] = 0;
		p->nparked--;
	}
	switch (p->seg[slot]) {
	case SEG_PROBATION:
		p->nprob--;
		break;
	case SEG_MAIN:
		p->nmain--;
		break;
	case SEG_PINNED:
		p->npinned--;
		break;
	}
	p->seg[slot] = seg;
	switch (seg) {
	case SEG_PROBATION:
		p->nprob++;
		break;
	case SEG_MAIN:
		p->nmain++;
		break;
	case SEG_PINNED:
		p->npinned++;
		break;
	}
}

static int main_victim(struct policy *p, uint32_t now, uint32_t *slot);
static uint32_t slot_score(struct policy *p, uint32_t slot, uint32_t now);

/* TinyLFU's admission test: a ghost goes to MAIN only if it is warmer
 * than what MAIN would give up for it; else it waits in probation like
 * a newcomer.  Lock held. */
static bool hotter_than_main(struct policy *p, uint64_t chunk, uint32_t heat)
{
	uint32_t s, h, now;

	if (p->nmain < POLICY_SAMPLE)
		return true;
	p->heat_of(p->opaque, chunk, &h, &now); /* just touched: tick = now */
	if (main_victim(p, now, &s) < 0)
		return true;
	p->st.victims_main--; /* a look, not a victim */
	return heat > slot_score(p, s, now);
}

void policy_admit(struct policy *p, uint32_t slot, uint64_t chunk,
		  uint32_t heat, bool sequential, bool pinned)
{
	SCOPED_LOCK(&p->lock);
	p->owner[slot] = chunk;
	p->adm[slot]++;
	p->why[slot] = 0;
	__atomic_store_n(&p->hit[slot], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->stamp[slot],
			 __atomic_load_n(&p->clock, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	if (!sequential && !pinned)
		regret_check(p, chunk);
	if (pinned) {
		set_seg(p, slot, SEG_PINNED);
	} else if (!sequential && heat >= p->ghost_heat &&
		   hotter_than_main(p, chunk, heat)) {
		set_seg(p, slot, SEG_MAIN);
		p->st.ghost_admits++;
	} else {
		set_seg(p, slot, SEG_PROBATION);
		fifo_push(p, slot, sequential);
		if (sequential)
			p->st.seq_admits++;
	}
}

void policy_remove(struct policy *p, uint32_t slot)
{
	SCOPED_LOCK(&p->lock);
	/* Evicted as offered (not trimmed): remember a decisive victim of
	 * MAIN, to learn from its return. */
	if (p->seg[slot] == SEG_MAIN && (p->why[slot] & WHY_OFFERED) &&
	    !(p->why[slot] & WHY_FREQ) != !(p->why[slot] & WHY_RECENCY))
		regret_note(p, p->owner[slot], p->why[slot]);
	p->why[slot] = 0;
	set_seg(p, slot, SEG_FREE);
	p->adm[slot]++; /* its FIFO entry, if any, is now stale */
}

void policy_pin(struct policy *p, uint32_t slot, bool pinned)
{
	SCOPED_LOCK(&p->lock);
	if (p->seg[slot] == SEG_FREE)
		return;
	if (pinned) {
		set_seg(p, slot, SEG_PINNED);
		p->adm[slot]++;
	} else if (p->seg[slot] == SEG_PINNED) {
		set_seg(p, slot, SEG_MAIN);
	}
}

void policy_skip(struct policy *p, uint32_t slot, bool dirty)
{
	SCOPED_LOCK(&p->lock);
	p->why[slot] = 0;
	if (p->seg[slot] == SEG_PROBATION) {
		/* At the head but in use or dirty: to the back of probation.
		 * (Moving it to MAIN would let every chunk a scan is still
		 * reading into MAIN.) */
		p->adm[slot]++;
		fifo_push(p, slot, false);
	}
	/* Dirty chunks wait for their upload, which may take long (the
	 * store may be away): park them, so that clean chunks are found
	 * meanwhile.  In-use ones are done in a moment: no parking. */
	if (dirty && !p->parked[slot] &&
	    (p->seg[slot] == SEG_PROBATION || p->seg[slot] == SEG_MAIN)) {
		p->parked[slot] = 1;
		p->nparked++;
	}
}

void policy_unpark(struct policy *p, uint32_t slot)
{
	SCOPED_LOCK(&p->lock);
	if (p->parked[slot]) {
		p->parked[slot] = 0;
		p->nparked--;
	}
}

/* The oldest current probation slot, promoting those hit meanwhile.
 * Lock held. */
/* Is chunk the one a live sequential stream is reading?  A stream's
 * chunk is admitted at the cold end; offered as a victim before the
 * stream has moved past it, it is fetched again by the stream's next
 * request (up to chunk size / request size times).  Lock held. */
static bool stream_current(struct policy *p, uint64_t chunk)
{
	unsigned shift = __atomic_load_n(&p->chunk_shift, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < POLICY_STREAMS; i++) {
		struct stream *s = &p->streams[i];
		uint64_t next = __atomic_load_n(&s->next, __ATOMIC_RELAXED);

		if (__atomic_load_n(&s->used, __ATOMIC_RELAXED) && next &&
		    __atomic_load_n(&s->run, __ATOMIC_RELAXED) >=
			    POLICY_SEQ_MIN &&
		    (next - 1) >> shift == chunk)
			return true;
	}
	return false;
}

static int probation_victim(struct policy *p, uint32_t *slot)
{
	struct fifo_ent held[POLICY_STREAMS];
	unsigned nheld = 0;
	uint64_t budget = p->flen; /* each entry looked at once */
	int r = -ENOENT;

	while (p->flen && budget--) {
		struct fifo_ent e = p->fifo[p->fhead];

		p->fhead = (p->fhead + 1) % p->fcap;
		p->flen--;
		if (p->seg[e.slot] != SEG_PROBATION ||
		    p->adm[e.slot] != e.admission)
			continue; /* stale */
		if (__atomic_exchange_n(&p->hit[e.slot], 0, __ATOMIC_RELAXED)) {
			set_seg(p, e.slot, SEG_MAIN);
			p->st.promotions++;
			continue;
		}
		if (p->parked[e.slot]) {
			/* Dirty: to the back, not offered. */
			p->fifo[(p->fhead + p->flen) % p->fcap] = e;
			p->flen++;
			continue;
		}
		if (nheld < POLICY_STREAMS &&
		    stream_current(p, p->owner[e.slot])) {
			held[nheld++] = e; /* still being read: not yet */
			continue;
		}
		/* Put it back at the head: it leaves only when the caller
		 * evicts it (policy_remove) or skips it. */
		p->fhead = (p->fhead + p->fcap - 1) % p->fcap;
		p->flen++;
		*slot = e.slot;
		p->st.victims_probation++;
		r = 0;
		break;
	}
	while (nheld) { /* back at the head, in their order */
		p->fhead = (p->fhead + p->fcap - 1) % p->fcap;
		p->fifo[p->fhead] = held[--nheld];
		p->flen++;
	}
	return r;
}

/* Requests since slot's last use (0 if a hit raced ahead of clock). */
static uint64_t slot_age(struct policy *p, uint32_t slot)
{
	uint64_t d = __atomic_load_n(&p->clock, __ATOMIC_RELAXED) -
		     __atomic_load_n(&p->stamp[slot], __ATOMIC_RELAXED);

	return (int64_t)d < 0 ? 0 : d;
}

/* heat halved every tau requests of age (heat_at's ages are int32). */
static uint32_t age_score(uint32_t heat, uint64_t age, uint32_t tau)
{
	return heat_at(heat, 0, age > INT32_MAX ? INT32_MAX : (uint32_t)age,
		       tau);
}

/* Score of a cached slot: its heat, halved every tau requests since its
 * last use.  Large tau: the heat (frequency); small: the last use
 * (recency).  Lock held. */
static uint32_t slot_score(struct policy *p, uint32_t slot, uint32_t now)
{
	uint32_t heat, tick;

	p->heat_of(p->opaque, p->owner[slot], &heat, &tick);
	heat = heat_at(heat, tick, now, p->half_life);
	return age_score(heat, slot_age(p, slot), p->tau);
}

/* The lowest score of a random sample of MAIN slots; last_why says if
 * frequency alone (the coolest, not the longest unused) or recency alone
 * picked it.  Lock held. */
static int main_victim(struct policy *p, uint32_t now, uint32_t *slot)
{
	uint32_t best = 0, best_heat = 0, min_heat = UINT32_MAX;
	uint64_t best_age = 0, max_age = 0;
	bool found = false;
	unsigned tries = POLICY_SAMPLE * 4;

	p->last_why = 0;
	for (unsigned got = 0; got < POLICY_SAMPLE && tries--;) {
		uint32_t s = (uint32_t)(rnd(p) % p->nslots);
		uint32_t heat, tick, h, score;
		uint64_t age;

		if (p->seg[s] != SEG_MAIN || p->parked[s])
			continue;
		got++;
		p->heat_of(p->opaque, p->owner[s], &heat, &tick);
		h = heat_at(heat, tick, now, p->half_life);
		age = slot_age(p, s);
		score = age_score(h, age, p->tau);
		min_heat = h < min_heat ? h : min_heat;
		max_age = age > max_age ? age : max_age;
		if (!found || score < best ||
		    (score == best && age > best_age)) {
			best = score;
			best_heat = h;
			best_age = age;
			*slot = s;
			found = true;
		}
	}
	if (found && best_age < max_age && best_heat == min_heat)
		p->last_why = WHY_FREQ;
	else if (found && best_age == max_age && best_heat > min_heat)
		p->last_why = WHY_RECENCY;
	if (!found) {
		/* MAIN is sparse among the slots: walk to find one. */
		uint64_t start = rnd(p) % p->nslots;
		for (uint64_t i = 0; i < p->nslots; i++) {
			uint32_t s = (uint32_t)((start + i) % p->nslots);
			if (p->seg[s] == SEG_MAIN && !p->parked[s]) {
				*slot = s;
				found = true;
				break;
			}
		}
	}
	if (!found) {
		/* Everything left is parked: give them all another chance
		 * from the next call on (in use ones are done by then). */
		if (p->nparked) {
			memset(p->parked, 0, p->nslots);
			p->nparked = 0;
		}
		return -ENOENT;
	}
	p->st.victims_main++;
	return 0;
}

static int victim(struct policy *p, uint32_t now, uint32_t *slot,
		  uint64_t *chunk)
{
	int r;

	/* S3-FIFO: take from probation while it is over its share (or MAIN
	 * has nothing to give), else from MAIN. */
	if (p->nprob > p->prob_target || p->nmain == 0) {
		r = probation_victim(p, slot);
		if (r == 0) {
			*chunk = p->owner[*slot];
			return 0;
		}
	}
	/* Under its share, the colder of the probation head and MAIN's
	 * coolest: with ghosts admitted to MAIN, probation would otherwise
	 * never drain, and what a scan or first-timers left there would
	 * hold its share for good. */
	uint32_t ms, ps;
	uint8_t why;
	r = main_victim(p, now, &ms);
	why = p->last_why;
	if (r == 0 && p->nprob && probation_victim(p, &ps) == 0) {
		if (slot_score(p, ps, now) <= slot_score(p, ms, now)) {
			p->st.victims_main--;
			*slot = ps;
			*chunk = p->owner[ps];
			return 0;
		}
		p->st.victims_probation--;
	}
	if (r == 0) {
		*slot = ms;
		p->why[ms] = why;
	} else {
		r = probation_victim(p, slot);
	}
	if (r == 0) {
		*chunk = p->owner[*slot];
	} else if (p->nparked) {
		/* All parked: another chance for them from the next call. */
		memset(p->parked, 0, p->nslots);
		p->nparked = 0;
	}
	return r;
}

int policy_victim(struct policy *p, uint32_t now, uint32_t *slot,
		  uint64_t *chunk)
{
	SCOPED_LOCK(&p->lock);
	int r = victim(p, now, slot, chunk);

	if (r == 0)
		p->why[*slot] |= WHY_OFFERED;
	return r;
}

uint32_t policy_half_life(const struct policy *p)
{
	return p->half_life;
}

void policy_get_stats(struct policy *p, struct policy_stats *out)
{
	SCOPED_LOCK(&p->lock);
	*out = p->st;
	out->probation = p->nprob;
	out->main = p->nmain;
	out->pinned = p->npinned;
	out->tau = p->tau;
}
