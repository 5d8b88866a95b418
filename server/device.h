/* device.h - the tierbd engine: one tiered block device.
 *
 * A device is `size` bytes cut into chunks of `chunk_size`.  Each chunk
 * lives as an object in the cold store, in a slot of the hot cache
 * file, both, or nowhere (never written: reads as zeros).  The engine
 * has no global state: a process may open several devices.
 *
 * Threads: every I/O entry point may be called from many threads at
 * once.  device_start() starts the background workers (write-back);
 * call it after any fork (nbdkit's .after_fork).
 *
 * Errors: functions return 0 or -errno and log once, with context,
 * through conf->log.
 */
#ifndef TIERBD_DEVICE_H
#define TIERBD_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/store.h"
#include "../common/log.h"
#include "lathist.h"

struct device;

struct device_conf {
	struct logger log;

	const char *cache_dir; /* required: holds `map` and `slots` */
	uint64_t size;	       /* 0: take it from an existing device */
	uint32_t chunk_size;   /* 0: existing device's, or 1 MiB if new */
	uint64_t cache_size;   /* 0: existing, or required if new */

	/* The cold store.  store.spec NULL: the spec saved in the device
	 * (required when creating). */
	struct store_conf store;

	unsigned push_threads;	     /* write-back workers; default 4 */
	unsigned writeback_delay_ms; /* coalescing delay; default 1000 */
	bool writeback_late;	     /* writeback-early=false */
	uint64_t max_dirty;	     /* bytes; default cache_size / 2 */
	bool direct_io;		     /* O_DIRECT cache file; default on */
	bool flush_remote;	     /* flush waits for a commit in the store */
	uint32_t heat_half_life;     /* seconds; default 3600 */
	unsigned cache_high_pct;     /* evict above this; default 95 */
	unsigned cache_low_pct;	     /* down to this; default 85 */
	unsigned probation_pct;	     /* new chunks' segment; default 10 */
	const char *pins;	     /* "START-END,..." to pin at open */
	const char *trace_path;	     /* append one line per request */
	bool takeover;		     /* take the device from another owner */
	unsigned pull_threads;	     /* background fetches; default 4 */
	uint64_t readahead;	     /* bytes ahead of a stream; default 4M */
	bool readahead_off;	     /* readahead=0 */
	bool prefetch_all;	     /* hydrate every chunk in the background */
	bool prefetch_none;	     /* no warm-restart pulls either */
	uint64_t pull_rate, push_rate; /* bytes/s; 0 = unlimited */
	unsigned commit_interval_ms;   /* default 5000 */
	bool readonly;
	/* kernel probe (server/probe.h): DEVICE_PROBE_AUTO loads it when
	 * permitted, ON refuses to start without it, OFF never loads it */
	int probe;
	const char *probe_devs;		 /* more devices: "/dev/x,/dev/y" */
	unsigned probe_latency_limit_us; /* pace background work above */
};
#define DEVICE_PROBE_AUTO 0
#define DEVICE_PROBE_ON 1
#define DEVICE_PROBE_OFF 2

/* Fill conf with the defaults above. */
void device_conf_init(struct device_conf *conf);

/* Create or open the device in conf->cache_dir.  A parameter that
 * contradicts an existing device is refused (NULL, errno EINVAL) with a
 * message saying what to do.  Nothing on disk changes unless the open
 * succeeds.  Returns NULL and sets errno on failure. */
struct device *device_open(const struct device_conf *conf);

/* Start background workers.  Returns 0 or -errno. */
int device_start(struct device *dev);

/* Stop workers, write back nothing more, persist the map, mark it
 * clean and free everything.  NULL-safe. */
void device_close(struct device *dev);

uint64_t device_size(const struct device *dev);
uint32_t device_chunk_size(const struct device *dev);

/* Flags for device_write / device_zero. */
#define DEV_FUA 0x1u	   /* durable (as by device_flush) on return */
#define DEV_MAY_TRIM 0x2u  /* zero: may deallocate */
#define DEV_FAST_ZERO 0x4u /* zero: fail with -ENOTSUP rather than slow */

