#!/usr/bin/env bash
# A damaged object in the store is never served: write a device 8x its
# cache (so the first chunks are evicted and live only in the store),
# then, with nbdkit stopped, damage the objects of chunks 0..4 in five
# ways (a flipped byte in the middle, at the end and at the start, one
# byte cut off, another chunk's object put in its place).  Reading any of
# them must fail with EIO - twice, whole or in part - and never return
# bytes; a partial write to one (which needs the old content) must fail;
# every other chunk still reads right; a whole-chunk write and a trim
# replace a damaged chunk, and all of it holds after a restart.
# Objects are reached through the harness (Device.store_objects()), so
# the test runs on a dir: store and, with TIERBD_TEST_STORE=s3, on S3.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import errno, os, re
import nbd
import tierbd_test as t

CS = 64 * 1024
KEY = re.compile(r"(?:^|/)chunks/([0-9a-fA-F]+)/[^/]+$")

def objects_by_chunk(dev):
    out = {}
    for o in dev.store_objects():
        mo = KEY.search(o.key)
        if mo:
            out.setdefault(int(mo.group(1), 16), []).append(o)
    return out

def flip(obj, where):
    data = bytearray(obj.read())
    pos = {"middle": len(data) // 2, "end": len(data) - 1, "start": 0}[where]
    data[pos] ^= 0x01
    obj.write(data)

def expect_eio(h, off, n, what):
    try:
        got = h.pread(n, off)
    except nbd.Error as e:
        if e.errnum != errno.EIO:
            raise t.TestFailure("%s: expected EIO, got %s" % (what, e))
        return
    raise t.TestFailure("%s: read of [%d, +%d) returned %s bytes instead "
                        "of EIO" % (what, off, n,
                                    "the right" if got == M.data[off:off + n]
                                    else "WRONG"))

def body(wd):
    global M
    t.require_tierbd("store objects")
    rng = t.get_rng()
    # flush=remote: the flush below returns when a commit naming every
    # chunk is in the store, so the store alone holds the device.
    dev = t.Device(wd, size="8M", chunk_size="64K", cache_size="1M",
                   writeback_delay=0, flush="remote")
    M = m = dev.model
    dev.start()
    h = dev.connect()
    for off in range(0, m.size, 4 * CS):
        buf = rng.randbytes(4 * CS)
        h.pwrite(buf, off)
        m.write(off, buf)
    h.flush()
    m.check_all(h)
    dev.stop()
    # Every chunk must come from the store: the scan-resistant policy
    # keeps the first chunks hot however much is written after them.
    dev.forget_cache()

    objs = objects_by_chunk(dev)
    if not all(c in objs for c in range(6)):
        raise t.TestFailure("no store object for some of chunks 0..5 after "
                            "writing 8x the cache; objects: %s" %
                            dev.store_objects()[:20])
    damage = {0: "middle", 1: "end", 2: "start", 3: "cut", 4: "swap"}
    for c, how in damage.items():
        for o in objs[c]:
            if how == "cut":
                o.truncate(len(o.read()) - 1)
            elif how == "swap":
                o.write(objs[5][-1].read())
            else:
                flip(o, how)
    t.log("damaged %d objects of chunks 0..4" %
          sum(len(objs[c]) for c in damage))

    dev.start()
    h = dev.connect()
    for c, how in damage.items():
        what = "chunk %d (%s)" % (c, how)
        expect_eio(h, c * CS, CS, what)
        expect_eio(h, c * CS + 4096, 512, what + ", part, again")
        expect_eio(h, c * CS - (512 if c else 0), 1024, what + ", straddling")
    for c in range(5, m.size // CS):
        m.check_read(c * CS, h.pread(CS, c * CS), "undamaged chunk %d" % c)

    try:
        h.pwrite(b"x" * 512, 0 * CS + 512)
        raise t.TestFailure("a partial write to a chunk whose object is "
                            "damaged succeeded (its old content is unknown)")
    except nbd.Error as e:
        t.log("partial write to a damaged chunk: %s (expected)" % e)
    expect_eio(h, 0, CS, "chunk 0 after the failed partial write")

    buf = rng.randbytes(CS)          # a whole-chunk write needs no fetch
    h.pwrite(buf, 1 * CS)
    m.write(1 * CS, buf)
    h.trim(CS, 2 * CS)
    m.trim(2 * CS, CS)
    for c in (1, 2):
        m.check_read(c * CS, h.pread(CS, c * CS), "replaced chunk %d" % c)
    h.flush()
    dev.stop()

    dev.start()
    h = dev.connect()
    for c in (0, 3, 4):
        expect_eio(h, c * CS, CS, "chunk %d after restart" % c)
    for c in [1, 2] + list(range(5, m.size // CS)):
        m.check_read(c * CS, h.pread(CS, c * CS), "chunk %d after restart"
                     % c)
    dev.stop()

t.run(body)
EOF
