#!/usr/bin/env bash
# Background work yields to a slow cache disk.  With
# probe-latency-limit=0.001 (1 us) every busy window of the cache disk
# is "overloaded", so write-back pushes are paced: stats count the
# pauses, status says so, and everything is still pushed in the end.
# With probe-latency-limit=0 nothing is paced.  A dd with O_DIRECT
# beside the cache keeps the disk busy enough (16 requests a window)
# for the p99 to be measured.  Skipped where the probe cannot load or
# the work directory is on no block device.
source "$(dirname "$0")/functions.sh"
requires_harness
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
            "no bpf() system call", "not on a block device")


def stats(dev, verb="stats"):
    p = subprocess.run([CLI, "-C", dev.cache, verb, "--json"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise t.TestFailure("tierbd %s: %s%s" % (verb, p.stdout, p.stderr))
    return json.loads(p.stdout)


def run(wd, name, limit):
    dev = t.Device(wd, size="64M", chunk_size="1M", cache_size="64M",
                   name=name, writeback_delay=0, push_threads=2)
    dev.start(probe="auto", probe_latency_limit=limit)
    st = stats(dev)
    why = st["probe"]["state"]
    if not st["probe"]["loaded"]:
        for w in NOT_HERE:
            if w in why:
                t.skip("the kernel I/O probe cannot load here: " + why)
        raise t.TestFailure("probe not loaded: " + why)
    if not any(d["role"] == "cache" for d in st["probe"]["devices"]):
        t.skip("the work directory is not on a block device: no cache "
               "disk to pace by (%s)" % st["probe"]["devices"])
    busy = subprocess.Popen(
        ["dd", "if=/dev/zero", "of=" + wd.sub(name + "-busy"), "bs=4k",
         "count=200000", "oflag=direct", "status=none"])
    overloaded = False
    try:
        if limit != "0":
            # Wait for a window that shows the disk busy: pacing acts on
            # the last evaluated window.
            deadline = time.monotonic() + 20
            while not stats(dev, "status")["probe"]["overloaded"]:
                if time.monotonic() > deadline:
                    raise t.TestFailure("a 1 us limit and a busy disk, "
                                        "but never overloaded: %s" %
                                        stats(dev, "status")["probe"])
                time.sleep(0.1)
        h = dev.connect()
        for i in range(24):
            h.pwrite(bytes([i + 1]) * MiB, i * MiB)
        h.flush()
        deadline = time.monotonic() + 120
        while True:
            s = stats(dev, "status")
            overloaded |= s["probe"]["overloaded"]
            if s["dirty"]["bytes"] == 0:
                break
            if time.monotonic() > deadline:
                raise t.TestFailure("still %d bytes dirty after 120 s" %
                                    s["dirty"]["bytes"])
            time.sleep(0.1)
    finally:
        busy.kill()
        busy.wait()
    st = stats(dev)
    t.log("limit %s ms: paced %d times, %d ms; probe %s, cache p99 %d ns, "
          "uploads %d" % (limit, st["pacing"]["paced"],
                          st["pacing"]["paced_ms"], st["probe"]["state"],
                          st["probe"]["cache_p99_ns"],
                          st["store"]["uploads"]))
    if st["store"]["uploads"] < 24:
        raise t.TestFailure("only %d uploads" % st["store"]["uploads"])
    for i in (0, 23):
        if h.pread(4096, i * MiB) != bytes([i + 1]) * 4096:
            raise t.TestFailure("chunk %d reads back wrong" % i)
    dev.stop()
    return st, overloaded


def body(wd):
    t.require_tierbd("the kernel probe")
    if not os.access(CLI, os.X_OK):
        t.skip("the tierbd command is not built (%s)" % CLI)
    st, overloaded = run(wd, "paced", "0.001")
    if st["probe"]["latency_limit_us"] != 1:
        raise t.TestFailure("limit %d us, expected 1" %
                            st["probe"]["latency_limit_us"])
    if st["pacing"]["paced"] == 0 or st["pacing"]["paced_ms"] == 0:
        raise t.TestFailure("a 1 us limit paced nothing: %s" %
                            st["pacing"])
    if not overloaded:
        raise t.TestFailure("status never said the cache was overloaded")
    st, _ = run(wd, "free", "0")
    if st["pacing"]["paced"] != 0:
        raise t.TestFailure("probe-latency-limit=0 paced %d pushes" %
                            st["pacing"]["paced"])

t.run(body)
EOF
