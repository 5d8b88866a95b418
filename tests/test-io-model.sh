#!/usr/bin/env bash
# Random reads, writes (unaligned, multi-chunk), FUA writes, flushes,
# trims, zeros and block status on three connections at once, checked
# against a model of the device; then concurrent requests on all
# connections; the whole device is read back after every clean restart.
# The cache is a quarter of the device, so chunks are evicted, uploaded
# and fetched back from the store during the run; each round uses another
# write-back delay (0 ms: uploads race with the writes).
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import tierbd_test as t

def body(wd):
    rng = t.get_rng()
    dev = t.Device(wd, size="16M", chunk_size="64K", cache_size="4M",
                   writeback_delay=20, push_threads=2)
    for rnd, delay in enumerate((0, 20, 1000, 5)):
        dev.start(writeback_delay=delay)
        hs = dev.connect(3)
        if rnd == 0:
            h = hs[0]
            if not t.fake_mode():
                for f in ("can_multi_conn", "can_flush", "can_fua",
                          "can_trim", "can_zero", "can_fast_zero"):
                    if not getattr(h, f)():
                        raise t.TestFailure("%s() is false" % f)
            # A new device reads as zeros everywhere.
            dev.model.check_all(h, "new device")
        else:
            dev.model.check_all(hs[1], "after restart %d" % rnd)
        t.random_ops(dev.model, hs, rng, 500)
        for _ in range(6):
            t.parallel_batch(dev.model, hs, rng)
        t.random_ops(dev.model, hs, rng, 200)
        dev.model.check_all(hs[2], "end of round %d" % rnd)
        dev.stop()
        t.log("round %d: %d writes so far" % (rnd, dev.model.ops))
    dev.start()
    dev.model.check_all(dev.connect(), "final")
    dev.stop()

t.run(body)
EOF
