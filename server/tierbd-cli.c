/* tierbd-cli.c - the `tierbd` command: talk to a running device.
 *
 *   tierbd [-C CACHE_DIR | -s SOCKET] COMMAND [ARGS]
 *
 * It connects to the device's control socket (CACHE_DIR/control unless
 * the plugin was given control=PATH), sends one request of the control
 * protocol (proto/control.h) and shows the reply: as a table, or as
 * the reply's JSON line with --json.  Long work (drain) shows progress
 * as the server reports it; `top` asks for stats every few seconds and
 * shows rates.  Exit status: 0 done, 1 the server said no (or could not
 * be reached), 2 usage.
 *
 * Only the protocol is shared with the engine: this program links
 * proto/ alone and never opens the device itself.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../proto/control.h"
#include "lathist.h"

#define PROBE_DIRS 3
static const char *const dirs[PROBE_DIRS] = { "read", "write", "other" };

static const char *prog = "tierbd";
static bool json;

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: %s [-C CACHE_DIR | -s SOCKET] COMMAND [ARGS]\n"
		"\n"
		"Talk to a running tierbd device through its control socket\n"
		"(CACHE_DIR/control, or the plugin's control=PATH).\n"
		"\n"
		"commands:\n"
		"  status [--json]            queues, dirty data, commit, "
		"probe\n"
		"  stats [--json]             every counter and latency\n"
		"  top [-d SEC] [-n COUNT]    rates, refreshed every SEC "
		"(default 1)\n"
		"  flush                      make every write so far "
		"durable\n"
		"  drain [--json]             push all dirty data to the "
		"store and\n"
		"                             commit, showing progress\n"
		"  pin START-END              keep [START, END) in the cache\n"
		"  unpin START-END            undo pin (sizes: 4096, 64M, "
		"1G)\n"
		"  ping                       check the connection\n"
		"\n"
		"options:\n"
		"  -C, --cache=DIR     the device's cache directory\n"
		"  -s, --socket=PATH   its control socket\n"
		"  -j, --json          print replies as JSON lines\n"
		"  -h, --help          this text\n"
		"\n"
		"Without -C or -s, $TIERBD_CONTROL names the socket.\n",
		prog);
}

static void die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* ---- formatting ------------------------------------------------------------ */

static const char *bytes(char *buf, size_t n, uint64_t v)
{
	static const char *const u[] = {
		"B", "KiB", "MiB", "GiB", "TiB", "PiB"
	};
	double d = (double)v;
	int i = 0;

	while (d >= 1024 && i < 5) {
		d /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, n, "%.1f %s", d, u[i]);
	return buf;
}

static const char *dur(char *buf, size_t n, uint64_t ns)
{
	if (ns == 0)
		snprintf(buf, n, "-");
	else if (ns < 10000)
		snprintf(buf, n, "%llu ns", (unsigned long long)ns);
	else if (ns < 10000000)
		snprintf(buf, n, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, n, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, n, "%.1f s", (double)ns / 1e9);
	return buf;
}

/* A lookup path built like snprintf (cut short rather than overflow). */
static const char *pf(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static const char *pf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return buf;
}

#define B(v) bytes((char[24]){ 0 }, 24, (v))
#define D(v) dur((char[24]){ 0 }, 24, (v))

/* ---- the connection --------------------------------------------------------- */

struct conn {
	int fd;
	char *buf;
	size_t have, cap;
};

static void conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	if (strlen(path) >= sizeof(sa.sun_path))
		die(1, "%s: path too long for a unix socket", path);
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die(1, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(1,
		    "cannot connect to %s: %s (is nbdkit serving the "
		    "device? control= may name another path)",
		    path, strerror(errno));
}

static void conn_send(struct conn *c, const struct ctl_req *req)
{
	char line[CTL_REQ_MAX + 2];
	int n = ctl_req_encode(req, line, sizeof(line) - 1);

	if (n < 0)
		die(2, "cannot encode the request: %s", strerror(-n));
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = send(c->fd, line + off, (size_t)(n - off),
				 MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die(1, "sending the request: %s", strerror(errno));
		off += (int)w;
	}
}

