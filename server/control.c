/* control.c - serve the control socket (control.h, proto/control.h).
 *
 * Threads: the acceptor polls the listening socket and a stop pipe; each
 * accepted connection gets a thread from a fixed table of
 * CONTROL_MAX_CONN slots (finished ones are joined when a slot is
 * needed, and all at close).  A connection thread reads lines with poll
 * (so it sees `stop`), decodes each request and answers it.  drain runs
 * device_drain in a helper thread while the connection thread sends a
 * progress line every PROGRESS_MS; a client that goes away does not
 * stop the drain, and control_close waits for it.
 *
 * Locking: `lock` guards the connection table and `stop`; a connection
 * thread owns its fd until it marks its slot done.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "../proto/control.h"
#include "control.h"

#define PROGRESS_MS 500
#define POLL_MS 200
#define SEND_TIMEOUT_S 10

struct conn {
	int fd;
	bool used, done;
	pthread_t thread;
	struct control *c;
};

struct control {
	struct control_conf conf;
	char *path, *cache_dir, *version;
	int lfd;
	int stop_pipe[2];
	bool started;
	pthread_t acceptor;
	pthread_mutex_t lock; /* conns[], stop */
	bool stop;
	struct conn conns[CONTROL_MAX_CONN];
};

static bool stopping(struct control *c)
{
	return __atomic_load_n(&c->stop, __ATOMIC_RELAXED);
}

/* ---- replies ------------------------------------------------------------ */

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Finish o and send it as one line. */
static int send_out(int fd, struct ctl_out *o)
{
	char *line;
	size_t len;
	int r = ctl_out_finish(o, &line, &len);

	if (r < 0) {
		/* Too big or out of memory: say so in a reply that fits. */
		static const char fallback[] =
			"{\"v\":1,\"ok\":false,\"errno\":\"ENOMEM\","
			"\"error\":\"the reply could not be built\"}\n";
		return send_all(fd, fallback, sizeof(fallback) - 1);
	}
	line[len] = '\n'; /* the NUL's place: finish leaves room */
	r = send_all(fd, line, len + 1);
	free(line);
	return r;
}

static int send_error(int fd, const char *verb, int err, const char *msg)
{
	struct ctl_out o;

	ctl_out_init(&o);
	ctl_out_bool(&o, "ok", false);
	if (verb)
		ctl_out_str(&o, "verb", verb);
	ctl_out_str(&o, "errno", ctl_errno_name(err));
	ctl_out_str(&o, "error", msg);
	return send_out(fd, &o);
}

static void put_hist(struct ctl_out *o, const char *key, const uint64_t *h,
		     unsigned n)
{
	ctl_out_arr(o, key);
	for (unsigned i = 0; i < n; i++)
		ctl_out_u64(o, NULL, h[i]);
	ctl_out_end(o);
}

/* count, sum, p50/p90/p99 and (full) the histogram of one latency. */
static void put_latency(struct ctl_out *o, const char *key, const uint64_t *h,
			unsigned n, uint64_t sum_ns, bool full)
{
	ctl_out_obj(o, key);
	ctl_out_u64(o, "count", lat_count(h, n));
	ctl_out_u64(o, "sum_ns", sum_ns);
	ctl_out_u64(o, "p50_ns", lat_quantile(h, n, 0.50));
	ctl_out_u64(o, "p90_ns", lat_quantile(h, n, 0.90));
	ctl_out_u64(o, "p99_ns", lat_quantile(h, n, 0.99));
	if (full)
		put_hist(o, "hist", h, n);
	ctl_out_end(o);
}

static double ratio(uint64_t a, uint64_t b)
{
	return a + b ? (double)a / (double)(a + b) : 0.0;
}

