/* cleanup.h - scope-bound cleanup with __attribute__((cleanup)).
 *
 *   CLEANUP_FREE char *s = strdup(...);     freed when s leaves scope
 *   SCOPED_LOCK(&m);                        unlocked at end of scope
 */
#ifndef TIERBD_CLEANUP_H
#define TIERBD_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_free(void *ptr)
{
	free(*(void **)ptr);
}
#define CLEANUP_FREE __attribute__((cleanup(cleanup_free)))

static inline void cleanup_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define CLEANUP_CLOSE __attribute__((cleanup(cleanup_close)))

static inline void cleanup_unlock(pthread_mutex_t **m)
{
	pthread_mutex_unlock(*m);
}
#define SCOPED_LOCK_CAT2(a, b) a##b
#define SCOPED_LOCK_CAT(a, b) SCOPED_LOCK_CAT2(a, b)
#define SCOPED_LOCK(m)                                                   \
	__attribute__((cleanup(cleanup_unlock)))                         \
	pthread_mutex_t *SCOPED_LOCK_CAT(_scoped_lock_, __LINE__) = (m); \
	pthread_mutex_lock(SCOPED_LOCK_CAT(_scoped_lock_, __LINE__))

#endif
