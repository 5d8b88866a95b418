/* device_priv.h - the device object, shared by the files of the engine.
 *
 * Internal to server/: device.c (map, slots, read/write paths),
 * writeback.c (dirty queue, push workers, deletions) and devopen.c
 * (create, open, recovery, close).  The state table and the lock rules
 * are in the top comment of device.c.
 */
#ifndef TIERBD_DEVICE_PRIV_H
#define TIERBD_DEVICE_PRIV_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../common/util.h"
#include "../proto/cachemap.h"
#include "cache.h"
#include "device.h"
#include "policy.h"

#define NSTRIPES 1024
#define CE_F_QUEUED 0x08u /* run-time: in the write-back queue */
#define CE_F_PULLQ 0x04u  /* run-time: in a pull queue */
#define CE_F_RUNTIME \
	(CE_F_BUSY | CE_F_UPLOADING | CE_F_REDIRTY | CE_F_VERIFY | CE_F_QUEUED)
#define GEN_RESERVE 4096
#define PUSH_RETRY_MS 1000

struct stripe {
	pthread_mutex_t lock;	/* entries i with i % NSTRIPES == this */
	pthread_cond_t changed; /* BUSY cleared, or a slot ref dropped */
} __attribute__((aligned(64)));

/* Background pull priorities, highest first (pull.c). */
enum pull_prio {
	PULL_PINNED,
	PULL_WARM,
	PULL_READAHEAD,
	PULL_HYDRATE,
	PULL_NPRIO
};

struct pullq {
	uint64_t *v;
	size_t cap, head, len;
};

/* A token bucket: rate bytes/s, at most a second's burst; 0 = off. */
struct tbucket {
	pthread_mutex_t lock;
	uint64_t rate;
	double tokens;
	uint64_t last_ns;
};
void tb_init(struct tbucket *tb, uint64_t rate);
void tb_take(struct tbucket *tb, uint64_t n); /* sleeps off a debt */

struct dirty_item {
	uint64_t idx;
	uint64_t due_ms; /* monotonic ms when it may be pushed */
};

struct pending_del {
	uint64_t idx, gen;
};

struct device {
	struct logger log;
	char *cache_dir;
	int map_fd; /* holds the flock on the cache directory */
	uint8_t *map;
	size_t map_len;
	struct superblock sb; /* guarded by gen_lock after open */
	struct chunk_ent *ents;
	uint64_t size, nchunks;
	uint32_t chunk_size;
	unsigned chunk_shift;
	bool readonly;

	struct cache *cache;
	struct store *store;
	struct policy *policy;
	uint64_t evict_high,
		evict_low; /* used slots: evict above high, to low */
	uint64_t npinned;  /* atomic: chunks with CE_F_PINNED */

	/* background eviction and pulls (pull.c) */
	pthread_mutex_t bg_lock;	/* the pull queues, bg_stop */
	pthread_cond_t bg_work;		/* eviction wanted, or stop */
	pthread_cond_t pull_work;	/* a pull is queued, or stop */
	struct pullq pullq[PULL_NPRIO]; /* by priority */
	bool bg_stop, bg_running;
	pthread_t bg_thread; /* the evictor */
	pthread_t *pullers;
	unsigned npullers, pull_threads;
	uint32_t readahead_chunks; /* pulled ahead of a sequential stream */
	bool hydrate;		   /* prefetch=all */
	bool warm;		   /* prefetch=warm or all (not none) */
	struct tbucket pull_tb, push_tb;

	/* lease (lease.c) */
	char owner[33];	      /* this cache directory's owner token */
	time_t lease_renewed; /* commit worker only */
	bool fenced;	      /* taken over by another owner: no commits */

	/* request trace (trace=) */
	FILE *trace;
	pthread_mutex_t trace_lock;
	uint64_t trace_t0; /* monotonic us */
	/* Users of each slot in flight, guarded by the owning chunk's
	 * stripe: readers count 1, writers SLOT_WRITER. */
	uint32_t *slot_refs;
	struct stripe stripes[NSTRIPES];

	pthread_mutex_t gen_lock; /* next_gen, sb.gen_reserved, sb page */
	uint64_t next_gen;

	/* write-back */
	pthread_mutex_t wb_lock;    /* everything down to `stop` */
	pthread_cond_t wb_work;	    /* queue has work, or stop */
	pthread_cond_t wb_progress; /* a chunk got clean, or a push failed */
	struct dirty_item *q;	    /* ring buffer */
	size_t q_cap, q_head, q_len;
	struct pending_del *dels;
	size_t ndels, dels_cap;
	unsigned urgent; /* >0: skip the coalescing delay */
	bool stop;
	pthread_t *workers;
	unsigned nworkers;
	unsigned push_threads, delay_ms;
	bool wb_early; /* push chunks a sequential writer finished at once */
	uint64_t max_dirty;
	uint64_t ndirty;	  /* atomic: chunks in HOT_DIRTY */
	unsigned pushes_active;	  /* uploads in flight (wb_lock) */
	unsigned push_yield_to;	  /* uploads in flight while demand is on */
	uint64_t demand_inflight; /* atomic: demand fetches in flight */
	uint64_t demand_last_ms;  /* atomic: when the last one ended */

	/* commits (commit.c) */
	pthread_mutex_t commit_lock; /* the commit_* fields below */
	pthread_cond_t commit_cond;  /* a commit is done, or is wanted */
	uint64_t commit_seq;	     /* newest commit in the store */
	uint64_t commit_requests;    /* bumped by each waiter */
	uint64_t commit_done_req;    /* requests covered by a done commit */
	bool commit_due, commit_stop, commit_running;
	pthread_t commit_thread;
	unsigned commit_interval_ms;
	bool flush_remote;
	uint64_t map_version;	      /* atomic: bumped when a gen changes */
	uint64_t committed_version;   /* map_version of the newest commit */
	struct pending_del *gc_batch; /* superseded at the newest commit */
	size_t gc_nbatch;	      /* (commit worker only) */

