/* writeback.c - the dirty queue, the push workers and deletions.
 *
 * A chunk enters the queue (QUEUED flag) when it becomes dirty, with a
 * due time `writeback-delay` later so repeated writes coalesce into one
 * upload.  Workers pop due chunks, upload the slot's content as a new
 * object version, and mark the chunk clean if nothing wrote it
 * meanwhile (REDIRTY).  Over max-dirty, or when a writer needs a slot,
 * the delay is skipped (urgent) and writers wait for progress.  A chunk
 * that a sequential writer has just finished goes to the front of the
 * queue, due at once (writeback-early): the writer has moved on, and
 * waiting would only leave the store idle.  While a
 * client waits for a demand fetch and no writer waits (not urgent), at
 * most push_yield_to uploads are in flight (device_priv.h).
 * A version the map no longer names goes to the pending deletions;
 * commit.c deletes it once no retained commit names it either.
 */
#include <errno.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../proto/chunk_object.h"
#include "device_priv.h"

void wb_kick(struct device *d, bool urgent_start)
{
	pthread_mutex_lock(&d->wb_lock);
	if (urgent_start)
		d->urgent++;
	pthread_cond_broadcast(&d->wb_work);
	pthread_mutex_unlock(&d->wb_lock);
}

void wb_unurge(struct device *d)
{
	pthread_mutex_lock(&d->wb_lock);
	d->urgent--;
	pthread_mutex_unlock(&d->wb_lock);
}

/* ---- dirty queue ----------------------------------------------------- */

/* Room for one more item.  Caller holds wb_lock. */
static int wb_q_room(struct device *d)
{
	if (d->q_len == d->q_cap) {
		size_t ncap = d->q_cap ? 2 * d->q_cap : 256;
		struct dirty_item *n = malloc(ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < d->q_len; i++)
			n[i] = d->q[(d->q_head + i) % d->q_cap];
		free(d->q);
		d->q = n;
		d->q_cap = ncap;
		d->q_head = 0;
	}
	return 0;
}

/* Caller holds wb_lock. */
int wb_q_push(struct device *d, uint64_t idx, uint64_t due)
{
	if (wb_q_room(d) < 0)
		return -ENOMEM;
	d->q[(d->q_head + d->q_len) % d->q_cap] =
		(struct dirty_item){ .idx = idx, .due_ms = due };
	d->q_len++;
	pthread_cond_signal(&d->wb_work);
	return 0;
}

/* Queue chunk idx for write-back.  Caller holds its stripe. */
void wb_queue(struct device *d, uint64_t idx, unsigned delay_ms)
{
	struct chunk_ent *e = &d->ents[idx];

	if (e->flags & CE_F_QUEUED)
		return;
	pthread_mutex_lock(&d->wb_lock);
	if (wb_q_push(d, idx, now_ms() + delay_ms) == 0)
		e->flags |= CE_F_QUEUED;
	else
		tlog(&d->log, LOG_ERROR,
		     "chunk %" PRIu64 ": out of memory queueing write-back",
		     idx);
	pthread_mutex_unlock(&d->wb_lock);
}

/* Mark chunk idx dirty before its slot is written.  Caller holds its
 * stripe; the chunk is HOT. */
void wb_make_dirty(struct device *d, uint64_t idx)
{
	struct chunk_ent *e = &d->ents[idx];

	if (e->flags & CE_F_UPLOADING)
		e->flags |= CE_F_REDIRTY;
	if (e->state != CHUNK_HOT_DIRTY) {
		e->state = CHUNK_HOT_DIRTY;
		__atomic_fetch_add(&d->ndirty, 1, __ATOMIC_RELAXED);
	}
	wb_queue(d, idx, d->delay_ms);
}

/* A write of chunk idx ended at byte `end` of the chunk; `seq` if it
 * continued a sequential stream.  If that stream has just finished the
 * chunk and no other write to it is in flight, queue it again at the
 * front, due now (its first entry, due writeback-delay after it got
 * dirty, then finds it clean or pushes it again if written since).
 * Caller holds its stripe. */