static void put_probe(struct ctl_out *o, struct probe *p, bool full)
{
	static const char *const dirs[PROBE_NDIR] = { "read", "write",
						      "other" };
	struct probe_pace pace;

	probe_get_pace(p, &pace);
	ctl_out_obj(o, "probe");
	ctl_out_str(o, "mode", probe_mode_name(p));
	ctl_out_bool(o, "loaded", probe_loaded(p));
	ctl_out_str(o, "state", probe_state(p));
	ctl_out_u64(o, "latency_limit_us", pace.limit_us);
	ctl_out_u64(o, "cache_p99_ns", pace.p99_ns);
	ctl_out_u64(o, "window_ops", pace.window_ops);
	ctl_out_bool(o, "overloaded", pace.overloaded);
	ctl_out_arr(o, "devices");
	for (unsigned i = 0; i < probe_ndevs(p); i++) {
		struct probe_dev_stats *s = malloc(sizeof(*s));
		char dev[24];

		if (!s || probe_read(p, i, s) < 0) {
			free(s);
			continue;
		}
		snprintf(dev, sizeof(dev), "%u:%u", s->major, s->minor);
		ctl_out_obj(o, NULL);
		ctl_out_str(o, "name", s->name);
		ctl_out_str(o, "dev", dev);
		ctl_out_str(o, "role", s->cache ? "cache" : "watch");
		ctl_out_i64(o, "inflight", s->inflight);
		ctl_out_u64(o, "errors", s->errors);
		for (int d = 0; d < PROBE_NDIR; d++) {
			ctl_out_obj(o, dirs[d]);
			ctl_out_u64(o, "ops", s->ops[d]);
			ctl_out_u64(o, "bytes", s->bytes[d]);
			put_latency(o, "latency", s->lat[d], PROBE_SLOTS,
				    s->lat_sum_ns[d], full);
			if (full)
				put_hist(o, "queued_hist", s->qlat[d],
					 PROBE_SLOTS);
			ctl_out_end(o);
		}
		if (full)
			put_hist(o, "depth_hist", s->depth, PROBE_DEPTH_SLOTS);
		ctl_out_end(o);
		free(s);
	}
	ctl_out_end(o);
	ctl_out_end(o);
}

