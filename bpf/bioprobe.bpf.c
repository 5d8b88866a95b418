// SPDX-License-Identifier: (BSD-3-Clause OR GPL-2.0)
/* bioprobe.bpf.c - block-layer latency, bytes and queue depth for the
 * devices tierbd watches: its cache device, and any named by probe-dev=.
 *
 * Events (tracepoints of the block layer, request based):
 *   block_rq_issue    the driver gets the request: end of its queued time
 *                     (since rq->start_time_ns, stamped when the request
 *                     was made, where the kernel keeps iostats or runs a
 *                     scheduler), start of its service time, one more in
 *                     flight;
 *   block_rq_complete bytes done (once, or in parts); when the whole
 *                     request is done: service time, one less in flight.
 * block_io_start (>= 6.5) marks the moment rq->start_time_ns records,
 * so it is not attached: it would cost a map update per request (0.9
 * us measured), and on 6.18 with mq-deadline it fires for some requests
 * after their issue.  block_io_done fires only for requests that carry
 * a timestamp (__blk_mq_end_request), so it does not pair with every
 * issue; block_rq_complete always does.
 *
 * Each event is attached as tp_btf (BTF-typed, cheapest) and, as a
 * fallback the loader picks when tp_btf does not load, as raw_tp; both
 * call the same functions.  Neither needs tracefs, kprobes or fentry.
 *
 * Per-request state (start and issue times) lives in an LRU hash keyed
 * by the request's address, so a request we never see complete (the
 * probe attached mid-flight, a merge) cannot fill it.  Per-device
 * counters live in .bss (struct bioprobe_dev), read by the loader
 * through the skeleton's mmap; updates are atomic adds.
 *
 * Knobs (const volatile, set by the loader between open and load):
 * watch_dev[] and nwatch, the devices as the block layer names them,
 * (major << 20 | first_minor of the whole disk); issue_has_q for
 * kernels before 5.11, whose block_rq_issue also passed the
 * request_queue (removed by Christoph Hellwig's series "block: remove
 * the request_queue argument to the block_rq_* tracepoints", v5.11).
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bioprobe.h"

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1u << REQ_OP_BITS) - 1)

const volatile __u32 watch_dev[BIOPROBE_MAX_DEVS] = {};
const volatile __u32 nwatch = 0;
const volatile bool issue_has_q = false;

struct bioprobe_dev stats[BIOPROBE_MAX_DEVS] = {};

struct rq_state {
	__u64 issue_ns; /* block_rq_issue */
	__u32 slot;	/* index in watch_dev */
	__u32 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct rq_state);
} rqs SEC(".maps");

/* Before v5.17 the request named its disk itself ("block: remove the
 * ->rq_disk field in struct request"); since, through its queue. */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32((__u32)v);
}

static __always_inline __u32 slot_of(__u64 v, __u32 nslots)
{
	__u32 s = v ? log2_u64(v) : 0;

	return s < nslots ? s : nslots - 1;
}

/* Field reads.  tp_btf programs get BTF-typed pointers and load through
 * them directly (a plain load, guarded by the JIT, relocated by CO-RE);
 * raw_tp programs get plain numbers and need bpf_probe_read_kernel
 * (BPF_CORE_READ), a helper call per field, about twice the cost.
 * `direct` is a constant in each program: only one form is compiled. */
#define RD(direct, p, f) ((direct) ? (p)->f : BPF_CORE_READ(p, f))

/* The watch index of the request's disk, or -1. */
static __always_inline int watch_slot(struct request *rq, bool direct)
{
	struct gendisk *disk;
	__u32 dev;

	if (bpf_core_field_exists(((struct request___old *)0)->rq_disk)) {
		disk = RD(direct, (struct request___old *)rq, rq_disk);
	} else {
		struct request_queue *q = RD(direct, rq, q);

		disk = RD(direct, q, disk);
	}
	if (!disk)
		return -1;
	dev = (__u32)RD(direct, disk, major) << 20 |
	      (__u32)RD(direct, disk, first_minor);
	for (int i = 0; i < BIOPROBE_MAX_DEVS; i++) {
		if (i >= nwatch)
			break;
		if (watch_dev[i] == dev)
			return i;
	}
	return -1;
}

