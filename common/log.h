/* log.h - the logging hook every layer takes in its conf.
 *
 * Only plugin/ knows nbdkit: it passes a function that forwards to
 * nbdkit_error / nbdkit_debug.  Unit tests, bench/ and the tierbd
 * command pass their own (or NULL, which logs errors to stderr).
 */
#ifndef TIERBD_LOG_H
#define TIERBD_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

typedef void (*log_fn)(void *opaque, enum log_level level, const char *fmt,
		       va_list ap);

struct logger {
	log_fn fn;    /* NULL: errors and warnings to stderr, rest dropped */
	void *opaque; /* passed to fn */
};

void tlog(const struct logger *lg, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