/* The next reply line, decoded into m; raw (NUL-terminated) for --json
 * stays valid until the next call. */
static void conn_recv(struct conn *c, struct ctl_msg *m, const char **raw)
{
	char err[256];
	char *nl;
	int r;

	for (;;) {
		nl = c->have ? memchr(c->buf, '\n', c->have) : NULL;
		if (nl)
			break;
		if (c->have == c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 65536;

			if (cap > CTL_REPLY_MAX + 2)
				die(1, "reply longer than the protocol allows");
			c->buf = realloc(c->buf, cap);
			if (!c->buf)
				die(1, "out of memory");
			c->cap = cap;
		}
		ssize_t n = recv(c->fd, c->buf + c->have, c->cap - c->have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(1, "reading the reply: %s", strerror(errno));
		if (n == 0)
			die(1, "the server closed the connection without a "
			       "reply");
		c->have += (size_t)n;
	}
	/* Move the line out, keep what follows. */
	{
		size_t len = (size_t)(nl - c->buf);
		static char *line;

		free(line);
		line = malloc(len + 1);
		if (!line)
			die(1, "out of memory");
		memcpy(line, c->buf, len);
		line[len] = 0;
		memmove(c->buf, nl + 1, c->have - len - 1);
		c->have -= len + 1;
		r = ctl_reply_decode(line, len, m, err, sizeof(err));
		if (r < 0)
			die(1, "malformed reply from the server: %s", err);
		*raw = line;
	}
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
}

/* Exit 1 with the server's message if m is an error reply. */
static void check_ok(const struct ctl_msg *m, const char *what)
{
	if (ctl_msg_bool(m, "ok", false))
		return;
	die(1, "%s: %s (%s)", what, ctl_msg_str(m, "error", "failed"),
	    ctl_msg_str(m, "errno", "?"));
}

/* One request, one final reply. */
static void call(const char *sock, enum ctl_verb verb, struct ctl_msg *m,
		 const char **raw)
{
	struct conn c;
	struct ctl_req req = { .version = CTL_VERSION, .verb = verb };
	struct timeval tv = { .tv_sec = 60 };

	conn_open(&c, sock);
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	conn_send(&c, &req);
	conn_recv(&c, m, raw);
	conn_close(&c);
}

/* ---- status and stats --------------------------------------------------------- */

#define U(path) ctl_msg_u64(m, path, 0)

static void print_probe_table(const struct ctl_msg *m)
{
	size_t n = ctl_msg_len(m, "probe.devices");

	if (!n)
		return;
	printf("  %-14s %-6s %-6s %12s %12s %10s %10s %10s %6s\n", "device",
	       "role", "op", "requests", "bytes", "p50", "p90", "p99", "infl");
	for (size_t i = 0; i < n; i++) {
		char name[48];

#define DP(s) pf((char[96]){ 0 }, 96, "probe.devices.%zu.%s", i, s)
		pf(name, sizeof(name), "%s %s", ctl_msg_str(m, DP("name"), "?"),
		   ctl_msg_str(m, DP("dev"), ""));
		for (int d = 0; d < PROBE_DIRS; d++) {
#define DK(s) DP(pf((char[64]){ 0 }, 64, "%s.%s", dirs[d], s))
			if (d == 2 && !ctl_msg_u64(m, DK("ops"), 0))
				continue;
			char infl[24] = "";

			if (d == 0)
				pf(infl, sizeof(infl), "%.0f",
				   ctl_msg_num(m, DP("inflight"), 0));
			printf("  %-14s %-6s %-6s %12llu %12s %10s %10s %10s "
			       "%6s\n",
			       d == 0 ? name : "",
			       d == 0 ? ctl_msg_str(m, DP("role"), "") : "",
			       dirs[d],
			       (unsigned long long)ctl_msg_u64(m, DK("ops"), 0),
			       B(ctl_msg_u64(m, DK("bytes"), 0)),
			       D(ctl_msg_u64(m, DK("latency.p50_ns"), 0)),
			       D(ctl_msg_u64(m, DK("latency.p90_ns"), 0)),
			       D(ctl_msg_u64(m, DK("latency.p99_ns"), 0)),
			       infl);
#undef DK
		}
#undef DP
	}
}

static void print_common(const struct ctl_msg *m)
{
	printf("%-9s %s  size %s  chunk %s  slots %llu (%llu free)\n", "device",
	       ctl_msg_str(m, "device.cache_dir", "?"), B(U("device.size")),
	       B(U("device.chunk_size")), (unsigned long long)U("device.slots"),
	       (unsigned long long)U("device.slots_free"));
	printf("%-9s push %llu  pull %llu  delete %llu\n", "queues",
	       (unsigned long long)U("queues.push"),
	       (unsigned long long)U("queues.pull"),
	       (unsigned long long)U("queues.delete"));
	printf("%-9s %s in %llu chunks\n", "dirty", B(U("dirty.bytes")),
	       (unsigned long long)U("dirty.chunks"));
	printf("%-9s seq %llu  lag %llu  commits %llu  gc deletes %llu\n",
	       "commit", (unsigned long long)U("commit.seq"),
	       (unsigned long long)U("commit.lag"),
	       (unsigned long long)U("commit.commits"),
	       (unsigned long long)U("commit.gc_deletes"));
	printf("%-9s %s, mode %s\n", "probe",
	       ctl_msg_str(m, "probe.state", "?"),
	       ctl_msg_str(m, "probe.mode", "?"));
	if (ctl_msg_bool(m, "probe.loaded", false)) {
		uint64_t lim = U("probe.latency_limit_us");

		printf("%-9s cache p99 %s over the last window, limit %s: "
		       "%s; %llu pauses (%llu ms)\n",
		       "pacing", D(U("probe.cache_p99_ns")),
		       lim ? D(lim * 1000) : "off",
		       ctl_msg_bool(m, "probe.overloaded", false)
			       ? "OVERLOADED, background work slowed"
			       : "ok",
		       (unsigned long long)U("pacing.paced"),
		       (unsigned long long)U("pacing.paced_ms"));
	}
	if (ctl_msg_str(m, "metrics", NULL))
		printf("%-9s http://%s/metrics\n", "metrics",
		       ctl_msg_str(m, "metrics", ""));
}

static void print_latency(const struct ctl_msg *m, const char *prefix)
{

#define LP(s) pf((char[64]){ 0 }, 64, "%s.latency.%s", prefix, s)
	printf("%-9s latency p50 %s  p90 %s  p99 %s  (%llu timed)\n", "",
	       D(ctl_msg_u64(m, LP("p50_ns"), 0)),
	       D(ctl_msg_u64(m, LP("p90_ns"), 0)),
	       D(ctl_msg_u64(m, LP("p99_ns"), 0)),
	       (unsigned long long)ctl_msg_u64(m, LP("count"), 0));
#undef LP
}

static void print_stats(const struct ctl_msg *m)
{
	print_common(m);
	printf("%-9s absent %llu  cold %llu  hot clean %llu  hot dirty %llu  "
	       "pinned %llu\n",
	       "chunks", (unsigned long long)U("chunks.absent"),
	       (unsigned long long)U("chunks.cold"),
	       (unsigned long long)U("chunks.hot_clean"),
	       (unsigned long long)U("chunks.hot_dirty"),
	       (unsigned long long)U("chunks.pinned"));
	printf("%-9s reads %llu (%s)  writes %llu (%s)  flushes %llu  "
	       "throttled %llu\n",
	       "io", (unsigned long long)U("io.reads"), B(U("io.read_bytes")),
	       (unsigned long long)U("io.writes"), B(U("io.write_bytes")),
	       (unsigned long long)U("io.flushes"),
	       (unsigned long long)U("io.throttled_writes"));
	printf("%-9s hits %llu  misses %llu  hit ratio %.1f%%  evictions %llu"
	       "  bounces %llu\n",
	       "cache", (unsigned long long)U("cache.hits"),
	       (unsigned long long)U("cache.misses"),
	       100 * ctl_msg_num(m, "cache.hit_ratio", 0),
	       (unsigned long long)U("cache.evictions"),
	       (unsigned long long)U("cache.bounces"));
	print_latency(m, "cache");
	printf("%-9s fetches %llu (%s)  prefetches %llu  uploads %llu (%s)  "
	       "upload errors %llu\n",
	       "store", (unsigned long long)U("store.fetches"),
	       B(U("store.fetch_bytes")),
	       (unsigned long long)U("store.prefetches"),
	       (unsigned long long)U("store.uploads"),
	       B(U("store.upload_bytes")),
	       (unsigned long long)U("store.upload_errors"));
	print_latency(m, "store");
	printf("%-9s requests get %llu  put %llu  delete %llu  head %llu  "
	       "list %llu;  retries %llu  errors %llu\n",
	       "", (unsigned long long)U("store.requests.gets"),
	       (unsigned long long)U("store.requests.puts"),
	       (unsigned long long)U("store.requests.dels"),
	       (unsigned long long)U("store.requests.heads"),
	       (unsigned long long)U("store.requests.lists"),
	       (unsigned long long)U("store.requests.retries"),
	       (unsigned long long)U("store.requests.errors"));
	printf("%-9s checksum %llu  verify refetches %llu\n", "errors",
	       (unsigned long long)U("errors.checksum"),
	       (unsigned long long)U("errors.verify_refetches"));
	print_probe_table(m);
}

static int cmd_show(const char *sock, enum ctl_verb verb)
{
	struct ctl_msg m;
	const char *raw;

	call(sock, verb, &m, &raw);
	if (json) {
		int ok = ctl_msg_bool(&m, "ok", false);

		puts(raw);
		ctl_msg_free(&m);
		return ok ? 0 : 1;
	}
	check_ok(&m, ctl_verb_name(verb));
	if (verb == CTL_STATS) {
		print_stats(&m);
	} else {
		print_common(&m);
		print_probe_table(&m);
	}
	ctl_msg_free(&m);
	return 0;
}

/* ---- top ------------------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double secs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate(const struct ctl_msg *a, const struct ctl_msg *b,
		   const char *path, double dt)
{
	double d = (double)ctl_msg_u64(b, path, 0) -
		   (double)ctl_msg_u64(a, path, 0);

	return dt > 0 && d > 0 ? d / dt : 0;
}

/* p99 of the difference of two histograms at path. */
static uint64_t window_p99(const struct ctl_msg *a, const struct ctl_msg *b,
			   const char *path)
{
	uint64_t ha[LAT_SLOTS] = { 0 }, hb[LAT_SLOTS] = { 0 };
	size_t n = ctl_msg_u64s(b, path, hb, LAT_SLOTS);

	ctl_msg_u64s(a, path, ha, LAT_SLOTS);
	for (size_t i = 0; i < n; i++)
		hb[i] = hb[i] >= ha[i] ? hb[i] - ha[i] : 0;
	return lat_quantile(hb, (unsigned)n, 0.99);
}

static void top_frame(const struct ctl_msg *a, const struct ctl_msg *b,
		      double dt, bool tty)
{
	const struct ctl_msg *m = b;
	double hits = rate(a, b, "cache.hits", dt),
	       misses = rate(a, b, "cache.misses", dt);
	time_t now = time(NULL);
	char when[32];
	size_t nd = ctl_msg_len(b, "probe.devices");

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("tierbd top  %s  %s  every %.1f s\n\n",
	       ctl_msg_str(b, "device.cache_dir", "?"), when, dt);
	printf("%-9s %9.0f reads/s  %10s/s   %9.0f writes/s  %10s/s\n",
	       "client", rate(a, b, "io.reads", dt),
	       B((uint64_t)rate(a, b, "io.read_bytes", dt)),
	       rate(a, b, "io.writes", dt),
	       B((uint64_t)rate(a, b, "io.write_bytes", dt)));
	printf("%-9s %9.0f hits/s   %9.0f misses/s   hit ratio %5.1f%%   "
	       "p99 %s\n",
	       "cache", hits, misses,
	       hits + misses > 0 ? 100 * hits / (hits + misses) : 0.0,
	       D(window_p99(a, b, "cache.latency.hist")));
	printf("%-9s %9.0f fetch/s  %10s/s   %9.0f upload/s  %10s/s   p99 "
	       "%s\n",
	       "store", rate(a, b, "store.fetches", dt),
	       B((uint64_t)rate(a, b, "store.fetch_bytes", dt)),
	       rate(a, b, "store.uploads", dt),
	       B((uint64_t)rate(a, b, "store.upload_bytes", dt)),
	       D(window_p99(a, b, "store.latency.hist")));
	printf("%-9s push %llu  pull %llu  delete %llu    dirty %s    "
	       "commit lag %llu (seq %llu)\n",
	       "queues", (unsigned long long)U("queues.push"),
	       (unsigned long long)U("queues.pull"),
	       (unsigned long long)U("queues.delete"), B(U("dirty.bytes")),
	       (unsigned long long)U("commit.lag"),
	       (unsigned long long)U("commit.seq"));
	printf("%-9s %s%s\n", "probe", ctl_msg_str(b, "probe.state", "?"),
	       ctl_msg_bool(b, "probe.overloaded", false)
		       ? "  CACHE OVERLOADED: background work slowed"
		       : "");
	if (nd) {
		printf("\n  %-14s %-6s %9s %12s %9s %12s %10s %5s\n", "device",
		       "role", "reads/s", "read/s", "writes/s", "write/s",
		       "p99", "infl");
		for (size_t i = 0; i < nd; i++) {
			char name[48], rb[24], wb[24];
			uint64_t w0, w1;

#define DP(s) pf((char[96]){ 0 }, 96, "probe.devices.%zu.%s", i, s)
			pf(name, sizeof(name), "%s %s",
			   ctl_msg_str(b, DP("name"), "?"),
			   ctl_msg_str(b, DP("dev"), ""));
			w0 = window_p99(a, b, DP("read.latency.hist"));
			w1 = window_p99(a, b, DP("write.latency.hist"));
			bytes(rb, sizeof(rb),
			      (uint64_t)rate(a, b, DP("read.bytes"), dt));
			bytes(wb, sizeof(wb),
			      (uint64_t)rate(a, b, DP("write.bytes"), dt));
			printf("  %-14s %-6s %9.0f %10s/s %9.0f %10s/s %10s "
			       "%5.0f\n",
			       name, ctl_msg_str(b, DP("role"), ""),
			       rate(a, b, DP("read.ops"), dt), rb,
			       rate(a, b, DP("write.ops"), dt), wb,
			       D(w0 > w1 ? w0 : w1),
			       ctl_msg_num(b, DP("inflight"), 0));
#undef DP
		}
	}
	fflush(stdout);
}

static int cmd_top(const char *sock, double interval, long count)
{
	struct ctl_msg prev, cur;
	const char *raw;
	double t0, t1;
	bool tty = isatty(STDOUT_FILENO);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	call(sock, CTL_STATS, &prev, &raw);
	check_ok(&prev, "stats");
	t0 = secs_now();
	for (long i = 0; (count <= 0 || i < count) && !interrupted; i++) {
		struct timespec ts = {
			.tv_sec = (time_t)interval,
			.tv_nsec =
				(long)((interval - (double)(time_t)interval) *
				       1e9)
		};

		while (nanosleep(&ts, &ts) < 0 && !interrupted)
			;
		if (interrupted)
			break;
		call(sock, CTL_STATS, &cur, &raw);
		check_ok(&cur, "stats");
		t1 = secs_now();
		if (json)
			puts(raw);
		else
			top_frame(&prev, &cur, t1 - t0, tty);
		if (!tty && !json)
			putchar('\n');
		ctl_msg_free(&prev);
		prev = cur;
		t0 = t1;
	}
	ctl_msg_free(&prev);
	return 0;
}

/* ---- flush, drain, pin ---------------------------------------------------------- */

static int cmd_flush(const char *sock)
{
	struct ctl_msg m;
	const char *raw;

	call(sock, CTL_FLUSH, &m, &raw);
	if (json) {
		int ok = ctl_msg_bool(&m, "ok", false);

		puts(raw);
		ctl_msg_free(&m);
		return ok ? 0 : 1;
	}
	check_ok(&m, "flush");
	printf("flushed in %llu ms\n",
	       (unsigned long long)ctl_msg_u64(&m, "elapsed_ms", 0));
	ctl_msg_free(&m);
	return 0;
}

static int cmd_drain(const char *sock)
{
	struct conn c;
	struct ctl_req req = { .version = CTL_VERSION, .verb = CTL_DRAIN };
	struct ctl_msg m;
	const char *raw;
	bool tty = isatty(STDOUT_FILENO), shown = false;
	uint64_t first = UINT64_MAX;

	conn_open(&c, sock);
	conn_send(&c, &req);
	for (;;) {
		conn_recv(&c, &m, &raw);
		if (json) {
			puts(raw);
			fflush(stdout);
		}
		if (!ctl_msg_str(&m, "progress", NULL))
			break;
		if (!json) {
			uint64_t d = ctl_msg_u64(&m, "dirty_bytes", 0);

			if (first == UINT64_MAX)
				first = d;
			printf("%sdrain: %s dirty (%llu chunks, %llu queued), "
			       "commit lag %llu, %.1f s%s",
			       tty ? "\r\033[K" : "", B(d),
			       (unsigned long long)ctl_msg_u64(
				       &m, "dirty_chunks", 0),
			       (unsigned long long)ctl_msg_u64(&m, "push_queue",
							       0),
			       (unsigned long long)ctl_msg_u64(&m, "commit_lag",
							       0),
			       (double)ctl_msg_u64(&m, "elapsed_ms", 0) / 1e3,
			       tty ? "" : "\n");
			fflush(stdout);
			shown = true;
		}
		ctl_msg_free(&m);
	}
	conn_close(&c);
	if (json) {
		int ok = ctl_msg_bool(&m, "ok", false);

		ctl_msg_free(&m);
		return ok ? 0 : 1;
	}
	if (shown && tty)
		putchar('\n');
	check_ok(&m, "drain");
	printf("drained %s in %.1f s; the store holds everything (commit "
	       "%llu)\n",
	       B(ctl_msg_u64(&m, "drained_bytes", 0)),
	       (double)ctl_msg_u64(&m, "elapsed_ms", 0) / 1e3,
	       (unsigned long long)ctl_msg_u64(&m, "commit_seq", 0));
	ctl_msg_free(&m);
	return 0;
}

/* "4096", "64M", "1G" (binary suffixes K M G T P). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 0:
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case 'p':
	case 'P':
		shift = 50;
		break;
	default:
		return -1;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") != 0 &&
	    strcmp(end + 1, "B") != 0)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int cmd_pin(const char *sock, enum ctl_verb verb, const char *range)
{
	struct ctl_req req = { .version = CTL_VERSION, .verb = verb };
	struct ctl_msg m;
	const char *raw;
	char *copy = strdup(range), *dash;
	struct conn c;

	if (!copy)
		die(1, "out of memory");
	dash = strchr(copy, '-');
	if (!dash)
		die(2,
		    "%s: write the range as START-END (END excluded), "
		    "e.g. 0-64M",
		    range);
	*dash = 0;
	if (parse_size(copy, &req.start) < 0 ||
	    parse_size(dash + 1, &req.end) < 0 || req.start >= req.end)
		die(2,
		    "%s: START and END are byte offsets (suffixes K, M, G, "
		    "T), START < END",
		    range);
	free(copy);
	conn_open(&c, sock);
	conn_send(&c, &req);
	conn_recv(&c, &m, &raw);
	conn_close(&c);
	if (json) {
		int ok = ctl_msg_bool(&m, "ok", false);

		puts(raw);
		ctl_msg_free(&m);
		return ok ? 0 : 1;
	}
	check_ok(&m, ctl_verb_name(verb));
	printf("%s %s-%s\n", verb == CTL_PIN ? "pinned" : "unpinned",
	       B(req.start), B(req.end));
	ctl_msg_free(&m);
	return 0;
}

static int cmd_ping(const char *sock)
{
	struct ctl_msg m;
	const char *raw;

	call(sock, CTL_PING, &m, &raw);
	if (json) {
		int ok = ctl_msg_bool(&m, "ok", false);

		puts(raw);
		ctl_msg_free(&m);
		return ok ? 0 : 1;
	}
	check_ok(&m, "ping");
	printf("tierbd %s serving %s (%s), protocol tierbd/%llu\n",
	       ctl_msg_str(&m, "version", "?"),
	       ctl_msg_str(&m, "cache_dir", "?"), B(ctl_msg_u64(&m, "size", 0)),
	       (unsigned long long)ctl_msg_u64(&m, "protocol", 0));
	ctl_msg_free(&m);
	return 0;
}

/* ---- main ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'C' },
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "delay", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *sock = NULL;
	const char *cmd;
	double interval = 1;
	long count = 0;
	int c, r;

	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	/* Options anywhere: "tierbd stats --json" as well as "-j stats". */
	while ((c = getopt_long(argc, argv, "C:s:jd:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			free(sock);
			if (asprintf(&sock, "%s/control", optarg) < 0)
				die(1, "out of memory");
			break;
		case 's':
			free(sock);
			sock = strdup(optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'd':
			interval = strtod(optarg, NULL);
			if (!(interval >= 0.1 && interval <= 3600))
				die(2, "-d %s: seconds from 0.1 to 3600",
				    optarg);
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			if (count < 1)
				die(2, "-n %s: a count of at least 1", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!sock && getenv("TIERBD_CONTROL"))
		sock = strdup(getenv("TIERBD_CONTROL"));
	if (!sock)
		die(2,
		    "which device? give -C CACHE_DIR, -s SOCKET or "
		    "$TIERBD_CONTROL (see %s --help)",
		    prog);

	if (strcmp(cmd, "pin") == 0 || strcmp(cmd, "unpin") == 0) {
		if (optind != argc - 1)
			die(2, "usage: %s %s START-END", prog, cmd);
		r = cmd_pin(sock, cmd[0] == 'p' ? CTL_PIN : CTL_UNPIN,
			    argv[optind]);
	} else if (optind != argc) {
		die(2, "%s takes no argument '%s' (see %s --help)", cmd,
		    argv[optind], prog);
	} else if (strcmp(cmd, "stats") == 0) {
		r = cmd_show(sock, CTL_STATS);
	} else if (strcmp(cmd, "status") == 0) {
		r = cmd_show(sock, CTL_STATUS);
	} else if (strcmp(cmd, "top") == 0) {
		r = cmd_top(sock, interval, count);
	} else if (strcmp(cmd, "flush") == 0) {
		r = cmd_flush(sock);
	} else if (strcmp(cmd, "drain") == 0) {
		r = cmd_drain(sock);
	} else if (strcmp(cmd, "ping") == 0) {
		r = cmd_ping(sock);
	} else {
		die(2, "unknown command '%s' (see %s --help)", cmd, prog);
	}
	free(sock);
	return r;
}
