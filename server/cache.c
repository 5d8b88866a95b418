/* cache.c - slot file I/O (io_uring) and the allocator.
 *
 * Writes go through an O_DIRECT descriptor, reads through a buffered
 * one: small writes then never pay for the page cache of large fills
 * (ext4 large folios make that ~6x slower), while hot reads are served
 * from RAM when the kernel has the pages.  Linux keeps the two coherent:
 * a direct write invalidates the cached pages of its range.
 *
 * Bounce buffers are per thread (pthread key with destructor), grown to
 * the largest request the thread has seen, at most a chunk plus two
 * blocks.  The allocator's arrays are per slot, not per chunk: the
 * metadata here scales with the cache, not with the device.
 *
 * Free slots are a doubly linked FIFO (a reclaim takes one out of the
 * middle).  Victim records: vowner/vtag per slot, and hint[owner %
 * nslots] naming the slot of owner's record; every record is named by
 * its hint entry, so setting or clearing a hint entry drops the record
 * it named.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "cache.h"
#include "uring.h"

#define DIO_ALIGN 4096u
#define NO_SLOT UINT32_MAX

struct cache {
	struct logger log;
	int fd;	 /* writes: O_DIRECT where the filesystem allows */
	int rfd; /* reads: through the page cache */
	uint32_t chunk_size;
	uint64_t nslots;
	uint32_t align; /* DIO_ALIGN with O_DIRECT, else 1 */

	pthread_mutex_t lock;	 /* protects everything down to hint */
	uint32_t *fnext, *fprev; /* per free slot: the FIFO's links */
	uint32_t fhead, ftail;	 /* oldest and newest free slot */
	uint64_t nfree;		 /* also read without the lock (atomic) */
	uint64_t *owner;	 /* per slot: chunk index or OWNER_NONE */
	uint64_t *vowner, *vtag; /* per free slot: its victim record */
	uint32_t *hint;		 /* per owner % nslots: slot of its record */

	uint64_t bounces, rmw; /* atomics */
};

/* ---- per-thread bounce buffer ---------------------------------------- */

struct bounce {
	void *buf;
	size_t size;
};

static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

static void bounce_destroy(void *p)
{
	struct bounce *b = p;

	free(b->buf);
	free(b);
}

static void bounce_key_init(void)
{
	pthread_key_create(&bounce_key, bounce_destroy);
}

static void *bounce_get(size_t size)
{
	struct bounce *b;

	pthread_once(&bounce_once, bounce_key_init);
	b = pthread_getspecific(bounce_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
		pthread_setspecific(bounce_key, b);
	}
	if (b->size < size) {
		void *n;

		if (posix_memalign(&n, DIO_ALIGN, size) != 0)
			return NULL;
		free(b->buf);
		b->buf = n;
		b->size = size;
	}
	return b->buf;
}

/* ---- free FIFO and victim records (allocator lock held) -------------- */

static void fifo_push(struct cache *c, uint32_t s)
{
	c->fnext[s] = NO_SLOT;
	c->fprev[s] = c->ftail;
	if (c->ftail != NO_SLOT)
		c->fnext[c->ftail] = s;
	else
		c->fhead = s;
	c->ftail = s;
	__atomic_store_n(&c->nfree, c->nfree + 1, __ATOMIC_RELAXED);
}

static void fifo_unlink(struct cache *c, uint32_t s)
{
	uint32_t p = c->fprev[s], n = c->fnext[s];

	if (p != NO_SLOT)
		c->fnext[p] = n;
	else
		c->fhead = n;
	if (n != NO_SLOT)
		c->fprev[n] = p;
	else
		c->ftail = p;
	__atomic_store_n(&c->nfree, c->nfree - 1, __ATOMIC_RELAXED);
}

static uint32_t *hint_of(struct cache *c, uint64_t owner)
{
	return &c->hint[owner % c->nslots];
}

/* Drop slot s's victim record, if it has one. */
static void victim_clear(struct cache *c, uint32_t s)
{
	uint32_t *h;

	if (c->vowner[s] == OWNER_NONE)
		return;
	h = hint_of(c, c->vowner[s]);
	if (*h == s)
		*h = NO_SLOT;
	c->vowner[s] = OWNER_NONE;
}

/* ---- open / close ---------------------------------------------------- */

struct cache *cache_open(const struct cache_conf *conf)
{
	struct cache *c;
	uint64_t bytes = conf->nslots * conf->chunk_size;
	int flags = O_RDWR | O_CLOEXEC | (conf->create ? O_CREAT : 0);
	struct stat st;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->log = conf->log;
	c->chunk_size = conf->chunk_size;
	c->nslots = conf->nslots;
	c->fd = c->rfd = -1;
	pthread_mutex_init(&c->lock, NULL);

