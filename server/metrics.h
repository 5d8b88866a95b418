/* metrics.h - Prometheus text metrics of one device over HTTP.
 *
 * `metrics=127.0.0.1:PORT` (or `[::1]:PORT`, `localhost:PORT`) serves
 * GET /metrics in the text exposition format 0.0.4 from one thread of
 * the process serving the device.  Only loopback addresses are
 * accepted: the endpoint has no authentication, and what it shows
 * (sizes, rates, latencies) is for the host's own collector or a proxy
 * the operator puts in front.  PORT 0 picks a free port; metrics_addr
 * says which.  The names are listed in docs/operations.md.
 *
 * The server is deliberately small: HTTP/1.0 semantics (one request per
 * connection, Connection: close), requests read with a 2 s deadline and
 * at most 8 KiB of head, one client at a time.
 */
#ifndef TIERBD_METRICS_H
#define TIERBD_METRICS_H

#include <stdio.h>

#include "../common/log.h"
#include "device.h"
#include "probe.h"

struct metrics;

struct metrics_conf {
	struct logger log;
	const char *addr; /* "127.0.0.1:9100" */
	struct device *dev;
	struct probe *probe; /* or NULL */
};

/* Parse conf->addr (refusing non-loopback addresses with a message that
 * says why), bind and listen.  NULL with errno, logged. */
struct metrics *metrics_open(const struct metrics_conf *conf);
int metrics_start(struct metrics *m);
void metrics_close(struct metrics *m); /* NULL-safe */
/* The bound address, "127.0.0.1:41234". */
const char *metrics_addr(const struct metrics *m);

/* Write the metrics text (for the endpoint and for tests). */
int metrics_write(FILE *fp, struct device *dev, struct probe *probe);

#endif
