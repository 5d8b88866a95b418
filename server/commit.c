/* commit.c - commits in the store, and deletion of superseded versions.
 *
 * A commit (proto/commit.h) names, for every chunk holding data, the
 * object version that holds it.  It is a valid crash image when those
 * versions together contain every write acknowledged before some
 * moment T (DESIGN invariant 2).  The commit worker makes one so:
 *
 *   1. note G0, the next generation to be handed out, and the list S
 *      of chunks dirty now (time T);
 *   2. wait until every chunk of S is clean, or absent, or has a version
 *      with generation >= G0: that upload read the slot after T, so it
 *      holds every write acknowledged before T;
 *   3. read every entry (under its stripe lock) into the commit: chunks
 *      clean at T hold all their writes up to T; chunks dirtied after T
 *      name a version from before, or a newer one (later writes may be
 *      partly present, as on a real disk);
 *   4. PUT commits/<seq>.
 *
 * Deletion.  A version superseded in the map (by a newer upload, or by
 * a trim) is still named by the commits made before.  Superseded
 * versions collected at commit N are deleted once commit N+1 is in the
 * store, so the two newest commits are always whole; older commits are
 * deleted then too.  The local map is synced first, so after a crash it
 * cannot name a deleted version either.
 *
 * Commits are made every commit-interval when something changed, and at
 * once on request: flush=remote waits for a commit that started after
 * the flush, device_drain for one after everything is uploaded.
 */
#include <errno.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../proto/commit.h"
#include "device_priv.h"

#define COMMIT_POLL_MS 50
#define COMMIT_RETRY_MS 1000
#define COMMITS_PREFIX "commits/"

static void commit_key(char *buf, size_t n, uint64_t seq)
{
	snprintf(buf, n, COMMITS_PREFIX "%016" PRIx64, seq);
}

/* ---- reading commits (open) ------------------------------------------ */

struct seq_list {
	uint64_t *v;
	size_t n, cap;
};

static int collect_seq(void *opaque, const char *key, uint64_t size)
{
	struct seq_list *l = opaque;
	const char *p = key + strlen(COMMITS_PREFIX);
	char *end;
	uint64_t seq;

	if (strncmp(key, COMMITS_PREFIX, strlen(COMMITS_PREFIX)) != 0)
		return 0;
	seq = strtoull(p, &end, 16);
	if (*end || end - p != 16 || seq == 0)
		return 0; /* not ours */
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		uint64_t *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = seq;
	return 0;
}

int commit_load_latest(struct store *st, const struct logger *lg,
		       struct commit_info *info, struct commit_entry **ents,
		       uint64_t *newest_seq)
{
	struct seq_list l = { 0 };
	int r;

	*newest_seq = 0;
	r = st->ops->list(st, COMMITS_PREFIX, collect_seq, &l);
	if (r < 0) {
		tlog(lg, LOG_ERROR, "listing commits in the store: %s",
		     strerror(-r));
		free(l.v);
		return r;
	}
	r = -ENOENT;
	if (!info) {
		*newest_seq = l.n ? l.v[l.n - 1] : 0;
		free(l.v);
		return l.n ? 0 : -ENOENT;
	}
	/* Keys sort by sequence number: the newest is last. */
	for (size_t i = l.n; i-- > 0;) {
		char key[64];
		void *obj = NULL;
		size_t len;

		if (!*newest_seq)
			*newest_seq = l.v[i];
		commit_key(key, sizeof(key), l.v[i]);
		r = st->ops->get(st, key, &obj, &len);
		if (r == 0) {
			r = commit_decode(obj, len, info, ents);
			if (r == 0 && info->seq != l.v[i])
				r = -EBADMSG;
		}
		free(obj);
		if (r == 0)
			break;
		if (r == -ENOMEM || r == -EACCES || r == -ETIMEDOUT)
			break; /* not the commit's fault */
		tlog(lg, LOG_WARN,
		     "commit %s is unreadable (%s); trying the one before", key,
		     strerror(-r));
		r = -ENOENT;
	}
	free(l.v);
	return r;
}

/* ---- making commits --------------------------------------------------- */