static __always_inline __u32 dir_of(struct request *rq, bool direct)
{
	__u32 op = RD(direct, rq, cmd_flags) & REQ_OP_MASK;

	return op == 0	 ? BIOPROBE_READ
	       : op == 1 ? BIOPROBE_WRITE
			 : BIOPROBE_OTHER;
}

static __always_inline int on_issue(struct request *rq, bool direct)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns(), made;
	struct rq_state *st, fresh = {};
	struct bioprobe_dev *s;
	__s64 depth;
	int slot = watch_slot(rq, direct);
	__u32 dir;

	if (slot < 0 || slot >= BIOPROBE_MAX_DEVS)
		return 0;
	s = &stats[slot];
	st = bpf_map_lookup_elem(&rqs, &key);
	if (st) {
		/* Requeued and issued again: in flight already. */
		st->issue_ns = now;
		return 0;
	}
	dir = dir_of(rq, direct);
	made = RD(direct, rq, start_time_ns);
	if (made && now > made)
		__sync_fetch_and_add(
			&s->qlat[dir][slot_of(now - made, BIOPROBE_SLOTS)], 1);
	fresh.issue_ns = now;
	fresh.slot = slot;
	fresh.dir = dir;
	if (bpf_map_update_elem(&rqs, &key, &fresh, BPF_NOEXIST) != 0) {
		/* Its completion will not find it: keep inflight balanced
		 * by not counting it. */
		__sync_fetch_and_add(&s->untracked, 1);
		return 0;
	}
	depth = (__s64)__sync_fetch_and_add(&s->inflight, 1);
	__sync_fetch_and_add(
		&s->depth[slot_of(depth > 0 ? depth : 0, BIOPROBE_DEPTH_SLOTS)],
		1);
	return 0;
}

static __always_inline int on_complete(struct request *rq, int error,
				       unsigned int nr_bytes, bool direct)
{
	__u64 key = (__u64)rq, now, lat;
	struct rq_state *st;
	struct bioprobe_dev *s;
	__u32 dir, slot;

	st = bpf_map_lookup_elem(&rqs, &key);
	if (!st) {
		/* Issued before we attached, or not on a watched device:
		 * count its bytes if it is ours. */
		int w = watch_slot(rq, direct);

		if (w < 0 || w >= BIOPROBE_MAX_DEVS)
			return 0;
		__sync_fetch_and_add(&stats[w].bytes[dir_of(rq, direct)],
				     nr_bytes);
		if (nr_bytes >= RD(direct, rq, __data_len))
			__sync_fetch_and_add(&stats[w].unmatched, 1);
		return 0;
	}
	slot = st->slot;
	dir = st->dir;
	if (slot >= BIOPROBE_MAX_DEVS || dir >= BIOPROBE_NDIR)
		return 0;
	s = &stats[slot];
	__sync_fetch_and_add(&s->bytes[dir], nr_bytes);
	if (error)
		__sync_fetch_and_add(&s->errors, 1);
	/* Partial completion: the request goes on. */
	if (nr_bytes < RD(direct, rq, __data_len))
		return 0;
	now = bpf_ktime_get_ns();
	lat = now > st->issue_ns ? now - st->issue_ns : 0;
	__sync_fetch_and_add(&s->ops[dir], 1);
	__sync_fetch_and_add(&s->lat_sum_ns[dir], lat);
	__sync_fetch_and_add(&s->lat[dir][slot_of(lat, BIOPROBE_SLOTS)], 1);
	__sync_fetch_and_add(&s->inflight, -1);
	bpf_map_delete_elem(&rqs, &key);
	return 0;
}

/* ---- tp_btf: BTF-typed raw tracepoints ---- */

SEC("tp_btf/block_rq_issue")
int btf_rq_issue(__u64 *ctx)
{
	return on_issue((struct request *)(issue_has_q ? ctx[1] : ctx[0]),
			true);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(btf_rq_complete, struct request *rq, int error,
	     unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes, true);
}

/* ---- raw_tp: the fallback where tp_btf does not load ---- */

SEC("raw_tp/block_rq_issue")
int raw_rq_issue(__u64 *ctx)
{
	return on_issue((struct request *)(issue_has_q ? ctx[1] : ctx[0]),
			false);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(raw_rq_complete, struct request *rq, int error,
	     unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes, false);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
