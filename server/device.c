/* device.c - the engine: chunk map, read/write paths, write-back.
 *
 * Files in the cache directory:
 *   map    superblock + one 32-byte entry per chunk (proto/cachemap.h),
 *          mmapped MAP_SHARED: an update is in the page cache at once,
 *          so it survives kill -9; msync makes it survive a host crash.
 *   slots  the hot cache (server/cache.h).
 *
 * Chunk states (enum chunk_state) and what holds in each:
 *
 *   state      slot      gen           content is
 *   ABSENT     NONE      0             zeros; no object
 *   COLD       NONE      != 0          object gen (hash = its data hash)
 *   HOT_CLEAN  s         != 0          slot s == object gen
 *   HOT_DIRTY  s         old or 0      slot s, newer than any object
 *
 * Run-time flags (cleared when the map is opened):
 *   BUSY       one thread owns the entry's transition (fetch, first
 *              fill, read-modify-write, verify); others wait on the
 *              stripe's condvar.  Nothing else changes the entry.
 *   UPLOADING  a push is reading the slot; writes continue and set
 *              REDIRTY, so the push leaves the chunk dirty.
 *   QUEUED     the chunk is in the write-back queue.
 *   VERIFY     a clean copy not yet checked after an unclean stop.
 *
 * Locks.  Entries are guarded by striped mutexes (chunk index modulo
 * NSTRIPES); slot_refs[s] by the stripe of the chunk that owns s.  The
 * write-back lock guards the dirty queue and the pending deletions.
 * Order: stripe -> wb_lock, and stripe -> cache allocator lock; no
 * lock is held across disk or store I/O: mark the entry BUSY or take a
 * slot reference, unlock, do the I/O, relock, re-check.
 *
 * Slot reuse and crashes.  Entries change in memory before data moves:
 * a chunk becomes HOT_DIRTY before its slot is written.  After an
 * unclean stop, clean copies are verified against their hash on first
 * use (VERIFY), and two entries claiming one slot are resolved in
 * favour of the dirty one; a slot freed by trim is reused only after
 * the map is synced.  Old object versions are deleted only after the
 * map naming the new one is synced.
 *
 * Reclaim.  A clean chunk evicted leaves its data in its slot until the
 * allocator (oldest freed first) hands the slot out again; the
 * allocator keeps a victim record (chunk, gen) for it, in memory only.
 * fetch() first tries to take that slot back (slot_reclaim): the record
 * must name the chunk's current gen, the slot must still be free, and
 * its content must hash to the map's hash; else the slot goes back to
 * the free list and the chunk is fetched.  A write that replaces the
 * chunk's content (fill_new) or a trim drops the record (cache_forget)
 * under the stripe, and the eviction makes it under the stripe too.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <xxhash.h>

#include "../common/cleanup.h"
#include "../proto/chunk_object.h"
#include "device_priv.h"

/* ---- superblock and map persistence --------------------------------- */

/* Caller holds gen_lock, or is single-threaded (open/close). */
void dev_sb_store(struct device *d)
{
	sb_encode(&d->sb, d->map);
}

int dev_map_sync(struct device *d)
{
	if (msync(d->map, d->map_len, MS_SYNC) < 0) {
		int err = errno;
		tlog(&d->log, LOG_ERROR, "msync %s/map: %s", d->cache_dir,
		     strerror(err));
		return -err;
	}
	return 0;
}

int dev_sb_sync(struct device *d)
{
	return msync(d->map, SB_SIZE, MS_SYNC) < 0 ? -errno : 0;
}

/* A generation never used before for any chunk of this device: the
 * superblock reserves a range before any of it is handed out. */
uint64_t dev_gen_next(struct device *d)
{
	uint64_t g;

	SCOPED_LOCK(&d->gen_lock);
	if (d->next_gen >= d->sb.gen_reserved) {
		d->sb.gen_reserved = d->next_gen + GEN_RESERVE;
		dev_sb_store(d);
		dev_sb_sync(d);
	}
	g = d->next_gen++;
	return g;
}

/* ---- slots ----------------------------------------------------------- */

/* Release a slot whose chunk no longer points at it.  The map must not
 * still name it on disk when it is reused: sync first (rare path). */
void dev_release_orphan(struct device *d, uint32_t slot)
{
	dev_map_sync(d);
	dev_slot_free(d, slot);
}

void dev_slot_free(struct device *d, uint32_t slot)
{
	policy_remove(d->policy, slot);
	cache_free(d->cache, slot);
}

uint32_t dev_now(const struct device *d)
{
	time_t now = time(NULL);

	return now > (time_t)d->sb.created ? (uint32_t)(now - d->sb.created)
					   : 0;
}

