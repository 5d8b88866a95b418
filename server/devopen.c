/* devopen.c - create, open, recover and close a device.
 *
 * Create: every parameter is checked and the store opened before
 * anything is written; the map is built as `map.tmp` and renamed to
 * `map` last, so a failed create leaves no device behind.
 *
 * Open: the superblock is checked against the parameters (a
 * contradiction is refused, saying what to pass instead), the cache
 * directory is locked (flock on the map), and the map is scanned once:
 * run-time flags cleared, slots claimed, dirty chunks queued for
 * write-back.  After an unclean stop (no SB_F_CLEAN) clean cached
 * copies are marked VERIFY and two entries claiming one slot are
 * resolved: the dirty one keeps it, a clean one goes back to COLD.
 * The superblock is then marked unclean until device_close.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../proto/commit.h"
#include "device_priv.h"

#define DEFAULT_CHUNK_SIZE (1u << 20)

void device_conf_init(struct device_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->writeback_delay_ms = 1000;
	conf->direct_io = true;
}

static char *path_join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static void human(char *buf, size_t n, uint64_t v)
{
	static const char units[] = "KMGTPE";
	int u = -1;

	while (v >= 1024 && v % 1024 == 0 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, n, "%llu", (unsigned long long)v);
	else
		snprintf(buf, n, "%llu%c", (unsigned long long)v, units[u]);
}

/* Parameters needed to create a cache, new device or not; nothing is
 * touched. */