void control_put_stats(struct ctl_out *o, const struct control_conf *conf,
		       bool full)
{
	struct device_stats *st = malloc(sizeof(*st));
	const struct store_stats *ss;

	if (!st) {
		o->err = o->err ? o->err : -ENOMEM;
		return;
	}
	device_get_stats(conf->dev, st);
	ss = &st->store;

	ctl_out_obj(o, "device");
	ctl_out_str(o, "cache_dir", conf->cache_dir);
	ctl_out_u64(o, "size", device_size(conf->dev));
	ctl_out_u64(o, "chunk_size", st->chunk_size);
	ctl_out_u64(o, "chunks", st->nchunks);
	ctl_out_u64(o, "slots", st->nslots);
	ctl_out_u64(o, "slots_free", st->slots_free);
	ctl_out_end(o);

	ctl_out_obj(o, "queues");
	ctl_out_u64(o, "push", st->wb_queue);
	ctl_out_u64(o, "pull", st->pull_queue);
	ctl_out_u64(o, "delete", st->pending_dels);
	ctl_out_end(o);
	ctl_out_obj(o, "dirty");
	ctl_out_u64(o, "chunks", st->hot_dirty);
	ctl_out_u64(o, "bytes", st->dirty_bytes);
	ctl_out_end(o);
	ctl_out_obj(o, "commit");
	ctl_out_u64(o, "seq", st->commit_seq);
	ctl_out_u64(o, "lag", st->commit_lag);
	ctl_out_u64(o, "commits", st->commits);
	ctl_out_u64(o, "gc_deletes", st->gc_deletes);
	ctl_out_end(o);
	ctl_out_obj(o, "pacing");
	ctl_out_u64(o, "paced", st->bg_paced);
	ctl_out_u64(o, "paced_ms", st->bg_paced_ms);
	ctl_out_u64(o, "yields", st->bg_yields);
	ctl_out_end(o);

	if (full) {
		ctl_out_obj(o, "chunks");
		ctl_out_u64(o, "absent", st->absent);
		ctl_out_u64(o, "cold", st->cold);
		ctl_out_u64(o, "hot_clean", st->hot_clean);
		ctl_out_u64(o, "hot_dirty", st->hot_dirty);
		ctl_out_u64(o, "pinned", st->pinned);
		ctl_out_end(o);

		ctl_out_obj(o, "io");
		ctl_out_u64(o, "reads", st->reads);
		ctl_out_u64(o, "writes", st->writes);
		ctl_out_u64(o, "read_bytes", st->read_bytes);
		ctl_out_u64(o, "write_bytes", st->write_bytes);
		ctl_out_u64(o, "flushes", st->flushes);
		ctl_out_u64(o, "throttled_writes", st->throttled_writes);
		ctl_out_end(o);

		ctl_out_obj(o, "cache");
		ctl_out_u64(o, "hits", st->hits);
		ctl_out_u64(o, "misses", st->misses);
		ctl_out_num(o, "hit_ratio", ratio(st->hits, st->misses));
		ctl_out_u64(o, "evictions", st->evictions);
		ctl_out_u64(o, "sync_evictions", st->sync_evictions);
		ctl_out_u64(o, "reclaims", st->reclaims);
		ctl_out_u64(o, "reclaim_fails", st->reclaim_fails);
		ctl_out_u64(o, "bounces", st->bounces);
		ctl_out_u64(o, "probation", st->probation);
		ctl_out_u64(o, "main", st->main);
		ctl_out_u64(o, "pinned_slots", st->pinned_slots);
		ctl_out_u64(o, "promotions", st->promotions);
		put_latency(o, "latency", st->cache_read_lat, LAT_SLOTS,
			    st->cache_read_ns, true);
		ctl_out_end(o);

		ctl_out_obj(o, "store");
		ctl_out_u64(o, "fetches", st->fetches);
		ctl_out_u64(o, "fetch_bytes", st->fetch_bytes);
		ctl_out_u64(o, "fetch_waits", st->fetch_waits);
		ctl_out_u64(o, "prefetches", st->prefetches);
		ctl_out_u64(o, "prefetch_errors", st->prefetch_errors);
		ctl_out_u64(o, "uploads", st->uploads);
		ctl_out_u64(o, "upload_bytes", st->upload_bytes);
		ctl_out_u64(o, "upload_errors", st->upload_errors);
		ctl_out_u64(o, "early_pushes", st->early_pushes);
		put_latency(o, "latency", st->store_get_lat, LAT_SLOTS,
			    st->store_get_ns, true);
		ctl_out_obj(o, "requests");
		ctl_out_u64(o, "gets", ss->gets);
		ctl_out_u64(o, "puts", ss->puts);
		ctl_out_u64(o, "dels", ss->dels);
		ctl_out_u64(o, "heads", ss->heads);
		ctl_out_u64(o, "lists", ss->lists);
		ctl_out_u64(o, "bytes_in", ss->bytes_in);
		ctl_out_u64(o, "bytes_out", ss->bytes_out);
		ctl_out_u64(o, "retries", ss->retries);
		ctl_out_u64(o, "errors", ss->errors);
		ctl_out_u64(o, "not_found", ss->not_found);
		ctl_out_u64(o, "denied", ss->denied);
		ctl_out_u64(o, "timeouts", ss->timeouts);
		ctl_out_u64(o, "server_errors", ss->server_errors);
		ctl_out_u64(o, "net_errors", ss->net_errors);
		ctl_out_end(o);
		ctl_out_end(o);

		ctl_out_obj(o, "errors");
		ctl_out_u64(o, "checksum", st->checksum_errors);
		ctl_out_u64(o, "verify_refetches", st->verify_refetches);
		ctl_out_end(o);
		ctl_out_u64(o, "meta_bytes", st->meta_bytes);
	}
	put_probe(o, conf->probe, full);
	if (conf->metrics_addr)
		ctl_out_str(o, "metrics", conf->metrics_addr);
	free(st);
}

/* ---- verbs ---------------------------------------------------------------- */

struct drain_job {
	struct device *dev;
	pthread_mutex_t lock;
	pthread_cond_t done_cond; /* done became true */
	bool done;
	int r;
};

