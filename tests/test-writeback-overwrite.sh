#!/usr/bin/env bash
# Overwrites racing with write-back: an 8 MiB device with a 2 MiB cache
# and writeback-delay=0, so a chunk is often being uploaded while it is
# written again, and then evicted and fetched back.  Thousands of writes
# - whole chunks, aligned blocks and unaligned pieces - from two
# connections at once on disjoint halves, then everything is read back;
# again after a restart.  A push that snapshots a slot while a write is
# landing and then calls the chunk clean loses that write (the chunk
# reads back as its previous version once evicted).
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import threading
import tierbd_test as t

def writer(h, model, lock, rng, lo, hi, n, errors):
    cs = model.chunk_size
    try:
        for _ in range(n):
            k = rng.random()
            if k < 0.5:      # whole chunks: no fetch, no read-modify-write
                ln = cs * rng.randint(1, 3)
                off = lo + cs * rng.randrange((hi - lo - ln) // cs + 1)
            elif k < 0.8:    # aligned 4 KiB blocks inside a chunk
                off = lo + 4096 * rng.randrange((hi - lo) // 4096)
                ln = 4096 * rng.randint(1, (cs - off % cs) // 4096)
            else:            # unaligned
                off = rng.randrange(lo, hi - 1)
                ln = rng.randint(1, min(hi - off, 2 * cs))
            buf = rng.randbytes(ln)
            h.pwrite(buf, off)
            with lock:
                model.write(off, buf)
    except Exception as e:
        errors.append(e)

def body(wd):
    rng = t.get_rng()
    dev = t.Device(wd, size="8M", chunk_size="64K", cache_size="2M",
                   writeback_delay=0)
    m = dev.model
    dev.start()
    hs = dev.connect(2)
    lock = threading.Lock()
    for rnd in range(3):
        errors = []
        half = m.size // 2
        ts = [threading.Thread(target=writer, args=(
                  h, m, lock, t.random.Random(rng.randrange(1 << 30)),
                  i * half, (i + 1) * half, 700, errors))
              for i, h in enumerate(hs)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        if errors:
            raise t.TestFailure("write failed: %s" % errors[0])
        m.check_all(hs[rnd % 2], "read back, round %d" % rnd)
    dev.stop()
    dev.start()
    m.check_all(dev.connect(), "after restart")
    dev.stop()

t.run(body)
EOF
