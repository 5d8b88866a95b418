/* lathist.h - log2 latency histograms: cheap to record, mergeable.
 *
 * A histogram is an array of LAT_SLOTS uint64_t counters: slot k counts
 * values v (nanoseconds) with 2^k <= v < 2^(k+1); v = 0 goes to slot 0
 * and the last slot takes everything from 2^(LAT_SLOTS-1) up.  The
 * kernel probe (bpf/bioprobe.h) uses the same slots.
 *
 * Recording is two relaxed atomic adds (slot and sum) on counters the
 * caller owns (a per-device array): no lock, no allocation.  Readers
 * copy the array (a racy snapshot is fine: counters only grow) and
 * compute quantiles from the copy.
 */
#ifndef TIERBD_LATHIST_H
#define TIERBD_LATHIST_H

#include <stdint.h>
#include <time.h>

#define LAT_SLOTS 40

static inline uint64_t lat_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned lat_slot(uint64_t ns, unsigned nslots)
{
	unsigned s = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;

	return s < nslots ? s : nslots - 1;
}

/* Record the time since t0 (from lat_now_ns) in hist and sum. */
static inline void lat_record(uint64_t *hist, uint64_t *sum, uint64_t t0)
{
	uint64_t ns = lat_now_ns() - t0;

	__atomic_fetch_add(&hist[lat_slot(ns, LAT_SLOTS)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(sum, ns, __ATOMIC_RELAXED);
}

static inline uint64_t lat_count(const uint64_t *hist, unsigned nslots)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < nslots; i++)
		n += hist[i];
	return n;
}

/* The q-quantile (0 < q <= 1) in ns, interpolated linearly inside its
 * slot; 0 for an empty histogram.  Accurate to a factor of two at
 * worst, which is what a log2 histogram can tell. */
static inline uint64_t lat_quantile(const uint64_t *hist, unsigned nslots,
				    double q)
{
	uint64_t n = lat_count(hist, nslots), seen = 0;
	double rank;

	if (!n)
		return 0;
	rank = q * (double)n;
	for (unsigned i = 0; i < nslots; i++) {
		if (!hist[i])
			continue;
		if ((double)(seen + hist[i]) >= rank) {
			double lo = i ? (double)(1ull << i) : 0.0;
			double hi = (double)(1ull << (i + 1));
			double f = (rank - (double)seen) / (double)hist[i];

			if (f < 0)
				f = 0;
			return (uint64_t)(lo + f * (hi - lo));
		}
		seen += hist[i];
	}
	return 1ull << nslots;
}

#endif