static void *drain_thread(void *arg)
{
	struct drain_job *j = arg;
	int r = device_drain(j->dev);

	pthread_mutex_lock(&j->lock);
	j->r = r;
	j->done = true;
	pthread_cond_broadcast(&j->done_cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int do_drain(struct control *c, int fd)
{
	struct drain_job j = { .dev = c->conf.dev };
	struct device_stats *st = malloc(sizeof(*st));
	uint64_t t0 = mono_ms(), first_dirty;
	bool client = true, said = false;
	pthread_t t;
	int r;

	if (!st)
		return send_error(fd, "drain", ENOMEM, "out of memory");
	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.done_cond, NULL);
	device_get_stats(c->conf.dev, st);
	first_dirty = st->dirty_bytes;
	r = pthread_create(&t, NULL, drain_thread, &j);
	if (r) {
		free(st);
		return send_error(fd, "drain", r, "cannot start a thread");
	}
	tlog(&c->conf.log, LOG_INFO, "control: drain of %llu dirty bytes",
	     (unsigned long long)first_dirty);
	pthread_mutex_lock(&j.lock);
	/* A progress line at once (what there is to push), then one every
	 * PROGRESS_MS until the drain is done. */
	for (bool first = true; !j.done; first = false) {
		struct timespec ts;

		if (!first) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += PROGRESS_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&j.done_cond, &j.lock, &ts);
			if (j.done)
				break;
		}
		pthread_mutex_unlock(&j.lock);
		if (stopping(c) && !said) {
			tlog(&c->conf.log, LOG_WARN,
			     "control: waiting for the drain in progress to "
			     "finish before closing the device");
			said = true;
		}
		if (client) {
			struct ctl_out o;

			device_get_stats(c->conf.dev, st);
			ctl_out_init(&o);
			ctl_out_str(&o, "progress", "drain");
			ctl_out_u64(&o, "dirty_bytes", st->dirty_bytes);
			ctl_out_u64(&o, "dirty_chunks", st->hot_dirty);
			ctl_out_u64(&o, "push_queue", st->wb_queue);
			ctl_out_u64(&o, "uploads", st->uploads);
			ctl_out_u64(&o, "commit_lag", st->commit_lag);
			ctl_out_u64(&o, "elapsed_ms", mono_ms() - t0);
			client = send_out(fd, &o) == 0;
		}
		pthread_mutex_lock(&j.lock);
	}
	r = j.r;
	pthread_mutex_unlock(&j.lock);
	pthread_join(t, NULL);
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.done_cond);
	device_get_stats(c->conf.dev, st);
	if (r < 0) {
		free(st);
		return send_error(fd, "drain", -r,
				  r == -ESHUTDOWN ? "the device is closing"
						  : strerror(-r));
	}
	{
		struct ctl_out o;

		ctl_out_init(&o);
		ctl_out_bool(&o, "ok", true);
		ctl_out_str(&o, "verb", "drain");
		ctl_out_u64(&o, "drained_bytes", first_dirty);
		ctl_out_u64(&o, "dirty_bytes", st->dirty_bytes);
		ctl_out_u64(&o, "commit_seq", st->commit_seq);
		ctl_out_u64(&o, "elapsed_ms", mono_ms() - t0);
		free(st);
		return send_out(fd, &o);
	}
}

