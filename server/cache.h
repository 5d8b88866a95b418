/* cache.h - the hot tier: a file of fixed-size slots, and their allocator.
 *
 * The file `slots` in the cache directory holds nslots slots of
 * chunk_size bytes; slot s is at offset s * chunk_size.  Writes use
 * O_DIRECT where the filesystem allows (tmpfs does not: then buffered
 * I/O, logged once), so small writes do not pay for the page cache of
 * large fills; reads are buffered, so hot data is served from RAM when
 * the kernel keeps it.  Writes whose buffer, offset or length are not
 * aligned to the device block go through bounce buffers (counted); an
 * unaligned write is a read-modify-write of the edge blocks, so the
 * caller must keep other writers of that chunk out meanwhile.
 *
 * Allocator: a FIFO of free slots (oldest freed first, so that a freed
 * slot keeps its old content as long as possible) and, per slot, its
 * owner chunk.  The owner is set by cache_alloc and cleared by
 * cache_free.  A slot freed by eviction may be freed with a victim
 * record (cache_free_victim): the chunk that left it and a tag (the
 * engine's generation), found again by owner through a direct-mapped
 * hint table, until the slot is handed out or the record is forgotten.
 * cache_reclaim gives such a slot back to its old owner; the caller
 * must still check its content (the record only says the slot was not
 * handed to anyone else since).  Records are in memory only: none
 * survives a close.  Which slot to empty is the policy's business
 * (policy.h).  All allocator calls take the allocator lock inside;
 * none does I/O.
 */
#ifndef TIERBD_CACHE_H
#define TIERBD_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/log.h"

#define OWNER_NONE UINT64_MAX

struct cache;

struct cache_conf {
	struct logger log;
	const char *path;    /* the slots file */
	uint64_t nslots;     /* >= 1 */
	uint32_t chunk_size; /* power of two */
	bool direct_io;	     /* try O_DIRECT */
	bool create;	     /* create the file (else it must exist) */
};

struct cache_stats {
	uint64_t bounces; /* requests copied through an aligned buffer */
	uint64_t rmw;	  /* unaligned writes (read-modify-write) */
	uint64_t free_slots;
	bool direct_io; /* O_DIRECT in use */
};

/* Open (or create) the slots file, sized to nslots slots.  NULL+errno. */
struct cache *cache_open(const struct cache_conf *conf);
void cache_close(struct cache *c); /* NULL-safe */

/* Data: offsets are within the slot; off + len <= chunk_size. */
int cache_read(struct cache *c, uint32_t slot, void *buf, uint32_t len,
	       uint32_t off);
int cache_write(struct cache *c, uint32_t slot, const void *buf, uint32_t len,
		uint32_t off);
/* A whole slot into buf (aligned to 4096) bypassing the page cache: an
 * upload reads a chunk once, and keeping a copy in RAM only costs a
 * copy and evicts pages clients use (bench/s3-cold.sh: 47% of the CPU
 * of write+drain went to buffered reads for uploads). */
int cache_read_slot_direct(struct cache *c, uint32_t slot, void *buf);
/* Make a whole slot read as zeros (fallocate, or writes of zeros). */
int cache_zero_slot(struct cache *c, uint32_t slot);
/* Make completed writes durable (fdatasync). */
int cache_sync(struct cache *c);
/* True if a write at off/len needs read-modify-write (see above). */
bool cache_write_is_rmw(const struct cache *c, uint32_t len, uint32_t off);

/* Allocator. */
/* Take a free slot for owner; -ENOSPC if none is free. */
int cache_alloc(struct cache *c, uint64_t owner, uint32_t *slot);
/* Give a slot back.  The caller guarantees nobody uses it any more. */
void cache_free(struct cache *c, uint32_t slot);
/* The same, remembering that the slot still holds owner's content,
 * version tag (a victim record, replacing owner's previous one). */
void cache_free_victim(struct cache *c, uint32_t slot, uint64_t owner,
		       uint64_t tag);
/* Take back the free slot owner left with tag, if it was handed to
 * nobody since: 0 and *slot, else -ENOENT.  The slot is owner's again,
 * its record gone; its content is unchecked. */
int cache_reclaim(struct cache *c, uint64_t owner, uint64_t tag,
		  uint32_t *slot);
/* Drop owner's victim record, if any (its content changed). */
void cache_forget(struct cache *c, uint64_t owner);
/* Claim a specific slot for owner while loading a map (open time);
 * -EBUSY if it is taken, -ERANGE if out of range. */
int cache_claim(struct cache *c, uint32_t slot, uint64_t owner);
uint64_t cache_owner(struct cache *c, uint32_t slot);
/* Free slots now (lock-free, may be stale by the time it returns). */
uint64_t cache_free_slots(const struct cache *c);

uint64_t cache_nslots(const struct cache *c);
void cache_get_stats(struct cache *c, struct cache_stats *out);

#endif
