#!/usr/bin/env bash
# Without the privilege to load BPF (nbdkit run as `nobody` with every
# capability dropped, by setpriv), probe=on refuses to start and says
# why, and leaves the device closed cleanly; probe=auto says why once
# and serves as usual, `tierbd status` shows the probe as unavailable
# with the reason, and probe=off says nothing.  Run by a user who is not
# root, the same without setpriv.
source "$(dirname "$0")/functions.sh"
requires_harness
run_py <<'EOF'
import json
import os
import shutil
import subprocess

import tierbd_test as t

CLI = os.path.join(os.environ.get("TIERBD_BUILD", ""), "server", "tierbd")
DROP = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all"]


class Unprivileged(t.Nbdkit):
    def command(self):
        return (DROP if os.geteuid() == 0 else []) + super().command()


def body(wd):
    t.require_tierbd("the kernel probe")
    if not os.access(CLI, os.X_OK):
        t.skip("the tierbd command is not built (%s)" % CLI)
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            t.skip("setpriv is not installed (util-linux)")
        # nobody creates the socket, the cache and the store here, and
        # loads copies of the plugin and of what is preloaded.
        shutil.chown(wd.path, user="nobody")
        os.chmod(wd.path, 0o755)

    def copy(path):
        dst = wd.sub(os.path.basename(path))
        shutil.copy(path, dst)
        os.chmod(dst, 0o755)
        return dst

    plugin = copy(t.plugin())
    pre = os.environ.get("TIERBD_NBDKIT_PRELOAD")
    if pre:
        os.environ["TIERBD_NBDKIT_PRELOAD"] = " ".join(
            copy(p) for p in pre.split())
    cache, store = wd.sub("cache"), "dir:" + wd.sub("store")
    srv = Unprivileged(wd, [], name="dev")

    def start(*args):
        srv.args = [plugin, "cache=" + cache] + list(args)
        return srv.start()

    try:
        start("size=16M", "cache-size=8M", "store=" + store, "probe=on")
    except t.TestFailure as e:
        if "probe=on" not in str(e) or "not permitted" not in str(e) or \
                "CAP_BPF" not in str(e):
            raise t.TestFailure("probe=on without privilege failed "
                                "without saying why:\n%s" % e)
    else:
        st = subprocess.run([CLI, "-C", cache, "status"],
                            capture_output=True, text=True).stdout
        srv.stop()
        t.skip("BPF loads even without privilege here "
               "(kernel.unprivileged_bpf_disabled=0?):\n" + st)

    mark = len(srv.read_log(tail=100000))
    start("probe=auto")
    h = srv.connect()
    h.pwrite(b"u" * 65536, 4 * 65536)
    if h.pread(65536, 4 * 65536) != b"u" * 65536:
        raise t.TestFailure("the device does not serve without the probe")
    p = subprocess.run([CLI, "-C", cache, "status", "--json"],
                       capture_output=True, text=True, timeout=60)
    st = json.loads(p.stdout)["probe"]
    if st["loaded"] or not st["state"].startswith("unavailable: not "
                                                  "permitted"):
        raise t.TestFailure("status shows the probe as %s" % st)
    srv.stop()
    log = srv.read_log(tail=100000)[mark:]
    if "not closed cleanly" in log:
        raise t.TestFailure("probe=on left the device open:\n" + log)
    n = log.count("kernel I/O probe not loaded")
    if n != 1 or "not permitted" not in log:
        raise t.TestFailure("probe=auto should say once why it runs "
                            "without the probe (said %d times):\n%s" %
                            (n, log))

    mark = len(srv.read_log(tail=100000))
    start("probe=off")
    srv.stop()
    log = srv.read_log(tail=100000)[mark:]
    said = [l for l in log.splitlines() if not l.startswith("==== ")]
    if any("probe" in l for l in said):
        raise t.TestFailure("probe=off still talks about the probe:\n" +
                            log)

t.run(body)
EOF
