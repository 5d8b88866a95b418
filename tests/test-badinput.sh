#!/usr/bin/env bash
# Bad parameters are refused at start-up: for each case nbdkit exits
# non-zero (not by a signal), the message names the offending parameter,
# and nothing on disk changes - the cache and store directories (and
# their absence) are compared by listing and checksums before and after.
# Cases: missing or malformed sizes, chunk-size not a power of two or out
# of 64K..64M, cache-size below one chunk, cache= a regular file, a cache
# directory whose map is a directory, a cache directory the server
# cannot read (run as nobody), an unknown store scheme, an unknown
# parameter, bad run-time options, and reopening a device with a
# different size or chunk-size.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import os, shutil, subprocess
import tierbd_test as t

def attempt(wd, args, prefix=(), plugin=None, env=None):
    """Run nbdkit with args; --run 'exit 0' makes an accepted start exit
    0 at once, so only the exit status tells refused from accepted."""
    cmd = list(prefix) + ["nbdkit", "-U", "-", plugin or t.plugin()] + \
        args + ["--run", "exit 0"]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30,
                           env=env or t.nbdkit_env(), cwd=wd.path)
    except subprocess.TimeoutExpired:
        raise t.TestFailure("nbdkit did not exit in 30 s: %s" % " ".join(cmd))
    return p.returncode, p.stdout + p.stderr