/* Drop a slot reference.  Called with the stripe of idx held; returns
 * true if the slot became an orphan to release after unlocking. */
bool dev_slot_put(struct device *d, uint64_t idx, uint32_t slot,
		  uint32_t weight)
{
	struct chunk_ent *e = &d->ents[idx];

	d->slot_refs[slot] -= weight;
	if (d->slot_refs[slot] > 0)
		return false;
	pthread_cond_broadcast(&stripe_of(d, idx)->changed);
	return e->slot != slot;
}

/* Evict up to `want` clean, unpinned, unused chunks, in the policy's
 * order.  Returns how many slots were freed. */
unsigned dev_evict(struct device *d, unsigned want)
{
	unsigned freed = 0;
	uint64_t tries = 2 * (uint64_t)want + 2 * POLICY_SAMPLE;
	uint32_t now = dev_now(d);

	while (freed < want && tries--) {
		uint32_t slot;
		uint64_t owner;
		struct stripe *s;
		struct chunk_ent *e;
		bool ok, dirty;

		if (policy_victim(d->policy, now, &slot, &owner) < 0)
			break;
		if (owner >= d->nchunks) {
			policy_skip(d->policy, slot, false);
			continue;
		}
		s = stripe_of(d, owner);
		pthread_mutex_lock(&s->lock);
		e = &d->ents[owner];
		ok = e->state == CHUNK_HOT_CLEAN && e->slot == slot &&
		     !(e->flags & (CE_F_BUSY | CE_F_UPLOADING | CE_F_PINNED)) &&
		     d->slot_refs[slot] == 0;
		if (ok) {
			e->state = CHUNK_COLD;
			e->slot = SLOT_NONE;
			e->flags &= (uint8_t) ~(CE_F_VERIFY | CE_F_SEQ);
			/* Free it with a victim record, under the stripe:
			 * a write or trim after this drops the record. */
			policy_remove(d->policy, slot);
			cache_free_victim(d->cache, slot, owner, e->gen);
		}
		dirty = e->slot == slot && e->state == CHUNK_HOT_DIRTY;
		pthread_mutex_unlock(&s->lock);
		if (ok) {
			STAT_INC(d, evictions);
			freed++;
		} else {
			policy_skip(d->policy, slot, dirty);
		}
	}
	return freed;
}

/* Over the high watermark: the background evictor makes room. */
static void evict_nudge(struct device *d)
{
	if (cache_nslots(d->cache) - cache_free_slots(d->cache) >
	    d->evict_high) {
		pthread_mutex_lock(&d->bg_lock);
		pthread_cond_signal(&d->bg_work);
		pthread_mutex_unlock(&d->bg_lock);
	}
}

/* Get a free slot for chunk idx: evict clean chunks if needed, and if
 * every slot is dirty or in use, hurry write-back and wait for it. */
static int slot_alloc(struct device *d, uint64_t idx, uint32_t *slot)
{
	bool urged = false;
	uint64_t batch64 = MAX((uint64_t)1,
			       MIN((uint64_t)64, cache_nslots(d->cache) / 32));
	unsigned batch = (unsigned)batch64;

	for (;;) {
		if (cache_alloc(d->cache, idx, slot) == 0)
			break;
		STAT_INC(d, sync_evictions);
		if (dev_evict(d, batch) > 0)
			continue;
		if (!urged) {
			wb_kick(d, true);
			urged = true;
			STAT_INC(d, throttled_writes);
		}
		pthread_mutex_lock(&d->wb_lock);
		if (!d->stop) {
			struct timespec ts;
			deadline(&ts, 50);
			pthread_cond_timedwait(&d->wb_progress, &d->wb_lock,
					       &ts);
		}
		pthread_mutex_unlock(&d->wb_lock);
	}
	if (urged)
		wb_unurge(d);
	evict_nudge(d);
	return 0;
}

/* ---- per-chunk transitions (caller holds the stripe) ----------------- */

static void busy_end(struct device *d, uint64_t idx)
{
	d->ents[idx].flags &= (uint8_t)~CE_F_BUSY;
	pthread_cond_broadcast(&stripe_of(d, idx)->changed);
}

/* ---- fetch buffers ---------------------------------------------------- */

/* A fetch receives the object into a buffer taken here and given back
 * after: 1 MiB mallocs per fetch cost page faults and zeroing (4% of a
 * cold read's CPU in bench/s3-cold.sh), and a raw payload is used where
 * it arrived (chunk_obj_view).  The object goes at FBUF_OBJ, so that
 * the payload after its header starts on a page, as O_DIRECT wants;
 * the scratch space for a compressed payload follows the object's room
 * (fbuf_obj).  At most fbuf_max idle buffers are kept, and no more than
 * 64 MiB of them. */
