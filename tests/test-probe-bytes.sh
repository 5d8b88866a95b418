#!/usr/bin/env bash
# The kernel I/O probe counts what the block layer does.  A loop device
# over a file in the work directory is watched (probe-dev=); a known dd
# with O_DIRECT (64 MiB written, then 32 MiB read) must show up in the
# probe's byte counters within 1%, with non-empty latency histograms
# whose counts match the operations, and nothing left in flight.  Again
# with the raw_tp fallback (TIERBD_PROBE_ATTACH=raw_tp) instead of
# tp_btf, and through a partition (probe-dev=/dev/loopNp1, a 259:N
# device, must watch loopN, as the block layer names requests: its
# bytes are counted there).  The cache directory's own disk is watched
# as role "cache" when it is on a block device.  probe=off loads
# nothing; probe=on with a probe-dev= that is no block device refuses to
# start and says why.
#
# Skipped (77) only where the probe cannot load here: BPF not permitted
# (needs CAP_BPF and CAP_PERFMON, or root), no kernel BTF, a build
# without the probe, or no loop device; the reason is printed.
source "$(dirname "$0")/functions.sh"
requires_harness
requires losetup
requires dd
run_py <<'EOF'
import json
import os
import subprocess
import time

import tierbd_test as t

CLI = os.path.join(os.environ.get("TIERBD_BUILD", ""), "server", "tierbd")
MiB = t.MiB
NOT_HERE = ("not permitted", "has no BTF", "has no kernel probe",
            "no bpf() system call", "cannot map BPF global data")