	if (conf->direct_io) {
		c->fd = open(conf->path, flags | O_DIRECT, 0600);
		if (c->fd < 0 && errno == EINVAL)
			tlog(&c->log, LOG_WARN,
			     "%s: the filesystem refuses O_DIRECT; the cache "
			     "uses buffered I/O (slower for small writes)",
			     conf->path);
		else if (c->fd >= 0)
			c->align = DIO_ALIGN;
	}
	if (c->fd < 0)
		c->fd = open(conf->path, flags, 0600);
	if (c->fd < 0) {
		err = errno;
		tlog(&c->log, LOG_ERROR, "open %s: %s", conf->path,
		     strerror(err));
		goto fail;
	}
	if (!c->align)
		c->align = 1;
	c->rfd = open(conf->path, O_RDONLY | O_CLOEXEC);
	if (c->rfd < 0) {
		err = errno;
		tlog(&c->log, LOG_ERROR, "open %s: %s", conf->path,
		     strerror(err));
		goto fail;
	}
	if (fstat(c->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err = S_ISREG(st.st_mode) ? errno : EINVAL;
		tlog(&c->log, LOG_ERROR, "%s: not a regular file", conf->path);
		goto fail;
	}
	if ((uint64_t)st.st_size < bytes) {
		/* Reserve the space now, so a full disk is an error at
		 * start rather than a failed write later. */
		err = posix_fallocate(c->fd, 0, (off_t)bytes);
		if (err == EOPNOTSUPP || err == EINVAL)
			err = ftruncate(c->fd, (off_t)bytes) < 0 ? errno : 0;
		if (err) {
			tlog(&c->log, LOG_ERROR,
			     "%s: cannot reserve %llu bytes for the cache: "
			     "%s%s",
			     conf->path, (unsigned long long)bytes,
			     strerror(err),
			     err == ENOSPC ? " (choose a smaller cache-size= "
					     "or free space)"
					   : "");
			goto fail;
		}
	}

	c->fnext = malloc(c->nslots * sizeof(*c->fnext));
	c->fprev = malloc(c->nslots * sizeof(*c->fprev));
	c->owner = malloc(c->nslots * sizeof(*c->owner));
	c->vowner = malloc(c->nslots * sizeof(*c->vowner));
	c->vtag = calloc(c->nslots, sizeof(*c->vtag));
	c->hint = malloc(c->nslots * sizeof(*c->hint));
	if (!c->fnext || !c->fprev || !c->owner || !c->vowner || !c->vtag ||
	    !c->hint) {
		err = ENOMEM;
		goto fail;
	}
	/* Free slots are handed out in ascending order at first. */
	c->fhead = c->ftail = NO_SLOT;
	for (uint64_t i = 0; i < c->nslots; i++) {
		c->owner[i] = OWNER_NONE;
		c->vowner[i] = OWNER_NONE;
		c->hint[i] = NO_SLOT;
		fifo_push(c, (uint32_t)i);
	}
	return c;

fail:
	cache_close(c);
	errno = err;
	return NULL;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (c->rfd >= 0)
		close(c->rfd);
	free(c->fnext);
	free(c->fprev);
	free(c->owner);
	free(c->vowner);
	free(c->vtag);
	free(c->hint);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- data ------------------------------------------------------------ */

static int io(struct cache *c, bool write, void *buf, size_t len, off_t off)
{
	struct uring_req q = { .fd = write ? c->fd : c->rfd,
			       .write = write,
			       .buf = buf,
			       .len = len,
			       .off = off };

	return uring_rw(&c->log, &q, 1);
}

static off_t slot_base(const struct cache *c, uint32_t slot)
{
	return (off_t)slot * c->chunk_size;
}

bool cache_write_is_rmw(const struct cache *c, uint32_t len, uint32_t off)
{
	return !IS_ALIGNED(off, c->align) || !IS_ALIGNED(len, c->align);
}

int cache_read(struct cache *c, uint32_t slot, void *buf, uint32_t len,
	       uint32_t off)
{
	/* Buffered: no alignment needed, and hot data stays in RAM.  The
	 * kernel drops cached pages that an O_DIRECT write replaces. */
	return io(c, false, buf, len, slot_base(c, slot) + off);
}

int cache_read_slot_direct(struct cache *c, uint32_t slot, void *buf)
{
	struct uring_req q = { .fd = c->fd,
			       .write = false,
			       .buf = buf,
			       .len = c->chunk_size,
			       .off = slot_base(c, slot) };

	if (c->align > 1 && IS_ALIGNED(buf, c->align))
		return uring_rw(&c->log, &q, 1);
	return cache_read(c, slot, buf, c->chunk_size, 0);
}

int cache_write(struct cache *c, uint32_t slot, const void *buf, uint32_t len,
		uint32_t off)
{
	off_t base = slot_base(c, slot);
	uint32_t a0, a1, blk = c->align;
	char *b;
	int r;

	if (IS_ALIGNED(buf, blk) && !cache_write_is_rmw(c, len, off))
		return io(c, true, (void *)buf, len, base + off);

	a0 = (uint32_t)ROUND_DOWN(off, blk);
	a1 = (uint32_t)ROUND_UP((uint64_t)off + len, blk);
	b = bounce_get(a1 - a0);
	if (!b)
		return -ENOMEM;
	__atomic_fetch_add(&c->bounces, 1, __ATOMIC_RELAXED);
	if (cache_write_is_rmw(c, len, off)) {
		/* Fill the partial edge blocks with what is on disk. */
		__atomic_fetch_add(&c->rmw, 1, __ATOMIC_RELAXED);
		if (off != a0) {
			r = io(c, false, b, blk, base + a0);
			if (r < 0)
				return r;
		}
		if (off + len != a1 && (a1 - blk != a0 || off == a0)) {
			r = io(c, false, b + (a1 - blk - a0), blk,
			       base + a1 - blk);
			if (r < 0)
				return r;
		}
	}
	memcpy(b + (off - a0), buf, len);
	return io(c, true, b, a1 - a0, base + a0);
}

int cache_zero_slot(struct cache *c, uint32_t slot)
{
	off_t base = slot_base(c, slot);
	char *z;
	int r;

	if (fallocate(c->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, base,
		      c->chunk_size) == 0)
		return 0;
	if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, base,
		      c->chunk_size) == 0)
		return 0;
	z = bounce_get(c->chunk_size);
	if (!z)
		return -ENOMEM;
	memset(z, 0, c->chunk_size);
	r = io(c, true, z, c->chunk_size, base);
	return r;
}