static int handle(struct control *c, int fd, const char *line, size_t len)
{
	struct ctl_req req;
	struct ctl_out o;
	char err[256];
	int r = ctl_req_decode(line, len, &req, err, sizeof(err));

	if (r < 0)
		return send_error(fd, NULL, -r, err);
	switch (req.verb) {
	case CTL_PING:
		ctl_out_init(&o);
		ctl_out_bool(&o, "ok", true);
		ctl_out_str(&o, "verb", "ping");
		ctl_out_str(&o, "version", c->conf.version);
		ctl_out_u64(&o, "protocol", CTL_VERSION);
		ctl_out_str(&o, "cache_dir", c->conf.cache_dir);
		ctl_out_u64(&o, "size", device_size(c->conf.dev));
		return send_out(fd, &o);
	case CTL_STATS:
	case CTL_STATUS:
		ctl_out_init(&o);
		ctl_out_bool(&o, "ok", true);
		ctl_out_str(&o, "verb", ctl_verb_name(req.verb));
		control_put_stats(&o, &c->conf, req.verb == CTL_STATS);
		return send_out(fd, &o);
	case CTL_FLUSH: {
		uint64_t t0 = mono_ms();

		r = device_flush(c->conf.dev);
		if (r < 0)
			return send_error(fd, "flush", -r, strerror(-r));
		ctl_out_init(&o);
		ctl_out_bool(&o, "ok", true);
		ctl_out_str(&o, "verb", "flush");
		ctl_out_u64(&o, "elapsed_ms", mono_ms() - t0);
		return send_out(fd, &o);
	}
	case CTL_DRAIN:
		return do_drain(c, fd);
	case CTL_PIN:
	case CTL_UNPIN:
		r = device_pin(c->conf.dev, req.start, req.end - req.start,
			       req.verb == CTL_PIN);
		if (r < 0) {
			snprintf(err, sizeof(err), "%s %llu-%llu: %s",
				 ctl_verb_name(req.verb),
				 (unsigned long long)req.start,
				 (unsigned long long)req.end,
				 r == -ERANGE ? "the range is past the end "
						"of the device"
				 : r == -ENOSPC
					 ? "pins would cover more than 90% "
					   "of the cache"
					 : strerror(-r));
			return send_error(fd, ctl_verb_name(req.verb), -r, err);
		}
		ctl_out_init(&o);
		ctl_out_bool(&o, "ok", true);
		ctl_out_str(&o, "verb", ctl_verb_name(req.verb));
		ctl_out_u64(&o, "start", req.start);
		ctl_out_u64(&o, "end", req.end);
		return send_out(fd, &o);
	default:
		return send_error(fd, NULL, EOPNOTSUPP, "unknown verb");
	}
}

/* ---- connections ---------------------------------------------------------- */

static void *conn_thread(void *arg)
{
	struct conn *k = arg;
	struct control *c = k->c;
	char buf[CTL_REQ_MAX + 2];
	size_t have = 0;

	while (!stopping(c)) {
		struct pollfd pfd = { .fd = k->fd, .events = POLLIN };
		char *nl;
		ssize_t n;
		int r = poll(&pfd, 1, POLL_MS);

		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		n = recv(k->fd, buf + have, sizeof(buf) - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			size_t len = (size_t)(nl - buf);

			r = handle(c, k->fd, buf, len);
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
			if (r < 0)
				goto out;
		}
		if (have == sizeof(buf)) {
			char msg[80];

			snprintf(msg, sizeof(msg),
				 "request longer than %d bytes; closing",
				 CTL_REQ_MAX);
			send_error(k->fd, NULL, EBADMSG, msg);
			/* Read what is left before closing, so the client
			 * sees the reply and then EOF, not a reset. */
			shutdown(k->fd, SHUT_WR);
			for (size_t left = 1 << 20; left && !stopping(c);) {
				struct pollfd q = { .fd = k->fd,
						    .events = POLLIN };
				char junk[4096];

				if (poll(&q, 1, 1000) <= 0 ||
				    (n = recv(k->fd, junk, sizeof(junk), 0)) <=
					    0)
					break;
				left -= MIN((size_t)n, left);
			}
			break;
		}
	}
out:
	close(k->fd);
	pthread_mutex_lock(&c->lock);
	k->fd = -1;
	k->done = true;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* A free slot, joining finished connections; NULL if all are busy.
 * Caller holds c->lock. */
static struct conn *free_slot(struct control *c)
{
	for (int i = 0; i < CONTROL_MAX_CONN; i++) {
		struct conn *k = &c->conns[i];

		if (k->used && k->done) {
			pthread_join(k->thread, NULL);
			k->used = false;
		}
		if (!k->used)
			return k;
	}
	return NULL;
}

static void *acceptor(void *arg)
{
	struct control *c = arg;
	const struct timeval send_timeout = { .tv_sec = SEND_TIMEOUT_S };

	while (!stopping(c)) {
		struct pollfd pfd[2] = { { .fd = c->lfd, .events = POLLIN },
					 { .fd = c->stop_pipe[0],
					   .events = POLLIN } };
		struct conn *k;
		int fd, r = poll(pfd, 2, -1);

		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0 || pfd[1].revents)
			continue;
		fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* A client that stops reading cannot hold a thread (and
		 * control_close) forever: sends give up after a while. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
			   sizeof(send_timeout));
		pthread_mutex_lock(&c->lock);
		k = c->stop ? NULL : free_slot(c);
		if (k) {
			*k = (struct conn){ .fd = fd, .used = true, .c = c };
			if (pthread_create(&k->thread, NULL, conn_thread, k)) {
				k->used = false;
				k = NULL;
			}
		}
		pthread_mutex_unlock(&c->lock);
		if (!k) {
			send_error(fd, NULL, EBUSY,
				   "too many control connections; try again");
			close(fd);
		}
	}
	return NULL;
}

