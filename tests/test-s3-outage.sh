#!/usr/bin/env bash
# The S3 server goes away for 30 s under load and comes back: the client
# sees no error, writers slow down once dirty data reaches max-dirty,
# and after the server returns everything arrives.
#
# A throwaway Ceph RGW (tests/ceph-s3.sh, own ports and directory); a
# tierbd device on it: 64 MiB, chunk 64K, cache 16M, max-dirty 8M,
# push-threads 4, writeback-delay 100 ms, flush=remote.  One connection
# writes whole chunks (1..4, no read-modify-write, so no write waits for
# a fetch) all over the first 56 MiB at 2 MiB/s (less than the store
# takes, so dirty data stays low while it is up), reading each back now
# and then; another reads a hot 4 MiB region as fast as it can.  Every read is checked against the
# model.  Phases: 15 s before, radosgw killed (rgw-stop -9) for 30 s and
# started again (rgw-start), 20 s after.  Sampled every 0.5 s from the
# control socket (`tierbd -C CACHE status --json`): dirty bytes,
# throttled writes, store retries.  Checks: no client error; during the
# outage dirty data reaches max-dirty (within a chunk or two) and never
# goes far above it; the write rate during the outage is less than a
# fifth of the rate before; the write rate after is back above half of
# the rate before; the store retried; a flush (flush=remote: a commit in
# the store) returns within 120 s of the end; then nbdkit is stopped, the
# cache directory deleted and the device reopened on an empty cache from
# the store alone: every byte equals the model.
# The store retries for 60 s (s3_retry_ms), so a 30 s outage is ridden
# out inside the store.  Skips (77) only if radosgw is not installed.
source "$(dirname "$0")/functions.sh"
requires_harness
command -v radosgw >/dev/null ||
	skip "radosgw is not installed (install it with: $srcdir/ceph-s3.sh install)"
requires curl

# a port nothing listens on (other tests and engineers run their own RGW)
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

export CEPH_S3 CEPH_S3_DIR S3_PORT MON_PORT
CEPH_S3=$srcdir/ceph-s3.sh
CEPH_S3_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tierbd-s3outage.XXXXXX")
S3_PORT=$(free_port)
MON_PORT=$(free_port)
on_exit "rm -rf '$CEPH_S3_DIR'"
on_exit "'$CEPH_S3' stop"
"$CEPH_S3" start
eval "$("$CEPH_S3" env)"
export TIERBD_TEST_STORE=s3 TIERBD_TEST_S3_BUCKET=tierbd-outage
"$CEPH_S3" mkbucket "$TIERBD_TEST_S3_BUCKET"

# Not run_py: it execs, and the cleanups above must run after Python.
"$PY" - <<'EOF'
import json
import os
import random
import socket
import subprocess
import threading
import time

import nbd
import tierbd_test as t

MiB = t.MiB
CS = 64 * 1024
MAX_DIRTY = 8 * MiB
BEFORE, OUTAGE, AFTER = 15.0, 30.0, 20.0
PACE = 2 * MiB    # the writer's rate (bytes/s): below what the store takes
HOT = (56 * MiB, 4 * MiB)        # the reader's region; the writer's is below

def ceph(*args):
    p = subprocess.run([os.environ["CEPH_S3"]] + list(args),
                       capture_output=True, text=True, timeout=180)
    t.log("  %s" % (p.stdout + p.stderr).strip())
    if p.returncode:
        raise t.TestFailure("ceph-s3.sh %s failed" % " ".join(args))

