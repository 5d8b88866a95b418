/* control.h - the control socket of one device.
 *
 * A unix stream socket (default CACHE_DIR/control, mode 0600: whoever
 * may use it can flush, drain and pin) served by threads of the
 * process serving the device: one accepts, one per client connection
 * (at most CONTROL_MAX_CONN at once; more are told so and closed).
 * The protocol is proto/control.h ("tierbd/1"): the `tierbd` command
 * speaks it, and so does `socat - UNIX-CONNECT:CACHE_DIR/control`.
 *
 * A malformed or unknown request gets an error reply and the
 * connection stays open; only a line longer than the protocol allows
 * closes it (after the error reply).  Nothing a client sends reaches
 * the device except through the verbs.
 *
 * Lifetime: control_open binds (before nbdkit forks, so that a bad
 * path is an error at start), control_start starts the threads (after
 * the fork), control_close stops them and removes the socket.  A drain
 * in progress is waited for by control_close: device_drain cannot be
 * cancelled, and the device must not close under it.
 */
#ifndef TIERBD_CONTROL_H
#define TIERBD_CONTROL_H

#include "../common/log.h"
#include "device.h"
#include "probe.h"

#define CONTROL_MAX_CONN 16

struct control;

struct control_conf {
	struct logger log;
	const char *path;      /* the socket */
	const char *cache_dir; /* reported by ping and status */
	const char *version;   /* NULL: this build's (TIERBD_VERSION) */
	struct device *dev;
	struct probe *probe;	  /* or NULL */
	const char *metrics_addr; /* reported by status, or NULL */
};

/* Bind and listen.  A stale socket left by a process that is gone is
 * replaced; a live one (another server answers) is refused, as is a
 * path that is not a socket.  NULL with errno, logged. */
struct control *control_open(const struct control_conf *conf);
int control_start(struct control *c);
void control_close(struct control *c); /* NULL-safe */

/* The stats and status replies, for the socket and for tests:
 * the members after "v" into o (ctl_out_init done by the caller). */
struct ctl_out;
void control_put_stats(struct ctl_out *o, const struct control_conf *conf,
		       bool full);

#endif
