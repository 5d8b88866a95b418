/* tierbd.c - nbdkit glue: parameters, callbacks, start and stop.
 *
 * Everything that is not about nbdkit lives in the engine (server/):
 * this file parses parameters into a struct device_conf, opens the
 * device in .get_ready (so a bad parameter is an error before any
 * client connects and nbdkit exits non-zero), starts the background
 * workers in .after_fork (threads do not survive nbdkit's fork into
 * the background) and closes the device in .cleanup.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "../server/control.h"
#include "../server/device.h"
#include "../server/metrics.h"
#include "../server/probe.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct device_conf conf;
static struct device *dev;
/* Observability (issue 6): the kernel probe, the control socket and the
 * metrics endpoint; opened in .get_ready, threads in .after_fork. */
static struct probe *probe;
static struct control *control;
static struct metrics *metrics;
static const char *control_path; /* control=; NULL: CACHE_DIR/control */
static const char *metrics_spec; /* metrics=; NULL: none */
static char *secret_key;	 /* from nbdkit_read_password; never printed */

static void plugin_log(void *opaque, enum log_level level, const char *fmt,
		       va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	switch (level) {
	case LOG_ERROR:
		nbdkit_error("%s", msg);
		break;
	case LOG_WARN:
		fprintf(stderr, "nbdkit: tierbd: warning: %s\n", msg);
		break;
	default:
		nbdkit_debug("%s", msg);
		break;
	}
	free(msg);
}

static void tierbd_load(void)
{
	device_conf_init(&conf);
	conf.log.fn = plugin_log;
	conf.store.log = conf.log;
	conf.probe_latency_limit_us = 50 * 1000;
}

static void tierbd_unload(void)
{
	free(secret_key);
}