void wb_write_done(struct device *d, uint64_t idx, uint32_t end, bool seq)
{
	struct chunk_ent *e = &d->ents[idx];

	if (!d->wb_early || !seq || end != d->chunk_size ||
	    e->state != CHUNK_HOT_DIRTY ||
	    (e->flags & (CE_F_BUSY | CE_F_UPLOADING)) ||
	    d->slot_refs[e->slot] >= SLOT_WRITER)
		return;
	pthread_mutex_lock(&d->wb_lock);
	if (wb_q_room(d) == 0) {
		d->q_head = (d->q_head + d->q_cap - 1) % d->q_cap;
		d->q[d->q_head] =
			(struct dirty_item){ .idx = idx, .due_ms = 0 };
		d->q_len++;
		e->flags |= CE_F_QUEUED;
		STAT_INC(d, early_pushes);
		pthread_cond_signal(&d->wb_work);
	}
	pthread_mutex_unlock(&d->wb_lock);
}

/* An object version the map no longer names: delete it when no
 * retained commit names it either (commit.c). */
void wb_delete_later(struct device *d, uint64_t idx, uint64_t gen)
{
	if (!gen)
		return;
	pthread_mutex_lock(&d->wb_lock);
	if (d->ndels == d->dels_cap) {
		size_t ncap = d->dels_cap ? 2 * d->dels_cap : 64;
		struct pending_del *n = realloc(d->dels, ncap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&d->wb_lock);
			return; /* the object leaks; fsck finds it */
		}
		d->dels = n;
		d->dels_cap = ncap;
	}
	d->dels[d->ndels++] = (struct pending_del){ idx, gen };
	pthread_cond_signal(&d->wb_work);
	pthread_mutex_unlock(&d->wb_lock);
}

/* Writers wait while dirty data is over max_dirty. */
void wb_throttle(struct device *d)
{
	if (__atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) * d->chunk_size <=
	    d->max_dirty)
		return;
	STAT_INC(d, throttled_writes);
	wb_kick(d, true);
	pthread_mutex_lock(&d->wb_lock);
	while (!d->stop &&
	       __atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) * d->chunk_size >
		       d->max_dirty) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&d->wb_progress, &d->wb_lock, &ts);
	}
	d->urgent--;
	pthread_mutex_unlock(&d->wb_lock);
}

/* ---- write-back ------------------------------------------------------ */

