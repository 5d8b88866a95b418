#!/usr/bin/env bash
# A device eight times the size of its cache: write all of it with a
# position-dependent pattern (pieces of random size, so writes straddle
# chunks), read it back in order and in random order, restart, read it
# again, overwrite it backwards with a second pattern and check again.
# Every chunk goes through eviction, upload and fetch.  Done for 64 KiB
# and for the default 1 MiB chunks.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import tierbd_test as t

def fill(h, size, rng, tag, backwards=False):
    pieces, off = [], 0
    while off < size:
        n = min(rng.randint(1, 3 * 65536 + 777), size - off)
        pieces.append((off, n))
        off += n
    if backwards:
        pieces.reverse()
    for off, n in pieces:
        h.pwrite(t.pattern(off, n, tag), off)

def check(h, size, rng, tag, what, step=256 * 1024, shuffled=False):
    offs = list(range(0, size, step))
    if shuffled:
        rng.shuffle(offs)
    for off in offs:
        n = min(step, size - off)
        got = h.pread(n, off)
        exp = t.pattern(off, n, tag)
        if got != exp:
            i = next(i for i in range(n) if got[i] != exp[i])
            raise t.TestFailure(
                "%s: wrong data at offset %d (chunk-relative %d): expected "
                "%s got %s" % (what, off + i, (off + i) % CS,
                               exp[i:i + 8].hex(), got[i:i + 8].hex()))

def one(wd, rng, name, size, cs, cache):
    global CS
    CS = t.parse_size(cs)
    dev = t.Device(wd, size=size, chunk_size=cs, cache_size=cache,
                   name=name, writeback_delay=0)
    n = dev.size
    dev.start()
    h = dev.connect()
    fill(h, n, rng, 0x1a1a)
    check(h, n, rng, 0x1a1a, name + " first read")
    check(h, n, rng, 0x1a1a, name + " random-order read", 65536 + 4096,
          shuffled=True)
    dev.stop()
    dev.start()
    h = dev.connect()
    check(h, n, rng, 0x1a1a, name + " after restart", shuffled=True)
    fill(h, n, rng, 0x2b2b, backwards=True)
    h.flush()
    check(h, n, rng, 0x2b2b, name + " after overwrite")
    dev.stop()
    dev.start()
    check(dev.connect(), n, rng, 0x2b2b, name + " after second restart")
    dev.stop()
    if not t.fake_mode():
        objs = dev.store_objects()
        if not objs:
            raise t.TestFailure("%s: the store is empty after writing 8x "
                                "the cache" % name)
        t.log("%s: %d objects in the store" % (name, len(objs)))

def body(wd):
    rng = t.get_rng()
    one(wd, rng, "small", "8M", "64K", "1M")
    one(wd, rng, "default", "32M", "1M", "4M")

t.run(body)
EOF