#define FBUF_IDLE_BYTES (64u << 20)
#define FBUF_OBJ (4096 - CHUNK_OBJ_HEADER_SIZE)

static size_t fbuf_size(const struct device *d)
{
	return 4096 + d->fbuf_obj + d->chunk_size;
}

void dev_fbuf_init(struct device *d)
{
	size_t each;

	d->fbuf_obj = ROUND_UP(chunk_obj_bound(d->chunk_size), (size_t)4096);
	each = fbuf_size(d);
	d->fbuf_max = MAX(1u, (unsigned)MIN((size_t)d->pull_threads + 4,
					    FBUF_IDLE_BYTES / each));
}

static void *fbuf_get(struct device *d)
{
	void *b;

	pthread_mutex_lock(&d->fbuf_lock);
	b = d->fbuf_free;
	if (b) {
		d->fbuf_free = *(void **)b;
		d->fbuf_idle--;
	}
	pthread_mutex_unlock(&d->fbuf_lock);
	if (!b && posix_memalign(&b, 4096, fbuf_size(d)) != 0)
		b = NULL;
	return b;
}

static void fbuf_put(struct device *d, void *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&d->fbuf_lock);
	if (d->fbuf_idle < d->fbuf_max) {
		*(void **)b = d->fbuf_free;
		d->fbuf_free = b;
		d->fbuf_idle++;
		b = NULL;
	}
	pthread_mutex_unlock(&d->fbuf_lock);
	free(b);
}

void dev_fbuf_fini(struct device *d)
{
	while (d->fbuf_free) {
		void *b = d->fbuf_free;

		d->fbuf_free = *(void **)b;
		free(b);
	}
	d->fbuf_idle = 0;
}

/* Take back the slot COLD chunk idx (gen, hash) was evicted from, if
 * the allocator still has it free with the chunk's victim record, and
 * if its content hashes to the map's hash.  buf: 4096-aligned, a chunk
 * long; the content is left there.  Entry BUSY, no lock held.  False:
 * no such slot, or it did not verify (freed again, counted); fetch. */
static bool slot_reclaim(struct device *d, uint64_t idx, uint64_t gen,
			 uint64_t hash, void *buf, uint32_t *slot)
{
	uint32_t s;
	int r;

	if (cache_reclaim(d->cache, idx, gen, &s) < 0)
		return false;
	r = cache_read_slot_direct(d->cache, s, buf);
	if (r == 0 && XXH3_64bits(buf, d->chunk_size) == hash) {
		STAT_INC(d, reclaims);
		*slot = s;
		evict_nudge(d); /* it took a free slot, as slot_alloc does */
		return true;
	}
	STAT_INC(d, reclaim_fails);
	tlog(&d->log, LOG_WARN,
	     "chunk %" PRIu64 ": slot %" PRIu32 " it was evicted from does "
	     "not hold it any more (%s); fetching it",
	     idx, s, r < 0 ? strerror(-r) : "checksum mismatch");
	cache_free(d->cache, s); /* the map never named it since */
	return false;
}

/* Fetch COLD chunk idx into a new slot (entry BUSY meanwhile), or take
 * back the slot it was evicted from (slot_reclaim).  If out is set,
 * also copy len bytes at off to it.  Returns with the stripe held; the
 * chunk is HOT_CLEAN on success. */
