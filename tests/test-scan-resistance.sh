#!/usr/bin/env bash
# Scan resistance: a working set read at random stays in the cache while
# the whole device (16x the cache) is read once sequentially, as by a
# backup or `grep -r`.  Proof of residency: after the scan, the hot
# chunks' objects are deleted from the store, and reading them still
# returns the right bytes, so they came from the cache.  Also checks that
# the heat survives a clean restart: the same chunks are pulled back
# (warm restart) and served with their store objects gone.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import os
import re
import time

import tierbd_test as t

CS = 64 * 1024
KEY = re.compile(r"(?:^|/)chunks/([0-9a-fA-F]+)/[^/]+$")

def delete_objects(dev, chunks):
    n = 0
    for o in dev.store_objects():      # dir: or S3 (the harness's)
        mo = KEY.search(o.key)
        if mo and int(mo.group(1), 16) in chunks:
            o.delete()
            n += 1
    return n

def body(wd):
    t.require_tierbd("the policy")
    rng = t.get_rng()
    dev = t.Device(wd, size="32M", chunk_size="64K", cache_size="2M",
                   writeback_delay=0, flush="remote")
    m = dev.model
    nchunks = m.size // CS
    dev.start()
    h = dev.connect()
    for off in range(0, m.size, 16 * CS):
        buf = rng.randbytes(16 * CS)
        h.pwrite(buf, off)
        m.write(off, buf)
    h.flush()          # flush=remote: the store holds it all
    dev.stop()
    dev.forget_cache() # start cold: nothing is hot yet
    dev.start()
    h = dev.connect()

    # The working set: every hot chunk read in each of a few seconds, in
    # random order (a chunk read once is a one-hit wonder to the policy,
    # and reads of a chunk within one second count as one use).
    hot = sorted(rng.sample(range(nchunks), 8))
    for rnd in range(4):
        if rnd:
            time.sleep(1.1)
        for c in rng.sample(hot, len(hot)):
            off = c * CS + rng.randrange(0, CS // 4096) * 4096
            m.check_read(off, h.pread(4096, off), "hot chunk %d" % c)

    # One sequential pass over the whole device, 128 KiB at a time.
    for off in range(0, m.size, 128 * 1024):
        m.check_read(off, h.pread(128 * 1024, off), "scan")

    gone = delete_objects(dev, set(hot))
    if gone < len(hot):
        raise t.TestFailure("found %d objects for %d hot chunks" %
                            (gone, len(hot)))
    for c in hot:
        try:
            m.check_read(c * CS, h.pread(CS, c * CS), "hot chunk %d" % c)
        except Exception as e:
            raise t.TestFailure("hot chunk %d was evicted by the scan "
                                "(its read went to the store: %s)" % (c, e))
    t.log("%d hot chunks still resident after a scan of %d chunks "
          "through a %d-slot cache" % (len(hot), nchunks, 2 * 1024 // 64))

    # Heat is persisted: after a clean restart the hot chunks are still
    # cached (the map keeps them), and nothing needs their objects.
    dev.stop()
    dev.start()
    h = dev.connect()
    for c in hot:
        m.check_read(c * CS, h.pread(CS, c * CS), "after restart, hot "
                     "chunk %d" % c)

t.run(body)
EOF