/* ---- lifetime ------------------------------------------------------------- */

static int bind_socket(struct control *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(c->path) >= sizeof(sa.sun_path)) {
		tlog(&c->conf.log, LOG_ERROR,
		     "control=%s: a unix socket path has at most %zu bytes; "
		     "choose a shorter control= path",
		     c->path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, c->path);
	if (lstat(c->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			tlog(&c->conf.log, LOG_ERROR,
			     "control=%s: exists and is not a socket; remove "
			     "it or choose another control= path",
			     c->path);
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			tlog(&c->conf.log, LOG_ERROR,
			     "control=%s: another process serves this socket; "
			     "choose another control= path",
			     c->path);
			return -EADDRINUSE;
		}
		if (fd >= 0)
			close(fd);
		unlink(c->path); /* stale: its server is gone */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(c->path, 0600) < 0 || listen(fd, 16) < 0) {
		int err = errno;

		tlog(&c->conf.log, LOG_ERROR, "control=%s: %s", c->path,
		     strerror(err));
		close(fd);
		return -err;
	}
	c->lfd = fd;
	return 0;
}

struct control *control_open(const struct control_conf *conf)
{
	struct control *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return NULL;
	c->conf = *conf;
	c->lfd = c->stop_pipe[0] = c->stop_pipe[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	c->path = strdup(conf->path);
	c->cache_dir = strdup(conf->cache_dir ? conf->cache_dir : "");
	c->version = strdup(conf->version ? conf->version : TIERBD_VERSION);
	if (!c->path || !c->cache_dir || !c->version) {
		r = -ENOMEM;
		goto fail;
	}
	c->conf.path = c->path;
	c->conf.cache_dir = c->cache_dir;
	c->conf.version = c->version;
	c->conf.metrics_addr = NULL;
	if (conf->metrics_addr) {
		c->conf.metrics_addr = strdup(conf->metrics_addr);
		if (!c->conf.metrics_addr) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (pipe2(c->stop_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = bind_socket(c);
	if (r < 0)
		goto fail;
	return c;
fail:
	control_close(c);
	errno = -r;
	return NULL;
}

int control_start(struct control *c)
{
	int r = pthread_create(&c->acceptor, NULL, acceptor, c);

	if (r) {
		tlog(&c->conf.log, LOG_ERROR,
		     "cannot start the control thread: %s", strerror(r));
		return -r;
	}
	c->started = true;
	return 0;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < CONTROL_MAX_CONN; i++)
		if (c->conns[i].used && !c->conns[i].done &&
		    c->conns[i].fd >= 0)
			shutdown(c->conns[i].fd, SHUT_RD);
	pthread_mutex_unlock(&c->lock);
	if (c->stop_pipe[1] >= 0 && write(c->stop_pipe[1], "x", 1) < 0) {
		/* the acceptor also polls `stop` after any wakeup */
	}
	if (c->started)
		pthread_join(c->acceptor, NULL);
	for (int i = 0; i < CONTROL_MAX_CONN; i++)
		if (c->conns[i].used)
			pthread_join(c->conns[i].thread, NULL);
	if (c->lfd >= 0) {
		close(c->lfd);
		unlink(c->path);
	}
	for (int i = 0; i < 2; i++)
		if (c->stop_pipe[i] >= 0)
			close(c->stop_pipe[i]);
	pthread_mutex_destroy(&c->lock);
	free((char *)c->conf.metrics_addr);
	free(c->path);
	free(c->cache_dir);
	free(c->version);
	free(c);
}