static int fetch(struct device *d, uint64_t idx, void *out, uint32_t len,
		 uint32_t off, bool seq)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	struct chunk_obj_info want = { .index = idx,
				       .generation = e->gen,
				       .device_id = d->sb.device_id,
				       .raw_len = d->chunk_size };
	uint64_t hash = e->hash;
	char key[64];
	char *buf;
	const void *data = NULL;
	size_t objlen;
	uint32_t slot = SLOT_NONE;
	struct chunk_obj_info got;
	int r;

	e->flags |= CE_F_BUSY;
	pthread_mutex_unlock(&s->lock);

	chunk_key(key, sizeof(key), idx, want.generation);
	buf = fbuf_get(d);
	r = buf ? 0 : -ENOMEM;
	if (r == 0 && slot_reclaim(d, idx, want.generation, hash, buf, &slot)) {
		if (out)
			memcpy(out, buf + off, len);
		goto out;
	}
	if (r == 0) {
		uint64_t t0 = lat_now_ns(); /* store latency (lathist.h) */

		r = store_get_into(d->store, key, buf + FBUF_OBJ, d->fbuf_obj,
				   &objlen);
		lat_record(d->st.store_get_lat, &d->st.store_get_ns, t0);
	}
	if (r == -EFBIG) {
		STAT_INC(d, checksum_errors);
		tlog(&d->log, LOG_ERROR,
		     "chunk %" PRIu64 ": object %s is larger than a chunk "
		     "object can be; refusing to serve it (EIO)",
		     idx, key);
		r = -EIO;
		goto out;
	}
	if (r < 0) {
		tlog(&d->log, LOG_ERROR, "chunk %" PRIu64 ": fetch %s: %s", idx,
		     key, strerror(-r));
		if (r == -ENOENT)
			r = -EIO; /* the map names it: the store lost it */
		goto out;
	}
	STAT_INC(d, fetches);
	STAT_ADD(d, fetch_bytes, objlen);
	r = chunk_obj_view(buf + FBUF_OBJ, objlen, &want,
			   buf + 4096 + d->fbuf_obj, d->chunk_size, &data,
			   &got);
	if (r == 0 && got.data_hash != hash)
		r = -ESTALE;
	if (r < 0) {
		STAT_INC(d, checksum_errors);
		tlog(&d->log, LOG_ERROR,
		     "chunk %" PRIu64 ": object %s is corrupt or not the one "
		     "the map expects (%s); refusing to serve it (EIO)",
		     idx, key, strerror(-r));
		r = -EIO;
		goto out;
	}
	r = slot_alloc(d, idx, &slot);
	if (r == 0)
		r = cache_write(d->cache, slot, data, d->chunk_size, 0);
	if (r < 0)
		tlog(&d->log, LOG_ERROR, "chunk %" PRIu64 ": cache write: %s",
		     idx, strerror(-r));
	else if (out)
		memcpy(out, (char *)data + off, len);
out:
	fbuf_put(d, buf);
	pthread_mutex_lock(&s->lock);
	if (r == 0) {
		e->state = CHUNK_HOT_CLEAN;
		e->slot = slot;
		if (seq)
			e->flags |= CE_F_SEQ;
		policy_admit(d->policy, slot, idx, e->heat, seq,
			     e->flags & CE_F_PINNED);
	} else if (slot != SLOT_NONE) {
		dev_slot_free(d, slot); /* never named by the map */
	}
	busy_end(d, idx);
	return r;
}

/* fetch() for a client that waits for it (see dev_demand_on). */
static int demand_fetch(struct device *d, uint64_t idx, void *out, uint32_t len,
			uint32_t off, bool seq)
{
	int r;

	STAT_INC(d, misses);
	__atomic_fetch_add(&d->demand_inflight, 1, __ATOMIC_RELAXED);
	r = fetch(d, idx, out, len, off, seq);
	__atomic_store_n(&d->demand_last_ms, now_ms(), __ATOMIC_RELAXED);
	__atomic_fetch_sub(&d->demand_inflight, 1, __ATOMIC_RELAXED);
	return r;
}

/* Check a clean copy after an unclean stop; on mismatch drop it so the
 * next access refetches.  Stripe held on entry and on return. */
static int verify(struct device *d, uint64_t idx)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	uint32_t slot = e->slot;
	void *data;
	int r;

	e->flags |= CE_F_BUSY;
	while (d->slot_refs[slot] > 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pthread_mutex_unlock(&s->lock);
	data = chunk_buf_alloc(d);
	r = data ? cache_read(d->cache, slot, data, d->chunk_size, 0) : -ENOMEM;
	bool ok = r == 0 && XXH3_64bits(data, d->chunk_size) == e->hash;
	free(data);
	pthread_mutex_lock(&s->lock);
	e->flags &= (uint8_t)~CE_F_VERIFY;
	if (!ok) {
		/* Not the committed object: a write lost in a crash left
		 * it, or the slot was reused.  The store has the truth. */
		tlog(&d->log, LOG_WARN,
		     "chunk %" PRIu64 ": cached copy does not match its "
		     "checksum after an unclean stop; refetching",
		     idx);
		STAT_INC(d, verify_refetches);
		e->state = CHUNK_COLD;
		e->slot = SLOT_NONE;
		pthread_mutex_unlock(&s->lock);
		dev_release_orphan(d, slot);
		pthread_mutex_lock(&s->lock);
	}
	busy_end(d, idx);
	return 0;
}

/* Fetch a COLD chunk in the background (pull queue).  Returns 0 when
 * the chunk is hot (or absent) afterwards. */