	struct device_stats st; /* counters, updated with atomics */

	/* Fetch buffers, reused (device.c): a free list of at most
	 * fbuf_max; each holds an object and, after it, a chunk. */
	pthread_mutex_t fbuf_lock;
	void *fbuf_free;
	unsigned fbuf_idle, fbuf_max;
	size_t fbuf_obj; /* object room: chunk_obj_bound, page-rounded */

	/* The kernel I/O probe pacing background work (probe.c), or NULL;
	 * set by probe_open_device, owned by its caller, outlives us. */
	struct probe *probe;
};

#define STAT_ADD(d, f, n) __atomic_fetch_add(&(d)->st.f, (n), __ATOMIC_RELAXED)
#define STAT_INC(d, f) STAT_ADD(d, f, 1)

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A client waited for a fetch now or within DEMAND_QUIET_MS: uploads
 * that nobody waits for hold back to push_yield_to in flight
 * (writeback.c), so the store serves the demand fetch first: a GET
 * behind 16 PUTs on a busy store waits for them all.  Pulls do not
 * yield: what they fetch is what clients are about to read. */
#define DEMAND_QUIET_MS 100
static inline bool dev_demand_on(struct device *d)
{
	return __atomic_load_n(&d->demand_inflight, __ATOMIC_RELAXED) ||
	       now_ms() - __atomic_load_n(&d->demand_last_ms,
					  __ATOMIC_RELAXED) <
		       DEMAND_QUIET_MS;
}

/* ms from now, for pthread_cond_timedwait (CLOCK_REALTIME). */
static inline void deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static inline struct stripe *stripe_of(struct device *d, uint64_t idx)
{
	return &d->stripes[idx % NSTRIPES];
}

static inline void chunk_key(char *buf, size_t n, uint64_t idx, uint64_t gen)
{
	snprintf(buf, n, "chunks/%012" PRIx64 "/%016" PRIx64, idx, gen);
}

static inline void *chunk_buf_alloc(struct device *d)
{
	void *p;

	if (posix_memalign(&p, 4096, d->chunk_size) != 0)
		return NULL;
	return p;
}

/* device.c: the reused fetch buffers (above); at close, free them. */
void dev_fbuf_init(struct device *d);
void dev_fbuf_fini(struct device *d);

/* lease.c: one owner at a time (see the file's top comment). */
int lease_acquire(struct device *d, bool takeover);
int lease_renew(struct device *d);
void lease_release(struct device *d);

/* device.c */
uint32_t dev_now(const struct device *d); /* policy clock: device age, s */
void dev_slot_free(struct device *d, uint32_t slot); /* policy + allocator */
int dev_bg_start(struct device *d);
void dev_bg_stop(struct device *d);
unsigned dev_evict(struct device *d, unsigned want);
int dev_prefetch(struct device *d, uint64_t idx, bool seq);
/* Queue a COLD chunk to be fetched in the background (once). */
void dev_pull(struct device *d, uint64_t idx, enum pull_prio prio);
void dev_pull_stats(struct device *d, uint64_t depth[PULL_NPRIO]);
void dev_trace(struct device *d, char op, uint64_t off, uint64_t len);
void dev_sb_store(struct device *d); /* caller holds gen_lock or is alone */
int dev_map_sync(struct device *d);
int dev_sb_sync(struct device *d);
uint64_t dev_gen_next(struct device *d);
void dev_release_orphan(struct device *d, uint32_t slot);
/* Stripe of idx held: drop a slot ref; true if the slot is an orphan
 * to release (dev_release_orphan) after unlocking. */
bool dev_slot_put(struct device *d, uint64_t idx, uint32_t slot,
		  uint32_t weight);
#define SLOT_READER 1u
#define SLOT_WRITER (1u << 16)

/* writeback.c: the dirty queue, deletions and the push workers. */
int wb_q_push(struct device *d, uint64_t idx, uint64_t due); /* wb_lock held */
void wb_queue(struct device *d, uint64_t idx,
	      unsigned delay_ms);		    /* stripe held */
void wb_make_dirty(struct device *d, uint64_t idx); /* stripe held */
void wb_write_done(struct device *d, uint64_t idx, uint32_t end,
		   bool seq); /* stripe held */
void wb_delete_later(struct device *d, uint64_t idx, uint64_t gen);
void wb_throttle(struct device *d);
void wb_kick(struct device *d, bool urgent_start);
void wb_unurge(struct device *d);
void wb_stop(struct device *d);
void wb_drain_close(struct device *d); /* at close, before wb_stop */

/* probe.c: before a background transfer, wait while the probe says the
 * cache device is overloaded.  No lock held. */
void dev_bg_pace(struct device *d);

/* commit.c: commits in the store, deletion of superseded versions. */
struct commit_info;
struct commit_entry;
int commit_start(struct device *d);
void commit_stop(struct device *d);
void commit_final(struct device *d);
int commit_first(struct device *d);
void commit_poke(struct device *d);
/* Wait for a commit that starts after this call.  -ESHUTDOWN if the
 * device is closing first. */
int commit_request_wait(struct device *d);
/* The newest readable commit in st; -ENOENT if there is none.  *ents is
 * malloc'd; *newest_seq is the highest sequence listed. */
int commit_load_latest(struct store *st, const struct logger *lg,
		       struct commit_info *info, struct commit_entry **ents,
		       uint64_t *newest_seq);

#endif