def status(cache, verb="status"):
    """The device's status reply (dict), from the `tierbd` command if it
    is built, else straight from the control socket."""
    cli = os.path.join(os.environ.get("TIERBD_BUILD", ""), "server", "tierbd")
    if os.path.exists(cli):
        p = subprocess.run([cli, "-C", cache, verb, "--json"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode:
            raise t.TestFailure("tierbd %s: %s" % (verb, p.stderr.strip()))
        return json.loads(p.stdout.strip().splitlines()[-1])
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(os.path.join(cache, "control"))
    s.sendall(("tierbd/1 %s\n" % verb).encode())
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1 << 16)
        if not b:
            break
        buf += b
    s.close()
    return json.loads(buf.decode().splitlines()[-1])

def mb(n):
    return n / MiB

def body(wd):
    rng = t.get_rng()
    dev = t.Device(wd, size="64M", chunk_size="64K", cache_size="16M",
                   max_dirty="8M", push_threads=4, writeback_delay=100,
                   flush="remote")
    m = dev.model
    dev.start()
    hw, hr = dev.connect(2)
    # The hot region, and some data everywhere, in the store to start.
    for off in range(0, m.size, 1 * MiB):
        buf = rng.randbytes(1 * MiB)
        hw.pwrite(buf, off)
        m.write(off, buf)
    hw.flush()
    m.flushed()
    t.log("device written and flushed to the store")

    stop = threading.Event()
    errors = []
    writes = []              # (time, bytes) of each completed write
    reads = []               # (time, bytes) of each completed read
    samples = []             # (time, status)
    wrng, rrng = random.Random(rng.random()), random.Random(rng.random())

    def writer():
        nch = HOT[0] // CS
        try:
            while not stop.is_set():
                n = wrng.randint(1, 4)
                c = wrng.randrange(0, nch - n + 1)
                buf = wrng.randbytes(n * CS)
                t0 = time.monotonic()
                hw.pwrite(buf, c * CS)
                m.write(c * CS, buf)
                t1 = time.monotonic()
                writes.append((t1, len(buf), t0, c))
                # paced, without catching up after a slow write
                stop.wait(max(0.0, len(buf) / PACE - (t1 - t0)))
                if wrng.random() < 0.1:
                    m.check_read(c * CS, hw.pread(n * CS, c * CS),
                                 "writer read-back")
        except Exception as e:
            errors.append("writer: %s" % e)

    def reader():
        try:
            while not stop.is_set():
                off = HOT[0] + rrng.randrange(0, HOT[1] // 4096) * 4096
                n = min(rrng.choice((4096, 16384, 65536)), HOT[0] + HOT[1] - off)
                m.check_read(off, hr.pread(n, off), "hot read")
                reads.append((time.monotonic(), n))
        except Exception as e:
            errors.append("reader: %s" % e)

    def sampler():
        # every sample also goes to samples.jsonl in the work directory
        # (kept when the test fails)
        with open(wd.sub("samples.jsonl"), "w") as f:
            while not stop.is_set():
                try:
                    ts, st = time.monotonic(), status(dev.cache, "stats")
                except Exception as e:
                    errors.append("stats: %s" % e)
                    return
                samples.append((ts, st))
                f.write(json.dumps({"t": round(ts - T0, 2), "stats": st})
                        + "\n")
                stop.wait(0.5)

    ths = [threading.Thread(target=f, daemon=True)
           for f in (writer, reader, sampler)]
    st0 = status(dev.cache, "stats")
    T0 = time.monotonic()
    for th in ths:
        th.start()

    def phase(name, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if errors:
                raise t.TestFailure("during %s: %s" % (name, errors[0]))
            time.sleep(0.2)

    phase("the first phase", BEFORE)
    T1 = time.monotonic()
    t.log("killing radosgw (SIGKILL) for %.0f s" % OUTAGE)
    ceph("rgw-stop", "-9")
    phase("the outage", OUTAGE)
    ceph("rgw-start")
    T2 = time.monotonic()
    st_mid = status(dev.cache, "stats")
    phase("the last phase", AFTER)
    T3 = time.monotonic()
    stop.set()
    for th in ths:
        th.join(180)
        if th.is_alive():
            raise t.TestFailure("a client thread is stuck 180 s after the "
                                "end")
    if errors:
        raise t.TestFailure(errors[0])

    def rate(ev, a, b):
        return mb(sum(e[1] for e in ev if a <= e[0] < b)) / (b - a)

    def dirty(a, b):
        return [s["dirty"]["bytes"] for ts, s in samples if a <= ts < b]

    w_before, w_out, w_after = (rate(writes, T0, T1), rate(writes, T1, T2),
                                rate(writes, T2, T3))
    r_before, r_out, r_after = (rate(reads, T0, T1), rate(reads, T1, T2),
                                rate(reads, T2, T3))
    d_before, d_out, d_after = dirty(T0, T1), dirty(T1, T2), dirty(T2, T3)
    longest = max(e[0] - e[2] for e in writes)
    slowest = next(e for e in writes if e[0] - e[2] == longest)
    full = [ts for ts, s in samples if T1 <= ts < T2 and
            s["dirty"]["bytes"] >= MAX_DIRTY - 2 * CS]
    stuck_from = max((e[2] for e in writes if e[0] - e[2] == longest))
    st1 = status(dev.cache, "stats")
    thr = [s["io"]["throttled_writes"] for s in (st0, st_mid, st1)]
    rq = st1["store"]["requests"]
    t.log("phase          seconds  write MiB/s  read MiB/s  dirty MiB max")
    for name, a, b, w, r, d in (("before", T0, T1, w_before, r_before,
                                 d_before),
                                ("outage", T1, T2, w_out, r_out, d_out),
                                ("after", T2, T3, w_after, r_after, d_after)):
        t.log("%-14s %7.1f  %11.2f  %10.2f  %13.2f" % (
            name, b - a, w, r, mb(max(d)) if d else float("nan")))
    t.log("the longest write: chunks %d..%d, %.1f s" % (
        slowest[3], slowest[3] + slowest[1] // CS - 1, longest))
    t.log("dirty data within two chunks of max-dirty %s" % (
        "%.1f s after radosgw was killed" % (full[0] - T1) if full
        else "never during the outage"))
    t.log("max-dirty %.1f MiB; throttled writes %d at the start, %d by the end "
          "of the outage, %d at the end; longest write %.1f s (started "
          "%.1f s into the outage); store: %d retries, %d net errors, %d "
          "errors, %d puts" % (
              mb(MAX_DIRTY), thr[0], thr[1], thr[2], longest,
              stuck_from - T1, rq["retries"], rq["net_errors"],
              rq["errors"], rq["puts"]))

    problems = []
    if not d_out or max(d_out) < MAX_DIRTY - 2 * CS:
        # What the writer waited for instead: the device while the
        # longest write was waiting.
        mid = [st for ts, st in samples if slowest[2] < ts < slowest[0]]
        why = ""
        if len(mid) >= 2:
            a, b = mid[0], mid[-1]
            why = ("; while the longest write waited (%.1f s): dirty %.2f "
                   "MiB, %d free slots, %d hot clean chunks, %d hot dirty, "
                   "evictions +%d, sync evictions +%d, fetches +%d, "
                   "prefetches +%d (samples.jsonl in the work directory)"
                   % (longest, mb(b["dirty"]["bytes"]),
                      b["device"]["slots_free"], b["chunks"]["hot_clean"],
                      b["chunks"]["hot_dirty"],
                      b["cache"]["evictions"] - a["cache"]["evictions"],
                      b["cache"]["sync_evictions"] -
                      a["cache"]["sync_evictions"],
                      b["store"]["fetches"] - a["store"]["fetches"],
                      b["store"]["prefetches"] - a["store"]["prefetches"]))
        problems.append("dirty data never reached max-dirty during the "
                        "outage (max %.2f MiB), yet writes stalled%s" % (
                            mb(max(d_out or [0])), why))
    if d_out and max(d_out) > MAX_DIRTY + 8 * CS:
        problems.append("dirty data went to %.2f MiB, far above max-dirty"
                        % mb(max(d_out)))
    if not w_out < w_before / 5:
        problems.append("writers were not slowed: %.2f MiB/s during the "
                        "outage, %.2f before" % (w_out, w_before))
    if not w_after > w_before / 2:
        problems.append("writes did not recover: %.2f MiB/s after, %.2f "
                        "before" % (w_after, w_before))
    if thr[1] <= thr[0]:
        problems.append("no write was throttled during the outage")
    if rq["retries"] == 0:
        problems.append("the store counted no retries")
    if rq["errors"] - st0["store"]["requests"]["errors"] > 0:
        problems.append("the store returned %d errors to the engine "
                        "(a 30 s outage is inside its 60 s retry window)"
                        % (rq["errors"] - st0["store"]["requests"]["errors"]))
    if problems:
        raise t.TestFailure("; ".join(problems))

    # Everything arrives: flush=remote waits for a commit in the store.
    t0 = time.monotonic()
    done = []
    fl = threading.Thread(target=lambda: done.append(hw.flush()), daemon=True)
    fl.start()
    fl.join(120)
    if not done:
        raise t.TestFailure("the flush (flush=remote) did not return in "
                            "120 s after the outage; status: %s" %
                            json.dumps(status(dev.cache)))
    m.flushed()
    t.log("flush (flush=remote) returned in %.1f s; dirty now %d bytes" % (
        time.monotonic() - t0, status(dev.cache)["dirty"]["bytes"]))
    m.check_all(hr, "before the restart")
    dev.stop()
    dev.forget_cache()
    dev.start()
    m.check_all(dev.connect(), "reopened on an empty cache, from the store")
    t.log("reopened on an empty cache: all %d MiB equal the model" %
          (m.size // MiB))
    dev.stop()

t.run(body)
EOF