/* Upload one dirty chunk as a new object version. */
static void push_chunk(struct device *d, uint64_t idx, void *data, void *enc,
		       size_t enc_size)
{
	struct stripe *s = stripe_of(d, idx);
	struct chunk_ent *e = &d->ents[idx];
	struct chunk_obj_info info;
	uint32_t slot;
	uint64_t old;
	char key[64];
	long n = 0;
	bool orphan;
	int r;

	pthread_mutex_lock(&s->lock);
	e->flags &= (uint8_t)~CE_F_QUEUED;
	if (e->state != CHUNK_HOT_DIRTY) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (e->flags & (CE_F_BUSY | CE_F_UPLOADING)) {
		wb_queue(d, idx, PUSH_RETRY_MS / 10);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	e->flags |= CE_F_UPLOADING;
	e->flags &= (uint8_t)~CE_F_REDIRTY;
	slot = e->slot;
	/* A write still in flight may land after our snapshot: keep the
	 * chunk dirty for another push. */
	if (d->slot_refs[slot] >= SLOT_WRITER)
		e->flags |= CE_F_REDIRTY;
	d->slot_refs[slot] += SLOT_READER;
	pthread_mutex_unlock(&s->lock);

	info = (struct chunk_obj_info){ .index = idx,
					.generation = dev_gen_next(d),
					.device_id = d->sb.device_id,
					.raw_len = d->chunk_size };
	r = cache_read_slot_direct(d->cache, slot, data);
	if (r == 0) {
		n = chunk_obj_encode(&info, data, enc, enc_size);
		r = n < 0 ? (int)n : 0;
	}
	if (r == 0) {
		tb_take(&d->push_tb, (uint64_t)n); /* push-rate= */
		chunk_key(key, sizeof(key), idx, info.generation);
		r = d->store->ops->put(d->store, key, enc, (size_t)n);
	}

	pthread_mutex_lock(&s->lock);
	e->flags &= (uint8_t)~CE_F_UPLOADING;
	orphan = dev_slot_put(d, idx, slot, SLOT_READER);
	if (r < 0) {
		STAT_INC(d, upload_errors);
		tlog(&d->log, LOG_WARN,
		     "chunk %" PRIu64 ": write-back failed (%s); will retry",
		     idx, strerror(-r));
		if (e->state == CHUNK_HOT_DIRTY)
			wb_queue(d, idx, PUSH_RETRY_MS);
	} else if (e->state == CHUNK_HOT_DIRTY && e->slot == slot) {
		STAT_INC(d, uploads);
		STAT_ADD(d, upload_bytes, (uint64_t)n);
		old = e->gen;
		e->gen = info.generation;
		e->hash = info.data_hash;
		__atomic_fetch_add(&d->map_version, 1, __ATOMIC_RELAXED);
		if (e->flags & CE_F_REDIRTY) {
			wb_queue(d, idx, d->delay_ms);
		} else {
			e->state = CHUNK_HOT_CLEAN;
			__atomic_fetch_sub(&d->ndirty, 1, __ATOMIC_RELAXED);
			policy_unpark(d->policy, slot);
		}
		wb_delete_later(d, idx, old);
	} else {
		/* Trimmed while uploading: the new object is garbage. */
		wb_delete_later(d, idx, info.generation);
	}
	pthread_mutex_unlock(&s->lock);
	if (orphan)
		dev_release_orphan(d, slot);

	pthread_mutex_lock(&d->wb_lock);
	pthread_cond_broadcast(&d->wb_progress);
	pthread_mutex_unlock(&d->wb_lock);
}

static void *wb_worker(void *arg)
{
	struct device *d = arg;
	size_t enc_size = chunk_obj_bound(d->chunk_size);
	void *data = chunk_buf_alloc(d);
	void *enc = malloc(enc_size);

	if (!data || !enc) {
		tlog(&d->log, LOG_ERROR, "write-back worker: out of memory");
		goto out;
	}
	pthread_mutex_lock(&d->wb_lock);
	while (!d->stop) {
		uint64_t now = now_ms();

		if (d->q_len == 0) {
			pthread_cond_broadcast(&d->wb_progress);
			pthread_cond_wait(&d->wb_work, &d->wb_lock);
			continue;
		}
		struct dirty_item it = d->q[d->q_head];
		bool over = __atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) *
				    d->chunk_size >
			    d->max_dirty;
		if (!d->urgent && d->pushes_active >= d->push_yield_to &&
		    dev_demand_on(d)) {
			/* A client waits for a fetch: let it go first. */
			struct timespec ts;
			deadline(&ts, 20);
			STAT_INC(d, bg_yields);
			pthread_cond_timedwait(&d->wb_work, &d->wb_lock, &ts);
			continue;
		}
		if (it.due_ms > now && !d->urgent && !over) {
			struct timespec ts;
			deadline(&ts, it.due_ms - now);
			pthread_cond_timedwait(&d->wb_work, &d->wb_lock, &ts);
			continue;
		}
		d->q_head = (d->q_head + 1) % d->q_cap;
		d->q_len--;
		d->pushes_active++;
		pthread_mutex_unlock(&d->wb_lock);
		/* Kernel probe (probe.c): while the cache device's p99
		 * latency is over probe-latency-limit, sleep a little
		 * before reading a slot to push it, so clients go first. */
		dev_bg_pace(d);
		push_chunk(d, it.idx, data, enc, enc_size);
		pthread_mutex_lock(&d->wb_lock);
		d->pushes_active--;
		pthread_cond_signal(&d->wb_work);
	}
	pthread_mutex_unlock(&d->wb_lock);
out:
	free(data);
	free(enc);
	return NULL;
}

