/* uring.h - synchronous batched file I/O through per-thread io_uring rings.
 *
 * Each thread that calls uring_rw() gets its own small ring, created on
 * first use and destroyed when the thread exits, so no lock is shared
 * between threads on the hot path.  A batch of requests is submitted
 * with one system call and waited for together; short transfers are
 * re-queued for the remainder.  Where io_uring is unavailable (old
 * kernel, seccomp), preadv/pwritev are used instead, logged once.
 */
#ifndef TIERBD_URING_H
#define TIERBD_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/log.h"

struct uring_req {
	int fd;
	bool write;
	void *buf;
	size_t len;
	off_t off;
};

/* Perform all n requests.  Returns 0 when every byte was transferred,
 * else the first error as -errno (-EIO for an unexpected end of file). */
int uring_rw(const struct logger *lg, struct uring_req *reqs, unsigned n);

/* True when this thread's requests go through io_uring. */
bool uring_available(void);

#endif