int dev_prefetch(struct device *d, uint64_t idx, bool seq)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	int r = 0;

	pthread_mutex_lock(&s->lock);
	e->flags &= (uint8_t)~CE_F_PULLQ;
	if (e->state == CHUNK_COLD && !(e->flags & CE_F_BUSY)) {
		r = fetch(d, idx, NULL, 0, 0, seq);
		if (r == 0)
			STAT_INC(d, prefetches);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void dev_trace(struct device *d, char op, uint64_t off, uint64_t len)
{
	struct timespec ts;

	if (!d->trace)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t us = (uint64_t)ts.tv_sec * 1000000 +
		      (uint64_t)ts.tv_nsec / 1000 - d->trace_t0;
	pthread_mutex_lock(&d->trace_lock);
	fprintf(d->trace, "%" PRIu64 " %c %" PRIu64 " %" PRIu64 "\n", us, op,
		off, len);
	pthread_mutex_unlock(&d->trace_lock);
}

/* ---- read ------------------------------------------------------------ */

static int chunk_read(struct device *d, uint64_t idx, char *buf, uint32_t len,
		      uint32_t off, bool seq, uint32_t now)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	uint32_t slot;
	bool orphan;
	int r;

	pthread_mutex_lock(&s->lock);
	if (e->state != CHUNK_ABSENT)
		policy_touch(d->policy, &e->heat, &e->tick, now, seq);
	for (;;) {
		if (e->flags & CE_F_BUSY) {
			STAT_INC(d, fetch_waits);
			pthread_cond_wait(&s->changed, &s->lock);
			continue;
		}
		if (e->state == CHUNK_ABSENT) {
			pthread_mutex_unlock(&s->lock);
			memset(buf, 0, len);
			return 0;
		}
		if (e->state == CHUNK_COLD) {
			r = demand_fetch(d, idx, buf, len, off, seq);
			pthread_mutex_unlock(&s->lock);
			return r;
		}
		if (e->flags & CE_F_VERIFY) {
			verify(d, idx);
			continue;
		}
		break;
	}
	slot = e->slot;
	d->slot_refs[slot] += SLOT_READER;
	pthread_mutex_unlock(&s->lock);

	STAT_INC(d, hits);
	if (!seq)
		policy_hit(d->policy, slot);
	uint64_t t0 = lat_now_ns(); /* cache latency (lathist.h) */
	r = cache_read(d->cache, slot, buf, len, off);
	lat_record(d->st.cache_read_lat, &d->st.cache_read_ns, t0);
	if (r < 0)
		tlog(&d->log, LOG_ERROR, "chunk %" PRIu64 ": cache read: %s",
		     idx, strerror(-r));

	pthread_mutex_lock(&s->lock);
	orphan = dev_slot_put(d, idx, slot, SLOT_READER);
	pthread_mutex_unlock(&s->lock);
	if (orphan)
		dev_release_orphan(d, slot);
	return r;
}

/* Split [offset, offset+count) into per-chunk pieces. */
#define FOR_EACH_CHUNK(d, count, offset, idx, off, len, done)                \
	for (uint64_t done = 0, idx, _pos; done < (count); done += (len))    \
		if ((_pos = (offset) + done, idx = _pos >> (d)->chunk_shift, \
		     off = (uint32_t)(_pos & ((d)->chunk_size - 1)),         \
		     len = (uint32_t)MIN((uint64_t)(d)->chunk_size - off,    \
					 (count)-done),                      \
		     1))

static int check_range(struct device *d, uint32_t count, uint64_t offset)
{
	if (offset > d->size || count > d->size - offset)
		return -ERANGE;
	return 0;
}