def cli(dev, *args):
    p = subprocess.run([CLI, "-C", dev.cache] + list(args),
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise t.TestFailure("tierbd %s: exit %d: %s%s" %
                            (" ".join(args), p.returncode, p.stdout,
                             p.stderr))
    return p.stdout


def stats(dev):
    return json.loads(cli(dev, "stats", "--json"))


def probe_dev(st, name):
    for d in st["probe"]["devices"]:
        if d["name"] == name:
            return d
    raise t.TestFailure("the probe does not watch %s: %s" %
                        (name, [d["name"] for d in st["probe"]["devices"]]))


def start_or_skip(dev, **opts):
    try:
        dev.start(**opts)
    except t.TestFailure as e:
        for why in NOT_HERE:
            if why in str(e):
                line = [l for l in str(e).splitlines() if why in l]
                t.skip("the kernel I/O probe cannot load here: " +
                       (line[0] if line else why))
        raise


def dd(*args):
    p = subprocess.run(["dd", "status=none"] + list(args),
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise t.TestFailure("dd %s: %s" % (" ".join(args), p.stderr))


def within(what, got, want, tol=0.01):
    if abs(got - want) > tol * want:
        raise t.TestFailure("%s: the probe counted %d bytes, dd moved %d "
                            "(more than %.0f%% apart)" %
                            (what, got, want, tol * 100))
    t.log("%s: %d bytes counted for %d moved" % (what, got, want))


def check_hist(d, op):
    lat = d[op]["latency"]
    hist = lat["hist"]
    if not any(hist):
        raise t.TestFailure("%s latency histogram is empty: %s" % (op, lat))
    if sum(hist) != lat["count"] or lat["count"] != d[op]["ops"]:
        raise t.TestFailure("%s: histogram total %d, count %d, ops %d" %
                            (op, sum(hist), lat["count"], d[op]["ops"]))
    if not 0 < lat["p50_ns"] <= lat["p99_ns"]:
        raise t.TestFailure("%s: p50 %d, p99 %d" %
                            (op, lat["p50_ns"], lat["p99_ns"]))


def wait_idle(dev, name):
    """In flight drops to 0 once dd is done (completions may trail)."""
    for _ in range(50):
        d = probe_dev(stats(dev), name)
        if d["inflight"] == 0:
            return d
        time.sleep(0.1)
    raise t.TestFailure("%s: %d requests still in flight after dd" %
                        (name, d["inflight"]))


def measure(dev, loop, name, write_mib, read_mib):
    before = probe_dev(stats(dev), name)
    dd("if=/dev/zero", "of=" + loop, "bs=1M", "count=%d" % write_mib,
       "oflag=direct")
    dd("if=" + loop, "of=/dev/null", "bs=1M", "count=%d" % read_mib,
       "iflag=direct")
    after = wait_idle(dev, name)
    within("writes", after["write"]["bytes"] - before["write"]["bytes"],
           write_mib * MiB)
    within("reads", after["read"]["bytes"] - before["read"]["bytes"],
           read_mib * MiB)
    for op in ("read", "write"):
        if after[op]["ops"] <= before[op]["ops"]:
            raise t.TestFailure("no %s requests counted" % op)
        check_hist(after, op)
    if after["errors"]:
        raise t.TestFailure("%d errors counted" % after["errors"])


def partition(wd, dev):
    """probe-dev= a partition: the whole disk is watched, as the block
    layer names it (a loop partition is 259:N, its disk 7:M)."""
    img = wd.sub("part.img")
    with open(img, "wb") as f:
        f.truncate(64 * MiB)
        # An MBR with one Linux partition from sector 2048, 48 MiB long.
        mbr = bytearray(512)
        mbr[446:462] = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + \
            (2048).to_bytes(4, "little") + \
            (48 * MiB // 512).to_bytes(4, "little")
        mbr[510:512] = b"\x55\xaa"
        f.seek(0)
        f.write(mbr)
    p = subprocess.run(["losetup", "-P", "-f", "--show", img],
                       capture_output=True, text=True)
    if p.returncode != 0:
        t.log("note: no partitioned loop device (%s); partition mapping "
              "not tested" % p.stderr.strip())
        return
    loop = p.stdout.strip()
    part = loop + "p1"
    try:
        if not os.path.exists(part):
            subprocess.run(["partx", "-a", loop], capture_output=True)
        if not os.path.exists(part):
            t.log("note: %s did not appear; partition mapping not tested"
                  % part)
            return
        dev.start(probe="on", probe_dev=part)
        st = stats(dev)
        name = os.path.basename(loop)
        d = probe_dev(st, name)
        if d["role"] != "watch" or not d["dev"].startswith("7:"):
            raise t.TestFailure("%s mapped to %s" % (part, d))
        before = d["write"]["bytes"]
        dd("if=/dev/zero", "of=" + part, "bs=1M", "count=16",
           "oflag=direct")
        after = wait_idle(dev, name)
        within("writes to %s, counted on %s" % (part, name),
               after["write"]["bytes"] - before, 16 * MiB)
        dev.stop()
    finally:
        subprocess.run(["partx", "-d", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop])


def body(wd):
    t.require_tierbd("the kernel probe")
    if not os.access(CLI, os.X_OK):
        t.skip("the tierbd command is not built (%s)" % CLI)
    img = wd.sub("loop.img")
    with open(img, "wb") as f:
        f.truncate(128 * MiB)
    p = subprocess.run(["losetup", "-f", "--show", img],
                       capture_output=True, text=True)
    if p.returncode != 0:
        t.skip("no loop device: %s" % p.stderr.strip())
    loop = p.stdout.strip()
    name = os.path.basename(loop)
    try:
        dev = t.Device(wd, size="16M", chunk_size="1M", cache_size="8M")
        start_or_skip(dev, probe="on", probe_dev=loop)
        st = stats(dev)
        t.log("probe: " + st["probe"]["state"])
        if not st["probe"]["loaded"] or "tp_btf" not in st["probe"]["state"]:
            raise t.TestFailure("probe=on but: %s" % st["probe"])
        roles = {d["name"]: d["role"] for d in st["probe"]["devices"]}
        if roles.get(name) != "watch":
            raise t.TestFailure("%s not watched: %s" % (loop, roles))
        if "cache" not in roles.values():
            t.log("note: the work directory is not on a block device; "
                  "no cache disk to watch (%s)" % roles)
        measure(dev, loop, name, 64, 32)
        text = cli(dev, "status")
        if name not in text or "loaded" not in text:
            raise t.TestFailure("status does not show the probe:\n" + text)
        dev.stop()

        os.environ["TIERBD_PROBE_ATTACH"] = "raw_tp"
        try:
            dev.start(probe="on", probe_dev=loop)
        finally:
            del os.environ["TIERBD_PROBE_ATTACH"]
        st = stats(dev)
        t.log("probe: " + st["probe"]["state"])
        if "raw_tp" not in st["probe"]["state"]:
            raise t.TestFailure("the raw_tp fallback was not used: %s" %
                                st["probe"]["state"])
        measure(dev, loop, name, 16, 16)
        dev.stop()

        partition(wd, dev)

        dev.start(probe="off")
        st = stats(dev)
        if st["probe"]["loaded"] or st["probe"]["devices"]:
            raise t.TestFailure("probe=off loaded it: %s" % st["probe"])
        dev.stop()

        try:
            dev.start(probe="on", probe_dev=img)
        except t.TestFailure as e:
            if "probe-dev=" not in str(e) or "not a block device" \
                    not in str(e):
                raise t.TestFailure("probe-dev=FILE refused without saying "
                                    "why:\n%s" % e)
        else:
            raise t.TestFailure("probe-dev=%s (a file) was accepted" % img)
    finally:
        subprocess.run(["losetup", "-d", loop])

t.run(body)
EOF
