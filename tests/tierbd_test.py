"""tierbd_test - shared harness for the integration tests (tests/test-*.sh).

Run it with /usr/bin/python3: the `nbd` module (libnbd's Python binding,
Debian package python3-libnbd) is built for Debian's interpreter, and the
`python3` first on PATH on our machines is a separate build (pyenv) that
cannot import it.  tests/functions.sh sets PY=/usr/bin/python3 and
PYTHONPATH so that `import tierbd_test` works from a test script.

What is here:
  Nbdkit    one nbdkit process on a unix socket, started in the
            background (-f -U SOCK -P PIDFILE), stopped by SIGTERM or
            killed with SIGKILL, always by its own PID;
  Device    a tierbd device (cache dir + store dir) in a work directory,
            with the model of its content; start()/stop()/crash();
  Model     the expected content of the device, plus what a crash may
            lose: after kill -9 only writes acknowledged before the last
            completed flush (and FUA writes) must be present;
  random_ops / parallel_batch   random I/O checked against the model;
  tree_snapshot                 listing + checksums of a directory tree.

Environment:
  TIERBD_PLUGIN          the plugin .so (set by meson's test env); a path
                         works in place of a plugin name for nbdkit.
  TIERBD_NBDKIT_PRELOAD  LD_PRELOAD for nbdkit only (the ASan runtime in a
                         -Db_sanitize=address build: nbdkit itself is not
                         instrumented, so the runtime must come first).
  TIERBD_NBDKIT_ASAN_OPTIONS  ASAN_OPTIONS for nbdkit when preloading
                         (default detect_leaks=0: nbdkit's own exit-time
                         allocations are not ours to fix).
  TIERBD_TEST_SEED       seed for the random operations (printed by every
                         test so a failure can be replayed).
  TIERBD_TEST_KEEP=1     keep the work directory (printed) after the test.
  TIERBD_TEST_TMPDIR     where work directories go (default: $TMPDIR or
                         /tmp; keep it short: sockets live there).
  TIERBD_TEST_VERBOSE=1  run nbdkit with -v (log in the work directory).
  TIERBD_TEST_FAKE=file  developer aid: serve the device with nbdkit's
                         `file` plugin instead of tierbd, to debug the
                         harness itself; tests that need tierbd skip.
  TIERBD_TEST_STORE=s3   every Device keeps its objects in an S3 bucket
                         (a fresh prefix per device) instead of a dir:
                         store; needs S3_ENDPOINT, S3_ACCESS_KEY,
                         S3_SECRET_KEY (S3_REGION) and
                         TIERBD_TEST_S3_BUCKET; see tests/store_s3.py and
                         tests/test-s3-suite.sh.  Tests reach objects
                         only through Device.store_objects() (StoreObject),
                         so they run unchanged on both.
"""

import array
import errno
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

try:
    import nbd
except ImportError:  # pragma: no cover - reported by the test as a skip
    print("SKIP: cannot import nbd (python3-libnbd); run with /usr/bin/python3",
          file=sys.stderr)
    sys.exit(77)

KiB = 1024
MiB = 1024 * KiB
BLOCK = 4096          # model granularity for crash bookkeeping
MAX_REQUEST = 4 * MiB  # largest single request the random ops issue
KEEP_VERSIONS = 8     # recent contents kept per block, for diagnosis

SKIP = 77


class TestFailure(Exception):
    """A check failed: the message says what was expected and what was seen."""


def log(*args):
    print(*args, flush=True)


def skip(reason):
    print("SKIP: " + reason, flush=True)
    sys.exit(SKIP)


def fake_mode():
    return os.environ.get("TIERBD_TEST_FAKE", "")


def require_tierbd(what):
    """Skip a test that only makes sense against the real plugin."""
    if fake_mode():
        skip("%s needs the tierbd plugin (TIERBD_TEST_FAKE is set)" % what)


def plugin():
    return os.environ.get("TIERBD_PLUGIN") or "tierbd"


def get_rng(name=""):
    seed = os.environ.get("TIERBD_TEST_SEED")
    seed = int(seed) if seed else random.randrange(1 << 32)
    log("%sseed=%d (replay with TIERBD_TEST_SEED=%d)" %
        (name + ": " if name else "", seed, seed))
    return random.Random(seed)