def body(wd):
    t.require_tierbd("parameter checks")
    os.chmod(wd.path, 0o755)  # the `nobody` case must reach its cache dir
    data = wd.sub("data")
    os.makedirs(data)
    good = t.Device(wd, size="4M", chunk_size="64K", cache_size="1M",
                    name="good", parent=data)
    good.start()
    good.connect().pwrite(b"tierbd" * 1000, 12345)
    good.stop()
    # Positive control: the same argument style is accepted.  (reopen:
    # what every start of the good device needs besides cache=, e.g.
    # s3-endpoint= when the harness runs on S3.)
    reopen = ["cache=" + good.cache] + good.store_params()
    rc, out = attempt(wd, reopen)
    if rc != 0:
        raise t.TestFailure("reopening the good device with cache= alone "
                            "failed (%d):\n%s" % (rc, out))

    new = wd.sub("data", "new-cache")
    store = "store=dir:" + wd.sub("data", "new-store")
    afile = wd.sub("data", "a-file")
    with open(afile, "w") as f:
        f.write("not a directory\n")
    mapdir = wd.sub("data", "map-is-dir")
    os.makedirs(os.path.join(mapdir, "map"))
    noread = wd.sub("data", "noread-cache")
    shutil.copytree(good.cache, noread)
    os.chmod(noread, 0o700)

    base = ["size=4M", "cache-size=1M", store]
    cases = [
        ("missing cache=", ["size=4M", "cache-size=1M", store], ["cache="]),
        ("missing size", ["cache=" + new, "cache-size=1M", store], ["size="]),
        ("missing cache-size", ["cache=" + new, "size=4M", store],
         ["cache-size="]),
        ("missing store", ["cache=" + new, "size=4M", "cache-size=1M"],
         ["store="]),
        ("malformed size", ["cache=" + new, "size=4Q", "cache-size=1M",
                            store], ["size="]),
        ("size not a number", ["cache=" + new, "size=lots",
                               "cache-size=1M", store], ["size="]),
        ("negative size", ["cache=" + new, "size=-1", "cache-size=1M",
                           store], ["size="]),
        ("zero size", ["cache=" + new, "size=0", "cache-size=1M", store],
         ["size="]),
        ("chunk-size not a power of two", ["cache=" + new] + base +
         ["chunk-size=100000"], ["chunk-size="]),
        ("chunk-size too small", ["cache=" + new] + base +
         ["chunk-size=32K"], ["chunk-size="]),
        ("chunk-size too large", ["cache=" + new] + base +
         ["chunk-size=128M"], ["chunk-size="]),
        ("malformed chunk-size", ["cache=" + new] + base +
         ["chunk-size=1X"], ["chunk-size="]),
        ("cache-size below one chunk", ["cache=" + new, "size=4M",
                                        "chunk-size=64K", "cache-size=32K",
                                        store], ["cache-size="]),
        ("malformed cache-size", ["cache=" + new, "size=4M",
                                  "cache-size=big", store], ["cache-size="]),
        ("cache= a regular file", ["cache=" + afile] + base, ["cache="]),
        ("map file is a directory", ["cache=" + mapdir] + base,
         ["map"]),
        ("unknown store scheme", ["cache=" + new, "size=4M",
                                  "cache-size=1M", "store=ftp://host/x"],
         ["store="]),
        ("store without scheme", ["cache=" + new, "size=4M",
                                  "cache-size=1M", "store=nowhere"],
         ["store="]),
        ("unknown parameter", ["cache=" + new] + base + ["frobnicate=1"],
         ["frobnicate"]),
        ("bad push-threads", ["cache=" + new] + base + ["push-threads=x"],
         ["push-threads"]),
        ("bad writeback-delay", ["cache=" + new] + base +
         ["writeback-delay=soon"], ["writeback-delay"]),
        ("bad writeback-early", ["cache=" + new] + base +
         ["writeback-early=soon"], ["writeback-early"]),
        ("bad max-dirty", ["cache=" + new] + base + ["max-dirty=lots"],
         ["max-dirty"]),
        ("bad direct-io", ["cache=" + new] + base + ["direct-io=maybe"],
         ["direct-io"]),
        ("reopen with another size", reopen + ["size=8M"], ["size="]),
        ("reopen with another chunk-size", reopen + ["chunk-size=128K"],
         ["chunk-size="]),
    ]
    failures = []

    def check(name, args, words, prefix=(), plugin=None, env=None):
        before = t.tree_snapshot(data)
        rc, out = attempt(wd, args, prefix, plugin, env)
        after = t.tree_snapshot(data)
        problems = []
        if rc == 0:
            problems.append("accepted (exit 0)")
        elif rc < 0 or rc >= 128:
            problems.append("died with status %d (signal?)" % rc)
        if any(m in out for m in t.SANITIZER_MARKS):
            problems.append("sanitizer report")
        low = out.lower()
        if rc and not any(w in low for w in words):
            problems.append("message does not mention %s" % " or ".join(words))
        diff = t.snapshot_diff(before, after)
        if diff:
            problems.append("disk changed:\n" + diff)
        if problems:
            failures.append("%s: %s\n  args: %s\n  output: %s" % (
                name, "; ".join(problems), " ".join(args),
                out.strip().replace("\n", "\n          ")))
            # Put things back so later cases start from the same state.
            if os.path.exists(new):
                shutil.rmtree(new)
            if os.path.exists(store[len("store=dir:"):]):
                shutil.rmtree(store[len("store=dir:"):])
        else:
            t.log("ok: %s: %s" % (name, out.strip().splitlines()[-1]
                                  if out.strip() else "(no message)"))

    for name, args, words in cases:
        check(name, args, words)
    if shutil.which("setpriv"):
        # nobody must be able to load the plugin and what is preloaded
        # (the build tree may be under a private home directory): use
        # copies in the work directory.
        # (Same base names: ASan checks that a "libasan" comes first.)
        def copy(path, name):
            os.makedirs(wd.sub("nobody"), mode=0o755, exist_ok=True)
            dst = wd.sub("nobody", name)
            shutil.copy(path, dst)
            os.chmod(dst, 0o755)
            return dst
        env = t.nbdkit_env()
        pre = os.environ.get("TIERBD_NBDKIT_PRELOAD")
        if pre:
            env["LD_PRELOAD"] = " ".join(copy(p, os.path.basename(p))
                                         for p in pre.split())
        check("cache dir unreadable (as nobody)",
              ["cache=" + noread] + good.store_params(),
              ["cache="],
              ["setpriv", "--reuid=nobody", "--regid=nogroup",
               "--clear-groups"], plugin=copy(t.plugin(), "plugin.so"),
              env=env)
    else:
        t.log("setpriv not found: unreadable-directory case skipped")
    if failures:
        raise t.TestFailure("%d of the bad-input cases misbehaved:\n%s" % (
            len(failures), "\n".join(failures)))

t.run(body)
EOF
