#!/usr/bin/env bash
# The control socket and the `tierbd` command against a running nbdkit.
#   - ping, status, stats as tables and as JSON, checked against what
#     the test did (bytes written, dirty data, hits and their latency);
#   - flush; drain: progress lines whose dirty bytes never grow, then
#     nothing dirty, the commit caught up; pin/unpin and their errors;
#     top prints frames;
#   - malformed and unknown requests on the raw socket each get an error
#     reply and the connection and the device keep serving; an over-long
#     line is answered and closed; more than 16 connections are told to
#     come back; the command's exit codes (1 refused, 2 usage);
#   - control=PATH, control=off, and a control= that is a regular file
#     (nbdkit refuses to start and says so).
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import json
import os
import socket
import subprocess
import time

import tierbd_test as t

CLI = os.path.join(os.environ.get("TIERBD_BUILD", ""), "server", "tierbd")
MiB = t.MiB


def tierbd(*args, sock=None, cache=None, expect=0):
    cmd = [CLI] + (["-s", sock] if sock else ["-C", cache]) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != expect:
        raise t.TestFailure("%s: exit %d, expected %d\nstdout: %s\n"
                            "stderr: %s" % (" ".join(cmd), p.returncode,
                                            expect, p.stdout, p.stderr))
    return p


def js(dev, verb):
    return json.loads(tierbd(verb, "--json", cache=dev.cache).stdout)


def expect_eq(what, got, want):
    if got != want:
        raise t.TestFailure("%s: %r, expected %r" % (what, got, want))