int cache_sync(struct cache *c)
{
	return fdatasync(c->fd) < 0 ? -errno : 0;
}

/* ---- allocator ------------------------------------------------------- */

int cache_alloc(struct cache *c, uint64_t owner, uint32_t *slot)
{
	pthread_mutex_lock(&c->lock);
	if (c->nfree == 0) {
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	*slot = c->fhead; /* the oldest freed */
	fifo_unlink(c, *slot);
	victim_clear(c, *slot);
	c->owner[*slot] = owner;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void cache_free(struct cache *c, uint32_t slot)
{
	pthread_mutex_lock(&c->lock);
	c->owner[slot] = OWNER_NONE;
	victim_clear(c, slot);
	fifo_push(c, slot);
	pthread_mutex_unlock(&c->lock);
}

void cache_free_victim(struct cache *c, uint32_t slot, uint64_t owner,
		       uint64_t tag)
{
	uint32_t *h = hint_of(c, owner);

	pthread_mutex_lock(&c->lock);
	c->owner[slot] = OWNER_NONE;
	victim_clear(c, slot);
	if (*h != NO_SLOT) /* owner's older record, or a neighbour's */
		victim_clear(c, *h);
	c->vowner[slot] = owner;
	c->vtag[slot] = tag;
	*h = slot;
	fifo_push(c, slot);
	pthread_mutex_unlock(&c->lock);
}

int cache_reclaim(struct cache *c, uint64_t owner, uint64_t tag, uint32_t *slot)
{
	uint32_t s;
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	s = *hint_of(c, owner);
	if (s != NO_SLOT && c->vowner[s] == owner) {
		victim_clear(c, s); /* used now, or stale */
		if (c->vtag[s] == tag && c->owner[s] == OWNER_NONE) {
			fifo_unlink(c, s);
			c->owner[s] = owner;
			*slot = s;
			r = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void cache_forget(struct cache *c, uint64_t owner)
{
	uint32_t s;

	pthread_mutex_lock(&c->lock);
	s = *hint_of(c, owner);
	if (s != NO_SLOT && c->vowner[s] == owner)
		victim_clear(c, s);
	pthread_mutex_unlock(&c->lock);
}

int cache_claim(struct cache *c, uint32_t slot, uint64_t owner)
{
	int r = 0;

	if (slot >= c->nslots)
		return -ERANGE;
	pthread_mutex_lock(&c->lock);
	if (c->owner[slot] != OWNER_NONE) {
		r = -EBUSY;
	} else {
		fifo_unlink(c, slot);
		victim_clear(c, slot);
		c->owner[slot] = owner;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

uint64_t cache_owner(struct cache *c, uint32_t slot)
{
	uint64_t o;

	pthread_mutex_lock(&c->lock);
	o = c->owner[slot];
	pthread_mutex_unlock(&c->lock);
	return o;
}

uint64_t cache_free_slots(const struct cache *c)
{
	return __atomic_load_n(&c->nfree, __ATOMIC_RELAXED);
}

uint64_t cache_nslots(const struct cache *c)
{
	return c->nslots;
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->free_slots = c->nfree;
	pthread_mutex_unlock(&c->lock);
	out->bounces = __atomic_load_n(&c->bounces, __ATOMIC_RELAXED);
	out->rmw = __atomic_load_n(&c->rmw, __ATOMIC_RELAXED);
	out->direct_io = c->align > 1;
}