int device_read(struct device *d, void *buf, uint32_t count, uint64_t offset)
{
	uint32_t off, len;
	int r = check_range(d, count, offset);

	if (r < 0)
		return r;
	STAT_INC(d, reads);
	STAT_ADD(d, read_bytes, count);
	dev_trace(d, 'R', offset, count);
	bool seq = policy_note_io(d->policy, offset, count, d->chunk_shift);
	uint32_t now = dev_now(d);
	/* A sequential stream: have the next chunks pulled meanwhile. */
	if (seq && d->readahead_chunks && count) {
		uint64_t last = (offset + count - 1) >> d->chunk_shift;
		for (uint64_t i = last + 1;
		     i <= last + d->readahead_chunks && i < d->nchunks; i++)
			if (__atomic_load_n(&d->ents[i].state,
					    __ATOMIC_RELAXED) == CHUNK_COLD)
				dev_pull(d, i, PULL_READAHEAD);
	}
	FOR_EACH_CHUNK(d, count, offset, idx, off, len, done)
	{
		r = chunk_read(d, idx, (char *)buf + done, len, off, seq, now);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- write ----------------------------------------------------------- */

/* First fill of an ABSENT chunk, or a whole-chunk overwrite of a COLD
 * one: a new slot, zeros around the data.  Stripe held, entry not
 * BUSY; returns with the stripe held. */
static int fill_new(struct device *d, uint64_t idx, const char *buf,
		    uint32_t len, uint32_t off, bool seq)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	uint32_t slot = SLOT_NONE;
	int r;

	e->flags |= CE_F_BUSY;
	cache_forget(d->cache, idx); /* its evicted slot is stale now */
	pthread_mutex_unlock(&s->lock);
	r = slot_alloc(d, idx, &slot);
	if (r == 0 && len < d->chunk_size)
		r = cache_zero_slot(d->cache, slot);
	if (r == 0)
		r = cache_write(d->cache, slot, buf, len, off);
	pthread_mutex_lock(&s->lock);
	if (r == 0) {
		/* A COLD chunk keeps gen: that object goes after the next
		 * upload names a newer one. */
		e->slot = slot;
		e->state = CHUNK_HOT_CLEAN; /* wb_make_dirty counts it */
		wb_make_dirty(d, idx);
		policy_admit(d->policy, slot, idx, e->heat, seq,
			     e->flags & CE_F_PINNED);
	} else {
		tlog(&d->log, LOG_ERROR, "chunk %" PRIu64 ": cache write: %s",
		     idx, strerror(-r));
		if (slot != SLOT_NONE)
			dev_slot_free(d, slot);
	}
	busy_end(d, idx);
	if (r == 0)
		wb_write_done(d, idx, off + len, seq);
	return r;
}

static int chunk_write(struct device *d, uint64_t idx, const char *buf,
		       uint32_t len, uint32_t off, bool seq, uint32_t now)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	bool whole = len == d->chunk_size;
	bool rmw = cache_write_is_rmw(d->cache, len, off);
	uint32_t slot;
	bool orphan;
	int r;

	pthread_mutex_lock(&s->lock);
	policy_touch(d->policy, &e->heat, &e->tick, now, seq);
	for (;;) {
		if (e->flags & CE_F_BUSY) {
			pthread_cond_wait(&s->changed, &s->lock);
			continue;
		}
		if (e->state == CHUNK_ABSENT ||
		    (e->state == CHUNK_COLD && whole)) {
			r = fill_new(d, idx, buf, len, off, seq);
			pthread_mutex_unlock(&s->lock);
			return r;
		}
		if (e->state == CHUNK_COLD) {
			r = demand_fetch(d, idx, NULL, 0, 0, seq);
			if (r < 0) {
				pthread_mutex_unlock(&s->lock);
				return r;
			}
			continue;
		}
		if (e->flags & CE_F_VERIFY) {
			if (!whole) {
				verify(d, idx);
				continue;
			}
			e->flags &= (uint8_t)~CE_F_VERIFY;
		}
		break;
	}
	slot = e->slot;
	wb_make_dirty(d, idx);
	if (rmw) {
		/* Edge blocks are read and rewritten: keep every other
		 * user of this chunk out meanwhile. */
		e->flags |= CE_F_BUSY;
		while (d->slot_refs[slot] > 0)
			pthread_cond_wait(&s->changed, &s->lock);
	}
	d->slot_refs[slot] += SLOT_WRITER;
	pthread_mutex_unlock(&s->lock);

	if (!seq)
		policy_hit(d->policy, slot);
	r = cache_write(d->cache, slot, buf, len, off);
	if (r < 0)
		tlog(&d->log, LOG_ERROR, "chunk %" PRIu64 ": cache write: %s",
		     idx, strerror(-r));

	pthread_mutex_lock(&s->lock);
	if (rmw)
		busy_end(d, idx);
	orphan = dev_slot_put(d, idx, slot, SLOT_WRITER);
	if (r == 0 && !orphan)
		wb_write_done(d, idx, off + len, seq);
	pthread_mutex_unlock(&s->lock);
	if (orphan)
		dev_release_orphan(d, slot);
	return r;
}

int device_write(struct device *d, const void *buf, uint32_t count,
		 uint64_t offset, unsigned flags)
{
	uint32_t off, len;
	int r = check_range(d, count, offset);

	if (r < 0)
		return r;
	if (d->readonly)
		return -EROFS;
	STAT_INC(d, writes);
	STAT_ADD(d, write_bytes, count);
	dev_trace(d, 'W', offset, count);
	wb_throttle(d);
	bool seq = policy_note_io(d->policy, offset, count, d->chunk_shift);
	uint32_t now = dev_now(d);
	FOR_EACH_CHUNK(d, count, offset, idx, off, len, done)
	{
		r = chunk_write(d, idx, (const char *)buf + done, len, off, seq,
				now);
		if (r < 0)
			return r;
	}
	if (flags & DEV_FUA)
		return device_flush(d);
	return 0;
}

