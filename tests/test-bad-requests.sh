#!/usr/bin/env bash
# A client that sends huge or malformed requests gets an error, and the
# plugin keeps serving.  A 128 MiB device (64 KiB chunks, 4 MiB cache)
# with some content; then, through libnbd with strict mode off
# (set_strict_mode(0): libnbd sends what it would otherwise refuse):
# reads and writes at and past the end and at offsets near 2^63 and
# 2^64, zero-length requests, zero and trim of 2^32-1 bytes, block
# status past the end and longer than the device, unknown flags - every
# one must get an error reply from the server, within 30 s (a hang
# fails), and change nothing.  Unaligned trims and zeros, a 64 MiB read
# (nbdkit's limit) and a whole-device block status are valid and are
# checked against the model.  Then, over a raw socket (libnbd refuses to
# send these even with strict mode off): reads and writes over 64 MiB
# (the write with and without its payload), an unknown command, unknown
# flags, a zero-length write, a bad request magic, a header cut short.
# After all of it the same libnbd connection and a new one read and
# write correctly (random operations against the model), nbdkit is
# still running and stops cleanly (exit 0, no sanitizer report).
# Last, the maximum block size the server advertises must not exceed
# what it accepts (64 MiB).
# Uses the harness's Device, so it also runs on S3 (test-s3-suite.sh).
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import errno
import socket
import struct
import threading
import time

import nbd
import tierbd_test as t

MiB = t.MiB
CS = 64 * 1024
HANG = 30          # seconds without a reply that count as a hang
LIMIT = 64 * MiB   # nbdkit's largest read or write

def within(desc, fn, timeout=HANG):
    """fn() in a thread: ('ok', value) or ('err', nbd.Error); a call that
    does not return in `timeout` s is a hang."""
    res = []

    def run():
        try:
            res.append(("ok", fn()))
        except nbd.Error as e:
            res.append(("err", e))
        except Exception as e:          # reported below
            res.append(("exc", e))
    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        raise t.TestFailure("%s: no reply in %d s (hang)" % (desc, timeout))
    if res[0][0] == "exc":
        raise t.TestFailure("%s: %r" % (desc, res[0][1]))
    return res[0]

def expect_error(desc, fn):
    kind, v = within(desc, fn)
    if kind == "ok":
        raise t.TestFailure("%s: succeeded (%s), expected an error" % (
            desc, "%d bytes" % len(v) if isinstance(v, (bytes, bytearray))
            else v))
    # The server must have answered: not libnbd refusing to send it.
    if "command failed" not in str(v):
        raise t.TestFailure("%s: libnbd did not send it (%s); the test "
                            "needs strict mode off" % (desc, v))
    t.log("ok: %s -> %s" % (desc, errno.errorcode.get(v.errnum, v.errnum)))

def expect_ok(desc, fn):
    kind, v = within(desc, fn)
    if kind == "err":
        raise t.TestFailure("%s: failed: %s" % (desc, v))
    t.log("ok: %s (valid, done)" % desc)
    return v

# -- a raw NBD client: what libnbd will not send ------------------------------

NBD_REQUEST_MAGIC = 0x25609513
NBD_SIMPLE_REPLY_MAGIC = 0x67446698
CMD_READ, CMD_WRITE, CMD_FLUSH = 0, 1, 3

