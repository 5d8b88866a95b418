#!/usr/bin/env bash
# Trim, zero and block status (base:allocation).  A new device is one
# hole; written chunks are data; trimming whole chunks makes them holes
# that read as zeros, while the partial chunks at the ends of a trim keep
# their content (trim is advisory there); zero, fast zero (must succeed
# on whole chunks; may say ENOTSUP on part of one) and zero without
# holes read as zeros.  Everything holds after a restart, also for
# chunks that had been evicted to the store when trimmed, and after
# trimming the whole device.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import errno
import nbd
import tierbd_test as t

CS = 64 * 1024

def chunk_kinds(h, size):
    """Per chunk: 'hole' (all HOLE), 'data' (no HOLE) or 'mixed'."""
    kinds = {}
    for off, ln, fl in t.extents(h, 0, size):
        for c in range(off // CS, (off + ln - 1) // CS + 1):
            k = "hole" if fl & nbd.STATE_HOLE else "data"
            if fl & nbd.STATE_HOLE and not fl & nbd.STATE_ZERO:
                raise t.TestFailure("extent [%d, +%d) is a hole that does "
                                    "not read as zeros (flags %d)" %
                                    (off, ln, fl))
            kinds[c] = k if kinds.get(c, k) == k else "mixed"
    return kinds

def expect_kinds(h, m, expect, what):
    kinds = chunk_kinds(h, m.size)
    for c in range(m.size // CS):
        e = expect.get(c, "hole")
        if e != "any" and kinds.get(c) != e:
            raise t.TestFailure("%s: chunk %d is %s, expected %s" %
                                (what, c, kinds.get(c), e))
    t.check_extents(m, h, 0, m.size)
    m.check_all(h, what)

def body(wd):
    t.require_tierbd("hole reporting per chunk")
    rng = t.get_rng()
    dev = t.Device(wd, size="4M", chunk_size="64K", cache_size="1M",
                   writeback_delay=0)
    m = dev.model
    dev.start()
    h = dev.connect()
    if not h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION):
        raise t.TestFailure("base:allocation is not offered")
    expect = {}
    expect_kinds(h, m, expect, "new device")

    def write(off, n):
        buf = rng.randbytes(n)
        h.pwrite(buf, off)
        m.write(off, buf)
        for c in range(off // CS, (off + n - 1) // CS + 1):
            expect[c] = "data"

    for c in (2, 3, 4, 5, 6, 10):
        write(c * CS, CS)
    write(20 * CS + 100, 100)     # a partial write allocates the chunk
    expect_kinds(h, m, expect, "after writes")

    h.trim(CS, 3 * CS)            # one whole chunk
    m.trim(3 * CS, CS)
    expect[3] = "hole"
    h.trim(2 * CS, 4 * CS + CS // 2)   # half of 4, all of 5, half of 6
    m.trim(4 * CS + CS // 2, 2 * CS)
    expect[5] = "hole"
    h.trim(1000, 10 * CS + 1000)  # inside one chunk: advisory, no change
    m.trim(10 * CS + 1000, 1000)
    expect_kinds(h, m, expect, "after trims")

    h.zero(CS, 2 * CS)            # may trim
    m.zero(2 * CS, CS)
    expect[2] = "any"
    if not h.can_fast_zero():
        raise t.TestFailure("fast zero is not offered")
    h.zero(CS, 6 * CS, nbd.CMD_FLAG_FAST_ZERO)   # whole chunk: must work
    m.zero(6 * CS, CS)
    expect[6] = "any"
    try:
        h.zero(200, 10 * CS + 100, nbd.CMD_FLAG_FAST_ZERO)
        m.zero(10 * CS + 100, 200)
    except nbd.Error as e:
        if e.errnum not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        t.log("fast zero of part of a chunk: ENOTSUP (allowed)")
    h.zero(CS, 20 * CS, nbd.CMD_FLAG_NO_HOLE)
    m.zero(20 * CS, CS)
    expect[20] = "any"
    expect_kinds(h, m, expect, "after zeros")
    h.flush()
    dev.stop()

    dev.start()
    h = dev.connect()
    expect_kinds(h, m, expect, "after restart")

    # Fill the second half: the first chunks are evicted to the store.
    for c in range(32, 64):
        write(c * CS, CS)
    h.trim(CS, 4 * CS)            # chunk 4 is cold by now, most likely
    m.trim(4 * CS, CS)
    expect[4] = "hole"
    h.trim(16 * CS, 40 * CS)      # 40..55, cold and hot
    m.trim(40 * CS, 16 * CS)
    for c in range(40, 56):
        expect[c] = "hole"
    expect_kinds(h, m, expect, "after trimming cold chunks")
    dev.stop()
    dev.start()
    h = dev.connect()
    expect_kinds(h, m, expect, "after trimming cold chunks and restart")

    h.trim(m.size, 0)
    m.trim(0, m.size)
    expect = {}
    expect_kinds(h, m, expect, "after trimming everything")
    dev.stop()
    dev.start()
    expect_kinds(dev.connect(), m, expect, "everything trimmed, restarted")
    dev.stop()

t.run(body)
EOF
