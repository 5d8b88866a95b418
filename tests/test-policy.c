/* test-policy.c - heat arithmetic and the eviction order (server/policy.c).
 *
 * Decay: exact at whole half-lives, monotonic, close to 2^-x between,
 * no overflow or wrap over years of ticks, a clock that goes back.
 * Order: one-hit chunks leave from probation first; a chunk hit in
 * probation is promoted; MAIN gives up its coolest chunk; sequential
 * admissions go first of all; pinned chunks are never offered; a chunk
 * that was hot before (ghost) enters MAIN at once.  Streams: detected
 * after POLICY_SEQ_MIN chunks in a row.  Adaptive recency: MAIN's tau
 * falls when a workload moves to a new working set, rises again under a
 * stationary skewed one, and stays within its bounds.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/policy.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define NCHUNKS 1000
static uint32_t heat[NCHUNKS], tick[NCHUNKS];

static void heat_of(void *opaque, uint64_t c, uint32_t *h, uint32_t *t)
{
	*h = heat[c];
	*t = tick[c];
}

static void test_decay(void)
{
	const uint32_t H = 3600;

	/* Exact at whole half-lives. */
	for (uint32_t k = 0; k < 40; k++)
		CHECK(heat_at(1u << 30, 0, k * H, H) ==
		      (k < 32 ? (1u << 30) >> k : 0));
	/* Between: within 1/16 of a half-life, and never increasing. */
	uint32_t prev = UINT32_MAX;
	for (uint32_t t = 0; t < 5 * H; t += 37) {
		uint32_t h = heat_at(1u << 20, 0, t, H);
		double want = (double)(1u << 20) * pow(2.0, -(double)t / H);
		CHECK(h <= prev);
		/* The table rounds the fraction of a half-life down: heat
		 * decays at most 1/16 of a half-life late. */
		CHECK(h >= want * 0.9999 - 1);
		CHECK(h <= want * pow(2.0, 1.0 / 16) + 1);
		prev = h;
	}
	/* Years of ticks: no overflow, just cold. */
	CHECK(heat_at(UINT32_MAX, 0, 10u * 365 * 86400, 1) == 0);
	CHECK(heat_at(UINT32_MAX, 5, 0x7fffffff, 3600) == 0);
	/* Saturation instead of wrap. */
	uint32_t h = UINT32_MAX - 10, t = 100;
	heat_touch(&h, &t, 100, H, HEAT_ONE);
	CHECK(h == UINT32_MAX && t == 100);
	/* Clock going back: no decay, tick kept. */
	h = 4096;
	t = 1000;
	heat_touch(&h, &t, 500, H, HEAT_ONE);
	CHECK(h == 4096 + HEAT_ONE && t == 1000);
	CHECK(heat_at(4096, 1000, 999, H) == 4096);
	/* Touching sums decayed heat: one access an hour ago + one now. */
	h = 0;
	t = 0;
	heat_touch(&h, &t, 0, H, HEAT_ONE);
	heat_touch(&h, &t, H, H, HEAT_ONE);
	CHECK(h == HEAT_ONE / 2 + HEAT_ONE && t == H);
}

static struct policy *mk(uint64_t nslots, unsigned prob_pct)
{
	struct policy_conf pc = { .nslots = nslots,
				  .half_life = 3600,
				  .probation_pct = prob_pct };
	struct policy *p = policy_new(&pc, heat_of, NULL);

	CHECK(p);
	memset(heat, 0, sizeof(heat));
	memset(tick, 0, sizeof(tick));
	return p;
}

/* Admit chunk c to slot s after an access now. */
static void admit(struct policy *p, uint32_t s, uint64_t c, bool seq,
		  uint32_t now)
{
	policy_touch(p, &heat[c], &tick[c], now, seq);
	policy_admit(p, s, c, heat[c], seq, false);
}

static uint64_t victim(struct policy *p, uint32_t now)
{
	uint32_t s;
	uint64_t c;

	CHECK(policy_victim(p, now, &s, &c) == 0);
	policy_remove(p, s);
	return c;
}

