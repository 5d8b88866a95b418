/* probe.c - load the kernel I/O probe, read it, pace background work.
 *
 * Loading (probe_open):
 *   1. find the devices to watch: the cache file's st_dev mapped to the
 *      disks the block layer names in its tracepoints (whole disks: a
 *      partition's parent; device-mapper and md: the disks under them,
 *      from /sys/dev/block/M:m/slaves), then each probe-dev=;
 *   2. from the kernel's BTF: does block_rq_issue still pass the
 *      request_queue (< 5.11)?
 *   3. open the skeleton, set the knobs (rodata: devices, layout), load
 *      with the tp_btf programs; if that fails, again with raw_tp;
 *   4. attach.
 * Any failure leaves an unloaded probe with the reason in its state
 * (probe=auto), or fails the open (probe=on).  libbpf's own messages go
 * to the debug log; the last warning is kept for the reason.
 *
 * RLIMIT_MEMLOCK: libbpf >= 1.0 raises it only on kernels that do not
 * charge BPF memory to the memory cgroup (< 5.11); we never call
 * setrlimit, so a process that may not raise it loads all the same.
 *
 * Reading: the per-device counters are in the program's .bss, which the
 * skeleton maps into this process; probe_read copies them with relaxed
 * 64-bit loads (a racy snapshot; counters only grow).
 *
 * Pacing (probe_pace_ms, dev_bg_pace): every PACE_WINDOW_MS at most, the
 * first caller takes the difference of the cache devices' latency
 * histograms (reads and writes) since the previous evaluation and its
 * p99.  Above the limit, background transfers sleep 20 ms per multiple
 * of the limit, at most 200 ms, before each transfer.  Idle windows
 * (fewer than PACE_MIN_OPS requests) never count as overloaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "device_priv.h"
#include "probe.h"

#ifdef TIERBD_HAVE_PROBE
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "../bpf/bioprobe.h"
#include "bioprobe.skel.h"

_Static_assert(BIOPROBE_SLOTS == PROBE_SLOTS, "slots differ");
_Static_assert(BIOPROBE_DEPTH_SLOTS == PROBE_DEPTH_SLOTS, "slots differ");
_Static_assert(BIOPROBE_MAX_DEVS == PROBE_MAX_DEVS, "max devices differ");
_Static_assert(BIOPROBE_NDIR == PROBE_NDIR, "directions differ");
#endif

#ifndef TIERBD_PROBE_NOTE
#define TIERBD_PROBE_NOTE "disabled at build time"
#endif

#define PACE_WINDOW_MS 250
#define PACE_MIN_OPS 16
#define PACE_MS_PER_LIMIT 20
#define PACE_MAX_MS 200

struct probe_dev {
	char name[32];
	uint32_t major, minor; /* the whole disk, as the block layer says */
	bool cache;
};

struct probe {
	struct logger log;
	int mode;
	bool loaded;
	char state[320];
	unsigned ndevs;
	struct probe_dev devs[PROBE_MAX_DEVS];
	unsigned limit_us;
#ifdef TIERBD_HAVE_PROBE
	struct bioprobe *skel;
#endif

	pthread_mutex_t pace_lock; /* the pace_* fields below */
	uint64_t pace_eval_ms;
	uint64_t pace_prev[PROBE_SLOTS];
	uint64_t pace_p99_ns; /* atomic: last window's p99 */
	uint64_t pace_ops;    /* atomic: requests in it */
	bool pace_overloaded; /* atomic */
};

int probe_parse_mode(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return DEVICE_PROBE_AUTO;
	if (strcmp(s, "on") == 0)
		return DEVICE_PROBE_ON;
	if (strcmp(s, "off") == 0)
		return DEVICE_PROBE_OFF;
	return -1;
}

const char *probe_mode_name(const struct probe *p)
{
	if (!p)
		return "off";
	return p->mode == DEVICE_PROBE_ON    ? "on"
	       : p->mode == DEVICE_PROBE_OFF ? "off"
					     : "auto";
}

