/* probe.h - the kernel I/O probe: load it, read it, pace background work.
 *
 * The probe (bpf/bioprobe.bpf.c) counts, per watched block device, the
 * requests the block layer sends to it: bytes, operations, errors,
 * in-flight depth and log2 latency histograms, for reads, writes and
 * other requests.  Watched: the device holding the cache file (for a
 * partition, its whole disk; for device-mapper or md, the disks below;
 * as the block layer names them) and any devices named by probe-dev=.
 *
 * It needs a kernel with BTF (/sys/kernel/btf/vmlinux), BPF raw
 * tracepoints (tp_btf preferred, raw_tp as the fallback) and CAP_BPF +
 * CAP_PERFMON (or root); not kprobes, fentry or tracefs.  With
 * probe=auto, a probe that cannot load says why once and the device
 * runs without it; probe=on makes that an error.
 *
 * The write-back and pull workers call dev_bg_pace() before each
 * transfer: while the cache devices' p99 latency over the last quarter
 * second is above probe-latency-limit, it sleeps a little (longer the
 * further above), so background work yields to clients.
 *
 * Threads: every function may be called from any thread once
 * probe_open has returned; probe_close only after the device that uses
 * it is closed.
 */
#ifndef TIERBD_PROBE_H
#define TIERBD_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/log.h"
#include "device.h"

#define PROBE_MAX_DEVS 8
#define PROBE_SLOTS LAT_SLOTS
#define PROBE_DEPTH_SLOTS 16
#define PROBE_READ 0
#define PROBE_WRITE 1
#define PROBE_OTHER 2
#define PROBE_NDIR 3

struct probe;

struct probe_conf {
	struct logger log;
	int mode;		   /* DEVICE_PROBE_AUTO, _ON, _OFF */
	const char *cache_file;	   /* a file on the cache device, or NULL */
	const char *devs;	   /* "/dev/loop3,/dev/nbd0", or NULL */
	unsigned latency_limit_us; /* pace above this p99; 0: never */
};

/* One watched device, as last read. */
struct probe_dev_stats {
	char name[32]; /* "vda", "loop3" */
	uint32_t major, minor;
	bool cache; /* holds the cache file */
	uint64_t ops[PROBE_NDIR], bytes[PROBE_NDIR], lat_sum_ns[PROBE_NDIR];
	uint64_t errors;
	int64_t inflight;
	uint64_t lat[PROBE_NDIR][PROBE_SLOTS];	/* issue -> completion */
	uint64_t qlat[PROBE_NDIR][PROBE_SLOTS]; /* queued before issue */
	uint64_t depth[PROBE_DEPTH_SLOTS];	/* in flight at issue */
};

/* Pacing as last evaluated. */
struct probe_pace {
	unsigned limit_us;   /* 0: pacing off */
	uint64_t p99_ns;     /* cache devices, last window; 0: idle */
	uint64_t window_ops; /* requests in that window */
	bool overloaded;
};

/* Load the probe as conf->mode says.  Returns a probe object, loaded or
 * not (probe_loaded, probe_state say which and why), or NULL with errno
 * set when mode is ON and it cannot load, or a probe-dev= is wrong;
 * the reason is logged. */
struct probe *probe_open(const struct probe_conf *conf);

/* The same with the device's configuration (conf->probe, probe_devs,
 * probe_latency_limit_us; the cache file in conf->cache_dir), and the
 * device paced by it from now on (dev_bg_pace).  The probe must
 * outlive the device: device_close(dev) first, then probe_close. */
struct probe *probe_open_device(struct device *dev,
				const struct device_conf *conf);

void probe_close(struct probe *p); /* NULL-safe */

bool probe_loaded(const struct probe *p);
/* "loaded (tp_btf)", "loaded (raw_tp)", "off (probe=off)", "unavailable:
 * WHY".  Valid until probe_close. */
const char *probe_state(const struct probe *p);
const char *probe_mode_name(const struct probe *p);
unsigned probe_ndevs(const struct probe *p);
/* Device i (0 <= i < probe_ndevs) now; -ENOENT past the end. */
int probe_read(struct probe *p, unsigned i, struct probe_dev_stats *out);
void probe_get_pace(struct probe *p, struct probe_pace *out);

/* Milliseconds background work should wait now (0: go ahead). */
unsigned probe_pace_ms(struct probe *p);

/* "auto", "on", "off" -> DEVICE_PROBE_*; -1 if none of them. */
int probe_parse_mode(const char *s);

#endif