/* Upload one commit of the current map.  Returns 0 or -errno. */
static int commit_put(struct device *d, uint64_t seq)
{
	struct commit_entry *ents;
	struct commit_info info = { 0 };
	size_t n = 0;
	void *obj = NULL;
	size_t len;
	char key[64];
	int r;

	ents = malloc(MAX(d->nchunks, (uint64_t)1) * sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	for (uint64_t i = 0; i < d->nchunks; i++) {
		struct stripe *s;
		struct chunk_ent *e = &d->ents[i];

		if (__atomic_load_n(&e->state, __ATOMIC_RELAXED) ==
		    CHUNK_ABSENT)
			continue; /* an ABSENT chunk stays out: fine either way */
		s = stripe_of(d, i);
		pthread_mutex_lock(&s->lock);
		if (e->state != CHUNK_ABSENT && e->gen)
			ents[n++] = (struct commit_entry){ i, e->gen, e->hash,
							   e->heat, e->tick };
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&d->gen_lock);
	info.gen_floor = d->sb.gen_reserved;
	pthread_mutex_unlock(&d->gen_lock);
	info.seq = seq;
	info.device_id = d->sb.device_id;
	info.device_size = d->size;
	info.chunk_shift = d->chunk_shift;
	info.nentries = n;
	info.created = (uint64_t)time(NULL);
	info.dev_created = d->sb.created;
	r = commit_encode(&info, ents, &obj, &len);
	free(ents);
	if (r < 0)
		return r;
	commit_key(key, sizeof(key), seq);
	r = d->store->ops->put(d->store, key, obj, len);
	free(obj);
	return r;
}

/* Take the superseded versions collected so far. */
static void take_dels(struct device *d, struct pending_del **dels, size_t *n)
{
	pthread_mutex_lock(&d->wb_lock);
	*dels = d->dels;
	*n = d->ndels;
	d->dels = NULL;
	d->ndels = d->dels_cap = 0;
	pthread_mutex_unlock(&d->wb_lock);
}

/* Delete versions (and old commits below keep_seq). */
static void delete_versions(struct device *d, struct pending_del *dels,
			    size_t n, uint64_t old_commit)
{
	size_t k = 0, total = n + (old_commit ? 1 : 0);
	char **keys;
	int r;

	if (!total)
		return;
	keys = calloc(total, sizeof(*keys));
	if (!keys || dev_map_sync(d) < 0)
		goto out;
	for (; k < n; k++) {
		keys[k] = malloc(64);
		if (!keys[k])
			goto out;
		chunk_key(keys[k], 64, dels[k].idx, dels[k].gen);
	}
	if (old_commit) {
		keys[k] = malloc(64);
		if (!keys[k])
			goto out;
		commit_key(keys[k++], 64, old_commit);
	}
	r = d->store->ops->del(d->store, (const char *const *)keys, k);
	if (r < 0)
		tlog(&d->log, LOG_WARN,
		     "deleting %zu superseded objects: %s (they remain in the "
		     "store)",
		     k, strerror(-r));
	else
		STAT_ADD(d, gc_deletes, k);
out:
	for (size_t i = 0; keys && i < k; i++)
		free(keys[i]);
	free(keys);
}

/* Make one commit.  Returns 0 when it is in the store. */
static int commit_once(struct device *d, bool urgent)
{
	uint64_t g0, *dirty = NULL, version;
	size_t ndirty = 0, cap = 0;
	int r = 0;

	version = __atomic_load_n(&d->map_version, __ATOMIC_RELAXED);
	pthread_mutex_lock(&d->gen_lock);
	g0 = d->next_gen;
	pthread_mutex_unlock(&d->gen_lock);

	/* S: the chunks dirty at T. */
	for (uint64_t i = 0; i < d->nchunks; i++) {
		if (__atomic_load_n(&d->ents[i].state, __ATOMIC_RELAXED) !=
		    CHUNK_HOT_DIRTY)
			continue;
		if (ndirty == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			uint64_t *n = realloc(dirty, ncap * sizeof(*n));
			if (!n) {
				free(dirty);
				return -ENOMEM;
			}
			dirty = n;
			cap = ncap;
		}
		dirty[ndirty++] = i;
	}
	if (urgent && ndirty)
		wb_kick(d, true);
	while (ndirty) {
		size_t keep = 0;

		for (size_t k = 0; k < ndirty; k++) {
			uint64_t i = dirty[k];
			struct stripe *s = stripe_of(d, i);
			bool done;

			pthread_mutex_lock(&s->lock);
			done = d->ents[i].state != CHUNK_HOT_DIRTY ||
			       d->ents[i].gen >= g0;
			pthread_mutex_unlock(&s->lock);
			if (!done)
				dirty[keep++] = i;
		}
		ndirty = keep;
		if (!ndirty)
			break;
		pthread_mutex_lock(&d->commit_lock);
		if (d->commit_stop) {
			pthread_mutex_unlock(&d->commit_lock);
			r = -ECANCELED;
			break;
		}
		struct timespec ts;
		deadline(&ts, COMMIT_POLL_MS);
		pthread_cond_timedwait(&d->commit_cond, &d->commit_lock, &ts);
		pthread_mutex_unlock(&d->commit_lock);
	}
	if (urgent && cap)
		wb_unurge(d);
	free(dirty);
	if (r < 0)
		return r;

	/* Still ours?  (Also renews the lease.) */
	r = lease_renew(d);
	if (r == -EBUSY)
		return r;

	/* Superseded before now: not named by the commit about to be made. */
	struct pending_del *dels;
	size_t ndels;
	take_dels(d, &dels, &ndels);

	r = commit_put(d, d->commit_seq + 1);
	if (r < 0) {
		tlog(&d->log, LOG_WARN,
		     "writing commit %" PRIu64 ": %s; will "
		     "retry",
		     d->commit_seq + 1, strerror(-r));
		/* Give the deletions back, to the next commit. */
		for (size_t i = 0; i < ndels; i++)
			wb_delete_later(d, dels[i].idx, dels[i].gen);
		free(dels);
		return r;
	}
	STAT_INC(d, commits);
	/* The previous commit's batch is now two commits old. */
	delete_versions(d, d->gc_batch, d->gc_nbatch,
			d->commit_seq > 1 ? d->commit_seq - 1 : 0);
	free(d->gc_batch);
	d->gc_batch = dels;
	d->gc_nbatch = ndels;

	pthread_mutex_lock(&d->commit_lock);
	d->commit_seq++;
	d->committed_version = version;
	pthread_cond_broadcast(&d->commit_cond);
	pthread_mutex_unlock(&d->commit_lock);
	return 0;
}

static void *commit_worker(void *arg)
{
	struct device *d = arg;

	pthread_mutex_lock(&d->commit_lock);
	while (!d->commit_stop) {
		uint64_t req = d->commit_requests;
		bool changed =
			__atomic_load_n(&d->map_version, __ATOMIC_RELAXED) !=
			d->committed_version;
		bool wanted = req != d->commit_done_req;

		if (!d->fenced && time(NULL) - d->lease_renewed >= 30) {
			pthread_mutex_unlock(&d->commit_lock);
			lease_renew(d);
			pthread_mutex_lock(&d->commit_lock);
			continue;
		}
		if (!wanted && !(changed && d->commit_due)) {
			struct timespec ts;
			deadline(&ts, d->commit_interval_ms);
			if (pthread_cond_timedwait(&d->commit_cond,
						   &d->commit_lock,
						   &ts) == ETIMEDOUT)
				d->commit_due = true;
			continue;
		}
		pthread_mutex_unlock(&d->commit_lock);
		int r = commit_once(d, wanted);
		pthread_mutex_lock(&d->commit_lock);
		if (r == 0) {
			d->commit_done_req = req;
			d->commit_due = false;
			pthread_cond_broadcast(&d->commit_cond);
		} else if (d->fenced) {
			/* Taken over: wake the waiters (they fail), and
			 * commit no more. */
			pthread_cond_broadcast(&d->commit_cond);
			pthread_cond_wait(&d->commit_cond, &d->commit_lock);
		} else if (!d->commit_stop) {
			struct timespec ts;
			deadline(&ts, COMMIT_RETRY_MS);
			pthread_cond_timedwait(&d->commit_cond, &d->commit_lock,
					       &ts);
		}
	}
	pthread_mutex_unlock(&d->commit_lock);
	return NULL;
}

int commit_request_wait(struct device *d)
{
	uint64_t mine;
	int r = 0;

	pthread_mutex_lock(&d->commit_lock);
	mine = ++d->commit_requests;
	pthread_cond_broadcast(&d->commit_cond);
	while (!d->commit_stop && !d->fenced && d->commit_done_req < mine)
		pthread_cond_wait(&d->commit_cond, &d->commit_lock);
	if (d->commit_done_req < mine)
		r = d->fenced ? -EIO : -ESHUTDOWN;
	pthread_mutex_unlock(&d->commit_lock);
	return r;
}

/* Wake the worker: a chunk changed state (upload done, trim). */
void commit_poke(struct device *d)
{
	pthread_mutex_lock(&d->commit_lock);
	pthread_cond_broadcast(&d->commit_cond);
	pthread_mutex_unlock(&d->commit_lock);
}

int commit_start(struct device *d)
{
	int r = pthread_create(&d->commit_thread, NULL, commit_worker, d);

	if (r) {
		tlog(&d->log, LOG_ERROR, "cannot start the commit thread: %s",
		     strerror(r));
		return -r;
	}
	d->commit_running = true;
	return 0;
}

void commit_stop(struct device *d)
{
	if (!d->commit_running)
		return;
	pthread_mutex_lock(&d->commit_lock);
	d->commit_stop = true;
	pthread_cond_broadcast(&d->commit_cond);
	pthread_mutex_unlock(&d->commit_lock);
	pthread_join(d->commit_thread, NULL);
	d->commit_running = false;
}

/* At close, write-back stopped: commit what is uploaded if nothing is
 * dirty (a commit must wait for dirty chunks, which the next start
 * pushes), then delete what that allows. */
void commit_final(struct device *d)
{
	if (__atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) ||
	    (__atomic_load_n(&d->map_version, __ATOMIC_RELAXED) ==
		     d->committed_version &&
	     !d->gc_nbatch))
		return;
	d->commit_stop = false; /* commit_once checks it while waiting */
	commit_once(d, false);
	d->commit_stop = true;
}

/* The first commit of a new device: it marks the store prefix as used. */
int commit_first(struct device *d)
{
	int r = commit_put(d, 1);

	if (r < 0) {
		tlog(&d->log, LOG_ERROR,
		     "cannot write the first commit to the store: %s",
		     strerror(-r));
		return r;
	}
	d->commit_seq = 1;
	return 0;
}