/* snprintf for messages that may be cut short. */
static void say(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

/* ---- which disks ------------------------------------------------------ */

static int read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -errno;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		buf[--r] = 0;
	return 0;
}

static int add_dev(struct probe *p, uint32_t ma, uint32_t mi, const char *name,
		   bool cache, char *err, size_t errlen)
{
	for (unsigned i = 0; i < p->ndevs; i++) {
		if (p->devs[i].major == ma && p->devs[i].minor == mi) {
			p->devs[i].cache |= cache;
			return 0;
		}
	}
	if (p->ndevs == PROBE_MAX_DEVS) {
		say(err, errlen,
		    "more than %d devices to watch; name fewer in "
		    "probe-dev=",
		    PROBE_MAX_DEVS);
		return -E2BIG;
	}
	p->devs[p->ndevs] =
		(struct probe_dev){ .major = ma, .minor = mi, .cache = cache };
	say(p->devs[p->ndevs].name, sizeof(p->devs[0].name), "%s", name);
	p->ndevs++;
	return 0;
}

/* Add the disks under block device ma:mi, as the block layer's request
 * tracepoints name them (disk_devt of the request's gendisk). */
static int add_disks(struct probe *p, uint32_t ma, uint32_t mi, bool cache,
		     int depth, char *err, size_t errlen)
{
	char sys[PATH_MAX], path[PATH_MAX + 32], real[PATH_MAX], buf[64];
	const char *name;
	DIR *dir;
	struct dirent *de;
	unsigned nslaves = 0;
	int r = 0;

	if (depth > 8) {
		say(err, errlen,
		    "block device %u:%u: slaves nest too "
		    "deep",
		    ma, mi);
		return -ELOOP;
	}
	say(sys, sizeof(sys), "/sys/dev/block/%u:%u", ma, mi);
	if (!realpath(sys, real)) {
		say(err, errlen, "no %s (%s)", sys, strerror(errno));
		return -ENODEV;
	}
	/* device-mapper, md: the requests go to the disks below. */
	say(path, sizeof(path), "%s/slaves", real);
	dir = opendir(path);
	if (dir) {
		while ((de = readdir(dir)) != NULL && r == 0) {
			unsigned sma, smi;

			if (de->d_name[0] == '.')
				continue;
			say(path, sizeof(path), "%s/slaves/%s/dev", real,
			    de->d_name);
			if (read_small(path, buf, sizeof(buf)) < 0 ||
			    sscanf(buf, "%u:%u", &sma, &smi) != 2)
				continue;
			nslaves++;
			r = add_disks(p, sma, smi, cache, depth + 1, err,
				      errlen);
		}
		closedir(dir);
		if (r < 0 || nslaves)
			return r;
	}
	/* A partition: its disk is the parent directory. */
	say(path, sizeof(path), "%s/partition", real);
	if (access(path, F_OK) == 0) {
		char *slash = strrchr(real, '/');

		if (!slash) {
			say(err, errlen, "%s: no parent disk", sys);
			return -ENODEV;
		}
		*slash = 0;
		say(path, sizeof(path), "%s/dev", real);
		if (read_small(path, buf, sizeof(buf)) < 0 ||
		    sscanf(buf, "%u:%u", &ma, &mi) != 2) {
			say(err, errlen, "%s: cannot read %s", sys, path);
			return -ENODEV;
		}
	}
	name = strrchr(real, '/');
	return add_dev(p, ma, mi, name ? name + 1 : real, cache, err, errlen);
}

/* st_dev of a file system without a block device of its own (btrfs
 * subvolumes, for one, report an anonymous 0:N): the device its mount
 * names, from /proc/self/mountinfo. */
