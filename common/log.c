/* log.c - default logger: errors and warnings to stderr. */
#include <stdio.h>

#include "log.h"

void tlog(const struct logger *lg, enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (lg && lg->fn) {
		lg->fn(lg->opaque, level, fmt, ap);
	} else if (level <= LOG_WARN) {
		fputs("tierbd: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