def parse_size(s):
    if isinstance(s, int):
        return s
    mult = {"": 1, "K": KiB, "M": MiB, "G": 1024 * MiB}
    s = s.strip().upper().rstrip("B")
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


class Workdir:
    """A temporary directory removed at exit unless the test failed or
    TIERBD_TEST_KEEP=1.  Kept short: unix socket paths live here."""

    def __init__(self, name="tierbd"):
        base = os.environ.get("TIERBD_TEST_TMPDIR") or None
        self.path = tempfile.mkdtemp(prefix=name + "-", dir=base)
        self.servers = []
        self.failed = False

    def __enter__(self):
        return self

    def __exit__(self, etype, value, tb):
        # Stop whatever is still running, by the PID we started it with.
        for s in self.servers:
            s.kill(quiet=True)
        if etype is not None and etype is not SystemExit:
            self.failed = True
            for s in self.servers:
                s.dump_log()
        if self.failed or os.environ.get("TIERBD_TEST_KEEP"):
            log("work directory kept: " + self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        return False

    def sub(self, *names):
        return os.path.join(self.path, *names)


def nbdkit_env():
    env = dict(os.environ)
    pre = os.environ.get("TIERBD_NBDKIT_PRELOAD")
    if pre:
        env["LD_PRELOAD"] = pre + (" " + env["LD_PRELOAD"]
                                   if env.get("LD_PRELOAD") else "")
        env["ASAN_OPTIONS"] = os.environ.get("TIERBD_NBDKIT_ASAN_OPTIONS",
                                             "detect_leaks=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if store_kind() == "s3":
        import store_s3
        env.update(store_s3.env_credentials())
    return env


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")


class Nbdkit:
    """One nbdkit serving `args` (plugin and parameters) on a unix socket
    in the work directory.  Always stopped by its own PID."""

    def __init__(self, wd, args, name="nbdkit"):
        self.wd = wd
        self.args = list(args)
        self.name = name
        self.sock = wd.sub(name + ".sock")
        self.pidfile = wd.sub(name + ".pid")
        self.logpath = wd.sub(name + ".log")
        self.proc = None
        self.handles = []
        self.starts = 0
        wd.servers.append(self)

    def command(self):
        cmd = ["nbdkit", "-f", "--exit-with-parent", "-U", self.sock,
               "-P", self.pidfile]
        if os.environ.get("TIERBD_TEST_VERBOSE"):
            cmd.append("-v")
        return cmd + self.args

    def start(self, timeout=30):
        """Start and wait until the socket accepts connections.  Raises
        TestFailure (with the log) if nbdkit exits instead."""
        assert self.proc is None, "already running"
        for p in (self.sock, self.pidfile):
            if os.path.exists(p):
                os.unlink(p)
        self.starts += 1
        logf = open(self.logpath, "a")
        logf.write("==== start %d: %s\n" % (self.starts,
                                            " ".join(self.command())))
        logf.flush()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     env=nbdkit_env())
        logf.close()
        deadline = time.monotonic() + timeout
        while True:
            # nbdkit writes the pid file once the socket is listening.
            if os.path.exists(self.pidfile) and os.path.getsize(self.pidfile):
                return self
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise TestFailure("%s exited with status %d at start:\n%s" %
                                  (self.name, rc, self.read_log()))
            if time.monotonic() > deadline:
                self.kill()
                raise TestFailure("%s did not start in %d s:\n%s" %
                                  (self.name, timeout, self.read_log()))
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def connect(self):
        h = nbd.NBD()
        h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
        h.connect_unix(self.sock)
        self.handles.append(h)
        return h

    def _drop_handles(self):
        for h in self.handles:
            try:
                h.shutdown()
            except nbd.Error:
                pass
        self.handles = []

    def stop(self, timeout=60):
        """Clean stop: close our connections, SIGTERM, wait.  nbdkit must
        exit 0 and its log must have no sanitizer report."""
        self._drop_handles()
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise TestFailure("%s did not exit within %d s of SIGTERM:\n%s" %
                              (self.name, timeout, self.read_log()))
        self.check_log()
        if rc != 0:
            raise TestFailure("%s exited with status %d after SIGTERM:\n%s"
                              % (self.name, rc, self.read_log()))

    def kill(self, quiet=False):
        """kill -9 by PID, as a crash of the process."""
        if not quiet:
            self._drop_handles()
        else:
            self.handles = []
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        if not quiet:
            self.check_log()

    def read_log(self, tail=200):
        try:
            with open(self.logpath, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no log)"
        return "".join(lines[-tail:])

    def check_log(self):
        text = self.read_log(tail=100000)
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise TestFailure("%s log has a sanitizer report (%r):\n%s" %
                                  (self.name, mark, self.read_log()))

    def dump_log(self):
        if os.path.exists(self.logpath):
            log("---- %s log (%s) ----" % (self.name, self.logpath))
            log(self.read_log())
            log("---- end of %s log ----" % self.name)


def tierbd_args(cache, size=None, chunk_size=None, cache_size=None,
                store=None, **opts):
    """nbdkit arguments for a tierbd device.  opts: push_threads=4 ->
    push-threads=4.  In fake mode, the `file` plugin on cache/fake.img."""
    if fake_mode() == "file":
        os.makedirs(cache, exist_ok=True)
        img = os.path.join(cache, "fake.img")
        if not os.path.exists(img):
            with open(img, "wb") as f:
                f.truncate(parse_size(size))
        return ["file", "file=" + img]
    args = [plugin()]
    if size is not None:
        args.append("size=%s" % size)
    if chunk_size is not None:
        args.append("chunk-size=%s" % chunk_size)
    args.append("cache=" + cache)
    if cache_size is not None:
        args.append("cache-size=%s" % cache_size)
    if store is not None:
        args.append("store=" + store)
    for k, v in opts.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        args.append("%s=%s" % (k.replace("_", "-"), v))
    return args


# -- stores ------------------------------------------------------------------

def store_kind():
    """'dir' (default) or 's3' (TIERBD_TEST_STORE)."""
    k = os.environ.get("TIERBD_TEST_STORE") or "dir"
    if k not in ("dir", "s3"):
        raise TestFailure("TIERBD_TEST_STORE=%s: use dir or s3" % k)
    return k


class DirStore:
    """A dir: store's objects as files under root; keys relative to it."""

    kind = "dir"

    def __init__(self, root):
        self.root = root
        self.spec = "dir:" + root

    def params(self):
        return []

    def list(self):
        out = []
        for d, _, files in os.walk(self.root):
            for f in files:
                p = os.path.join(d, f)
                out.append((os.path.relpath(p, self.root),
                            os.path.getsize(p)))
        return sorted(out)

    def get(self, key):
        with open(os.path.join(self.root, key), "rb") as f:
            return f.read()

    def put(self, key, data):
        with open(os.path.join(self.root, key), "wb") as f:
            f.write(data)

    def delete(self, key):
        os.unlink(os.path.join(self.root, key))


class StoreObject:
    """One object of a device's store, whatever the store: `key` as the
    store names it (chunks/<hex index>/<generation>, log/...), `size`
    when listed; read(), write(data) (replaces it), truncate(n),
    delete()."""

    def __init__(self, store, key, size):
        self.store, self.key, self.size = store, key, size

    def read(self):
        return self.store.get(self.key)

    def write(self, data):
        self.store.put(self.key, bytes(data))
        self.size = len(data)

    def truncate(self, n):
        self.write(self.read()[:n])

    def delete(self):
        self.store.delete(self.key)

    def __repr__(self):
        return "%s:%s" % (self.store.kind, self.key)


def make_store(wd, path):
    """The store of a new device: dir:path, or with TIERBD_TEST_STORE=s3
    a fresh prefix in the test bucket (named after the work directory and
    the device, so no two devices share one)."""
    if store_kind() == "s3":
        import store_s3
        return store_s3.S3Store(
            store_s3.Client.from_env(), "%s-%s/%s" % (
                os.path.basename(wd.path), os.urandom(3).hex(),
                os.path.basename(path)))
    return DirStore(path)


class Device:
    """A tierbd device: cache dir `<name>-cache` and store
    `dir:<name>-store` in `parent` (default: the work directory).  The
    first start() creates it with size, chunk-size, cache-size and store;
    later starts pass only cache= and the run-time options, as a user
    reopening it would.  With TIERBD_TEST_STORE=s3 the store is a prefix
    in a bucket (make_store): `store` is then its s3:// spec, and the
    s3-endpoint= (store_params()) goes with every start."""

    def __init__(self, wd, size, chunk_size=64 * KiB, cache_size=None,
                 name="dev", parent=None, **opts):
        self.wd = wd
        self.size = parse_size(size)
        self.chunk_size = parse_size(chunk_size)
        self.cache_size = parse_size(cache_size or size)
        parent = parent or wd.path
        self.cache = os.path.join(parent, name + "-cache")
        self.objstore = make_store(wd, os.path.join(parent, name + "-store"))
        self.store = getattr(self.objstore, "root", self.objstore.spec)
        self.opts = opts
        self.created = False
        self.server = Nbdkit(wd, [], name=name)
        self.model = Model(self.size, self.chunk_size,
                           trim="zero" if fake_mode() else "chunks")

    def start(self, **opts):
        o = dict(p.split("=", 1) for p in self.store_params())
        o.update(self.opts)
        o.update(opts)
        if self.created:
            self.server.args = tierbd_args(self.cache, **o)
        else:
            self.server.args = tierbd_args(
                self.cache, size=self.size, chunk_size=self.chunk_size,
                cache_size=self.cache_size, store=self.objstore.spec, **o)
        self.server.start()
        self.created = True
        return self

    def connect(self, n=1):
        hs = [self.server.connect() for _ in range(n)]
        for h in hs:
            if h.get_size() != self.size:
                raise TestFailure("device size %d, expected %d" %
                                  (h.get_size(), self.size))
        return hs if n > 1 else hs[0]

    def stop(self):
        self.server.stop()

    def forget_cache(self):
        """Lose the cache directory (the device is stopped): the next
        start() reopens the device from the store's newest commit, with
        every chunk cold."""
        shutil.rmtree(self.cache)
        self.created = False

    def crash(self):
        self.server.kill()

    def store_params(self):
        """Parameters every start of this device needs besides cache=
        (s3-endpoint=... for an S3 store; none for dir:)."""
        return self.objstore.params()

    def store_objects(self):
        """[StoreObject] of the device's store, in key order."""
        return [StoreObject(self.objstore, k, n)
                for k, n in self.objstore.list()]


def _digest(b):
    return hashlib.blake2b(b, digest_size=8).digest()


def _blocks(offset, length):
    return range(offset // BLOCK, (offset + length + BLOCK - 1) // BLOCK)


class Model:
    """Expected device content.

    `data` is the content every acknowledged request has produced.  For
    crash checks, each 4 KiB block written since the last completed flush
    keeps `base` (its content at that flush) and `hist`, the writes since
    then as (lo, hi, bytes, fua) in block coordinates.  After a crash a
    byte may hold its base value or any value written since, except that
    a FUA write is durable when acknowledged: nothing older than the
    newest FUA write covering the byte is allowed.

    trim: "chunks" - whole chunks in a trimmed range read as zeros, the
    rest is unchanged (tierbd's contract); "zero" - the whole range reads
    as zeros (nbdkit's file plugin, for fake mode)."""

    def __init__(self, size, chunk_size, trim="chunks"):
        self.size = size
        self.chunk_size = chunk_size
        self.trim_mode = trim
        self.data = bytearray(size)
        self.base = {}
        self.hist = {}
        self.ops = 0
        # Diagnosis only: per block, (op number, digest) of every content
        # it has had, and the op numbers at which flushes completed.
        self.versions = {}
        self.flush_ops = []

    # -- bookkeeping -----------------------------------------------------

    def write(self, offset, buf, fua=False):
        buf = bytes(buf)
        for b in _blocks(offset, len(buf)):
            bs, be = b * BLOCK, min((b + 1) * BLOCK, self.size)
            if b not in self.base:
                self.base[b] = bytes(self.data[bs:be])
                self.hist[b] = []
            lo, hi = max(offset, bs), min(offset + len(buf), be)
            self.hist[b].append((lo - bs, hi - bs,
                                 buf[lo - offset:hi - offset], fua))
        self.data[offset:offset + len(buf)] = buf
        self.ops += 1
        for b in _blocks(offset, len(buf)):
            vs = self.versions.setdefault(b, [])
            vs.append([self.ops, bytes(self.data[b * BLOCK:(b + 1) * BLOCK])])
            if len(vs) > KEEP_VERSIONS:   # older ones: a digest only
                vs[-KEEP_VERSIONS - 1][1] = _digest(vs[-KEEP_VERSIONS - 1][1])

    def zero(self, offset, length, fua=False):
        self.write(offset, bytes(length), fua)

    def trim(self, offset, length, fua=False):
        if self.trim_mode == "zero":
            return self.zero(offset, length, fua)
        cs = self.chunk_size
        start = (offset + cs - 1) // cs * cs
        end = (offset + length) // cs * cs
        if offset + length == self.size:
            end = self.size  # a short last chunk trimmed to its end
        if end > start:
            self.zero(start, end - start, fua)

    def flushed(self):
        """A flush completed: everything acknowledged so far is durable."""
        self.base.clear()
        self.hist.clear()
        if not self.flush_ops or self.flush_ops[-1] != self.ops:
            self.flush_ops.append(self.ops)

    def explain(self, offset, got_block, lo=0, hi=BLOCK):
        """Which earlier content of the 4 KiB block at offset (a whole
        block as read) matches what was read in [lo, hi) of it, if any."""
        b = offset // BLOCK
        if len(got_block) != BLOCK:
            return ""
        vs = self.versions.get(b, [])
        last_flush = self.flush_ops[-1] if self.flush_ops else 0
        where = "block %d (0x%x) has had %d versions; last flush after op " \
            "#%d" % (b, b * BLOCK, len(vs), last_flush)
        if not any(got_block[lo:hi]):
            return "; reads zeros there (%s)" % where
        d = _digest(got_block)
        for i in range(len(vs) - 1, -1, -1):
            op, v = vs[i]
            if (v if len(v) == 8 else _digest(v)) == d:
                return ("; the whole block read back as it was after op "
                        "#%d, %d write(s) to it ago (%s)" %
                        (op, len(vs) - 1 - i, where))
        for i in range(len(vs) - 1, -1, -1):
            op, v = vs[i]
            if len(v) == BLOCK and v[lo:hi] == got_block[lo:hi]:
                return ("; the wrong bytes are those of the block after op "
                        "#%d, %d write(s) to it ago (%s)" %
                        (op, len(vs) - 1 - i, where))
        return "; matches no recent version of the block (%s)" % where

    # -- checks ----------------------------------------------------------

    def check_read(self, offset, got, what="read"):
        exp = self.data[offset:offset + len(got)]
        if got != exp:
            i = next(i for i in range(len(got)) if got[i] != exp[i])
            j = i   # end of the first run of wrong bytes
            while j < len(got) and got[j] != exp[j]:
                j += 1
            nbad = sum(1 for a, b in zip(got, exp) if a != b)
            bs = (offset + i) // BLOCK * BLOCK
            why = ""
            if bs >= offset and bs + BLOCK <= offset + len(got):
                why = self.explain(bs, bytes(got[bs - offset:bs - offset +
                                                 BLOCK]),
                                   offset + i - bs, min(offset + j - bs,
                                                        BLOCK))
            raise TestFailure(
                "%s [%d, +%d): first wrong byte at device offset %d "
                "(0x%x, chunk %d): expected %s got %s; %d bytes of the read "
                "differ%s%s" % (what, offset, len(got), offset + i, offset + i,
                                (offset + i) // self.chunk_size,
                                bytes(exp[i:i + 8]).hex(),
                                bytes(got[i:i + 8]).hex(), nbad,
                                " (reads zeros there)"
                                if not any(got[i:j]) and not why else "",
                                why))

    def _byte_ok(self, b, i, v):
        for lo, hi, buf, fua in reversed(self.hist[b]):
            if lo <= i < hi:
                if buf[i - lo] == v:
                    return True
                if fua:
                    return False
        return self.base[b][i] == v

    def check_after_crash(self, read):
        """read(offset, length) -> bytes from the restarted device.  Checks
        every byte against what a crash may leave, then adopts what is
        there as the new content (and checks a second read agrees)."""
        step = 1 * MiB
        actual = bytearray()
        for off in range(0, self.size, step):
            n = min(step, self.size - off)
            got = read(off, n)
            if got != self.data[off:off + n]:
                for b in _blocks(off, n):
                    bs, be = b * BLOCK, min((b + 1) * BLOCK, self.size)
                    g = got[bs - off:be - off]
                    if g == self.data[bs:be]:
                        continue
                    if b not in self.base:
                        self.check_read(bs, g, "after crash, block not "
                                        "written since the last flush:")
                    for i, v in enumerate(g):
                        if not self._byte_ok(b, i, v):
                            raise TestFailure(
                                "after crash: byte at %d (chunk %d) is %02x, "
                                "allowed only %s (value at last flush %02x, "
                                "%d writes since)" % (
                                    bs + i, (bs + i) // self.chunk_size, v,
                                    " ".join("%02x" % x for x in
                                             sorted(set(self._allowed(b, i)))),
                                    self.base[b][i], len(self.hist[b])))
            actual += got
        self.data[:] = actual
        self.flushed()
        # A read never contradicts an earlier one (no write in between).
        for off in range(0, self.size, step):
            n = min(step, self.size - off)
            self.check_read(off, read(off, n), "second read after crash")

    def _allowed(self, b, i):
        out = []
        for lo, hi, buf, fua in reversed(self.hist[b]):
            if lo <= i < hi:
                out.append(buf[i - lo])
                if fua:
                    return out
        return out + [self.base[b][i]]

    def check_all(self, h, what="full read"):
        step = 1 * MiB
        for off in range(0, self.size, step):
            n = min(step, self.size - off)
            self.check_read(off, h.pread(n, off), what)


# -- extents -----------------------------------------------------------------

def extents(h, offset, length):
    """[(offset, length, flags)] from base:allocation, covering the range
    (several block_status calls if the server answers short)."""
    out = []
    end = offset + length
    pos = offset
    while pos < end:
        got = []

        def cb(metacontext, off, entries, err):
            if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
                got.extend(entries)
            return 0

        h.block_status(min(end - pos, 2 ** 31), pos, cb)
        if not got:
            raise TestFailure("block_status at %d returned no extents" % pos)
        for i in range(0, len(got), 2):
            ln, fl = got[i], got[i + 1]
            ln = min(ln, end - pos)
            if ln <= 0:
                break
            out.append((pos, ln, fl))
            pos += ln
    return out


def check_extents(model, h, offset, length):
    """Every extent reported as reading zeros must read zeros in the model."""
    for off, ln, fl in extents(h, offset, length):
        if fl & nbd.STATE_ZERO and any(model.data[off:off + ln]):
            nz = next(i for i in range(ln) if model.data[off + i])
            raise TestFailure(
                "block_status says [%d, +%d) reads as zeros (flags %d) but "
                "byte %d is %02x" % (off, ln, fl, off + nz,
                                      model.data[off + nz]))


# -- random operations -------------------------------------------------------

def random_range(rng, size, chunk, maxlen=MAX_REQUEST):
    kind = rng.choice(("tiny", "unaligned", "unaligned", "sector", "block",
                       "chunk", "multichunk", "tail", "head"))
    if kind == "tiny":
        n = rng.randint(1, 16)
        off = rng.randrange(size - n + 1)
    elif kind == "unaligned":
        n = rng.randint(1, 2 * chunk)
        off = rng.randrange(size)
    elif kind == "sector":
        n = 512 * rng.randint(1, 2 * chunk // 512)
        off = 512 * rng.randrange(size // 512)
    elif kind == "block":
        n = 4096 * rng.randint(1, max(1, chunk // 4096))
        off = 4096 * rng.randrange(size // 4096)
    elif kind == "chunk":
        n = chunk * rng.randint(1, 3)
        off = chunk * rng.randrange(size // chunk)
    elif kind == "multichunk":
        n = rng.randint(chunk + 1, 4 * chunk)
        off = rng.randrange(size)
    elif kind == "tail":
        n = rng.randint(1, 2 * chunk)
        off = size - n
    else:  # head
        off = 0
        n = rng.randint(1, 2 * chunk)
    off = max(0, min(off, size - 1))
    n = max(1, min(n, size - off, maxlen))
    return off, n


def random_data(rng, n):
    """Random bytes, sometimes with long zero or repeated runs (so that
    all-zero writes and compressible chunks occur too)."""
    k = rng.random()
    if k < 0.05:
        return bytes(n)
    if k < 0.15:
        return bytes([rng.randrange(1, 256)]) * n
    return rng.randbytes(n)


def _is_enotsup(e):
    return e.errnum in (errno.ENOTSUP, errno.EOPNOTSUPP)


def _flag_names(flags):
    names = [n for n in ("FUA", "NO_HOLE", "FAST_ZERO")
             if flags & getattr(nbd, "CMD_FLAG_" + n)]
    return "|".join(names) or "0"


def do_op(model, h, rng, op, can_fast_zero=True, extents_ok=True):
    """One operation of kind `op` on handle h, applied to the model.
    Returns a description of it, e.g. "zero(off=4096, len=512, FUA)"."""
    size, cs = model.size, model.chunk_size
    off, n = random_range(rng, size, cs)
    desc = "%s(off=%d, len=%d)" % (op, off, n)
    try:
        if op == "read":
            model.check_read(off, h.pread(n, off))
        elif op in ("write", "fua"):
            buf = random_data(rng, n)
            fua = op == "fua"
            h.pwrite(buf, off, nbd.CMD_FLAG_FUA if fua else 0)
            model.write(off, buf, fua)
        elif op == "flush":
            desc = "flush"
            h.flush()
            model.flushed()
        elif op == "trim":
            h.trim(n, off)
            model.trim(off, n)
        elif op == "zero":
            flags = 0
            if rng.random() < 0.3:
                flags |= nbd.CMD_FLAG_NO_HOLE
            if can_fast_zero and rng.random() < 0.3:
                flags |= nbd.CMD_FLAG_FAST_ZERO
            if rng.random() < 0.1:
                flags |= nbd.CMD_FLAG_FUA
            desc = "zero(off=%d, len=%d, %s)" % (off, n, _flag_names(flags))
            try:
                h.zero(n, off, flags)
            except nbd.Error as e:
                if flags & nbd.CMD_FLAG_FAST_ZERO and _is_enotsup(e):
                    return desc + " -> ENOTSUP"  # refused: unchanged
                raise
            model.zero(off, n, bool(flags & nbd.CMD_FLAG_FUA))
        elif op == "extents":
            if extents_ok:
                check_extents(model, h, off, n)
        else:
            raise ValueError(op)
    except nbd.Error as e:
        raise TestFailure("%s failed: %s" % (desc, e)) from e
    except TestFailure as e:
        raise TestFailure("%s: %s" % (desc, e)) from e
    return desc


OP_WEIGHTS = (("read", 30), ("write", 35), ("fua", 5), ("flush", 4),
              ("trim", 8), ("zero", 8), ("extents", 6))


def random_ops(model, handles, rng, n, weights=OP_WEIGHTS):
    """n random operations, each on a random handle (so writes on one
    connection are read and flushed through another: multi-conn).  A
    failure lists the operations that led to it."""
    ops = [o for o, _ in weights]
    w = [x for _, x in weights]
    h0 = handles[0]
    fast = h0.can_fast_zero()
    ext = h0.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    recent = []
    for i in range(n):
        op = rng.choices(ops, w)[0]
        hi = rng.randrange(len(handles))
        try:
            recent.append("%d: conn %d: %s -> model op #%d" % (
                i, hi, do_op(model, handles[hi], rng, op, fast, ext),
                model.ops))
        except TestFailure as e:
            raise TestFailure("op %d on connection %d: %s\n  previous "
                              "operations:\n    %s" % (
                                  i, hi, e, "\n    ".join(recent[-12:]))) \
                from e


def parallel_batch(model, handles, rng, nwrites=32, nreads=32, span=None):
    """Concurrent requests on all handles at once (one thread per handle):
    writes to disjoint ranges - many inside the same few chunks, to catch
    lost updates in a chunk's read-modify-write - then concurrent reads
    checked against the model."""
    size, cs = model.size, model.chunk_size
    # Concentrate on a few chunks so that disjoint writes share chunks.
    nch = max(1, size // cs)
    first = rng.randrange(nch)
    span = span or min(4, nch - first)
    lo, hi = first * cs, min(size, (first + span) * cs)
    cand = []
    for _ in range(nwrites * 3):
        if rng.random() < 0.7:
            n = rng.randint(1, cs // 2)
            off = rng.randrange(lo, max(lo + 1, hi - n + 1))
        else:
            off, n = random_range(rng, size, cs)
        n = max(1, min(n, size - off))
        cand.append((off, n))
    cand.sort()
    writes, end = [], -1
    for off, n in cand:
        if off >= end:
            writes.append((off, n, random_data(rng, n),
                           rng.random() < 0.1))
            end = off + n
        if len(writes) >= nwrites:
            break
    rng.shuffle(writes)
    errors = []

    def run(h, items, fn):
        try:
            for it in items:
                fn(h, it)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    def go(items, fn):
        per = [items[i::len(handles)] for i in range(len(handles))]
        ts = [threading.Thread(target=run, args=(h, p, fn))
              for h, p in zip(handles, per)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise TestFailure("parallel batch: %s" % errors[0])

    go(writes, lambda h, w: h.pwrite(w[2], w[0],
                                     nbd.CMD_FLAG_FUA if w[3] else 0))
    for off, n, buf, fua in writes:
        model.write(off, buf, fua)
    reads = [random_range(rng, size, cs) if rng.random() < 0.5 else
             (lo, hi - lo) for _ in range(nreads)]
    go(reads, lambda h, r: model.check_read(r[0], h.pread(r[1], r[0]),
                                            "parallel read"))


# -- patterns ----------------------------------------------------------------

def pattern(offset, length, tag):
    """Deterministic, position-dependent content: every 8-byte word holds
    its device offset with `tag` (< 2**16) in the top bits, so a block
    read from the wrong place or the wrong generation is visible."""
    start = offset // 8 * 8
    base = (tag & 0xffff) << 48
    words = array.array("Q", range(base + start, base + offset + length, 8))
    if sys.byteorder != "little":
        words.byteswap()
    return words.tobytes()[offset - start:offset - start + length]


# -- on-disk snapshots -------------------------------------------------------

def tree_snapshot(root):
    """{relative path: (type, mode, size, sha256)} of everything under
    root (None if root does not exist).  Symlinks are not followed."""
    if not os.path.lexists(root):
        return None
    out = {}

    def entry(path):
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for blk in iter(lambda: f.read(1 << 20), b""):
                    h.update(blk)
            return ("file", mode, st.st_size, h.hexdigest())
        if stat.S_ISDIR(st.st_mode):
            return ("dir", mode, 0, "")
        if stat.S_ISLNK(st.st_mode):
            return ("link", 0, 0, os.readlink(path))
        return ("other", mode, 0, "")

    out["."] = entry(root)
    if out["."][0] == "dir":
        for dirpath, dirs, files in os.walk(root):
            for n in dirs + files:
                p = os.path.join(dirpath, n)
                out[os.path.relpath(p, root)] = entry(p)
    return out


def snapshot_diff(before, after):
    if before == after:
        return ""
    if before is None or after is None:
        return "existence changed: before %s, after %s" % (
            "absent" if before is None else "present",
            "absent" if after is None else "present")
    lines = []
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            lines.append("  %s: %s -> %s" % (k, before.get(k), after.get(k)))
    return "\n".join(lines)


def run(fn):
    """Run a test body fn(wd) in a work directory; exit 0 / 1 / 77."""
    name = os.path.basename(sys.argv[0]) if sys.argv[0] not in ("-", "") \
        else os.environ.get("TIERBD_TEST_NAME", "test")
    t0 = time.monotonic()
    with Workdir(os.environ.get("TIERBD_TEST_NAME", "tierbd")) as wd:
        try:
            fn(wd)
        except TestFailure as e:
            wd.failed = True
            log("FAIL: %s" % e)
            for s in wd.servers:
                s.kill(quiet=True)
                s.dump_log()
            sys.exit(1)
    log("PASS: %s (%.1f s)" % (name, time.monotonic() - t0))
    sys.exit(0)