static int mount_source(dev_t dev, dev_t *out)
{
	CLEANUP_FREE char *line = NULL;
	size_t cap = 0;
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	int r = -ENODEV;

	if (!fp)
		return -errno;
	while (getline(&line, &cap, fp) > 0) {
		unsigned ma, mi;
		char *sep, src[PATH_MAX];
		struct stat st;

		if (sscanf(line, "%*u %*u %u:%u", &ma, &mi) != 2 ||
		    makedev(ma, mi) != dev)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%*s %4095s", src) != 1)
			continue;
		if (stat(src, &st) == 0 && S_ISBLK(st.st_mode)) {
			*out = st.st_rdev;
			r = 0;
			break;
		}
	}
	fclose(fp);
	return r;
}

/* Fill p->devs.  A wrong probe-dev= is an error (-errno, *bad_param);
 * a cache directory on no block device only leaves a note in err. */
static int find_devices(struct probe *p, const struct probe_conf *conf,
			bool *bad_param, char *err, size_t errlen)
{
	struct stat st;
	int r;

	*bad_param = false;
	if (conf->cache_file) {
		dev_t dev;

		if (stat(conf->cache_file, &st) < 0)
			say(err, errlen, "%s: %s", conf->cache_file,
			    strerror(errno));
		else if (dev = st.st_dev,
			 major(dev) == 0 && mount_source(dev, &dev) < 0)
			say(err, errlen,
			    "the cache directory is not on a block device "
			    "(st_dev %u:%u: tmpfs, overlay?)",
			    major(st.st_dev), minor(st.st_dev));
		else if ((r = add_disks(p, major(dev), minor(dev), true, 0, err,
					errlen)) < 0)
			return r;
	}
	if (conf->devs && *conf->devs) {
		CLEANUP_FREE char *copy = strdup(conf->devs);
		char *save = NULL, *tok;

		if (!copy)
			return -ENOMEM;
		*bad_param = true;
		for (tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			if (stat(tok, &st) < 0) {
				r = -errno;
				say(err, errlen, "probe-dev=%s: %s: %s",
				    conf->devs, tok, strerror(errno));
				return r;
			}
			if (!S_ISBLK(st.st_mode)) {
				say(err, errlen,
				    "probe-dev=%s: %s is not a block "
				    "device",
				    conf->devs, tok);
				return -ENOTBLK;
			}
			r = add_disks(p, major(st.st_rdev), minor(st.st_rdev),
				      false, 0, err, errlen);
			if (r < 0)
				return r;
		}
		*bad_param = false;
	}
	return 0;
}

/* ---- loading ---------------------------------------------------------- */

#ifdef TIERBD_HAVE_PROBE

/* libbpf's messages: to our debug log, and the last warning kept for the
 * reason a load failed (libbpf_set_print takes no opaque pointer; the
 * logger of the probe being opened is set around the calls). */
static __thread const struct logger *lb_log;
static __thread char lb_last[256];

static int lb_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	if (level == LIBBPF_WARN)
		snprintf(lb_last, sizeof(lb_last), "%s", msg);
	if (lb_log && level != LIBBPF_DEBUG)
		tlog(lb_log, LOG_DEBUG, "probe: libbpf: %s", msg);
	return 0;
}

/* The typedef btf_trace_<tp> is the tracepoint's prototype: absent
 * (-1), or its argument count without the context. */
static int tp_nargs(const struct btf *btf, const char *tp)
{
	char name[96];
	const struct btf_type *t;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	if (!t)
		return -1;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1;
}

static void set_autoload(struct bioprobe *s, bool btf)
{
	bpf_program__set_autoload(s->progs.btf_rq_issue, btf);
	bpf_program__set_autoload(s->progs.btf_rq_complete, btf);
	bpf_program__set_autoload(s->progs.raw_rq_issue, !btf);
	bpf_program__set_autoload(s->progs.raw_rq_complete, !btf);
}

static const char *why(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
		return "not permitted: loading needs CAP_BPF and CAP_PERFMON "
		       "(or root)";
	case -ENOSYS:
		return "the kernel has no bpf() system call";
	default:
		return NULL;
	}
}