class Raw:
    """Fixed newstyle handshake with NBD_OPT_EXPORT_NAME (so simple
    replies only), then requests written by hand."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(HANG)
        self.s.connect(path)
        hello = self.recv(18)
        if hello[:16] != b"NBDMAGICIHAVEOPT":
            raise t.TestFailure("raw client: bad greeting %r" % hello)
        self.s.sendall(struct.pack(">I", 1 | 2))  # FIXED_NEWSTYLE|NO_ZEROES
        self.s.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 0))
        self.size, self.tflags = struct.unpack(">QH", self.recv(10))
        self.cookie = 0

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            try:
                b = self.s.recv(n - len(buf))
            except socket.timeout:
                raise t.TestFailure("raw client: no reply in %d s (hang)"
                                    % HANG)
            if not b:
                raise EOFError("server closed the connection after %d of "
                               "%d bytes" % (len(buf), n))
            buf += b
        return buf

    def send(self, cmd, offset, length, flags=0, payload=b"",
             magic=NBD_REQUEST_MAGIC):
        self.cookie += 1
        self.s.sendall(struct.pack(">IHHQQI", magic, flags, cmd, self.cookie,
                                   offset, length) + payload)
        return self.cookie

    def reply(self, cookie, datalen=0):
        """-> (error, data)."""
        magic, err, c = struct.unpack(">IIQ", self.recv(16))
        if magic != NBD_SIMPLE_REPLY_MAGIC or c != cookie:
            raise t.TestFailure("raw client: reply magic %x cookie %d, "
                                "expected %x %d" % (magic, c,
                                                    NBD_SIMPLE_REPLY_MAGIC,
                                                    cookie))
        return err, (self.recv(datalen) if err == 0 and datalen else b"")

    def closed(self):
        """True if the server has closed (EOF) within HANG s."""
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        self.s.close()

def raw_checks(dev, m):
    sock = dev.server.sock
    size = m.size

    def error_reply(desc, cmd, off, n, flags=0, payload=b"", datalen=0):
        r = Raw(sock)
        c = r.send(cmd, off, n, flags, payload)
        try:
            err, data = r.reply(c, datalen)
        except EOFError as e:
            raise t.TestFailure("%s: the server dropped the connection "
                                "instead of answering: %s" % (desc, e))
        if err == 0:
            raise t.TestFailure("%s: succeeded, expected an error" % desc)
        # The connection is still good: a valid read on it.
        c = r.send(CMD_READ, 0, 4096)
        err2, data = r.reply(c, 4096)
        if err2:
            raise t.TestFailure("%s: a valid read on the same connection "
                                "then failed with %d" % (desc, err2))
        m.check_read(0, data, desc + ", then a read on the same connection")
        r.close()
        t.log("ok: raw: %s -> error %d, connection still serves" % (desc, err))

    def error_or_close(desc, send):
        """The server may answer with an error or close the connection;
        it must not hang, nor succeed."""
        r = Raw(sock)
        c = send(r)
        try:
            err, _ = r.reply(c)
            if err == 0:
                raise t.TestFailure("%s: succeeded, expected an error" % desc)
            how = "error %d" % err
        except EOFError:
            how = "connection closed"
        r.close()
        t.log("ok: raw: %s -> %s" % (desc, how))

    error_reply("read of 64 MiB + 4 KiB", CMD_READ, 0, LIMIT + 4096)
    error_reply("read of 2^32-1 bytes", CMD_READ, 0, 0xffffffff)
    error_reply("read past the end", CMD_READ, size - 512, 1024)
    error_reply("read at offset 2^64-512", CMD_READ, 2**64 - 512, 512)
    # The payload follows a too-large write: the server must read past it
    # and keep the connection (it is data, not requests).
    junk = b"\xee" * (LIMIT + 4096)
    error_reply("write of 64 MiB + 4 KiB with its payload", CMD_WRITE, 0,
                LIMIT + 4096, payload=junk)
    error_reply("write past the end with its payload", CMD_WRITE,
                size - 512, 1024, payload=b"\xee" * 1024)
    error_reply("zero-length write", CMD_WRITE, 0, 0)
    error_reply("unknown command 42", 42, 0, 4096)
    error_reply("read with unknown flag 0x8000", CMD_READ, 0, 4096,
                flags=0x8000, datalen=4096)
    error_reply("flush with a length", CMD_FLUSH, 4096, 4096)
    error_or_close("write of 2^32-1 bytes, no payload sent",
                   lambda r: r.send(CMD_WRITE, 0, 0xffffffff))
    error_or_close("bad request magic",
                   lambda r: r.send(CMD_READ, 0, 512, magic=0x12345678))

    r = Raw(sock)                       # a header cut short, then gone
    r.s.sendall(struct.pack(">IHH", NBD_REQUEST_MAGIC, 0, CMD_READ))
    r.close()
    t.log("ok: raw: header cut short, connection closed by the client")

    # A good raw connection afterwards.
    r = Raw(sock)
    buf = bytes(range(256)) * 16
    c = r.send(CMD_WRITE, size - 4096, 4096, payload=buf)
    if r.reply(c)[0]:
        raise t.TestFailure("raw: a valid write failed after the bad ones")
    m.write(size - 4096, buf)
    c = r.send(CMD_READ, size - 4096, 4096)
    err, data = r.reply(c, 4096)
    if err:
        raise t.TestFailure("raw: a valid read failed after the bad ones")
    m.check_read(size - 4096, data, "raw read after the bad requests")
    r.close()

def body(wd):
    rng = t.get_rng()
    dev = t.Device(wd, size="128M", chunk_size="64K", cache_size="4M",
                   writeback_delay=0)
    m = dev.model
    S = m.size
    dev.start()
    h = dev.connect()
    # Content at both ends and in the middle, so damage would show.
    for off in (0, 3 * CS + 100, S // 2 - 5000, S - 2 * CS):
        buf = rng.randbytes(2 * CS)
        h.pwrite(buf, off)
        m.write(off, buf)
    h.flush()
    m.flushed()

    # What the server says it handles in one request (checked at the end).
    advertised = h.get_block_size(nbd.SIZE_MAXIMUM)
    h.set_strict_mode(0)
    noop = lambda *a: 0
    cases = [
        ("read of 1 byte at the end", lambda: h.pread(1, S)),
        ("read straddling the end", lambda: h.pread(1024, S - 512)),
        ("read far past the end", lambda: h.pread(4096, S + 1024 * MiB)),
        ("read at offset 2^63-512", lambda: h.pread(512, 2**63 - 512)),
        ("read at offset 2^64-512 (wraps)", lambda: h.pread(512, 2**64 - 512)),
        ("zero-length read", lambda: h.pread(0, 4096)),
        ("write straddling the end",
         lambda: h.pwrite(b"\xaa" * 1024, S - 512)),
        ("write at offset 2^64-512 (wraps)",
         lambda: h.pwrite(b"\xaa" * 512, 2**64 - 512)),
        ("FUA write past the end",
         lambda: h.pwrite(b"\xaa" * 512, S, nbd.CMD_FLAG_FUA)),
        ("zero-length write", lambda: h.pwrite(b"", 4096)),
        ("write with unknown flag 0x80",
         lambda: h.pwrite(b"\xaa" * 512, 4096, 0x80)),
        ("zero of 2^32-1 bytes", lambda: h.zero(2**32 - 1, 0)),
        ("zero of 2^32-1 bytes at an odd offset",
         lambda: h.zero(2**32 - 1, 12345)),
        ("zero past the end", lambda: h.zero(4096, S)),
        ("zero straddling the end", lambda: h.zero(8192, S - 4096)),
        ("zero-length zero", lambda: h.zero(0, 4096)),
        ("trim of 2^32-1 bytes", lambda: h.trim(2**32 - 1, 0)),
        ("trim straddling the end", lambda: h.trim(CS + 1, S - CS)),
        ("trim at offset 2^64-65536", lambda: h.trim(CS, 2**64 - CS)),
        ("zero-length trim", lambda: h.trim(0, 0)),
        ("block status past the end", lambda: h.block_status(4096, S, noop)),
        ("block status straddling the end",
         lambda: h.block_status(8192, S - 4096, noop)),
        ("block status of 2^32-1 bytes",
         lambda: h.block_status(2**32 - 1, 0, noop)),
        ("block status at offset 2^64-4096",
         lambda: h.block_status(4096, 2**64 - 4096, noop)),
        ("zero-length block status", lambda: h.block_status(0, 0, noop)),
    ]
    for desc, fn in cases:
        expect_error(desc, fn)
    t.log("%d invalid requests through libnbd: each got an error" %
          len(cases))

    # A burst of invalid requests in flight at once, among valid ones.
    pending = []
    for i in range(64):
        buf = nbd.Buffer(4096)
        if i % 2:
            off = S + i * 4096
            pending.append(("bad", off, buf, h.aio_pread(buf, off)))
        else:
            off = rng.randrange(0, S - 4096)
            pending.append(("good", off, buf, h.aio_pread(buf, off)))
    deadline = time.monotonic() + HANG
    while h.aio_in_flight() > 0:
        if time.monotonic() > deadline:
            raise t.TestFailure("burst: %d requests without a reply after "
                                "%d s" % (h.aio_in_flight(), HANG))
        h.poll(1)
    nbad = 0
    for kind, off, buf, cookie in pending:
        try:
            h.aio_command_completed(cookie)
            ok = True
        except nbd.Error:
            ok = False
        if kind == "bad":
            if ok:
                raise t.TestFailure("burst: a read at %d (past the end) "
                                    "succeeded" % off)
            nbad += 1
        elif not ok:
            raise t.TestFailure("burst: a valid read at %d failed" % off)
        else:
            m.check_read(off, buf.to_bytearray(), "burst, valid read")
    t.log("ok: a burst of %d invalid reads among valid ones, all answered"
          % nbad)

    # Valid requests at the edges, checked against the model.
    expect_ok("read of exactly 64 MiB", lambda: m.check_read(
        S // 2, h.pread(LIMIT, S // 2), "64 MiB read"))
    expect_ok("last byte", lambda: m.check_read(S - 1, h.pread(1, S - 1)))
    for off, n in ((12345, 1000), (CS - 1, CS + 2), (S - 777, 777)):
        expect_ok("unaligned trim [%d, +%d)" % (off, n),
                  lambda: h.trim(n, off))
        m.trim(off, n)
        off2 = off + 3 * CS + 17
        expect_ok("unaligned zero [%d, +%d)" % (off2 % S, n),
                  lambda: h.zero(min(n, S - off2 % S), off2 % S))
        m.zero(off2 % S, min(n, S - off2 % S))
    expect_ok("block status of the whole device",
              lambda: t.check_extents(m, h, 0, S))
    m.check_all(h, "after the invalid requests")

    raw_checks(dev, m)

    # Same connection, and a new one: random I/O against the model.
    h2 = dev.connect()
    t.random_ops(m, [h, h2], rng, 300)
    m.check_all(h2, "new connection, after everything")
    if dev.server.proc.poll() is not None:
        raise t.TestFailure("nbdkit exited during the test")
    dev.stop()                     # exit 0, no sanitizer report
    dev.start()
    m.check_all(dev.connect(), "after a restart")
    dev.stop()

    # The maximum block size the server advertises (NBD_INFO_BLOCK_SIZE,
    # the plugin's .block_size) is the largest request it is willing to
    # handle: a client may send a read or write that large.  nbdkit
    # refuses reads and writes over 64 MiB (ENOMEM above), so a larger
    # advertised maximum is a promise the server does not keep.
    if advertised > LIMIT:
        raise t.TestFailure(
            "the server advertises a maximum block size of %d bytes, but "
            "refuses reads and writes over %d (64 MiB + 4 KiB: ENOMEM); "
            "the plugin's .block_size should report a maximum <= 64 MiB"
            % (advertised, LIMIT))
    t.log("ok: advertised maximum block size %d <= 64 MiB" % advertised)

t.run(body)
EOF
