/* bioprobe.h - types shared by the kernel probe (bioprobe.bpf.c) and its
 * loader (server/probe.c).  Fixed-width __u32/__u64 only: the same
 * layout on both sides of the syscall boundary.
 *
 * One struct bioprobe_dev per watched device, in the program's .bss,
 * which the loader reads through the skeleton's mmap of it.  Counters
 * only grow (except inflight); readers take deltas.
 *
 * Histograms are log2 of nanoseconds: slot k counts values v with
 * 2^k <= v < 2^(k+1) (v = 0 goes to slot 0); the last slot also takes
 * everything above.  The engine's own histograms (server/lathist.h) use
 * the same slots, so quantiles are computed one way for both.
 */
#ifndef TIERBD_BIOPROBE_H
#define TIERBD_BIOPROBE_H

#define BIOPROBE_MAX_DEVS 8
#define BIOPROBE_SLOTS 40 /* 2^39 ns ~ 9 minutes */
#define BIOPROBE_DEPTH_SLOTS 16

/* Request directions (REQ_OP_READ, REQ_OP_WRITE, everything else:
 * flush, discard, write-zeroes...). */
#define BIOPROBE_READ 0
#define BIOPROBE_WRITE 1
#define BIOPROBE_OTHER 2
#define BIOPROBE_NDIR 3

struct bioprobe_dev {
	__u64 ops[BIOPROBE_NDIR];   /* completed requests */
	__u64 bytes[BIOPROBE_NDIR]; /* completed bytes (partial too) */
	__u64 errors;		    /* completions with an error status */
	__u64 inflight;		    /* issued and not completed (signed) */
	__u64 untracked; /* issued, but no room to remember it: not timed */
	__u64 unmatched; /* completed, never seen issued (before attach) */
	__u64 lat_sum_ns[BIOPROBE_NDIR];
	/* issue -> completion: the device's service time */
	__u64 lat[BIOPROBE_NDIR][BIOPROBE_SLOTS];
	/* made -> issue: time queued in the block layer (plug, scheduler),
	 * from rq->start_time_ns; empty where the kernel does not stamp it
	 * (no iostats and no scheduler on the queue) */
	__u64 qlat[BIOPROBE_NDIR][BIOPROBE_SLOTS];
	/* requests in flight on the device when one more is issued, log2
	 * slots as above (slot 0: 0 or 1 others) */
	__u64 depth[BIOPROBE_DEPTH_SLOTS];
};

#endif
