/* metrics.c - the Prometheus endpoint (metrics.h).
 *
 * Rendering: metrics_write takes one device_stats snapshot and one read
 * of each probe device and prints every family with its HELP and TYPE
 * lines.  Latencies of the tiers are summaries (quantiles from the log2
 * histograms, so within a factor of two); the probe's are histograms
 * with power-of-two buckets in seconds.
 *
 * Serving: one thread polls the listening socket and a stop pipe,
 * accepts one connection at a time, reads the request head with a
 * deadline, and answers 200 with the text for GET /metrics, 404 for
 * other paths and 405 for other methods.  The body is built in memory
 * (open_memstream) so Content-Length is exact.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

#define HEAD_MAX 8192
#define READ_DEADLINE_MS 2000

struct metrics {
	struct metrics_conf conf;
	int lfd;
	int stop_pipe[2];
	bool started, stop;
	pthread_t thread;
	char addr[80];
};

/* ---- rendering ------------------------------------------------------------ */

static void family(FILE *fp, const char *name, const char *type,
		   const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void summary(FILE *fp, const char *name, const char *labels,
		    const uint64_t *h, unsigned n, uint64_t sum_ns)
{
	static const double qs[] = { 0.5, 0.9, 0.99 };

	for (unsigned i = 0; i < 3; i++)
		fprintf(fp, "%s{%s,quantile=\"%g\"} %.9f\n", name, labels,
			qs[i], (double)lat_quantile(h, n, qs[i]) / 1e9);
	fprintf(fp, "%s_sum{%s} %.9f\n", name, labels, (double)sum_ns / 1e9);
	fprintf(fp, "%s_count{%s} %llu\n", name, labels,
		(unsigned long long)lat_count(h, n));
}

/* Log2 slots as buckets, then +Inf: slot k holds [2^k, 2^(k+1)), so
 * its bucket is le = 2^(k+1) ns for times, or le = 2^(k+1) - 1 for
 * counts (integers; slot 0 holds 0 and 1). */
static void histogram(FILE *fp, const char *name, const char *labels,
		      const uint64_t *h, unsigned n, double sum_s, bool counts)
{
	uint64_t cum = 0;

	for (unsigned k = 0; k + 1 < n; k++) {
		double le = counts ? (double)((1ull << (k + 1)) - 1)
				   : (double)(1ull << (k + 1)) * 1e-9;

		cum += h[k];
		fprintf(fp, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, le,
			(unsigned long long)cum);
	}
	cum += h[n - 1];
	fprintf(fp, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
		(unsigned long long)cum);
	if (sum_s >= 0)
		fprintf(fp, "%s_sum{%s} %.9f\n", name, labels, sum_s);
	fprintf(fp, "%s_count{%s} %llu\n", name, labels,
		(unsigned long long)cum);
}

static void counter(FILE *fp, const char *name, const char *help, uint64_t v)
{
	family(fp, name, "counter", help);
	fprintf(fp, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(FILE *fp, const char *name, const char *help, uint64_t v)
{
	family(fp, name, "gauge", help);
	fprintf(fp, "%s %llu\n", name, (unsigned long long)v);
}

static double share(uint64_t a, uint64_t b)
{
	return a + b ? (double)a / (double)(a + b) : 0;
}

static void write_probe(FILE *fp, struct probe *p)
{
	static const char *const ops[PROBE_NDIR] = { "read", "write", "other" };
	struct probe_dev_stats *s = malloc(sizeof(*s));
	struct probe_pace pace;
	unsigned n = probe_ndevs(p);
	char lab[128];

	probe_get_pace(p, &pace);
	gauge(fp, "tierbd_probe_loaded", "1 if the kernel I/O probe is loaded",
	      probe_loaded(p));
	gauge(fp, "tierbd_probe_overloaded",
	      "1 while the cache devices' p99 is over probe-latency-limit",
	      pace.overloaded);
	family(fp, "tierbd_probe_cache_p99_seconds", "gauge",
	       "p99 latency of the cache devices in the last pacing window");
	fprintf(fp, "tierbd_probe_cache_p99_seconds %.9f\n",
		(double)pace.p99_ns / 1e9);
	if (!s || n == 0) {
		free(s);
		return;
	}
#define EACH_DEV(body)                                                      \
	for (unsigned i = 0; i < n; i++) {                                  \
		if (probe_read(p, i, s) < 0)                                \
			continue;                                           \
		snprintf(lab, sizeof(lab),                                  \
			 "dev=\"%u:%u\",name=\"%s\",role=\"%s\"", s->major, \
			 s->minor, s->name, s->cache ? "cache" : "watch");  \
		body                                                        \
	}
	family(fp, "tierbd_probe_requests_total", "counter",
	       "block requests completed on a watched device");
	EACH_DEV(for (int d = 0; d < PROBE_NDIR; d++) fprintf(
			 fp, "tierbd_probe_requests_total{%s,op=\"%s\"} %llu\n",
			 lab, ops[d], (unsigned long long)s->ops[d]);)
	family(fp, "tierbd_probe_bytes_total", "counter",
	       "bytes completed on a watched device");
	EACH_DEV(for (int d = 0; d < PROBE_NDIR; d++) fprintf(
			 fp, "tierbd_probe_bytes_total{%s,op=\"%s\"} %llu\n",
			 lab, ops[d], (unsigned long long)s->bytes[d]);)
	family(fp, "tierbd_probe_errors_total", "counter",
	       "block requests completed with an error");
	EACH_DEV(fprintf(fp, "tierbd_probe_errors_total{%s} %llu\n", lab,
			 (unsigned long long)s->errors);)
	family(fp, "tierbd_probe_inflight", "gauge",
	       "block requests issued to the device and not completed");
	EACH_DEV(fprintf(fp, "tierbd_probe_inflight{%s} %lld\n", lab,
			 (long long)s->inflight);)
	family(fp, "tierbd_probe_latency_seconds", "histogram",
	       "block request service time, issue to completion");
	EACH_DEV(for (int d = 0; d < PROBE_NDIR; d++) {
		char l2[160];
		snprintf(l2, sizeof(l2), "%s,op=\"%s\"", lab, ops[d]);
		histogram(fp, "tierbd_probe_latency_seconds", l2, s->lat[d],
			  PROBE_SLOTS, (double)s->lat_sum_ns[d] / 1e9, false);
	})
	family(fp, "tierbd_probe_queued_seconds", "histogram",
	       "time queued in the block layer before issue (where the "
	       "kernel stamps requests)");
	EACH_DEV(for (int d = 0; d < PROBE_NDIR; d++) {
		char l2[160];
		snprintf(l2, sizeof(l2), "%s,op=\"%s\"", lab, ops[d]);
		histogram(fp, "tierbd_probe_queued_seconds", l2, s->qlat[d],
			  PROBE_SLOTS, -1, false);
	})
	family(fp, "tierbd_probe_depth", "histogram",
	       "requests already in flight when one is issued");
	EACH_DEV(histogram(fp, "tierbd_probe_depth", lab, s->depth,
			   PROBE_DEPTH_SLOTS, -1, true);)
#undef EACH_DEV
	free(s);
}

int metrics_write(FILE *fp, struct device *dev, struct probe *probe)
{
	struct device_stats *st = malloc(sizeof(*st));
	const struct store_stats *ss;

	if (!st)
		return -ENOMEM;
	device_get_stats(dev, st);
	ss = &st->store;

	family(fp, "tierbd_requests_total", "counter",
	       "client requests by operation");
	fprintf(fp, "tierbd_requests_total{op=\"read\"} %llu\n",
		(unsigned long long)st->reads);
	fprintf(fp, "tierbd_requests_total{op=\"write\"} %llu\n",
		(unsigned long long)st->writes);
	fprintf(fp, "tierbd_requests_total{op=\"flush\"} %llu\n",
		(unsigned long long)st->flushes);
	family(fp, "tierbd_request_bytes_total", "counter",
	       "client bytes by operation");
	fprintf(fp, "tierbd_request_bytes_total{op=\"read\"} %llu\n",
		(unsigned long long)st->read_bytes);
	fprintf(fp, "tierbd_request_bytes_total{op=\"write\"} %llu\n",
		(unsigned long long)st->write_bytes);

	family(fp, "tierbd_tier_reads_total", "counter",
	       "chunk reads served by each tier (cache: hit, store: miss)");
	fprintf(fp, "tierbd_tier_reads_total{tier=\"cache\"} %llu\n",
		(unsigned long long)st->hits);
	fprintf(fp, "tierbd_tier_reads_total{tier=\"store\"} %llu\n",
		(unsigned long long)st->misses);
	family(fp, "tierbd_hit_ratio", "gauge",
	       "share of chunk reads served by each tier since start");
	fprintf(fp, "tierbd_hit_ratio{tier=\"cache\"} %.6f\n",
		share(st->hits, st->misses));
	fprintf(fp, "tierbd_hit_ratio{tier=\"store\"} %.6f\n",
		share(st->misses, st->hits));
	family(fp, "tierbd_latency_seconds", "summary",
	       "read latency per tier: cache slot reads on hits, store GETs");
	summary(fp, "tierbd_latency_seconds", "tier=\"cache\"",
		st->cache_read_lat, LAT_SLOTS, st->cache_read_ns);
	summary(fp, "tierbd_latency_seconds", "tier=\"store\"",
		st->store_get_lat, LAT_SLOTS, st->store_get_ns);

	family(fp, "tierbd_chunks", "gauge", "chunks by state");
	fprintf(fp, "tierbd_chunks{state=\"absent\"} %llu\n",
		(unsigned long long)st->absent);
	fprintf(fp, "tierbd_chunks{state=\"cold\"} %llu\n",
		(unsigned long long)st->cold);
	fprintf(fp, "tierbd_chunks{state=\"hot_clean\"} %llu\n",
		(unsigned long long)st->hot_clean);
	fprintf(fp, "tierbd_chunks{state=\"hot_dirty\"} %llu\n",
		(unsigned long long)st->hot_dirty);
	gauge(fp, "tierbd_cache_slots", "slots in the cache", st->nslots);
	gauge(fp, "tierbd_cache_slots_free", "free slots in the cache",
	      st->slots_free);
	gauge(fp, "tierbd_chunk_size_bytes", "chunk size", st->chunk_size);
	gauge(fp, "tierbd_pinned_chunks", "chunks pinned", st->pinned);

	family(fp, "tierbd_queue_depth", "gauge",
	       "chunks waiting in each background queue");
	fprintf(fp, "tierbd_queue_depth{queue=\"push\"} %llu\n",
		(unsigned long long)st->wb_queue);
	fprintf(fp, "tierbd_queue_depth{queue=\"pull\"} %llu\n",
		(unsigned long long)st->pull_queue);
	fprintf(fp, "tierbd_queue_depth{queue=\"delete\"} %llu\n",
		(unsigned long long)st->pending_dels);
	family(fp, "tierbd_queue_bytes", "gauge",
	       "bytes waiting in each transfer queue (chunks x chunk size)");
	fprintf(fp, "tierbd_queue_bytes{queue=\"push\"} %llu\n",
		(unsigned long long)(st->wb_queue * st->chunk_size));
	fprintf(fp, "tierbd_queue_bytes{queue=\"pull\"} %llu\n",
		(unsigned long long)(st->pull_queue * st->chunk_size));
	family(fp, "tierbd_transfers_total", "counter",
	       "chunks moved between the tiers");
	fprintf(fp, "tierbd_transfers_total{dir=\"fetch\"} %llu\n",
		(unsigned long long)st->fetches);
	fprintf(fp, "tierbd_transfers_total{dir=\"prefetch\"} %llu\n",
		(unsigned long long)st->prefetches);
	fprintf(fp, "tierbd_transfers_total{dir=\"upload\"} %llu\n",
		(unsigned long long)st->uploads);
	family(fp, "tierbd_transfer_bytes_total", "counter",
	       "object bytes moved between the tiers (compressed)");
	fprintf(fp, "tierbd_transfer_bytes_total{dir=\"fetch\"} %llu\n",
		(unsigned long long)st->fetch_bytes);
	fprintf(fp, "tierbd_transfer_bytes_total{dir=\"upload\"} %llu\n",
		(unsigned long long)st->upload_bytes);

	gauge(fp, "tierbd_dirty_bytes",
	      "data in the cache newer than the "
	      "store",
	      st->dirty_bytes);
	gauge(fp, "tierbd_commit_seq", "sequence of the newest commit",
	      st->commit_seq);
	gauge(fp, "tierbd_commit_lag",
	      "chunk versions changed since the "
	      "newest commit",
	      st->commit_lag);
	counter(fp, "tierbd_commits_total", "commits written", st->commits);
	counter(fp, "tierbd_evictions_total", "chunks evicted", st->evictions);
	counter(fp, "tierbd_reclaims_total",
		"misses served from the slot the chunk was evicted from",
		st->reclaims);
	counter(fp, "tierbd_reclaim_fails_total",
		"evicted slots taken back that did not hold the chunk",
		st->reclaim_fails);
	counter(fp, "tierbd_checksum_errors_total",
		"chunks refused for a bad checksum", st->checksum_errors);
	counter(fp, "tierbd_upload_errors_total", "failed uploads (retried)",
		st->upload_errors);
	counter(fp, "tierbd_early_pushes_total",
		"chunks queued for upload at once: a sequential writer "
		"finished them",
		st->early_pushes);
	counter(fp, "tierbd_throttled_writes_total",
		"writes that waited for write-back", st->throttled_writes);
	counter(fp, "tierbd_paced_total",
		"background transfers delayed for the cache's latency",
		st->bg_paced);
	counter(fp, "tierbd_push_yields_total",
		"20 ms waits of uploads held back for a demand fetch",
		st->bg_yields);
	family(fp, "tierbd_paced_seconds_total", "counter",
	       "time background transfers were delayed");
	fprintf(fp, "tierbd_paced_seconds_total %.3f\n",
		(double)st->bg_paced_ms / 1e3);

	family(fp, "tierbd_store_requests_total", "counter",
	       "store requests completed, by operation");
	fprintf(fp, "tierbd_store_requests_total{op=\"get\"} %llu\n",
		(unsigned long long)ss->gets);
	fprintf(fp, "tierbd_store_requests_total{op=\"put\"} %llu\n",
		(unsigned long long)ss->puts);
	fprintf(fp, "tierbd_store_requests_total{op=\"delete\"} %llu\n",
		(unsigned long long)ss->dels);
	fprintf(fp, "tierbd_store_requests_total{op=\"head\"} %llu\n",
		(unsigned long long)ss->heads);
	fprintf(fp, "tierbd_store_requests_total{op=\"list\"} %llu\n",
		(unsigned long long)ss->lists);
	family(fp, "tierbd_store_outcomes_total", "counter",
	       "store request outcomes: retried failures and final errors "
	       "by kind");
	fprintf(fp, "tierbd_store_outcomes_total{outcome=\"retry\"} %llu\n",
		(unsigned long long)ss->retries);
	fprintf(fp, "tierbd_store_outcomes_total{outcome=\"error\"} %llu\n",
		(unsigned long long)ss->errors);
	fprintf(fp, "tierbd_store_outcomes_total{outcome=\"not_found\"} %llu\n",
		(unsigned long long)ss->not_found);
	fprintf(fp, "tierbd_store_outcomes_total{outcome=\"denied\"} %llu\n",
		(unsigned long long)ss->denied);
	fprintf(fp, "tierbd_store_outcomes_total{outcome=\"timeout\"} %llu\n",
		(unsigned long long)ss->timeouts);
	fprintf(fp,
		"tierbd_store_outcomes_total{outcome=\"server_error\"} %llu\n",
		(unsigned long long)ss->server_errors);
	fprintf(fp, "tierbd_store_outcomes_total{outcome=\"net_error\"} %llu\n",
		(unsigned long long)ss->net_errors);
	family(fp, "tierbd_store_bytes_total", "counter",
	       "store payload bytes");
	fprintf(fp, "tierbd_store_bytes_total{dir=\"in\"} %llu\n",
		(unsigned long long)ss->bytes_in);
	fprintf(fp, "tierbd_store_bytes_total{dir=\"out\"} %llu\n",
		(unsigned long long)ss->bytes_out);
	free(st);

	write_probe(fp, probe);
	return ferror(fp) ? -EIO : 0;
}

/* ---- the address ---------------------------------------------------------- */

static int parse_addr(const struct metrics_conf *conf,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	const char *a = conf->addr, *colon, *host_end;
	char host[64];
	char *end;
	unsigned long port;

	if (a[0] == '[') {
		host_end = strchr(a, ']');
		if (!host_end || host_end[1] != ':')
			goto usage;
		colon = host_end + 1;
		a++;
	} else {
		colon = strrchr(a, ':');
		if (!colon)
			goto usage;
		host_end = colon;
	}
	if ((size_t)(host_end - a) >= sizeof(host) || host_end == a)
		goto usage;
	memcpy(host, a, (size_t)(host_end - a));
	host[host_end - a] = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port > 65535)
		goto usage;

	memset(ss, 0, sizeof(*ss));
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	{
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
			if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
				goto not_loopback;
			in->sin_family = AF_INET;
			in->sin_port = htons((uint16_t)port);
			*len = sizeof(*in);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
			if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
				goto not_loopback;
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*in6);
			return 0;
		}
	}
not_loopback:
	tlog(&conf->log, LOG_ERROR,
	     "metrics=%s: only a loopback address may serve metrics "
	     "(127.0.0.1:PORT or [::1]:PORT): the endpoint has no "
	     "authentication; scrape it locally or put a proxy in front",
	     conf->addr);
	return -EINVAL;
usage:
	tlog(&conf->log, LOG_ERROR,
	     "metrics=%s: write it as 127.0.0.1:PORT or [::1]:PORT "
	     "(PORT 0..65535; 0 picks a free one)",
	     conf->addr);
	return -EINVAL;
}