static int load(struct probe *p, char *err, size_t errlen)
{
	struct btf *btf;
	int issue_args, r = -EINVAL;
	const char *kind = NULL;
	libbpf_print_fn_t old_print;

	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		say(err, errlen,
		    "the kernel has no BTF (/sys/kernel/btf/vmlinux: "
		    "%s); it needs CONFIG_DEBUG_INFO_BTF=y",
		    strerror(errno));
		return -ENOTSUP;
	}
	btf = btf__load_vmlinux_btf();
	if (!btf) {
		say(err, errlen, "cannot read the kernel's BTF: %s",
		    strerror(errno));
		return -errno;
	}
	issue_args = tp_nargs(btf, "block_rq_issue");
	btf__free(btf);
	if (issue_args < 1) {
		say(err, errlen,
		    "the kernel has no block_rq_issue "
		    "tracepoint");
		return -ENOTSUP;
	}

	lb_log = &p->log;
	lb_last[0] = 0;
	old_print = libbpf_set_print(lb_print);
	/* TIERBD_PROBE_ATTACH=raw_tp skips tp_btf: for tests of the
	 * fallback, and a way around a kernel whose tp_btf misbehaves. */
	const char *force = getenv("TIERBD_PROBE_ATTACH");
	int first = force && strcmp(force, "raw_tp") == 0 ? 1 : 0;

	for (int attempt = first; attempt < 2; attempt++) {
		bool use_btf = attempt == 0;

		p->skel = bioprobe__open();
		if (!p->skel) {
			r = -errno;
			break;
		}
		for (unsigned i = 0; i < p->ndevs; i++)
			p->skel->rodata->watch_dev[i] =
				p->devs[i].major << 20 | p->devs[i].minor;
		p->skel->rodata->nwatch = p->ndevs;
		p->skel->rodata->issue_has_q = issue_args == 2;
		set_autoload(p->skel, use_btf);
		r = bioprobe__load(p->skel);
		if (r == 0) {
			r = bioprobe__attach(p->skel);
			if (r == 0) {
				kind = use_btf ? "tp_btf" : "raw_tp";
				break;
			}
		}
		bioprobe__destroy(p->skel);
		p->skel = NULL;
		if (r == -EPERM || r == -EACCES)
			break; /* raw_tp will not do better */
	}
	libbpf_set_print(old_print);
	lb_log = NULL;
	if (!kind) {
		const char *w = why(r);

		if (w)
			say(err, errlen, "%s", w);
		else
			say(err, errlen,
			    "the BPF program did not load: "
			    "%s%s%s",
			    strerror(-r), lb_last[0] ? "; libbpf: " : "",
			    lb_last);
		return r;
	}
	if (!p->skel->bss) {
		say(err, errlen,
		    "the kernel cannot map BPF global data "
		    "(needs >= 5.5)");
		bioprobe__destroy(p->skel);
		p->skel = NULL;
		return -ENOTSUP;
	}
	snprintf(p->state, sizeof(p->state), "loaded (%s)", kind);
	return 0;
}

#else

static int load(struct probe *p, char *err, size_t errlen)
{
	say(err, errlen,
	    "this build of tierbd has no kernel probe (" TIERBD_PROBE_NOTE ")");
	return -ENOTSUP;
}

#endif

struct probe *probe_open(const struct probe_conf *conf)
{
	struct probe *p = calloc(1, sizeof(*p));
	char err[256] = "";
	bool bad_param;
	int r;