static void test_order(void)
{
	/* 10 slots, probation 20% (2 slots). */
	struct policy *p = mk(10, 20);
	struct policy_stats st;

	for (uint32_t s = 0; s < 10; s++)
		admit(p, s, s, false, 10);
	/* Probation is over its share: its oldest goes first, FIFO. */
	CHECK(victim(p, 10) == 0);
	/* A hit in probation promotes instead of evicting. */
	policy_hit(p, 1);
	CHECK(victim(p, 10) == 2);
	policy_get_stats(p, &st);
	CHECK(st.promotions == 1);
	policy_free(p);

	/* MAIN gives up its coolest chunk. */
	p = mk(8, 10);
	for (uint32_t s = 0; s < 8; s++) {
		for (uint32_t k = 0; k <= s;
		     k++) /* chunk s touched s+1 times */
			policy_touch(p, &heat[s], &tick[s], 10 - s + k, false);
		policy_admit(p, s, s, heat[s], false, false);
		policy_hit(p, s);
	}
	/* Drain probation (all hit: promoted), then MAIN by heat. */
	uint64_t order[8];
	for (int i = 0; i < 8; i++)
		order[i] = victim(p, 10);
	/* Sampling picks the lowest of 16 random draws of 8 slots: with
	 * every heat distinct the first victims are the coolest. */
	CHECK(order[0] == 0 || order[0] == 1);
	policy_get_stats(p, &st);
	CHECK(st.victims_main >= 6);
	policy_free(p);

	/* Sequential admissions are the first to go, before older ones. */
	p = mk(10, 50);
	for (uint32_t s = 0; s < 5; s++)
		admit(p, s, s, false, 10);
	for (uint32_t s = 5; s < 10; s++)
		admit(p, s, 100 + s, true, 10);
	for (int i = 0; i < 5; i++) {
		uint64_t c = victim(p, 10);
		CHECK(c >= 100);
	}
	policy_free(p);

	/* Pinned chunks are never offered. */
	p = mk(4, 25);
	admit(p, 0, 0, false, 10);
	policy_pin(p, 0, true);
	admit(p, 1, 1, false, 10);
	policy_admit(p, 2, 2, 0, false, true);
	for (int i = 0; i < 1; i++)
		CHECK(victim(p, 10) == 1);
	uint32_t s;
	uint64_t c;
	CHECK(policy_victim(p, 10, &s, &c) == -ENOENT);
	policy_pin(p, 0, false);
	CHECK(policy_victim(p, 10, &s, &c) == 0 && c == 0);
	policy_free(p);

	/* Ghost: a chunk that was hot is admitted to MAIN, not probation. */
	p = mk(10, 10);
	for (int k = 0; k < 5; k++)
		policy_touch(p, &heat[7], &tick[7], 6 + k, false);
	policy_admit(p, 0, 7, heat[7], false, false);
	policy_get_stats(p, &st);
	CHECK(st.ghost_admits == 1 && st.main == 1 && st.probation == 0);
	policy_free(p);
}

/* A cache of nslots driven as server/device.c drives it: touch, hit or
 * miss, one victim per miss when full. */
struct sim {
	struct policy *p;
	uint32_t slot_of[NCHUNKS]; /* slot + 1, 0: not cached */
	uint64_t nslots, used, hits;
	uint32_t now;
};

static void sim_init(struct sim *m, uint64_t nslots)
{
	memset(m, 0, sizeof(*m));
	m->p = mk(nslots, 10);
	m->nslots = nslots;
	m->now = 10;
}

static void sim_access(struct sim *m, uint64_t c)
{
	uint32_t s;
	uint64_t v;

	/* A 4 KiB read at the start of chunk c (1 MiB chunks): recency
	 * counts requests. */
	CHECK(!policy_note_io(m->p, c << 20, 4096, 20));
	policy_touch(m->p, &heat[c], &tick[c], m->now, false);
	if (m->slot_of[c]) {
		m->hits++;
		policy_hit(m->p, m->slot_of[c] - 1);
		return;
	}
	if (m->used < m->nslots) {
		s = (uint32_t)m->used++;
	} else {
		CHECK(policy_victim(m->p, m->now, &s, &v) == 0);
		CHECK(m->slot_of[v] == s + 1);
		m->slot_of[v] = 0;
		policy_remove(m->p, s);
	}
	m->slot_of[c] = s + 1;
	policy_admit(m->p, s, c, heat[c], false, false);
}