/* ---- serving -------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void respond(int fd, const char *status, const char *type,
		    const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, type, len);

	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void serve_one(struct metrics *m, int fd)
{
	char req[HEAD_MAX + 1];
	size_t have = 0;
	uint64_t deadline = mono_ms() + READ_DEADLINE_MS;
	char *sp, *path, *body = NULL;
	size_t blen = 0;
	FILE *fp;

	/* Read the head: up to the blank line. */
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;

		req[have] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
		if (have == HEAD_MAX) {
			static const char msg[] = "request head too large\n";
			respond(fd, "431 Request Header Fields Too Large",
				"text/plain", msg, sizeof(msg) - 1);
			return;
		}
		if (now >= deadline ||
		    poll(&pfd, 1, (int)(deadline - now)) <= 0)
			return;
		n = recv(fd, req + have, HEAD_MAX - have, 0);
		if (n <= 0)
			return;
		have += (size_t)n;
	}
	sp = strchr(req, ' ');
	if (!sp || (size_t)(sp - req) != 3 || memcmp(req, "GET", 3) != 0) {
		static const char msg[] = "only GET\n";
		respond(fd, "405 Method Not Allowed", "text/plain", msg,
			sizeof(msg) - 1);
		return;
	}
	path = sp + 1;
	sp = strpbrk(path, " \r\n");
	if (sp)
		*sp = 0;
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0) {
		static const char msg[] = "not found: try /metrics\n";
		respond(fd, "404 Not Found", "text/plain", msg,
			sizeof(msg) - 1);
		return;
	}
	fp = open_memstream(&body, &blen);
	if (!fp) {
		static const char msg[] = "out of memory\n";
		respond(fd, "500 Internal Server Error", "text/plain", msg,
			sizeof(msg) - 1);
		return;
	}
	metrics_write(fp, m->conf.dev, m->conf.probe);
	fclose(fp);
	respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body,
		blen);
	free(body);
}