static int check_create(const struct device_conf *conf, uint32_t chunk,
			const struct logger *lg)
{
	if (!conf->cache_size) {
		tlog(lg, LOG_ERROR,
		     "%s holds no device yet: pass cache-size= (e.g. "
		     "cache-size=2G) to create one",
		     conf->cache_dir);
		return -EINVAL;
	}
	if (conf->size > (UINT64_C(1) << 62)) {
		tlog(lg, LOG_ERROR, "size is too large (at most 4 EiB)");
		return -EINVAL;
	}
	if (!conf->store.spec || !*conf->store.spec) {
		tlog(lg, LOG_ERROR,
		     "%s holds no device yet: pass store= (store=dir:PATH "
		     "or store=s3://BUCKET/PREFIX) to create one",
		     conf->cache_dir);
		return -EINVAL;
	}
	if (strlen(conf->store.spec) >= SB_STORE_SPEC_MAX) {
		tlog(lg, LOG_ERROR, "store= is longer than %d bytes",
		     SB_STORE_SPEC_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

/* The superblock of a new device, or of one adopted from a commit. */
static void new_sb(struct superblock *sb, const struct device_conf *conf,
		   uint32_t chunk, const struct commit_info *from)
{
	memset(sb, 0, sizeof(*sb));
	sb->device_size = from ? from->device_size : conf->size;
	sb->chunk_shift = from ? from->chunk_shift : log2_u64(chunk);
	sb->nchunks =
		DIV_ROUND_UP(sb->device_size, UINT64_C(1) << sb->chunk_shift);
	sb->nslots = conf->cache_size >> sb->chunk_shift;
	sb->gen_reserved = from ? from->gen_floor : 1;
	sb->flags = SB_F_CLEAN;
	/* Adopted: keep the device's clock, so the heat ticks in the
	 * commit still mean what they meant. */
	sb->created = from && from->dev_created ? from->dev_created
						: (uint64_t)time(NULL);
	if (from)
		sb->device_id = from->device_id;
	else if (getrandom(&sb->device_id, sizeof(sb->device_id), 0) !=
		 sizeof(sb->device_id))
		sb->device_id = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	snprintf(sb->store_spec, sizeof(sb->store_spec), "%s",
		 conf->store.spec);
}

/* A new device (the store holds none): check size and geometry. */
static int check_new(const struct device_conf *conf, uint32_t chunk,
		     const struct logger *lg)
{
	char a[32], b[32];

	if (!conf->size) {
		tlog(lg, LOG_ERROR,
		     "%s holds no device yet and store=%s holds none "
		     "either: pass size= (e.g. size=10G) to create one",
		     conf->cache_dir, conf->store.spec);
		return -EINVAL;
	}
	if (conf->cache_size < chunk) {
		human(a, sizeof(a), conf->cache_size);
		human(b, sizeof(b), chunk);
		tlog(lg, LOG_ERROR,
		     "cache-size=%s is smaller than one chunk (chunk-size=%s): "
		     "the cache must hold at least one chunk",
		     a, b);
		return -EINVAL;
	}
	if (conf->cache_size / chunk > SLOT_NONE - 1) {
		tlog(lg, LOG_ERROR,
		     "cache-size is too large for chunk-size: at most %u "
		     "slots; choose a larger chunk-size",
		     SLOT_NONE - 1);
		return -EINVAL;
	}
	return 0;
}

/* Reopening from a commit: the parameters must agree with it. */
static int check_adopt(const struct device_conf *conf,
		       const struct commit_info *ci, const struct logger *lg)
{
	uint32_t chunk = 1u << ci->chunk_shift;
	char a[32], b[32];

	human(a, sizeof(a), ci->device_size);
	if (conf->size && conf->size != ci->device_size) {
		tlog(lg, LOG_ERROR,
		     "store=%s holds a device of size=%s: pass size=%s or "
		     "omit size= to reopen it",
		     conf->store.spec, a, a);
		return -EINVAL;
	}
	human(b, sizeof(b), chunk);
	if (conf->chunk_size && conf->chunk_size != chunk) {
		tlog(lg, LOG_ERROR,
		     "store=%s holds a device with chunk-size=%s: pass "
		     "chunk-size=%s or omit chunk-size= to reopen it",
		     conf->store.spec, b, b);
		return -EINVAL;
	}
	if (conf->cache_size < chunk) {
		human(a, sizeof(a), conf->cache_size);
		tlog(lg, LOG_ERROR,
		     "cache-size=%s is smaller than one chunk of the device "
		     "in the store (chunk-size=%s)",
		     a, b);
		return -EINVAL;
	}
	return 0;
}

/* Write a new map as map.tmp, then rename it to map.  Chunks named by
 * ents (a commit) start COLD, the rest ABSENT. */
static int create_map(struct device *d, const struct superblock *sbp,
		      const struct commit_entry *ents, uint64_t nents)
{
	CLEANUP_FREE char *tmp = path_join(d->cache_dir, "map.tmp");
	CLEANUP_FREE char *path = path_join(d->cache_dir, "map");
	struct superblock sb = *sbp;
	uint8_t buf[SB_SIZE];
	int fd, err = 0, dfd;

	if (!tmp || !path)
		return -ENOMEM;
	sb_encode(&sb, buf);

	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		tlog(&d->log, LOG_ERROR, "create %s: %s", tmp, strerror(err));
		return -err;
	}
	/* Entries are all ABSENT (zero) except the slot field. */
	if (ftruncate(fd, SB_SIZE + (off_t)(sb.nchunks *
					    sizeof(struct chunk_ent))) < 0 ||
	    pwrite(fd, buf, SB_SIZE, 0) != SB_SIZE)
		err = errno;
	if (!err) {
		void *m = mmap(NULL,
			       SB_SIZE + sb.nchunks * sizeof(struct chunk_ent),
			       PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			err = errno;
		} else {
			struct chunk_ent *e = (void *)((char *)m + SB_SIZE);
			for (uint64_t i = 0; i < sb.nchunks; i++)
				e[i].slot = SLOT_NONE;
			for (uint64_t i = 0; i < nents; i++) {
				struct chunk_ent *c = &e[ents[i].index];
				c->state = CHUNK_COLD;
				c->gen = ents[i].gen;
				c->hash = ents[i].hash;
				c->heat = ents[i].heat;
				c->tick = ents[i].tick;
			}
			munmap(m, SB_SIZE + sb.nchunks * sizeof(*e));
		}
	}
	if (!err && fsync(fd) < 0)
		err = errno;
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = errno;
	if (err) {
		tlog(&d->log, LOG_ERROR, "creating %s: %s", path,
		     strerror(err));
		unlink(tmp);
		return -err;
	}
	dfd = open(d->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Compare the parameters with the stored device. */
static int check_existing(struct device *d, const struct device_conf *conf,
			  uint64_t *nslots)
{
	const struct superblock *sb = &d->sb;
	uint32_t chunk = 1u << sb->chunk_shift;
	char a[32], b[32];

	if (conf->size && conf->size != sb->device_size) {
		human(a, sizeof(a), sb->device_size);
		tlog(&d->log, LOG_ERROR,
		     "%s holds a device of size=%s: pass size=%s or omit "
		     "size= (resizing is not supported)",
		     d->cache_dir, a, a);
		return -EINVAL;
	}
	if (conf->chunk_size && conf->chunk_size != chunk) {
		human(a, sizeof(a), chunk);
		tlog(&d->log, LOG_ERROR,
		     "%s holds a device with chunk-size=%s: pass "
		     "chunk-size=%s or omit chunk-size= (it is fixed at "
		     "creation)",
		     d->cache_dir, a, a);
		return -EINVAL;
	}
	if (conf->store.spec && strcmp(conf->store.spec, sb->store_spec)) {
		tlog(&d->log, LOG_ERROR,
		     "%s belongs to the device in store=%s: pass that "
		     "store= or omit store=",
		     d->cache_dir, sb->store_spec);
		return -EINVAL;
	}
	*nslots = sb->nslots;
	if (conf->cache_size) {
		uint64_t want = conf->cache_size / chunk;
		if (want < sb->nslots) {
			human(a, sizeof(a), sb->nslots * chunk);
			human(b, sizeof(b), conf->cache_size);
			tlog(&d->log, LOG_ERROR,
			     "cache-size=%s is smaller than this cache "
			     "(%s): shrinking a cache is not supported; pass "
			     "cache-size=%s or omit cache-size=",
			     b, a, a);
			return -EINVAL;
		}
		if (want > SLOT_NONE - 1) {
			tlog(&d->log, LOG_ERROR,
			     "cache-size is too large for chunk-size");
			return -EINVAL;
		}
		*nslots = want; /* growing is fine */
	}
	return 0;
}

/* Scan the map once: clear run-time flags, claim slots, queue dirty
 * chunks, and after an unclean stop mark clean copies for checking. */
static int load_map(struct device *d, bool unclean)
{
	uint64_t dropped = 0, verify = 0;

	for (uint64_t i = 0; i < d->nchunks; i++) {
		struct chunk_ent *e = &d->ents[i];
		int r;

		e->flags &= CE_F_PERSIST_MASK;
		if (e->state > CHUNK_STATE_MAX ||
		    ((e->state == CHUNK_COLD || e->state == CHUNK_HOT_CLEAN) &&
		     e->gen == 0)) {
			tlog(&d->log, LOG_ERROR,
			     "%s/map: entry %llu is corrupt (state %u, gen "
			     "%llu); the cache directory cannot be used",
			     d->cache_dir, (unsigned long long)i, e->state,
			     (unsigned long long)e->gen);
			return -EBADMSG;
		}
		if (e->state == CHUNK_ABSENT || e->state == CHUNK_COLD) {
			e->slot = SLOT_NONE;
			continue;
		}
		r = cache_claim(d->cache, e->slot, i);
		if (r == -EBUSY && e->state == CHUNK_HOT_DIRTY && unclean) {
			/* A clean chunk evicted before the crash may still
			 * name the slot on disk: the dirty one wins. */
			uint64_t o = cache_owner(d->cache, e->slot);
			struct chunk_ent *oe = &d->ents[o];
			if (oe->state == CHUNK_HOT_CLEAN) {
				oe->state = CHUNK_COLD;
				oe->slot = SLOT_NONE;
				oe->flags &= (uint8_t)~CE_F_VERIFY;
				cache_free(d->cache, e->slot);
				dropped++;
				r = cache_claim(d->cache, e->slot, i);
			}
		}
		if (r < 0) {
			if (e->state == CHUNK_HOT_CLEAN) {
				e->state = CHUNK_COLD;
				e->slot = SLOT_NONE;
				dropped++;
				continue;
			}
			tlog(&d->log, LOG_ERROR,
			     "%s/map: dirty chunk %llu names slot %u, which "
			     "is %s; the cache directory is damaged",
			     d->cache_dir, (unsigned long long)i, e->slot,
			     r == -ERANGE ? "out of range" : "taken");
			return -EBADMSG;
		}
		if (e->state == CHUNK_HOT_DIRTY) {
			d->ndirty++;
			if (wb_q_push(d, i, 0) < 0)
				return -ENOMEM;
			e->flags |= CE_F_QUEUED;
		} else if (unclean) {
			e->flags |= CE_F_VERIFY;
			verify++;
		}
	}
	if (unclean)
		tlog(&d->log, LOG_WARN,
		     "%s was not closed cleanly: %llu dirty chunks queued for "
		     "write-back, %llu clean copies to verify on first use, "
		     "%llu stale slot claims dropped",
		     d->cache_dir, (unsigned long long)d->ndirty,
		     (unsigned long long)verify, (unsigned long long)dropped);
	return 0;
}

static void policy_heat(void *opaque, uint64_t chunk, uint32_t *heat,
			uint32_t *tick)
{
	struct device *d = opaque;

	/* Read without the stripe lock: a victim choice may use a heat a
	 * moment old, which changes nothing that matters. */
	*heat = __atomic_load_n(&d->ents[chunk].heat, __ATOMIC_RELAXED);
	*tick = __atomic_load_n(&d->ents[chunk].tick, __ATOMIC_RELAXED);
}

/* The policy and the watermarks, then every cached chunk admitted to
 * the policy with its persisted heat. */
static int load_policy(struct device *d, const struct device_conf *conf,
		       uint64_t nslots)
{
	struct policy_conf pc = { .nslots = nslots,
				  .half_life = conf->heat_half_life,
				  .probation_pct = conf->probation_pct };
	unsigned high = conf->cache_high_pct ? conf->cache_high_pct : 95;
	unsigned low = conf->cache_low_pct ? conf->cache_low_pct : 85;

	if (high > 100 || low >= high) {
		tlog(&d->log, LOG_ERROR,
		     "cache-low=%u and cache-high=%u: need cache-low < "
		     "cache-high <= 100 (percent of the cache)",
		     low, high);
		return -EINVAL;
	}
	d->evict_high = nslots * high / 100;
	d->evict_low = nslots * low / 100;
	if (d->evict_high >= nslots)
		d->evict_high = nslots - 1;
	if (d->evict_low > d->evict_high)
		d->evict_low = d->evict_high;
	d->policy = policy_new(&pc, policy_heat, d);
	if (!d->policy)
		return -ENOMEM;
	for (uint64_t i = 0; i < d->nchunks; i++) {
		struct chunk_ent *e = &d->ents[i];

		if (e->flags & CE_F_PINNED)
			d->npinned++;
		if (e->state == CHUNK_HOT_CLEAN || e->state == CHUNK_HOT_DIRTY)
			policy_admit(d->policy, e->slot, i, e->heat,
				     e->flags & CE_F_SEQ,
				     e->flags & CE_F_PINNED);
	}
	return 0;
}

static struct device *dev_alloc(const struct device_conf *conf)
{
	struct device *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->log = conf->log;
	d->map_fd = -1;
	for (unsigned i = 0; i < NSTRIPES; i++) {
		pthread_mutex_init(&d->stripes[i].lock, NULL);
		pthread_cond_init(&d->stripes[i].changed, NULL);
	}
	pthread_mutex_init(&d->gen_lock, NULL);
	pthread_mutex_init(&d->wb_lock, NULL);
	pthread_cond_init(&d->wb_work, NULL);
	pthread_cond_init(&d->wb_progress, NULL);
	pthread_mutex_init(&d->commit_lock, NULL);
	pthread_cond_init(&d->commit_cond, NULL);
	pthread_mutex_init(&d->bg_lock, NULL);
	pthread_cond_init(&d->bg_work, NULL);
	pthread_cond_init(&d->pull_work, NULL);
	tb_init(&d->pull_tb, conf->pull_rate);
	tb_init(&d->push_tb, conf->push_rate);
	d->hydrate = conf->prefetch_all;
	d->warm = !conf->prefetch_none;
	pthread_mutex_init(&d->trace_lock, NULL);
	pthread_mutex_init(&d->fbuf_lock, NULL);
	d->commit_interval_ms =
		conf->commit_interval_ms ? conf->commit_interval_ms : 5000;
	d->flush_remote = conf->flush_remote;
	d->delay_ms = conf->writeback_delay_ms;
	d->wb_early = !conf->writeback_late;
	d->readonly = conf->readonly;
	d->cache_dir = strdup(conf->cache_dir);
	if (!d->cache_dir) {
		free(d);
		return NULL;
	}
	return d;
}

struct device *device_open(const struct device_conf *conf)
{
	struct device *d = NULL;
	CLEANUP_FREE char *map_path = NULL, *slots_path = NULL;
	struct store_conf sconf;
	struct cache_conf cconf;
	struct stat st;
	uint64_t nslots;
	bool created_dir = false, created_files = false, creating;
	bool adopted = false;
	struct commit_info ci = { 0 };
	struct commit_entry *cents = NULL;
	uint64_t newest_commit = 0;
	struct superblock nsb;
	uint32_t chunk;
	uint8_t sbuf[SB_SIZE];
	int err = EINVAL, r;

	if (!conf->cache_dir || !*conf->cache_dir) {
		tlog(&conf->log, LOG_ERROR,
		     "cache= is required: the directory for the hot cache "
		     "and the chunk map (e.g. cache=/var/lib/tierbd/vol1)");
		goto fail;
	}
	chunk = conf->chunk_size ? conf->chunk_size : DEFAULT_CHUNK_SIZE;
	if (!is_power_of_2(chunk) || chunk < (1u << CHUNK_SHIFT_MIN) ||
	    chunk > (1u << CHUNK_SHIFT_MAX)) {
		tlog(&conf->log, LOG_ERROR,
		     "chunk-size=%u: must be a power of two from 64K to 64M "
		     "(e.g. chunk-size=1M)",
		     chunk);
		goto fail;
	}
	d = dev_alloc(conf);
	map_path = path_join(conf->cache_dir, "map");
	slots_path = path_join(conf->cache_dir, "slots");
	if (!d || !map_path || !slots_path) {
		err = ENOMEM;
		goto fail;
	}

	if (stat(conf->cache_dir, &st) < 0) {
		if (errno != ENOENT) {
			err = errno;
			tlog(&d->log, LOG_ERROR,
			     "cache=%s: %s: check the path and its "
			     "permissions",
			     conf->cache_dir, strerror(err));
			goto fail;
		}
		creating = true;
	} else if (!S_ISDIR(st.st_mode)) {
		err = ENOTDIR;
		tlog(&d->log, LOG_ERROR,
		     "cache=%s is not a directory: give a directory for the "
		     "cache (it is created if missing)",
		     conf->cache_dir);
		goto fail;
	} else {
		creating = access(map_path, F_OK) < 0 && errno == ENOENT;
	}

	sconf = conf->store;
	sconf.log = conf->log;
	if (creating) {
		r = check_create(conf, chunk, &d->log);
		if (r < 0) {
			err = -r;
			goto fail;
		}
		/* A size means a new device: check it before the store. */
		if (conf->size && (r = check_new(conf, chunk, &d->log)) < 0) {
			err = -r;
			goto fail;
		}
		/* The store first: a bad store changes nothing here.  With
		 * no size= the device must already be in the store: then
		 * nothing is created to find that out. */
		sconf.no_create = !conf->size;
		d->store = store_open(&sconf);
		if (!d->store && errno == ENOENT && !conf->size) {
			tlog(&d->log, LOG_ERROR,
			     "%s holds no device yet and store=%s does not "
			     "exist: pass size= (e.g. size=10G) to create one",
			     conf->cache_dir, conf->store.spec);
			err = EINVAL;
			goto fail;
		}
		sconf.no_create = 0;
		if (!d->store) {
			err = errno;
			goto fail;
		}
		r = commit_load_latest(d->store, &d->log, &ci, &cents,
				       &newest_commit);
		if (r == 0) {
			r = check_adopt(conf, &ci, &d->log);
			if (r < 0) {
				err = -r;
				goto fail;
			}
			adopted = true;
			chunk = 1u << ci.chunk_shift;
		} else if (r != -ENOENT || newest_commit) {
			err = r == -ENOENT ? EBADMSG : -r;
			tlog(&d->log, LOG_ERROR,
			     "store=%s: %s; refusing to create a device over "
			     "it",
			     conf->store.spec,
			     r == -ENOENT ? "it holds commits but none is "
					    "readable"
					  : "cannot read its commits");
			goto fail;
		} else if ((r = check_new(conf, chunk, &d->log)) < 0) {
			err = -r;
			goto fail;
		}
		if (mkdir(conf->cache_dir, 0700) == 0) {
			created_dir = true;
		} else if (errno != EEXIST) {
			err = errno;
			tlog(&d->log, LOG_ERROR, "cannot create cache=%s: %s",
			     conf->cache_dir, strerror(err));
			goto fail;
		}
		/* The slots file before the map: the map is the commit. */
		new_sb(&nsb, conf, chunk, adopted ? &ci : NULL);
		cconf = (struct cache_conf){ .log = conf->log,
					     .path = slots_path,
					     .nslots = nsb.nslots,
					     .chunk_size = chunk,
					     .direct_io = conf->direct_io,
					     .create = true };
		created_files = true;
		d->cache = cache_open(&cconf);
		if (!d->cache) {
			err = errno;
			goto fail;
		}
		r = create_map(d, &nsb, cents, adopted ? ci.nentries : 0);
		if (r < 0) {
			err = -r;
			goto fail;
		}
		if (adopted)
			tlog(&d->log, LOG_WARN,
			     "%s was empty: reopened the device from store=%s "
			     "at commit %" PRIu64 " (%" PRIu64 " chunks hold "
			     "data)",
			     conf->cache_dir, conf->store.spec, ci.seq,
			     ci.nentries);
		else
			tlog(&d->log, LOG_INFO, "created a device in %s",
			     conf->cache_dir);
	}

	d->map_fd =
		open(map_path, (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (d->map_fd < 0) {
		err = errno;
		tlog(&d->log, LOG_ERROR,
		     "cannot open %s: %s: check the permissions of cache=%s",
		     map_path, strerror(err), conf->cache_dir);
		goto fail;
	}
	if (flock(d->map_fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? EBUSY : errno;
		tlog(&d->log, LOG_ERROR,
		     "cache=%s is in use by another tierbd process: stop it, "
		     "or give each device its own cache directory",
		     conf->cache_dir);
		goto fail;
	}
	if (pread(d->map_fd, sbuf, SB_SIZE, 0) != SB_SIZE ||
	    (r = sb_decode(sbuf, SB_SIZE, &d->sb)) < 0) {
		err = EBADMSG;
		tlog(&d->log, LOG_ERROR,
		     "%s: not a tierbd map, or damaged (bad superblock); "
		     "move the cache directory aside to start afresh",
		     map_path);
		goto fail;
	}
	if (fstat(d->map_fd, &st) < 0 ||
	    (uint64_t)st.st_size !=
		    SB_SIZE + d->sb.nchunks * sizeof(struct chunk_ent)) {
		err = EBADMSG;
		tlog(&d->log, LOG_ERROR,
		     "%s: truncated or extended map (size %lld, expected "
		     "%llu); the cache directory is damaged",
		     map_path, (long long)st.st_size,
		     (unsigned long long)(SB_SIZE +
					  d->sb.nchunks *
						  sizeof(struct chunk_ent)));
		goto fail;
	}
	r = check_existing(d, conf, &nslots);
	if (r < 0) {
		err = -r;
		goto fail;
	}
	d->size = d->sb.device_size;
	d->chunk_shift = d->sb.chunk_shift;
	d->chunk_size = 1u << d->chunk_shift;
	d->nchunks = d->sb.nchunks;
	d->max_dirty = conf->max_dirty ? conf->max_dirty
				       : MAX(nslots * d->chunk_size / 2,
					     (uint64_t)d->chunk_size);

	if (!d->store) {
		sconf.spec = d->sb.store_spec;
		d->store = store_open(&sconf);
		if (!d->store) {
			err = errno;
			goto fail;
		}
		r = commit_load_latest(d->store, &d->log, NULL, NULL,
				       &newest_commit);
		if (r < 0 && r != -ENOENT) {
			err = -r;
			goto fail;
		}
	}
	/* Defaults by store: an object store has tens of ms per request,
	 * so it needs more transfers in flight than a local directory
	 * (bench/s3-cold.sh: 4 uploads in flight held write+drain to half
	 * of what 16 give). */
	bool remote = strcmp(d->store->ops->name, "dir") != 0;
	d->push_threads = conf->push_threads ? conf->push_threads
			  : remote	     ? 16
					     : 4;
	d->push_yield_to = MAX(1u, d->push_threads / 8);
	d->pull_threads = conf->pull_threads ? conf->pull_threads
			  : remote	     ? 8
					     : 4;
	/* Read-ahead: at most an eighth of the cache, or it would evict
	 * what it pulled before the reader gets there. */
	if (!conf->readahead_off)
		d->readahead_chunks = (uint32_t)MIN(
			DIV_ROUND_UP(conf->readahead ? conf->readahead
				     : remote	     ? UINT64_C(16) << 20
						     : UINT64_C(4) << 20,
				     d->chunk_size),
			MAX(nslots / 8, (uint64_t)(nslots >= 4)));
	dev_fbuf_init(d);
	if (!d->cache) {
		cconf = (struct cache_conf){ .log = conf->log,
					     .path = slots_path,
					     .nslots = nslots,
					     .chunk_size = d->chunk_size,
					     .direct_io = conf->direct_io,
					     .create = false };
		d->cache = cache_open(&cconf);
		if (!d->cache) {
			err = errno;
			goto fail;
		}
	}

	d->map_len = SB_SIZE + d->nchunks * sizeof(struct chunk_ent);
	d->map = mmap(NULL, d->map_len,
		      PROT_READ | (d->readonly ? 0 : PROT_WRITE), MAP_SHARED,
		      d->map_fd, 0);
	if (d->map == MAP_FAILED) {
		err = errno;
		d->map = NULL;
		tlog(&d->log, LOG_ERROR, "mmap %s: %s", map_path,
		     strerror(err));
		goto fail;
	}
	d->ents = (struct chunk_ent *)(d->map + SB_SIZE);
	d->slot_refs = calloc(nslots, sizeof(*d->slot_refs));
	if (!d->slot_refs) {
		err = ENOMEM;
		goto fail;
	}
	if (d->readonly) {
		tlog(&d->log, LOG_ERROR, "read-only open is not supported yet");
		err = ENOTSUP;
		goto fail;
	}
	r = lease_acquire(d, conf->takeover);
	if (r == 0)
		r = load_map(d, !(d->sb.flags & SB_F_CLEAN));
	if (r == 0)
		r = load_policy(d, conf, nslots);
	if (r == 0 && conf->pins)
		r = device_pin_spec(d, conf->pins);
	if (r < 0) {
		err = -r;
		goto fail;
	}
	if (conf->trace_path) {
		struct timespec ts;
		d->trace = fopen(conf->trace_path, "ae");
		if (!d->trace) {
			err = errno;
			tlog(&d->log, LOG_ERROR, "trace=%s: %s",
			     conf->trace_path, strerror(err));
			goto fail;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		d->trace_t0 = (uint64_t)ts.tv_sec * 1000000 +
			      (uint64_t)ts.tv_nsec / 1000;
	}

	/* From here on the device is in use: mark it unclean. */
	d->next_gen = MAX(d->sb.gen_reserved, (uint64_t)1);
	d->sb.flags &= ~SB_F_CLEAN;
	d->sb.nslots = nslots;
	dev_sb_store(d);
	r = dev_sb_sync(d);
	if (r < 0) {
		err = -r;
		tlog(&d->log, LOG_ERROR, "%s: cannot write the superblock: %s",
		     map_path, strerror(err));
		goto fail;
	}
	if (creating && !adopted) {
		r = commit_first(d);
		if (r < 0) {
			err = -r;
			goto fail;
		}
	} else {
		d->commit_seq = newest_commit;
	}
	free(cents);
	return d;

fail:
	if (d) {
		d->readonly = true; /* close must not write anything */
		device_close(d);
	}
	if (created_files) {
		CLEANUP_FREE char *owner = path_join(conf->cache_dir, "owner");
		unlink(map_path);
		unlink(slots_path);
		if (owner)
			unlink(owner);
	}
	if (created_dir)
		rmdir(conf->cache_dir);
	free(cents);
	errno = err;
	return NULL;
}

void device_close(struct device *d)
{
	if (!d)
		return;
	dev_bg_stop(d);
	if (!d->readonly)
		wb_drain_close(d);
	wb_stop(d);
	commit_stop(d);
	if (d->map && !d->readonly && d->commit_seq) {
		/* Twice: the second commit lets the first one's superseded
		 * versions go. */
		commit_final(d);
		commit_final(d);
		/* Nothing left here that the store lacks: let it go. */
		if (!__atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) &&
		    d->map_version == d->committed_version)
			lease_release(d);
	}
	if (d->map && !d->readonly) {
		/* Dirty chunks stay dirty: the next open pushes them.  Clean
		 * copies not verified since an unclean stop keep it unclean. */
		bool unverified = false;
		for (uint64_t i = 0; i < d->nchunks && !unverified; i++)
			unverified = d->ents[i].flags & CE_F_VERIFY;
		if (!unverified && cache_sync(d->cache) == 0 &&
		    dev_map_sync(d) == 0) {
			d->sb.flags |= SB_F_CLEAN;
			dev_sb_store(d);
			dev_sb_sync(d);
		}
	}
	if (d->map)
		munmap(d->map, d->map_len);
	if (d->map_fd >= 0)
		close(d->map_fd);
	cache_close(d->cache);
	store_destroy(d->store);
	free(d->slot_refs);
	free(d->q);
	free(d->dels);
	free(d->gc_batch);
	for (int p = 0; p < PULL_NPRIO; p++)
		free(d->pullq[p].v);
	policy_free(d->policy);
	if (d->trace)
		fclose(d->trace);
	pthread_mutex_destroy(&d->bg_lock);
	pthread_cond_destroy(&d->bg_work);
	pthread_cond_destroy(&d->pull_work);
	pthread_mutex_destroy(&d->pull_tb.lock);
	pthread_mutex_destroy(&d->push_tb.lock);
	pthread_mutex_destroy(&d->trace_lock);
	dev_fbuf_fini(d);
	pthread_mutex_destroy(&d->fbuf_lock);
	free(d->cache_dir);
	for (unsigned i = 0; i < NSTRIPES; i++) {
		pthread_mutex_destroy(&d->stripes[i].lock);
		pthread_cond_destroy(&d->stripes[i].changed);
	}
	pthread_mutex_destroy(&d->gen_lock);
	pthread_mutex_destroy(&d->wb_lock);
	pthread_cond_destroy(&d->wb_work);
	pthread_cond_destroy(&d->wb_progress);
	pthread_mutex_destroy(&d->commit_lock);
	pthread_cond_destroy(&d->commit_cond);
	free(d);
}