static uint64_t sim_tau(struct sim *m)
{
	struct policy_stats st;

	policy_get_stats(m->p, &st);
	return st.tau;
}

/* One phase of a moving workload: a working set of 40 chunks starting
 * at base, each used 30 times in a loop (a second per round). */
static void phase(struct sim *m, uint64_t base)
{
	for (int r = 0; r < 30; r++, m->now++)
		for (uint64_t c = base; c < base + 40; c++)
			sim_access(m, c);
}

/* A stationary skewed workload: chunk floor(600 u^3), u uniform. */
static void skewed(struct sim *m, int n)
{
	for (int i = 0; i < n; i++) {
		double u = (double)rand() / RAND_MAX;
		sim_access(m, (uint64_t)(600 * u * u * u) % NCHUNKS);
		if (i % 20 == 19)
			m->now++;
	}
}

static void test_adaptive(void)
{
	struct sim m;
	struct policy_stats st;
	uint64_t tau0, tau;

	/* 64 slots, working sets of 40 chunks one after the other: each,
	 * hot and then idle, must give way to the next.  By heat alone MAIN
	 * would keep the older ones; the regrets of evicting the current
	 * one's chunks move tau towards recency. */
	srand(1);
	sim_init(&m, 64);
	tau0 = sim_tau(&m);
	CHECK(tau0 == 64); /* starts at nslots */
	for (uint64_t k = 0; k < 6; k++)
		phase(&m, 40 * k);
	tau = sim_tau(&m);
	policy_get_stats(m.p, &st);
	CHECK(st.regrets_freq > st.regrets_recency);
	CHECK(tau < tau0);
	/* Lower bound: nslots / 4 (bal at POLICY_BAL_MIN), never below. */
	for (uint64_t k = 6; k < NCHUNKS / 40; k++)
		phase(&m, 40 * k);
	CHECK(sim_tau(&m) == 64 / 4);
	/* With recency, each phase after its first round is all hits. */
	m.hits = 0;
	phase(&m, 0);
	CHECK(m.hits >= 29 * 40);

	/* Then a stationary skewed workload: recency gives up warm chunks
	 * that come back; tau moves back towards frequency. */
	skewed(&m, 200000);
	policy_get_stats(m.p, &st);
	CHECK(st.regrets_recency > 0);
	CHECK(sim_tau(&m) > tau0);
	/* Longer, it keeps leaning to frequency, within the upper bound
	 * (4096 * nslots, bal at POLICY_BAL_MAX). */
	skewed(&m, 1000000);
	tau = sim_tau(&m);
	CHECK(tau > tau0 && tau <= 4096 * 64);
	policy_free(m.p);
}

static void test_streams(void)
{
	struct policy *p = mk(10, 10);
	const unsigned shift = 16; /* 64 KiB chunks */
	uint64_t off = 1 << 24;

	/* Random reads are not sequential. */
	for (int i = 0; i < 100; i++)
		CHECK(!policy_note_io(p, (uint64_t)(rand() % 1000) << shift,
				      4096, shift));
	/* A stream becomes sequential after POLICY_SEQ_MIN chunks. */
	int first_seq = -1;
	for (int i = 0; i < 64; i++, off += 32768)
		if (policy_note_io(p, off, 32768, shift) && first_seq < 0)
			first_seq = i;
	CHECK(first_seq == 2 * POLICY_SEQ_MIN - 1);
	/* Interleaved with random I/O and another stream, it stays so. */
	uint64_t off2 = 1ull << 30;
	int seq = 0;
	for (int i = 0; i < 64; i++) {
		policy_note_io(p, (uint64_t)(rand() % 1000) << shift, 4096,
			       shift);
		seq += policy_note_io(p, off, 65536, shift);
		policy_note_io(p, off2, 65536, shift);
		off += 65536;
		off2 += 65536;
	}
	CHECK(seq == 64);
	struct policy_stats st;
	policy_get_stats(p, &st);
	CHECK(st.seq_streams == 2);
	policy_free(p);
}

int main(void)
{
	test_decay();
	test_order();
	test_adaptive();
	test_streams();
	printf("test-policy: ok\n");
	return 0;
}