static void *metrics_thread(void *arg)
{
	struct metrics *m = arg;
	const struct timeval send_timeout = { .tv_sec = 5 };

	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
		struct pollfd pfd[2] = { { .fd = m->lfd, .events = POLLIN },
					 { .fd = m->stop_pipe[0],
					   .events = POLLIN } };
		int fd, r = poll(pfd, 2, -1);

		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0 || pfd[1].revents)
			continue;
		fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* A scraper that stops reading does not hold the thread. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
			   sizeof(send_timeout));
		serve_one(m, fd);
		close(fd);
	}
	return NULL;
}

struct metrics *metrics_open(const struct metrics_conf *conf)
{
	struct metrics *m = calloc(1, sizeof(*m));
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, r;

	if (!m)
		return NULL;
	m->conf = *conf;
	m->lfd = m->stop_pipe[0] = m->stop_pipe[1] = -1;
	r = parse_addr(conf, &ss, &len);
	if (r < 0)
		goto fail;
	if (pipe2(m->stop_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	m->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->lfd < 0 ||
	    setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) <
		    0 ||
	    bind(m->lfd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(m->lfd, 8) < 0 ||
	    getsockname(m->lfd, (struct sockaddr *)&ss, &len) < 0) {
		r = -errno;
		tlog(&conf->log, LOG_ERROR, "metrics=%s: %s", conf->addr,
		     strerror(-r));
		goto fail;
	}
	{
		char host[INET6_ADDRSTRLEN];

		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			snprintf(m->addr, sizeof(m->addr), "%s:%u", host,
				 ntohs(in->sin_port));
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, host,
				  sizeof(host));
			snprintf(m->addr, sizeof(m->addr), "[%s]:%u", host,
				 ntohs(in6->sin6_port));
		}
	}
	m->conf.addr = m->addr;
	return m;
fail:
	metrics_close(m);
	errno = -r;
	return NULL;
}

int metrics_start(struct metrics *m)
{
	int r = pthread_create(&m->thread, NULL, metrics_thread, m);

	if (r) {
		tlog(&m->conf.log, LOG_ERROR,
		     "cannot start the metrics thread: %s", strerror(r));
		return -r;
	}
	m->started = true;
	return 0;
}

const char *metrics_addr(const struct metrics *m)
{
	return m->addr;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	__atomic_store_n(&m->stop, true, __ATOMIC_RELAXED);
	if (m->stop_pipe[1] >= 0 && write(m->stop_pipe[1], "x", 1) < 0) {
		/* the thread also checks `stop` after any wakeup */
	}
	if (m->started)
		pthread_join(m->thread, NULL);
	if (m->lfd >= 0)
		close(m->lfd);
	for (int i = 0; i < 2; i++)
		if (m->stop_pipe[i] >= 0)
			close(m->stop_pipe[i]);
	free(m);
}