int device_drain(struct device *d)
{
	wb_kick(d, true);
	pthread_mutex_lock(&d->wb_lock);
	while (!d->stop && __atomic_load_n(&d->ndirty, __ATOMIC_RELAXED))
		pthread_cond_wait(&d->wb_progress, &d->wb_lock);
	d->urgent--;
	pthread_mutex_unlock(&d->wb_lock);
	return commit_request_wait(d);
}

int device_start(struct device *d)
{
	int r;

	if (d->readonly || d->nworkers)
		return 0;
	r = commit_start(d);
	if (r == 0)
		r = dev_bg_start(d);
	if (r < 0)
		return r;
	d->workers = calloc(d->push_threads, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < d->push_threads; i++) {
		r = pthread_create(&d->workers[i], NULL, wb_worker, d);
		if (r) {
			tlog(&d->log, LOG_ERROR,
			     "cannot start write-back thread: %s", strerror(r));
			return -r;
		}
		d->nworkers++;
	}
	return 0;
}

/* At close: push every dirty chunk while the store takes them, so that
 * a clean stop leaves the store holding everything (then the final
 * commit names it and the lease is released).  Gives up when no chunk
 * got clean for CLOSE_STALL_MS (the store is away, or refuses): what
 * is left stays dirty in the cache directory, as after a crash, and is
 * pushed at the next open.  kill -9 meanwhile is as safe as ever. */
#define CLOSE_STALL_MS 15000
#define CLOSE_LOG_MS 5000
void wb_drain_close(struct device *d)
{
	uint64_t left = __atomic_load_n(&d->ndirty, __ATOMIC_RELAXED);
	uint64_t last = left, t_progress = now_ms(), t_log = t_progress;

	if (!left || !d->nworkers || d->fenced)
		return;
	tlog(&d->log, LOG_INFO,
	     "closing: uploading %" PRIu64 " MiB of dirty data first "
	     "(kill -9 is safe: the next start uploads what is left)",
	     (left * d->chunk_size) >> 20);
	wb_kick(d, true);
	pthread_mutex_lock(&d->wb_lock);
	while ((left = __atomic_load_n(&d->ndirty, __ATOMIC_RELAXED)) > 0) {
		struct timespec ts;
		uint64_t now = now_ms();

		if (left < last) {
			last = left;
			t_progress = now;
		} else if (now - t_progress >= CLOSE_STALL_MS) {
			break;
		}
		if (now - t_log >= CLOSE_LOG_MS) {
			tlog(&d->log, LOG_INFO,
			     "closing: %" PRIu64 " MiB still to upload",
			     (left * d->chunk_size) >> 20);
			t_log = now;
		}
		deadline(&ts, 1000);
		pthread_cond_timedwait(&d->wb_progress, &d->wb_lock, &ts);
	}
	d->urgent--;
	pthread_mutex_unlock(&d->wb_lock);
	if (left)
		tlog(&d->log, LOG_WARN,
		     "closing with %" PRIu64 " dirty chunks not uploaded: the "
		     "store took none for %u s; they stay in %s and are "
		     "uploaded at the next start",
		     left, CLOSE_STALL_MS / 1000, d->cache_dir);
}

void wb_stop(struct device *d)
{
	pthread_mutex_lock(&d->wb_lock);
	d->stop = true;
	pthread_cond_broadcast(&d->wb_work);
	pthread_cond_broadcast(&d->wb_progress);
	pthread_mutex_unlock(&d->wb_lock);
	for (unsigned i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	free(d->workers);
	d->workers = NULL;
	d->nworkers = 0;
}