static int parse_size(const char *key, const char *value, uint64_t *out)
{
	int64_t v = nbdkit_parse_size(value);

	if (v < 0) {
		nbdkit_error("%s=%s: not a size; write it like %s=4G, 512M "
			     "or 1048576",
			     key, value, key);
		return -1;
	}
	if (v == 0) {
		nbdkit_error("%s=%s: must be greater than zero", key, value);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

static int parse_bool(const char *key, const char *value, bool *out)
{
	int b = nbdkit_parse_bool(value);

	if (b < 0) {
		nbdkit_error("%s=%s: use %s=true or %s=false", key, value, key,
			     key);
		return -1;
	}
	*out = b;
	return 0;
}

static int parse_uint(const char *key, const char *value, unsigned *out,
		      unsigned min, unsigned max)
{
	if (nbdkit_parse_unsigned(key, value, out) < 0)
		return -1;
	if (*out < min || *out > max) {
		nbdkit_error("%s=%s: must be from %u to %u", key, value, min,
			     max);
		return -1;
	}
	return 0;
}

static int tierbd_config(const char *key, const char *value)
{
	struct store_conf *s = &conf.store;
	uint64_t v;
	bool b;

	if (strcmp(key, "size") == 0)
		return parse_size(key, value, &conf.size);
	if (strcmp(key, "chunk-size") == 0) {
		if (parse_size(key, value, &v) < 0)
			return -1;
		if (v > UINT32_MAX) {
			nbdkit_error("chunk-size=%s: at most 64M", value);
			return -1;
		}
		conf.chunk_size = (uint32_t)v;
		return 0;
	}
	if (strcmp(key, "cache") == 0) {
		conf.cache_dir = value;
		return 0;
	}
	if (strcmp(key, "cache-size") == 0)
		return parse_size(key, value, &conf.cache_size);
	if (strcmp(key, "store") == 0) {
		s->spec = value;
		return 0;
	}
	if (strcmp(key, "push-threads") == 0)
		return parse_uint(key, value, &conf.push_threads, 1, 256);
	if (strcmp(key, "writeback-delay") == 0)
		return parse_uint(key, value, &conf.writeback_delay_ms, 0,
				  3600 * 1000);
	if (strcmp(key, "writeback-early") == 0) {
		bool early;
		if (parse_bool(key, value, &early) < 0)
			return -1;
		conf.writeback_late = !early;
		return 0;
	}
	if (strcmp(key, "max-dirty") == 0)
		return parse_size(key, value, &conf.max_dirty);
	if (strcmp(key, "direct-io") == 0)
		return parse_bool(key, value, &conf.direct_io);
	if (strcmp(key, "flush") == 0) {
		if (strcmp(value, "local") == 0 ||
		    strcmp(value, "remote") == 0) {
			conf.flush_remote = value[0] == 'r';
			return 0;
		}
		nbdkit_error("flush=%s: use flush=local (durable in the cache; "
			     "the default) or flush=remote (durable in the "
			     "store)",
			     value);
		return -1;
	}
	if (strcmp(key, "heat-half-life") == 0)
		return parse_uint(key, value, &conf.heat_half_life, 1,
				  10 * 365 * 86400);
	if (strcmp(key, "cache-high") == 0)
		return parse_uint(key, value, &conf.cache_high_pct, 2, 100);
	if (strcmp(key, "cache-low") == 0)
		return parse_uint(key, value, &conf.cache_low_pct, 1, 99);
	if (strcmp(key, "probation") == 0)
		return parse_uint(key, value, &conf.probation_pct, 1, 90);
	if (strcmp(key, "pin") == 0) {
		conf.pins = value;
		return 0;
	}
	if (strcmp(key, "pull-threads") == 0)
		return parse_uint(key, value, &conf.pull_threads, 1, 256);
	if (strcmp(key, "readahead") == 0) {
		int64_t ra = nbdkit_parse_size(value);
		if (ra < 0) {
			nbdkit_error(
				"readahead=%s: not a size; e.g. readahead=4M, "
				"or readahead=0 for none",
				value);
			return -1;
		}
		conf.readahead = (uint64_t)ra;
		conf.readahead_off = ra == 0;
		return 0;
	}
	if (strcmp(key, "prefetch") == 0) {
		if (strcmp(value, "all") == 0 || strcmp(value, "warm") == 0 ||
		    strcmp(value, "none") == 0) {
			conf.prefetch_all = value[0] == 'a';
			conf.prefetch_none = value[0] == 'n';
			return 0;
		}
		nbdkit_error(
			"prefetch=%s: use prefetch=warm (pull the previous "
			"session's hot chunks; the default), prefetch=all "
			"(also pull every other chunk in the background) or "
			"prefetch=none (only pinned chunks and read-ahead)",
			value);
		return -1;
	}
	if (strcmp(key, "pull-rate") == 0)
		return parse_size(key, value, &conf.pull_rate);
	if (strcmp(key, "push-rate") == 0)
		return parse_size(key, value, &conf.push_rate);
	if (strcmp(key, "takeover") == 0)
		return parse_bool(key, value, &conf.takeover);
	if (strcmp(key, "trace") == 0) {
		conf.trace_path = value;
		return 0;
	}
	if (strcmp(key, "commit-interval") == 0) {
		unsigned sec;
		if (parse_uint(key, value, &sec, 1, 86400) < 0)
			return -1;
		conf.commit_interval_ms = sec * 1000;
		return 0;
	}

	/* kernel probe, control socket, metrics */
	if (strcmp(key, "probe") == 0) {
		int m = probe_parse_mode(value);
		if (m < 0) {
			nbdkit_error(
				"probe=%s: use probe=auto (load the kernel "
				"I/O probe when permitted; the default), "
				"probe=on (refuse to start without it) or "
				"probe=off",
				value);
			return -1;
		}
		conf.probe = m;
		return 0;
	}
	if (strcmp(key, "probe-dev") == 0) {
		conf.probe_devs = value;
		return 0;
	}
	if (strcmp(key, "probe-latency-limit") == 0) {
		/* milliseconds, decimals allowed: 0.05 is 50 us */
		char *end;
		double ms = strtod(value, &end);
		if (end == value || *end || !(ms >= 0 && ms <= 60000)) {
			nbdkit_error(
				"probe-latency-limit=%s: milliseconds from "
				"0 (never slow background work) to 60000; "
				"decimals allowed (0.5)",
				value);
			return -1;
		}
		conf.probe_latency_limit_us = (unsigned)(ms * 1000 + 0.5);
		if (ms > 0 && conf.probe_latency_limit_us == 0)
			conf.probe_latency_limit_us = 1;
		return 0;
	}
	if (strcmp(key, "control") == 0) {
		control_path = value;
		return 0;
	}
	if (strcmp(key, "metrics") == 0) {
		metrics_spec = value;
		return 0;
	}

	/* S3 store */
	if (strcmp(key, "s3-endpoint") == 0) {
		s->s3_endpoint = value;
		return 0;
	}
	if (strcmp(key, "s3-region") == 0) {
		s->s3_region = value;
		return 0;
	}
	if (strcmp(key, "s3-virtual-host") == 0) {
		if (parse_bool(key, value, &b) < 0)
			return -1;
		s->s3_virtual_host = b;
		return 0;
	}
	if (strcmp(key, "s3-ca-bundle") == 0) {
		s->s3_ca_bundle = value;
		return 0;
	}
	if (strcmp(key, "s3-insecure") == 0) {
		if (parse_bool(key, value, &b) < 0)
			return -1;
		s->s3_insecure = b;
		return 0;
	}
	if (strcmp(key, "s3-unsigned-payload") == 0) {
		if (parse_bool(key, value, &b) < 0)
			return -1;
		s->s3_unsigned_payload = b;
		return 0;
	}
	if (strcmp(key, "s3-access-key") == 0) {
		s->s3_access_key = value;
		return 0;
	}
	if (strcmp(key, "s3-secret-key") == 0) {
		free(secret_key);
		secret_key = NULL;
		if (nbdkit_read_password(value, &secret_key) < 0)
			return -1;
		s->s3_secret_key = secret_key;
		return 0;
	}
	if (strcmp(key, "s3-credentials-file") == 0) {
		s->s3_credentials_file = value;
		return 0;
	}
	if (strcmp(key, "s3-profile") == 0) {
		s->s3_profile = value;
		return 0;
	}
	if (strcmp(key, "s3-timeout") == 0) {
		unsigned sec;
		if (parse_uint(key, value, &sec, 1, 3600) < 0)
			return -1;
		s->s3_timeout_ms = sec * 1000;
		return 0;
	}
	if (strcmp(key, "s3-connections") == 0)
		return parse_uint(key, value, &s->s3_connections, 1, 1024);

	nbdkit_error("unknown parameter '%s' (see: nbdkit tierbd --help)", key);
	return -1;
}

static int tierbd_config_complete(void)
{
	if (!conf.cache_dir) {
		nbdkit_error("cache= is required: the directory for the hot "
			     "cache and the chunk map (see: nbdkit tierbd "
			     "--help)");
		return -1;
	}
	return 0;
}

#define tierbd_config_help                                                     \
	"cache=DIR              (required) hot cache and chunk map "           \
	"directory\n"                                                          \
	"size=SIZE              device size (creating; stored afterwards)\n"   \
	"cache-size=SIZE        hot cache size (creating; may grow later)\n"   \
	"store=SPEC             cold store: dir:PATH or s3://BUCKET/PREFIX\n"  \
	"                       (creating; stored afterwards)\n"               \
	"chunk-size=SIZE        power of two, 64K..64M (default 1M)\n"         \
	"push-threads=N         uploads in parallel (default 4; S3: 16)\n"     \
	"writeback-delay=MS     coalescing delay before upload (default "      \
	"1000)\n"                                                              \
	"writeback-early=BOOL   upload a chunk a sequential writer finished\n" \
	"                       without that delay (default true)\n"           \
	"max-dirty=SIZE         writers slow down above this (default\n"       \
	"                       half the cache)\n"                             \
	"direct-io=BOOL         O_DIRECT cache writes (default true)\n"        \
	"flush=local|remote     a flush is durable in the cache (default)\n"   \
	"                       or waits for a commit in the store\n"          \
	"heat-half-life=SEC     heat halves this often (default 3600)\n"       \
	"cache-high=PCT         evict above this fill (default 95)\n"          \
	"cache-low=PCT          ... down to this fill (default 85)\n"          \
	"probation=PCT          share for newly cached chunks (10)\n"          \
	"pin=START-END[,...]    byte ranges kept hot (END excluded)\n"         \
	"trace=FILE             append one line per request\n"                 \
	"pull-threads=N         background fetches (default 4; S3: 8)\n"       \
	"readahead=SIZE         pulled ahead of a sequential reader\n"         \
	"                       (default 4M; S3: 16M; 0: none)\n"              \
	"prefetch=warm|all|none pull the last session's hot chunks at\n"       \
	"                       start; all: every chunk; none: only\n"         \
	"                       pinned chunks and read-ahead\n"                \
	"pull-rate=SIZE         background fetch bytes/s (default no limit)\n" \
	"push-rate=SIZE         upload bytes/s (default no limit)\n"           \
	"takeover=BOOL          take the device from another host's\n"         \
	"                       lease (its host is gone for good)\n"           \
	"commit-interval=SEC    commit to the store this often when\n"         \
	"                       something changed (default 5)\n"               \
	"probe=auto|on|off      kernel I/O probe (default auto: when\n"        \
	"                       permitted)\n"                                  \
	"probe-dev=DEV[,...]    more block devices for the probe to watch\n"   \
	"probe-latency-limit=MS slow background work while the cache\n"        \
	"                       device's p99 is above (default 50; 0 off)\n"   \
	"control=PATH|off       control socket (default CACHE_DIR/control)\n"  \
	"metrics=ADDR:PORT      Prometheus metrics on a loopback address\n"    \
	"s3-endpoint=URL        http(s)://host[:port] (default AWS)\n"         \
	"s3-region=REGION       signing region (default us-east-1)\n"          \
	"s3-virtual-host=BOOL   BUCKET.host addressing (default false)\n"      \
	"s3-ca-bundle=FILE      CA certificates for https\n"                   \
	"s3-insecure=BOOL       skip TLS verification (testing only)\n"        \
	"s3-unsigned-payload=BOOL  PUT bodies unhashed (for https; false)\n"   \
	"s3-access-key=KEY      else AWS_ACCESS_KEY_ID or credentials file\n"  \
	"s3-secret-key=SECRET   '+FILE' reads a file, '-' prompts; else\n"     \
	"                       AWS_SECRET_ACCESS_KEY or credentials file\n"   \
	"s3-credentials-file=F  AWS credentials file (default ~/.aws/...)\n"   \
	"s3-profile=NAME        section of the credentials file\n"             \
	"s3-timeout=SECONDS     per request (default 30)\n"                    \
	"s3-connections=N       pooled connections (default 16)"

/* Metrics, control socket, device, probe: users of the device first,
 * the probe after the device's workers, which it paces.  NULL-safe. */
static void close_all(void)
{
	metrics_close(metrics);
	metrics = NULL;
	control_close(control);
	control = NULL;
	device_close(dev);
	dev = NULL;
	probe_close(probe);
	probe = NULL;
}

/* Observability: bound in .get_ready, so that a bad parameter stops
 * nbdkit before it serves; the threads start in .after_fork. */
static int open_observability(void)
{
	probe = probe_open_device(dev, &conf);
	if (!probe)
		return -1; /* probe=on, or a bad probe-dev=: said why */
	if (metrics_spec) {
		struct metrics_conf mc = { .log = conf.log,
					   .addr = metrics_spec,
					   .dev = dev,
					   .probe = probe };
		metrics = metrics_open(&mc);
		if (!metrics)
			return -1;
		nbdkit_debug("metrics on http://%s/metrics",
			     metrics_addr(metrics));
	}
	if (!control_path || (strcmp(control_path, "off") != 0 &&
			      strcmp(control_path, "none") != 0)) {
		char *def = NULL;
		struct control_conf cc = {
			.log = conf.log,
			.path = control_path,
			.cache_dir = conf.cache_dir,
			.dev = dev,
			.probe = probe,
			.metrics_addr = metrics ? metrics_addr(metrics) : NULL
		};
		if (!control_path &&
		    asprintf(&def, "%s/control", conf.cache_dir) < 0)
			return -1;
		if (def)
			cc.path = def;
		control = control_open(&cc);
		if (!control && control_path)
			return -1; /* asked for: said why */
		if (!control)
			fprintf(stderr,
				"nbdkit: tierbd: warning: no control "
				"socket at %s; running without it\n",
				cc.path);
		free(def);
	}
	return 0;
}

static int tierbd_get_ready(void)
{
	dev = device_open(&conf);
	if (!dev)
		return -1; /* the engine said why */
	if (open_observability() < 0) {
		/* nbdkit exits without .cleanup: close the device cleanly
		 * here, or the next start finds it not closed cleanly. */
		close_all();
		return -1;
	}
	return 0;
}

static int tierbd_after_fork(void)
{
	int r = device_start(dev);

	if (r < 0) {
		nbdkit_error("starting background workers: %s", strerror(-r));
		return -1;
	}
	if ((metrics && metrics_start(metrics) < 0) ||
	    (control && control_start(control) < 0))
		return -1; /* said why */
	return 0;
}

static void tierbd_cleanup(void)
{
	if (dev) {
		struct device_stats st;

		device_get_stats(dev, &st);
		nbdkit_debug("stats: hits %llu misses %llu fetches %llu "
			     "uploads %llu evictions %llu checksum errors %llu",
			     (unsigned long long)st.hits,
			     (unsigned long long)st.misses,
			     (unsigned long long)st.fetches,
			     (unsigned long long)st.uploads,
			     (unsigned long long)st.evictions,
			     (unsigned long long)st.checksum_errors);
	}
	close_all();
}

static void tierbd_dump_plugin(void)
{
	printf("tierbd_chunk_states=ABSENT,COLD,HOT_CLEAN,HOT_DIRTY\n");
	printf("tierbd_stores=dir,s3\n");
	printf("tierbd_features=pread,pwrite,flush,fua,trim,zero,fast_zero,"
	       "extents,multi_conn,block_size\n");
	printf("tierbd_cache_io=io_uring,O_DIRECT\n");
	printf("tierbd_object_format=lz4,xxh3\n");
}

static void *tierbd_open(int readonly)
{
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t tierbd_get_size(void *handle)
{
	return (int64_t)device_size(dev);
}

static int tierbd_block_size(void *handle, uint32_t *minimum,
			     uint32_t *preferred, uint32_t *maximum)
{
	*minimum = 1;
	*preferred = 4096;
	*maximum = 64 * 1024 * 1024; /* nbdkit refuses larger requests */
	return 0;
}

static int one(void *handle)
{
	return 1;
}

static int zero(void *handle)
{
	return 0;
}

static int tierbd_can_fua(void *handle)
{
	return NBDKIT_FUA_NATIVE;
}

static int fail(const char *what, int r)
{
	if (r != -ENOTSUP)
		nbdkit_error("%s: %s", what, strerror(-r));
	nbdkit_set_error(-r);
	return -1;
}

static int tierbd_pread(void *handle, void *buf, uint32_t count,
			uint64_t offset, uint32_t flags)
{
	int r = device_read(dev, buf, count, offset);

	return r < 0 ? fail("read", r) : 0;
}

static int tierbd_pwrite(void *handle, const void *buf, uint32_t count,
			 uint64_t offset, uint32_t flags)
{
	int r = device_write(dev, buf, count, offset,
			     flags & NBDKIT_FLAG_FUA ? DEV_FUA : 0);

	return r < 0 ? fail("write", r) : 0;
}

static int tierbd_flush(void *handle, uint32_t flags)
{
	int r = device_flush(dev);

	return r < 0 ? fail("flush", r) : 0;
}

static int tierbd_trim(void *handle, uint32_t count, uint64_t offset,
		       uint32_t flags)
{
	int r = device_trim(dev, count, offset,
			    flags & NBDKIT_FLAG_FUA ? DEV_FUA : 0);

	return r < 0 ? fail("trim", r) : 0;
}

static int tierbd_zero(void *handle, uint32_t count, uint64_t offset,
		       uint32_t flags)
{
	unsigned f = 0;
	int r;

	if (flags & NBDKIT_FLAG_FUA)
		f |= DEV_FUA;
	if (flags & NBDKIT_FLAG_MAY_TRIM)
		f |= DEV_MAY_TRIM;
	if (flags & NBDKIT_FLAG_FAST_ZERO)
		f |= DEV_FAST_ZERO;
	r = device_zero(dev, count, offset, f);
	return r < 0 ? fail("zero", r) : 0;
}

static int add_extent(void *opaque, uint64_t offset, uint64_t length, bool hole)
{
	uint32_t type = hole ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;

	return nbdkit_add_extent(opaque, offset, length, type) < 0 ? -EIO : 0;
}

static int tierbd_extents(void *handle, uint32_t count, uint64_t offset,
			  uint32_t flags, struct nbdkit_extents *extents)
{
	int r = device_extents(dev, count, offset, add_extent, extents);

	return r < 0 ? fail("extents", r) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "tierbd",
	.longname = "tierbd tiered block device",
	.version = "0.1.0",
	.description = "a block device tiered between a local cache and "
		       "an object store",
	.load = tierbd_load,
	.unload = tierbd_unload,
	.config = tierbd_config,
	.config_complete = tierbd_config_complete,
	.config_help = tierbd_config_help,
	.magic_config_key = "size",
	.get_ready = tierbd_get_ready,
	.after_fork = tierbd_after_fork,
	.cleanup = tierbd_cleanup,
	.dump_plugin = tierbd_dump_plugin,
	.open = tierbd_open,
	.get_size = tierbd_get_size,
	.block_size = tierbd_block_size,
	.can_write = one,
	.can_flush = one,
	.can_fua = tierbd_can_fua,
	.can_trim = one,
	.can_zero = one,
	.can_fast_zero = one,
	.can_extents = one,
	.can_multi_conn = one,
	.is_rotational = zero,
	.pread = tierbd_pread,
	.pwrite = tierbd_pwrite,
	.flush = tierbd_flush,
	.trim = tierbd_trim,
	.zero = tierbd_zero,
	.extents = tierbd_extents,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
