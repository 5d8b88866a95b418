#!/usr/bin/env bash
# Durability across kill -9: random writes, FUA writes, trims, zeros and
# flushes on two connections (flushes often on the other connection
# than the writes: multi-conn), then more writes in flight from two
# threads while nbdkit is killed with SIGKILL.  After each restart every
# byte must hold a value allowed by the model: what it had at the last
# completed flush, or a value written since (never older than a FUA
# write), and two reads must agree.  Eight rounds (TIERBD_CRASH_ROUNDS;
# the extended suite runs 60); background write-back
# runs with a short delay so uploads and evictions are under way when
# the process dies.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import os, threading, time
import nbd
import tierbd_test as t

WEIGHTS = (("read", 20), ("write", 40), ("fua", 6), ("flush", 10),
           ("trim", 6), ("zero", 6), ("extents", 2))

def inflight_writes(dev, hs, rng, seconds):
    """Writes from one thread per connection, each in its own half of
    the device, still running when nbdkit is killed.  Each is put in the
    model before it is sent: not acknowledged, so it may or may not
    survive, which is what the model allows for writes since a flush."""
    m = dev.model
    lock = threading.Lock()
    stop = threading.Event()
    half = m.size // len(hs)
    seeds = [rng.randrange(1 << 30) for _ in hs]

    def run(i, h):
        r = t.random.Random(seeds[i])
        while not stop.is_set():
            off, n = t.random_range(r, half, m.chunk_size, 256 * 1024)
            off += i * half
            buf = r.randbytes(n)
            with lock:
                m.write(off, buf)
            try:
                h.pwrite(buf, off)
            except nbd.Error:
                return  # the server is gone
    ts = [threading.Thread(target=run, args=(i, h)) for i, h in enumerate(hs)]
    for th in ts:
        th.start()
    time.sleep(seconds)
    dev.crash()
    stop.set()
    for th in ts:
        th.join()

def body(wd):
    rng = t.get_rng()
    dev = t.Device(wd, size="8M", chunk_size="64K", cache_size="2M",
                   writeback_delay=5, push_threads=2)
    for rnd in range(int(os.environ.get("TIERBD_CRASH_ROUNDS", "8"))):
        dev.start(writeback_delay=rng.choice((0, 5, 50)))
        hs = dev.connect(2)
        if rnd:
            dev.model.check_after_crash(lambda o, n: hs[1].pread(n, o))
            t.log("round %d: content after the crash is allowed" % rnd)
        t.random_ops(dev.model, hs, rng, rng.randint(100, 400), WEIGHTS)
        if rng.random() < 0.5:
            hs[rng.randrange(2)].flush()
            dev.model.flushed()
        # Let write-back run for a moment, sometimes.
        time.sleep(rng.choice((0, 0.05, 0.3)))
        inflight_writes(dev, hs, rng, rng.choice((0.01, 0.1, 0.4)))
        t.log("round %d: killed at model op #%d, last flush after op #%d" %
              (rnd, dev.model.ops, (dev.model.flush_ops or [0])[-1]))
    dev.start()
    h = dev.connect()
    dev.model.check_after_crash(lambda o, n: h.pread(n, o))
    # After a clean stop nothing is lost at all.
    t.random_ops(dev.model, [h], rng, 200, WEIGHTS)
    dev.stop()
    dev.start()
    dev.model.check_all(dev.connect(), "after clean restart")
    dev.stop()

t.run(body)
EOF