	if (!p)
		return NULL;
	p->log = conf->log;
	p->mode = conf->mode;
	p->limit_us = conf->latency_limit_us;
	pthread_mutex_init(&p->pace_lock, NULL);
	if (conf->mode == DEVICE_PROBE_OFF) {
		snprintf(p->state, sizeof(p->state), "off (probe=off)");
		return p;
	}
	r = find_devices(p, conf, &bad_param, err, sizeof(err));
	if (r < 0 && bad_param) {
		/* A wrong parameter is an error in any mode. */
		tlog(&p->log, LOG_ERROR, "%s", err);
		probe_close(p);
		errno = -r;
		return NULL;
	}
	if (r == 0 && p->ndevs == 0) {
		if (!err[0])
			say(err, sizeof(err), "no device to watch");
		r = -ENODEV;
	}
	if (r == 0 && err[0])
		tlog(&p->log, LOG_WARN, "probe: %s; watching probe-dev= only",
		     err);
	if (r == 0)
		r = load(p, err, sizeof(err));
	if (r < 0) {
		if (conf->mode == DEVICE_PROBE_ON) {
			tlog(&p->log, LOG_ERROR,
			     "probe=on: the kernel I/O probe cannot load: %s "
			     "(probe=auto runs without it)",
			     err);
			probe_close(p);
			errno = -r;
			return NULL;
		}
		say(p->state, sizeof(p->state), "unavailable: %s", err);
		tlog(&p->log, LOG_WARN,
		     "kernel I/O probe not loaded: %s; running without it "
		     "(probe=off silences this)",
		     err);
		return p;
	}
	p->loaded = true;
	for (unsigned i = 0; i < p->ndevs; i++)
		tlog(&p->log, LOG_INFO, "probe: watching %s (%u:%u)%s",
		     p->devs[i].name, p->devs[i].major, p->devs[i].minor,
		     p->devs[i].cache ? ", the cache device" : "");
	return p;
}

struct probe *probe_open_device(struct device *dev,
				const struct device_conf *conf)
{
	CLEANUP_FREE char *slots = NULL;
	struct probe_conf pc = { .log = conf->log,
				 .mode = conf->probe,
				 .devs = conf->probe_devs,
				 .latency_limit_us =
					 conf->probe_latency_limit_us };
	struct probe *p;

	if (asprintf(&slots, "%s/slots", conf->cache_dir) < 0)
		return NULL;
	pc.cache_file = slots;
	p = probe_open(&pc);
	if (p && dev)
		dev->probe = p;
	return p;
}

void probe_close(struct probe *p)
{
	if (!p)
		return;
#ifdef TIERBD_HAVE_PROBE
	bioprobe__destroy(p->skel);
#endif
	pthread_mutex_destroy(&p->pace_lock);
	free(p);
}

bool probe_loaded(const struct probe *p)
{
	return p && p->loaded;
}

const char *probe_state(const struct probe *p)
{
	return p ? p->state : "off";
}

unsigned probe_ndevs(const struct probe *p)
{
	return p && p->loaded ? p->ndevs : 0;
}

/* ---- reading ---------------------------------------------------------- */