class Raw:
    """A raw connection to the control socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(30)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")

    def ask(self, line):
        self.f.write(line + b"\n")
        self.f.flush()
        reply = self.f.readline()
        if not reply:
            raise t.TestFailure("no reply to %r" % line)
        return json.loads(reply)

    def close(self):
        self.f.close()
        self.s.close()


BAD = [
    (b"", "EBADMSG"),
    (b"stats", "EBADMSG"),
    (b"tierbd/1", "EBADMSG"),
    (b"tierbd/1 ", "EBADMSG"),
    (b"tierbd/01 stats", "EBADMSG"),
    (b"tierbd/x stats", "EBADMSG"),
    (b"tierbd/2 stats", "EPROTONOSUPPORT"),
    (b"tierbd/1 STATS", "EBADMSG"),
    (b"tierbd/1 explode", "EOPNOTSUPP"),
    (b"tierbd/1 stats now", "EINVAL"),
    (b"tierbd/1  stats", "EBADMSG"),
    (b"tierbd/1 stats\r", "EBADMSG"),
    (b"tierbd/1 pin", "EINVAL"),
    (b"tierbd/1 pin 10", "EINVAL"),
    (b"tierbd/1 pin 10-5", "EINVAL"),
    (b"tierbd/1 pin 1-1", "EINVAL"),
    (b"tierbd/1 pin -1-5", "EINVAL"),
    (b"tierbd/1 pin 01-5", "EINVAL"),
    (b"tierbd/1 pin 0-99999999999999999999", "ERANGE"),
    (b"tierbd/1 pin 0-4096 0-8192", "EINVAL"),
    (b"tierbd/1 pin 0-1099511627776", "ERANGE"),   # past the end
    (b"tierbd/1 \x00stats", "EBADMSG"),
    (b"\xff\xfe{\"v\":1}", "EBADMSG"),
    (b"{\"v\":1,\"verb\":\"stats\"}", "EBADMSG"),
]


def check_malformed(dev, h, m):
    r = Raw(os.path.join(dev.cache, "control"))
    for line, errno in BAD:
        rep = r.ask(line)
        if rep.get("ok") is not False or rep.get("errno") != errno or \
                not rep.get("error") or rep.get("v") != 1:
            raise t.TestFailure("%r: reply %r, expected errno %s" %
                                (line, rep, errno))
    expect_eq("ping after bad requests", r.ask(b"tierbd/1 ping")["ok"],
              True)
    # The device keeps serving.
    buf = os.urandom(MiB)
    h.pwrite(buf, 5 * MiB)
    m.write(5 * MiB, buf)
    m.check_all(h, "after malformed control requests")
    # An over-long line: an error, then the server closes.
    r.f.write(b"tierbd/1 " + b"a" * 4000 + b"\n")
    r.f.flush()
    rep = json.loads(r.f.readline())
    expect_eq("over-long line", (rep["ok"], rep["errno"]),
              (False, "EBADMSG"))
    expect_eq("after an over-long line", r.f.readline(), b"")
    r.close()
    # More connections than the server takes: the extra one is told.
    # The server holds a connection's slot until its thread has seen the
    # close (the over-long line's above drains what is left first), so
    # a slot may still be busy for a moment: such a refusal (EBUSY, or
    # the server's close racing our request) is retried, for up to 10 s.
    conns = []
    deadline = time.monotonic() + 10
    while len(conns) < 16:
        c = Raw(os.path.join(dev.cache, "control"))
        try:
            rep = c.ask(b"tierbd/1 ping")
        except (OSError, t.TestFailure):
            rep = {"errno": "EBUSY"}
        if rep.get("ok") is True:
            conns.append(c)
            continue
        c.close()
        if rep.get("errno") != "EBUSY" or time.monotonic() > deadline:
            raise t.TestFailure("ping on connection %d of 16: %r" %
                                (len(conns) + 1, rep))
        time.sleep(0.1)
    extra = Raw(os.path.join(dev.cache, "control"))
    line = extra.f.readline()
    rep = json.loads(line) if line else {}
    expect_eq("17th connection", rep.get("errno"), "EBUSY")
    extra.close()
    for c in conns:
        c.close()
    expect_eq("ping after", js(dev, "ping")["ok"], True)
    m.check_all(h, "after many control connections")


def body(wd):
    t.require_tierbd("the control socket")
    if not os.access(CLI, os.X_OK):
        t.skip("the tierbd command is not built (%s)" % CLI)
    rng = t.get_rng()
    dev = t.Device(wd, size="64M", chunk_size="1M", cache_size="64M",
                   writeback_delay=600000, writeback_early=False,
                   push_threads=1, max_dirty="60M",
                   probe="auto")
    m = dev.model
    dev.start()
    h = dev.connect()

    out = tierbd("ping", cache=dev.cache).stdout
    if "tierbd" not in out or "64.0 MiB" not in out:
        raise t.TestFailure("ping: " + out)
    st = js(dev, "status")
    expect_eq("status ok", (st["v"], st["ok"], st["verb"]),
              (1, True, "status"))
    expect_eq("new device dirty bytes", st["dirty"]["bytes"], 0)

    # 40 dirty chunks, kept dirty by the long write-back delay.
    for i in range(40):
        buf = rng.randbytes(MiB)
        h.pwrite(buf, i * MiB)
        m.write(i * MiB, buf)
    st = js(dev, "status")
    expect_eq("dirty bytes", st["dirty"]["bytes"], 40 * MiB)
    expect_eq("dirty chunks", st["dirty"]["chunks"], 40)
    expect_eq("push queue", st["queues"]["push"], 40)
    text = tierbd("status", cache=dev.cache).stdout
    for word in ("queues", "dirty", "40.0 MiB", "commit", "probe"):
        if word not in text:
            raise t.TestFailure("status lacks %r:\n%s" % (word, text))

    for i in range(8):
        m.check_read(i * MiB, h.pread(MiB, i * MiB))
    st = js(dev, "stats")
    expect_eq("writes", st["io"]["writes"], 40)
    expect_eq("write bytes", st["io"]["write_bytes"], 40 * MiB)
    expect_eq("read bytes", st["io"]["read_bytes"], 8 * MiB)
    if st["cache"]["hits"] < 8 or st["cache"]["latency"]["count"] < 8:
        raise t.TestFailure("hits not counted: %s" % st["cache"])
    hist = st["cache"]["latency"]["hist"]
    expect_eq("cache latency histogram total", sum(hist),
              st["cache"]["latency"]["count"])
    text = tierbd("stats", cache=dev.cache).stdout
    for word in ("chunks", "io", "cache", "store", "hit ratio", "latency",
                 "errors"):
        if word not in text:
            raise t.TestFailure("stats lacks %r:\n%s" % (word, text))

    flushes = st["io"]["flushes"]
    out = tierbd("flush", cache=dev.cache).stdout
    if "flushed" not in out:
        raise t.TestFailure("flush: " + out)
    expect_eq("flushes", js(dev, "stats")["io"]["flushes"], flushes + 1)

    seq = js(dev, "status")["commit"]["seq"]
    p = tierbd("drain", "--json", cache=dev.cache)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    final = lines[-1]
    progress = [l["dirty_bytes"] for l in lines[:-1]]
    t.log("drain: progress %s, final %s" % (progress, final))
    if any(l.get("progress") != "drain" for l in lines[:-1]):
        raise t.TestFailure("drain: unexpected lines %s" % lines)
    if not progress or progress[0] != 40 * MiB:
        raise t.TestFailure("drain: the first progress line should show "
                            "40 MiB dirty: %s" % progress)
    if progress != sorted(progress, reverse=True):
        raise t.TestFailure("drain: dirty bytes grew: %s" % progress)
    expect_eq("drain ok", (final["ok"], final["verb"]), (True, "drain"))
    expect_eq("drained bytes", final["drained_bytes"], 40 * MiB)
    st = js(dev, "status")
    expect_eq("dirty after drain", st["dirty"]["bytes"], 0)
    expect_eq("commit lag after drain", st["commit"]["lag"], 0)
    if st["commit"]["seq"] <= seq:
        raise t.TestFailure("drain made no commit: %d -> %d" %
                            (seq, st["commit"]["seq"]))
    # The human form shows progress and the total.
    for i in range(40, 56):
        buf = rng.randbytes(MiB)
        h.pwrite(buf, i * MiB)
        m.write(i * MiB, buf)
    out = tierbd("drain", cache=dev.cache).stdout
    if "drained 16.0 MiB" not in out:
        raise t.TestFailure("drain: " + out)

    out = tierbd("pin", "0-4M", cache=dev.cache).stdout
    if "pinned" not in out:
        raise t.TestFailure("pin: " + out)
    expect_eq("pinned chunks", js(dev, "stats")["chunks"]["pinned"], 4)
    tierbd("unpin", "0-4M", cache=dev.cache)
    expect_eq("pinned after unpin", js(dev, "stats")["chunks"]["pinned"], 0)
    p = tierbd("pin", "0-1T", cache=dev.cache, expect=1)
    if "past the end" not in p.stderr:
        raise t.TestFailure("pin past the end: " + p.stderr)
    tierbd("pin", "4M-1M", cache=dev.cache, expect=2)
    tierbd("frobnicate", cache=dev.cache, expect=2)
    tierbd("stats", "extra", cache=dev.cache, expect=2)
    tierbd("status", sock=wd.sub("nowhere.sock"), expect=1)

    out = tierbd("top", "-n", "2", "-d", "0.2", cache=dev.cache).stdout
    if out.count("tierbd top") != 2 or "reads/s" not in out:
        raise t.TestFailure("top:\n" + out)

    check_malformed(dev, h, m)
    m.check_all(h, "end of the first run")
    dev.stop()
    if os.path.exists(os.path.join(dev.cache, "control")):
        raise t.TestFailure("the control socket outlived nbdkit")

    # control=PATH, control=off, control= a regular file.
    path = wd.sub("ctl.sock")
    dev.start(control=path)
    st = json.loads(tierbd("status", "--json", sock=path).stdout)
    expect_eq("status on control=PATH", st["ok"], True)
    if os.path.exists(os.path.join(dev.cache, "control")):
        raise t.TestFailure("control=PATH also made CACHE_DIR/control")
    m.check_all(dev.connect(), "with control=PATH")
    dev.stop()
    dev.start(control="off")
    if os.path.exists(os.path.join(dev.cache, "control")):
        raise t.TestFailure("control=off made a socket")
    dev.stop()
    plain = wd.sub("plain-file")
    open(plain, "w").close()
    try:
        dev.start(control=plain)
    except t.TestFailure as e:
        if "control=" not in str(e) or "not a socket" not in str(e):
            raise t.TestFailure("control=FILE refused without saying "
                                "why:\n%s" % e)
    else:
        raise t.TestFailure("control=%s (a regular file) was accepted" %
                            plain)
    dev.start()
    m.check_all(dev.connect(), "after the control= runs")
    dev.stop()

t.run(body)
EOF
