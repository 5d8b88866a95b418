/* policy.h - what stays hot: heat scores, admission, eviction order.
 *
 * The policy decides, never moves data.  The engine (device.c) calls it
 * on every access and when it needs free slots; bench/policy's trace
 * replayer links this same module and calls it the same way, so the
 * hit ratios it reports are the engine's.
 *
 * Heat.  Each chunk has a decayed access score kept in its map entry
 * (chunk_ent.heat, .tick), persisted with the map:
 *     heat(now) = heat * 2^-((now - tick) / half_life)
 * in fixed point (HEAT_ONE per access), updated in O(1) by heat_touch.
 * Ticks are seconds of the policy clock (device age for the engine,
 * trace time for the replayer).
 *
 * Segments (per cache slot):
 *   PROBATION  newly admitted chunks, in FIFO order (S3-FIFO's small
 *              queue, about probation-pct of the slots).  A chunk that
 *              is hit again while there is promoted to MAIN when it
 *              reaches the head; one that is not is the first to go.
 *              Chunks admitted by a detected sequential stream enter at
 *              the head (the cold end), so a scan recycles its own
 *              slots instead of flushing the working set.
 *   MAIN       evicted by lowest score among a random sample of
 *              POLICY_SAMPLE slots: no sort, no list on the hit path.
 * A chunk whose remembered heat is already high (it was hot, evicted,
 * and asked for again: S3-FIFO's ghost hit) is admitted to MAIN at once.
 *
 * Score (LRFU-like): a slot's current heat, halved every tau requests
 * (policy_note_io calls) since its last use.  A large tau ranks MAIN by heat
 * (frequency: stationary workloads, Zipf); a small one by last use
 * (recency: workloads that move from one working set to the next, as a
 * filesystem's untar, read-back and grep do).  tau adapts, like ARC's
 * balance, to the misses each side would have avoided: when MAIN's
 * sample gives up a chunk that frequency alone picked (the coolest, but
 * not the longest unused) or recency alone picked (the reverse), the
 * chunk's fingerprint is kept in a ghost table (2+ entries per slot);
 * if it is asked for again soon, the rule that picked it was wrong, and
 * tau moves towards the other, by a step scaled so that tau settles
 * where both rules' victims come back at the same rate.  Its range is
 * nslots/4 .. 4096 * nslots requests; it starts at nslots.
 *
 * Sequential streams: a small table of recent streams; a read that
 * continues one is sequential once the stream is POLICY_SEQ_MIN chunks
 * long.  Sequential accesses warm a chunk only weakly (HEAT_SEQ).
 *
 * Threads: policy_note_io, policy_touch and policy_hit are lock-free
 * (the caller holds the chunk's stripe lock for the heat fields);
 * everything else takes the policy lock inside and does no I/O.
 */
#ifndef TIERBD_POLICY_H
#define TIERBD_POLICY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define HEAT_ONE 1024u	  /* one random access */
#define HEAT_SEQ 128u	  /* one access by a sequential stream */
#define POLICY_SAMPLE 16  /* MAIN victims: lowest heat of this many */
#define POLICY_SEQ_MIN 4  /* chunks in a row make a stream sequential */
#define POLICY_STREAMS 16 /* streams tracked at once */
/* tau = nslots * 2^(bal / POLICY_BAL_OCTAVE), bal in [MIN, MAX]; a
 * regret moves bal by up to POLICY_BAL_STEP, at least _STEP_MIN. */
#define POLICY_BAL_OCTAVE 256
#define POLICY_BAL_MIN (-2 * POLICY_BAL_OCTAVE)
#define POLICY_BAL_MAX (12 * POLICY_BAL_OCTAVE)
#define POLICY_BAL_STEP 32
#define POLICY_BAL_STEP_MIN 4
#define POLICY_REGRET_WINDOW 256 /* decisive victims counted (decayed) */

/* ---- heat arithmetic ---------------------------------------------------- */

/* Heat of (heat, tick) at `now`, decayed with half_life (> 0) seconds.
 * Exact at whole half-lives, within 1/16 of a half-life in between; a
 * tick in the future counts as now; never overflows for any now. */