int device_flush(struct device *d)
{
	int r;

	STAT_INC(d, flushes);
	dev_trace(d, 'F', 0, 0);
	r = cache_sync(d->cache);
	if (r < 0) {
		tlog(&d->log, LOG_ERROR, "flush: fdatasync of the cache: %s",
		     strerror(-r));
		return r;
	}
	r = dev_map_sync(d);
	if (r == 0 && d->flush_remote)
		r = commit_request_wait(d);
	return r;
}

/* ---- trim and zero --------------------------------------------------- */

/* Make a whole chunk ABSENT.  Returns the slot to release, or
 * SLOT_NONE. */
static uint32_t chunk_discard(struct device *d, uint64_t idx)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	uint32_t slot = SLOT_NONE;

	pthread_mutex_lock(&s->lock);
	while (e->flags & CE_F_BUSY)
		pthread_cond_wait(&s->changed, &s->lock);
	if (e->state == CHUNK_HOT_DIRTY)
		__atomic_fetch_sub(&d->ndirty, 1, __ATOMIC_RELAXED);
	if (e->state != CHUNK_ABSENT) {
		cache_forget(d->cache, idx);
		wb_delete_later(d, idx, e->gen);
		__atomic_fetch_add(&d->map_version, 1, __ATOMIC_RELAXED);
		if (e->slot != SLOT_NONE && d->slot_refs[e->slot] == 0)
			slot = e->slot; /* else the last dev_slot_put frees it */
		e->state = CHUNK_ABSENT;
		e->slot = SLOT_NONE;
		e->gen = 0;
		e->hash = 0;
		e->flags &= (uint8_t)~CE_F_VERIFY;
	}
	pthread_mutex_unlock(&s->lock);
	return slot;
}

static int discard_range(struct device *d, uint32_t count, uint64_t offset,
			 bool zero_partial, unsigned flags)
{
	uint32_t off, len;
	uint32_t *freed = NULL;
	size_t nfreed = 0;
	int r = 0;

	/* Fast zero: fail at once if a partial chunk would need a fetch. */
	if (zero_partial && (flags & DEV_FAST_ZERO)) {
		FOR_EACH_CHUNK(d, count, offset, idx, off, len, done)
		{
			uint8_t st = __atomic_load_n(&d->ents[idx].state,
						     __ATOMIC_RELAXED);
			if (len < d->chunk_size && st == CHUNK_COLD)
				return -ENOTSUP;
		}
	}
	freed = malloc(sizeof(*freed) * (count / d->chunk_size + 2));
	if (!freed)
		return -ENOMEM;
	FOR_EACH_CHUNK(d, count, offset, idx, off, len, done)
	{
		if (len == d->chunk_size) {
			uint32_t slot = chunk_discard(d, idx);
			if (slot != SLOT_NONE)
				freed[nfreed++] = slot;
		} else if (zero_partial) {
			CLEANUP_FREE char *z = calloc(1, len);
			uint8_t st = __atomic_load_n(&d->ents[idx].state,
						     __ATOMIC_RELAXED);
			if (st == CHUNK_ABSENT)
				continue; /* already zeros */
			r = z ? chunk_write(d, idx, z, len, off, false,
					    dev_now(d))
			      : -ENOMEM;
			if (r < 0)
				break;
		}
	}
	if (nfreed) {
		/* The map must not name a slot on disk when it is reused. */
		dev_map_sync(d);
		for (size_t i = 0; i < nfreed; i++)
			dev_slot_free(d, freed[i]);
	}
	free(freed);
	return r;
}

int device_trim(struct device *d, uint32_t count, uint64_t offset,
		unsigned flags)
{
	int r = check_range(d, count, offset);

	if (r < 0)
		return r;
	if (d->readonly)
		return -EROFS;
	dev_trace(d, 'T', offset, count);
	r = discard_range(d, count, offset, false, 0);
	if (r == 0 && (flags & DEV_FUA))
		r = device_flush(d);
	return r;
}

int device_zero(struct device *d, uint32_t count, uint64_t offset,
		unsigned flags)
{
	int r = check_range(d, count, offset);

	if (r < 0)
		return r;
	if (d->readonly)
		return -EROFS;
	dev_trace(d, 'Z', offset, count);
	wb_throttle(d);
	r = discard_range(d, count, offset, true, flags);
	if (r == 0 && (flags & DEV_FUA))
		r = device_flush(d);
	return r;
}

