#!/usr/bin/env bash
# Prometheus metrics: nbdkit with metrics=127.0.0.1:0 (a free port; the
# control socket's status says which) is scraped with curl and the text
# is parsed strictly (exposition format 0.0.4: HELP/TYPE before samples,
# names and labels well formed, no series twice, histogram buckets
# cumulative with +Inf equal to _count, summaries with quantiles).  The
# values must agree with what the test did and with `tierbd stats`:
# requests and bytes, chunk states, dirty bytes, commit lag, cache and
# store latency counts, store requests, the probe's devices when it is
# loaded.  Other paths are 404, other methods 405.  A non-loopback
# metrics= address, and a malformed one, stop nbdkit with a message.
source "$(dirname "$0")/functions.sh"
requires_harness
requires curl
run_py <<'EOF'
import json
import math
import os
import re
import subprocess

import tierbd_test as t

CLI = os.path.join(os.environ.get("TIERBD_BUILD", ""), "server", "tierbd")
MiB = t.MiB
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def curl(url, *args):
    p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}",
                        "--max-time", "20"] + list(args) + [url],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise t.TestFailure("curl %s: %s" % (url, p.stderr))
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    return float(s)


def parse(text):
    """{(name, frozenset(labels)): value} and {family: type}, checked."""
    types, helps, samples = {}, set(), {}
    if not text.endswith("\n"):
        raise t.TestFailure("metrics text does not end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) != 4 or not NAME.match(parts[2]):
                raise t.TestFailure("bad comment, " + where)
            if parts[1] == "TYPE":
                if parts[3] not in TYPES or parts[2] in types:
                    raise t.TestFailure("bad or repeated TYPE, " + where)
                types[parts[2]] = parts[3]
            else:
                helps.add(parts[2])
            continue
        if line.startswith("#") or not line:
            raise t.TestFailure("unexpected line, " + where)
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m:
            raise t.TestFailure("bad sample, " + where)
        name, labels_s, value = m.group(1), m.group(3), m.group(4)
        labels = []
        if labels_s is not None:
            pos = 0
            while pos < len(labels_s):
                lm = LABEL.match(labels_s, pos)
                if not lm:
                    raise t.TestFailure("bad labels, " + where)
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
                if pos < len(labels_s):
                    if labels_s[pos] != ",":
                        raise t.TestFailure("bad labels, " + where)
                    pos += 1
        if len({k for k, _ in labels}) != len(labels):
            raise t.TestFailure("repeated label, " + where)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and \
                    types.get(name[:-len(suffix)]) in ("histogram",
                                                      "summary"):
                fam = name[:-len(suffix)]
        if fam not in types or fam not in helps:
            raise t.TestFailure("sample before its HELP/TYPE, " + where)
        key = (name, frozenset(labels))
        if key in samples:
            raise t.TestFailure("series repeated, " + where)
        try:
            samples[key] = parse_value(value)
        except ValueError:
            raise t.TestFailure("bad value, " + where)
    return samples, types


def check_histograms(samples, types):
    nhist = 0
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name != fam + "_bucket":
                continue
            d = dict(labels)
            le = d.pop("le")
            series.setdefault(frozenset(d.items()), []).append(
                (parse_value(le), v))
        for labels, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            if counts != sorted(counts) or not math.isinf(buckets[-1][0]):
                raise t.TestFailure("%s%s: buckets %s" %
                                    (fam, dict(labels), buckets))
            total = samples.get((fam + "_count", labels))
            if total != buckets[-1][1]:
                raise t.TestFailure("%s%s: +Inf %s, _count %s" %
                                    (fam, dict(labels), buckets[-1][1],
                                     total))
            nhist += 1
    return nhist


def get(samples, _metric, **labels):
    key = (_metric, frozenset(labels.items()))
    if key not in samples:
        raise t.TestFailure("no series %s%s" % (_metric, labels))
    return samples[key]


def expect_eq(what, got, want):
    if got != want:
        raise t.TestFailure("%s: %r, expected %r" % (what, got, want))


def status(dev):
    p = subprocess.run([CLI, "-C", dev.cache, "stats", "--json"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise t.TestFailure("tierbd stats: " + p.stderr)
    return json.loads(p.stdout)


def body(wd):
    t.require_tierbd("the metrics endpoint")
    if not os.access(CLI, os.X_OK):
        t.skip("the tierbd command is not built (%s)" % CLI)
    dev = t.Device(wd, size="32M", chunk_size="1M", cache_size="8M",
                   writeback_delay=600000, writeback_early=False,
                   max_dirty="7M")
    m = dev.model
    dev.start(metrics="127.0.0.1:0")
    st = status(dev)
    addr = st["metrics"]
    if not re.match(r"127\.0\.0\.1:\d+$", addr) or addr.endswith(":0"):
        raise t.TestFailure("metrics address %r" % addr)
    url = "http://%s/metrics" % addr

    h = dev.connect()
    rng = t.get_rng()
    # 16 MiB written into an 8 MiB cache: some chunks go cold (evicted
    # after upload), so reading them back fetches from the store.
    for i in range(16):
        buf = rng.randbytes(MiB)
        h.pwrite(buf, i * MiB)
        m.write(i * MiB, buf)
    h.flush()
    for i in range(16):
        m.check_read(i * MiB, h.pread(MiB, i * MiB))
    h.pwrite(b"x" * 4096, 20 * MiB)     # one dirty chunk to see
    m.write(20 * MiB, b"x" * 4096)

    code, text = curl(url)
    expect_eq("GET /metrics", code, 200)
    samples, types = parse(text)
    nhist = check_histograms(samples, types)
    st = status(dev)
    t.log("%d series in %d families, %d histogram series; probe %s" %
          (len(samples), len(types), nhist, st["probe"]["state"]))

    expect_eq("write requests", get(samples, "tierbd_requests_total",
                                    op="write"), st["io"]["writes"])
    expect_eq("read bytes", get(samples, "tierbd_request_bytes_total",
                                op="read"), 16 * MiB)
    expect_eq("write bytes", get(samples, "tierbd_request_bytes_total",
                                 op="write"), 16 * MiB + 4096)
    hits = get(samples, "tierbd_tier_reads_total", tier="cache")
    misses = get(samples, "tierbd_tier_reads_total", tier="store")
    expect_eq("hits", hits, st["cache"]["hits"])
    expect_eq("misses", misses, st["cache"]["misses"])
    if misses == 0:
        raise t.TestFailure("no chunk came from the store; the test "
                            "should have made some cold")
    ratio = get(samples, "tierbd_hit_ratio", tier="cache")
    if abs(ratio - hits / (hits + misses)) > 1e-5:
        raise t.TestFailure("hit ratio %s for %d hits, %d misses" %
                            (ratio, hits, misses))
    for tier, n in (("cache", hits), ("store", st["store"]["latency"]
                                      ["count"])):
        count = get(samples, "tierbd_latency_seconds_count", tier=tier)
        expect_eq("%s latency count" % tier, count, n)
        p50 = get(samples, "tierbd_latency_seconds", tier=tier,
                  quantile="0.5")
        p99 = get(samples, "tierbd_latency_seconds", tier=tier,
                  quantile="0.99")
        if not 0 < p50 <= p99 < 60:
            raise t.TestFailure("%s latency p50 %s p99 %s" %
                                (tier, p50, p99))
    # Nothing is pushed meanwhile (long write-back delay, no pressure).
    expect_eq("dirty bytes", get(samples, "tierbd_dirty_bytes"),
              st["dirty"]["bytes"])
    expect_eq("chunks hot_dirty", get(samples, "tierbd_chunks",
                                      state="hot_dirty"),
              st["chunks"]["hot_dirty"])
    if st["dirty"]["bytes"] < MiB:
        raise t.TestFailure("the chunk written last is not dirty: %s" %
                            st["dirty"])
    get(samples, "tierbd_commit_lag")
    get(samples, "tierbd_queue_depth", queue="push")
    get(samples, "tierbd_queue_bytes", queue="pull")
    expect_eq("store gets", get(samples, "tierbd_store_requests_total",
                                op="get"), st["store"]["requests"]["gets"])
    puts = get(samples, "tierbd_store_requests_total", op="put")
    expect_eq("store puts", puts, st["store"]["requests"]["puts"])
    if puts < 8:
        raise t.TestFailure("%d store puts for 16 MiB through an 8 MiB "
                            "cache" % puts)
    get(samples, "tierbd_store_outcomes_total", outcome="retry")
    if st["probe"]["loaded"]:
        expect_eq("probe loaded", get(samples, "tierbd_probe_loaded"), 1)
        for d in st["probe"]["devices"]:
            lab = dict(dev="%s" % d["dev"], name=d["name"], role=d["role"])
            get(samples, "tierbd_probe_bytes_total", op="write", **lab)
            get(samples, "tierbd_probe_latency_seconds_count", op="read",
                **lab)
            get(samples, "tierbd_probe_inflight", **lab)
        if nhist == 0:
            raise t.TestFailure("the probe is loaded but no histograms")
    else:
        t.log("note: probe not loaded here (%s)" % st["probe"]["state"])
        expect_eq("probe loaded", get(samples, "tierbd_probe_loaded"), 0)

    code, _ = curl("http://%s/nothing" % addr)
    expect_eq("GET /nothing", code, 404)
    code, _ = curl(url, "-X", "POST", "-d", "x")
    expect_eq("POST /metrics", code, 405)
    # A second scrape parses as well, and the device still serves.
    parse(curl(url)[1])
    m.check_all(h, "after scrapes")
    dev.stop()

    for bad, words in (("0.0.0.0:9100", "loopback"),
                       ("192.0.2.1:9100", "loopback"),
                       ("localhost", "write it as"),
                       ("127.0.0.1:99999", "write it as")):
        try:
            dev.start(metrics=bad)
        except t.TestFailure as e:
            if "metrics=" + bad not in str(e) or words not in str(e):
                raise t.TestFailure("metrics=%s refused without saying "
                                    "why:\n%s" % (bad, e))
        else:
            raise t.TestFailure("metrics=%s was accepted" % bad)
    dev.start(metrics="localhost:0")
    st = status(dev)
    code, text = curl("http://%s/metrics" % st["metrics"])
    expect_eq("localhost:0", code, 200)
    m.check_all(dev.connect(), "after restart")
    dev.stop()

t.run(body)
EOF