uint32_t heat_at(uint32_t heat, uint32_t tick, uint32_t now,
		 uint32_t half_life);

/* Add `amount` to the decayed heat and move tick to now; saturates. */
void heat_touch(uint32_t *heat, uint32_t *tick, uint32_t now,
		uint32_t half_life, uint32_t amount);

/* ---- the policy --------------------------------------------------------- */

struct policy;

struct policy_conf {
	uint64_t nslots;
	uint32_t half_life;	/* seconds; default 3600 */
	unsigned probation_pct; /* default 10 */
	uint32_t ghost_heat;	/* admit to MAIN at once above this;
				       default 2 * HEAT_ONE */
	uint64_t seed;		/* sampling; 0: a fixed default */
};

/* Where a chunk's heat lives: the engine passes its map entries, the
 * replayer its own array; the policy reads heat of slot owners through
 * this to choose victims. */
typedef void (*policy_heat_fn)(void *opaque, uint64_t chunk, uint32_t *heat,
			       uint32_t *tick);

struct policy *policy_new(const struct policy_conf *conf,
			  policy_heat_fn heat_of, void *opaque);
void policy_free(struct policy *p); /* NULL-safe */

/* A read or write of bytes [off, off+len) of the device, before it is
 * split into chunks: returns true if it continues a sequential stream.
 * chunk_shift is log2(chunk size). */
bool policy_note_io(struct policy *p, uint64_t off, uint64_t len,
		    unsigned chunk_shift);

/* An access to a chunk (hit or miss): warm its heat.  Caller holds
 * whatever protects *heat and *tick. */
void policy_touch(struct policy *p, uint32_t *heat, uint32_t *tick,
		  uint32_t now, bool sequential);

/* A hit on a cached slot (not by a sequential stream): a probation
 * chunk so marked is promoted when it reaches the head; the slot's last
 * use (for recency) is now.  Lock-free. */
void policy_hit(struct policy *p, uint32_t slot);

/* Slot now holds chunk (fetched or newly written).  heat is the
 * chunk's current heat (for the ghost rule); sequential: admitted by a
 * sequential stream; pinned chunks go straight to MAIN and are never
 * offered as victims until unpinned. */
void policy_admit(struct policy *p, uint32_t slot, uint64_t chunk,
		  uint32_t heat, bool sequential, bool pinned);

/* The slot no longer holds a chunk (evicted, trimmed, dropped). */
void policy_remove(struct policy *p, uint32_t slot);

/* Pin or unpin a cached slot's chunk. */
void policy_pin(struct policy *p, uint32_t slot, bool pinned);

/* Offer the next victim: a slot and its chunk, chosen by the rules
 * above, at time now.  The caller checks it can be evicted (clean, not
 * in use); if so it evicts and calls policy_remove, if not it calls
 * policy_skip.  -ENOENT if no slot holds an unpinned chunk. */
int policy_victim(struct policy *p, uint32_t now, uint32_t *slot,
		  uint64_t *chunk);

/* A victim the caller could not evict (dirty, in use): a probation
 * chunk goes to the back of probation, so it is not offered again at
 * once; a dirty one (probation or MAIN) is also parked: not offered
 * again until policy_unpark, or until nothing unparked is left. */
void policy_skip(struct policy *p, uint32_t slot, bool dirty);
/* A chunk that could not be evicted (dirty) can be now (uploaded). */
void policy_unpark(struct policy *p, uint32_t slot);

struct policy_stats {
	uint64_t probation, main, pinned; /* slots in each */
	uint64_t promotions, ghost_admits, seq_admits;
	uint64_t victims_probation, victims_main;
	uint64_t seq_streams; /* streams detected */
	uint64_t meta_bytes;  /* memory of the policy */
	uint64_t tau;	      /* MAIN's recency scale, in requests */
	uint64_t regrets_freq, regrets_recency; /* ghosts asked for again */
};
void policy_get_stats(struct policy *p, struct policy_stats *out);
uint32_t policy_half_life(const struct policy *p);

#endif
