/* uring.c - per-thread io_uring rings for the cache file.
 *
 * Design: a ring per thread (pthread key with a destructor) avoids a
 * shared submission lock; the engine's threads are nbdkit's request
 * threads and its own workers, a few dozen at most, each ring costs a
 * few pages.  One in-flight op struct per request carries the
 * remaining iovec; its pointer travels in user_data.  A short read or
 * write, or -EAGAIN, is re-queued for what is left
 * (liburing:examples/io_uring-cp.c).
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "uring.h"

#define RING_DEPTH 64

static pthread_key_t ring_key;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;
static int ring_broken; /* io_uring_queue_init failed once: use syscalls */
static int ring_warned;

static void ring_destroy(void *p)
{
	struct io_uring *ring = p;

	io_uring_queue_exit(ring);
	free(ring);
}

/* A forked child shares the parent's ring memory: drop the child's copy
 * before it submits anything, so parent and child never mix requests. */
static void ring_atfork_child(void)
{
	struct io_uring *ring = pthread_getspecific(ring_key);

	if (ring) {
		pthread_setspecific(ring_key, NULL);
		ring_destroy(ring);
	}
}

static void ring_key_init(void)
{
	pthread_key_create(&ring_key, ring_destroy);
	pthread_atfork(NULL, NULL, ring_atfork_child);
}

static struct io_uring *thread_ring(const struct logger *lg)
{
	struct io_uring *ring;
	int r;

	if (__atomic_load_n(&ring_broken, __ATOMIC_RELAXED))
		return NULL;
	pthread_once(&ring_once, ring_key_init);
	ring = pthread_getspecific(ring_key);
	if (ring)
		return ring;
	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return NULL;
	r = io_uring_queue_init(RING_DEPTH, ring, 0);
	if (r < 0) {
		free(ring);
		__atomic_store_n(&ring_broken, 1, __ATOMIC_RELAXED);
		if (!__atomic_exchange_n(&ring_warned, 1, __ATOMIC_RELAXED))
			tlog(lg, LOG_WARN,
			     "io_uring unavailable (%s): cache I/O falls back "
			     "to preadv/pwritev",
			     strerror(-r));
		return NULL;
	}
	pthread_setspecific(ring_key, ring);
	return ring;
}

bool uring_available(void)
{
	return thread_ring(NULL) != NULL;
}

static int rw_syscall(struct uring_req *q)
{
	size_t done = 0;

	while (done < q->len) {
		char *p = (char *)q->buf + done;
		ssize_t n = q->write ? pwrite(q->fd, p, q->len - done,
					      q->off + (off_t)done)
				     : pread(q->fd, p, q->len - done,
					     q->off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

struct op {
	struct uring_req *req;
	size_t done;
};

static void prep(struct io_uring *ring, struct op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct uring_req *q = op->req;
	char *p = (char *)q->buf + op->done;
	unsigned len = (unsigned)(q->len - op->done);

	/* Submissions never outnumber RING_DEPTH: see uring_rw. */
	if (q->write)
		io_uring_prep_write(sqe, q->fd, p, len,
				    (__u64)(q->off + (off_t)op->done));
	else
		io_uring_prep_read(sqe, q->fd, p, len,
				   (__u64)(q->off + (off_t)op->done));
	io_uring_sqe_set_data(sqe, op);
}

static int rw_batch(struct io_uring *ring, struct uring_req *reqs, unsigned n)
{
	struct op ops[RING_DEPTH];
	unsigned pending = n;
	int err = 0;

	for (unsigned i = 0; i < n; i++) {
		ops[i].req = &reqs[i];
		ops[i].done = 0;
		prep(ring, &ops[i]);
	}
	while (pending) {
		struct io_uring_cqe *cqe;
		int r = io_uring_submit_and_wait(ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN) {
			/* Entries may still sit in the rings pointing at our
			 * stack: retire this ring and fall back to syscalls. */
			__atomic_store_n(&ring_broken, 1, __ATOMIC_RELAXED);
			pthread_setspecific(ring_key, NULL);
			ring_destroy(ring);
			return r;
		}
		while (io_uring_peek_cqe(ring, &cqe) == 0) {
			struct op *op = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(ring, cqe);
			if (res == -EAGAIN || res == -EINTR) {
				prep(ring, op);
				continue;
			}
			if (res <= 0) {
				if (!err)
					err = res < 0 ? res : -EIO;
				pending--;
				continue;
			}
			op->done += (size_t)res;
			if (op->done < op->req->len)
				prep(ring, op); /* short transfer */
			else
				pending--;
		}
	}
	return err;
}

int uring_rw(const struct logger *lg, struct uring_req *reqs, unsigned n)
{
	struct io_uring *ring = thread_ring(lg);
	int err = 0;

	if (!ring) {
		for (unsigned i = 0; i < n && !err; i++)
			err = rw_syscall(&reqs[i]);
		return err;
	}
	for (unsigned i = 0; i < n && !err; i += RING_DEPTH) {
		unsigned m = n - i < RING_DEPTH ? n - i : RING_DEPTH;
		err = rw_batch(ring, reqs + i, m);
	}
	return err;
}