int device_extents(struct device *d, uint32_t count, uint64_t offset,
		   device_extent_cb cb, void *opaque)
{
	uint64_t first, last, run_start;
	bool run_hole;
	int r = check_range(d, count, offset);

	if (r < 0)
		return r;
	if (count == 0)
		return 0;
	first = offset >> d->chunk_shift;
	last = (offset + count - 1) >> d->chunk_shift;
	run_start = first;
	run_hole = __atomic_load_n(&d->ents[first].state, __ATOMIC_RELAXED) ==
		   CHUNK_ABSENT;
	for (uint64_t i = first + 1; i <= last + 1; i++) {
		bool hole = i <= last &&
			    __atomic_load_n(&d->ents[i].state,
					    __ATOMIC_RELAXED) == CHUNK_ABSENT;
		if (i <= last && hole == run_hole)
			continue;
		uint64_t start = run_start << d->chunk_shift;
		uint64_t end = MIN(i << d->chunk_shift, d->size);
		r = cb(opaque, start, end - start, run_hole);
		if (r < 0)
			return r;
		run_start = i;
		run_hole = hole;
	}
	return 0;
}

uint64_t device_size(const struct device *d)
{
	return d->size;
}

uint32_t device_chunk_size(const struct device *d)
{
	return d->chunk_size;
}

void device_get_stats(struct device *d, struct device_stats *out)
{
	struct cache_stats cs;

	*out = d->st; /* counters: a racy snapshot is fine */
	out->nchunks = d->nchunks;
	out->chunk_size = d->chunk_size;
	out->nslots = cache_nslots(d->cache);
	out->absent = out->cold = out->hot_clean = out->hot_dirty = 0;
	for (uint64_t i = 0; i < d->nchunks; i++) {
		switch (__atomic_load_n(&d->ents[i].state, __ATOMIC_RELAXED)) {
		case CHUNK_ABSENT:
			out->absent++;
			break;
		case CHUNK_COLD:
			out->cold++;
			break;
		case CHUNK_HOT_CLEAN:
			out->hot_clean++;
			break;
		default:
			out->hot_dirty++;
			break;
		}
	}
	cache_get_stats(d->cache, &cs);
	out->slots_free = cs.free_slots;
	out->bounces = cs.bounces;
	struct policy_stats ps;
	policy_get_stats(d->policy, &ps);
	out->probation = ps.probation;
	out->main = ps.main;
	out->pinned_slots = ps.pinned;
	out->promotions = ps.promotions;
	out->ghost_admits = ps.ghost_admits;
	out->seq_admits = ps.seq_admits;
	out->seq_streams = ps.seq_streams;
	out->pinned = __atomic_load_n(&d->npinned, __ATOMIC_RELAXED);
	uint64_t depth[PULL_NPRIO];
	dev_pull_stats(d, depth);
	out->pull_pinned = depth[PULL_PINNED];
	out->pull_warm = depth[PULL_WARM];
	out->pull_readahead = depth[PULL_READAHEAD];
	out->pull_hydrate = depth[PULL_HYDRATE];
	/* Per chunk of the device: its map entry, heat included.  Per slot
	 * (per cached chunk): references, the allocator's owner, free-list
	 * links, victim record and hint (cache.c), and the policy's
	 * arrays. */
	uint64_t per_slot =
		out->nslots * (sizeof(uint32_t) + sizeof(uint64_t) +
			       2 * sizeof(uint32_t) + 2 * sizeof(uint64_t) +
			       sizeof(uint32_t)) +
		ps.meta_bytes;
	out->meta_bytes_per_chunk = sizeof(struct chunk_ent);
	out->meta_bytes_per_slot =
		DIV_ROUND_UP(per_slot, MAX(out->nslots, (uint64_t)1));
	out->meta_bytes = d->nchunks * sizeof(struct chunk_ent) + per_slot;
	d->store->ops->stats(d->store, &out->store);
	out->commit_seq = d->commit_seq;
	out->commit_lag = __atomic_load_n(&d->map_version, __ATOMIC_RELAXED) -
			  d->committed_version;
	/* queue depths, for the control socket and metrics */
	out->dirty_bytes =
		__atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) * d->chunk_size;
	pthread_mutex_lock(&d->wb_lock);
	out->wb_queue = d->q_len;
	out->pending_dels = d->ndels;
	pthread_mutex_unlock(&d->wb_lock);
	out->pull_queue = depth[PULL_PINNED] + depth[PULL_WARM] +
			  depth[PULL_READAHEAD] + depth[PULL_HYDRATE];
}