int device_read(struct device *dev, void *buf, uint32_t count, uint64_t offset);
int device_write(struct device *dev, const void *buf, uint32_t count,
		 uint64_t offset, unsigned flags);
/* Make every write acknowledged so far durable on the cache device
 * (flush_remote: and in a commit in the store). */
int device_flush(struct device *dev);
/* Whole chunks in the range become ABSENT; partial chunks are kept
 * (trim is advisory). */
int device_trim(struct device *dev, uint32_t count, uint64_t offset,
		unsigned flags);
int device_zero(struct device *dev, uint32_t count, uint64_t offset,
		unsigned flags);

/* Report allocation: cb(opaque, offset, length, hole) for consecutive
 * runs covering [offset, offset+count) rounded out to chunks.  ABSENT
 * chunks are holes (reading zeros). */
typedef int (*device_extent_cb)(void *opaque, uint64_t offset, uint64_t length,
				bool hole);
int device_extents(struct device *dev, uint32_t count, uint64_t offset,
		   device_extent_cb cb, void *opaque);

/* Pin (or unpin) the chunks covering [offset, offset+length): pinned
 * chunks are never evicted, and cold ones are pulled in the background.
 * -ENOSPC if pins would cover more than 90% of the cache. */
int device_pin(struct device *dev, uint64_t offset, uint64_t length, bool pin);
/* The same for "START-END[,...]" (sizes with K/M/G suffixes). */
int device_pin_spec(struct device *dev, const char *spec);

/* Wait until no chunk is dirty and a commit names every version: the
 * store alone then holds the whole device. */
int device_drain(struct device *dev);

struct device_stats {
	uint64_t nchunks, nslots, chunk_size;
	uint64_t absent, cold, hot_clean, hot_dirty; /* chunks by state */
	uint64_t slots_free;
	uint64_t reads, writes, read_bytes, write_bytes;
	uint64_t hits, misses;			    /* chunk-level, on reads */
	uint64_t fetches, fetch_bytes, fetch_waits; /* waits: single-flight */
	uint64_t uploads, upload_bytes, upload_errors;
	uint64_t evictions, bounces, checksum_errors, verify_refetches;
	/* misses served by taking back the slot a chunk was evicted from
	 * (no store GET), and such slots found not to hold it any more */
	uint64_t reclaims, reclaim_fails;
	uint64_t flushes, throttled_writes;
	uint64_t commits, commit_seq, commit_lag; /* lag: map changes since */
	uint64_t gc_deletes;
	uint64_t meta_bytes;	       /* resident metadata of the engine */
	uint64_t meta_bytes_per_chunk; /* resident per chunk of the device */
	uint64_t meta_bytes_per_slot;  /* and per cache slot in addition */
	struct store_stats store;
	/* policy */
	uint64_t sync_evictions;		/* a client waited for a slot */
	uint64_t prefetches, prefetch_errors;	/* background pulls */
	uint64_t pinned;			/* chunks pinned */
	uint64_t probation, main, pinned_slots; /* slots by segment */
	uint64_t promotions, ghost_admits, seq_admits, seq_streams;
	uint64_t pull_pinned, pull_warm, pull_readahead,
		pull_hydrate; /* queued */
	/* observability: log2 latency histograms (server/lathist.h) of
	 * cache reads on hits and of store GETs of chunk objects */
	uint64_t cache_read_lat[LAT_SLOTS], cache_read_ns;
	uint64_t store_get_lat[LAT_SLOTS], store_get_ns;
	uint64_t wb_queue, pull_queue, pending_dels; /* queue depths now */
	uint64_t dirty_bytes;			     /* HOT_DIRTY chunks */
	uint64_t bg_paced, bg_paced_ms; /* background work slowed (probe) */
	uint64_t bg_yields; /* background transfers held for a demand fetch */
	uint64_t early_pushes; /* pushed at once: a stream finished them */
};

void device_get_stats(struct device *dev, struct device_stats *out);

#endif