#ifdef TIERBD_HAVE_PROBE
static void copy_u64(uint64_t *dst, const __u64 *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
#endif

int probe_read(struct probe *p, unsigned i, struct probe_dev_stats *out)
{
	if (!probe_loaded(p) || i >= p->ndevs)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", p->devs[i].name);
	out->major = p->devs[i].major;
	out->minor = p->devs[i].minor;
	out->cache = p->devs[i].cache;
#ifdef TIERBD_HAVE_PROBE
	{
		struct bioprobe_dev *s = &p->skel->bss->stats[i];
		uint64_t infl;

		copy_u64(out->ops, s->ops, PROBE_NDIR);
		copy_u64(out->bytes, s->bytes, PROBE_NDIR);
		copy_u64(out->lat_sum_ns, s->lat_sum_ns, PROBE_NDIR);
		copy_u64(&out->errors, &s->errors, 1);
		copy_u64(&infl, &s->inflight, 1);
		out->inflight = (int64_t)infl < 0 ? 0 : (int64_t)infl;
		copy_u64(&out->lat[0][0], &s->lat[0][0],
			 PROBE_NDIR * PROBE_SLOTS);
		copy_u64(&out->qlat[0][0], &s->qlat[0][0],
			 PROBE_NDIR * PROBE_SLOTS);
		copy_u64(out->depth, s->depth, PROBE_DEPTH_SLOTS);
	}
#endif
	return 0;
}

/* ---- pacing ----------------------------------------------------------- */

static void pace_eval(struct probe *p)
{
	uint64_t cur[PROBE_SLOTS] = { 0 }, delta[PROBE_SLOTS], n, p99 = 0;
	struct probe_dev_stats ds;

	for (unsigned i = 0; i < p->ndevs; i++) {
		if (!p->devs[i].cache || probe_read(p, i, &ds) < 0)
			continue;
		for (unsigned k = 0; k < PROBE_SLOTS; k++)
			cur[k] +=
				ds.lat[PROBE_READ][k] + ds.lat[PROBE_WRITE][k];
	}
	for (unsigned k = 0; k < PROBE_SLOTS; k++) {
		delta[k] = cur[k] - p->pace_prev[k];
		p->pace_prev[k] = cur[k];
	}
	n = lat_count(delta, PROBE_SLOTS);
	if (n >= PACE_MIN_OPS)
		p99 = lat_quantile(delta, PROBE_SLOTS, 0.99);
	__atomic_store_n(&p->pace_p99_ns, p99, __ATOMIC_RELAXED);
	__atomic_store_n(&p->pace_ops, n, __ATOMIC_RELAXED);
	__atomic_store_n(&p->pace_overloaded,
			 p99 > (uint64_t)p->limit_us * 1000, __ATOMIC_RELAXED);
}

unsigned probe_pace_ms(struct probe *p)
{
	uint64_t now, p99, limit_ns, ms;

	if (!probe_loaded(p) || !p->limit_us)
		return 0;
	now = now_ms();
	if (now - __atomic_load_n(&p->pace_eval_ms, __ATOMIC_RELAXED) >=
		    PACE_WINDOW_MS &&
	    pthread_mutex_trylock(&p->pace_lock) == 0) {
		if (now - p->pace_eval_ms >= PACE_WINDOW_MS) {
			pace_eval(p);
			__atomic_store_n(&p->pace_eval_ms, now,
					 __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&p->pace_lock);
	}
	if (!__atomic_load_n(&p->pace_overloaded, __ATOMIC_RELAXED))
		return 0;
	p99 = __atomic_load_n(&p->pace_p99_ns, __ATOMIC_RELAXED);
	limit_ns = (uint64_t)p->limit_us * 1000;
	ms = PACE_MS_PER_LIMIT * (p99 / limit_ns);
	return (unsigned)MIN(MAX(ms, (uint64_t)PACE_MS_PER_LIMIT),
			     (uint64_t)PACE_MAX_MS);
}

void probe_get_pace(struct probe *p, struct probe_pace *out)
{
	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	(void)probe_pace_ms(p); /* a fresh window if the last one is old */
	out->limit_us = p->limit_us;
	out->p99_ns = __atomic_load_n(&p->pace_p99_ns, __ATOMIC_RELAXED);
	out->window_ops = __atomic_load_n(&p->pace_ops, __ATOMIC_RELAXED);
	out->overloaded =
		__atomic_load_n(&p->pace_overloaded, __ATOMIC_RELAXED);
}

/* Called by the write-back and pull workers before each transfer, with
 * no lock held.  Background work that clients wait for (over max-dirty,
 * or a writer needing a slot: urgent) is never slowed. */
void dev_bg_pace(struct device *d)
{
	unsigned ms;
	struct timespec ts;

	if (!d->probe)
		return;
	if (__atomic_load_n(&d->urgent, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&d->ndirty, __ATOMIC_RELAXED) * d->chunk_size >
		    d->max_dirty)
		return;
	ms = probe_pace_ms(d->probe);
	if (!ms)
		return;
	STAT_INC(d, bg_paced);
	STAT_ADD(d, bg_paced_ms, ms);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}
