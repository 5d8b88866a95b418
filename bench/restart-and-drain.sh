#!/bin/bash
# restart-and-drain.sh - background work and durability on a cold store
# with latency (Ceph RGW by default), issue 5.  Three measurements, each
# printing a markdown table; nothing here is a pass/fail test.
#
#   drain   demand-read latency while a large write-back drains, against
#           idle.  A device of DRAIN_SIZE_MIB, every chunk written and
#           committed; each measurement is a fresh nbdkit on an EMPTY
#           cache directory (reopened from the store's newest commit:
#           every chunk COLD).  Reads: fio --ioengine=nbd, QD 1, 4 KiB,
#           one read in each chunk of the read region (the first
#           DRAIN_SIZE_MIB - DRAIN_WRITE_MIB), chunks in random order,
#           replayed from an iolog: every read is a demand fetch of a
#           cold chunk (plain randread would hit chunks it fetched
#           before).  idle: only the reads.  drain: first DRAIN_WRITE_MIB
#           of new data written to the write region as fast as fio can
#           (1 MiB, QD 16; it lands in the cache, dirty), then at once the
#           same reads; only reads completed before the last dirty byte
#           reached the store count.  p99 ratio drain/idle within a round.
#           Every session runs with prefetch=none (the heat committed by
#           earlier rounds would otherwise have warm pulls fetch the read
#           region).  DRAIN_CONFIGS: the write-back settings tried.
#
#   warm    warm restart.  A device of WARM_SIZE_MIB, written once;
#           session 1 (cache lost: opened from the store) runs a Zipf
#           workload (fio randread 4 KiB, random_distribution=zipf:1.1,
#           QD WARM_QD) for WARM_S1 s and builds heat, then stops cleanly.
#           Session 2 loses the cache directory again and reopens from
#           the store with takeover=true, runs the same workload for
#           WARM_S2 s; a sampler reads `stats` on the control socket
#           every 0.5 s.  Time to 95%: from nbdkit serving until the hit
#           ratio over the last WARM_WINDOW s first reaches 95% ("first")
#           and until it stays there ("stays").  prefetch=warm (default)
#           against prefetch=none.  Session 2 ends with SIGKILL, so that
#           no session 2 commits its own heat (each one starts from
#           session 1's commit; takeover=true takes the lease back).
#           HEAT_COMMIT=write ends session 1 with one 4 KiB write of data
#           already there and `tierbd drain`, which forces a commit: a
#           read-only session makes no commit of its own at close
#           (server/commit.c commit_final: nothing changed), so without
#           it the heat never reaches the store (HEAT_COMMIT=none shows
#           that).
#
#   mount   cold mount of ext4 through nbdfuse + a loop device.  Session
#           1 makes ext4 on a MOUNT_SIZE_MIB device, writes MOUNT_FILES
#           small files (1-16 KiB) in MOUNT_DIRS directories, unmounts,
#           drains to the store, stops.  Session 2, on an empty cache,
#           times mount (rw,noatime), `ls -lR`, and reading every file:
#             plain   prefetch=none readahead=0: demand fetches only
#             pins    the same plus pin= on the ext4 metadata (primary
#                     superblock and group descriptors, block and inode
#                     bitmaps, inode tables, from dumpe2fs; the journal's
#                     superblock, from debugfs), pulled in the background
#                     from the start
#             dirs    pins on the metadata and every directory's blocks
#                     (debugfs), only if those lie outside the metadata's
#                     chunks (with flex_bg they lie just after the inode
#                     tables, inside them)
#             warm    default parameters (prefetch=warm: session 1's
#                     heat from its commit)
#             hot     the floor: after plain, the same again in the same
#                     session (new nbdfuse and loop device), all hot
#           Session 2 runs with commit-interval=3600 and ends with
#           SIGKILL after the unmount, so the store keeps session 1's
#           image for every round.
#
# Store: STORE=s3 (default) a throwaway RGW (tests/ceph-s3.sh, RAM-backed,
# 127.0.0.1 only) started and stopped here; STORE=dir a directory under
# BENCH_DIR (no network latency: the note in docs/benchmarks.md).
# S3_DELAY_MS=N puts a delay line (python asyncio, 127.0.0.1:S3_PORT+1)
# between tierbd and RGW: every reply arrives N ms later, as from a
# store N ms of round trip away (a local RGW answers a 1 MiB GET in a
# few ms; AWS S3 in tens).
#
# Usage: bench/restart-and-drain.sh [BUILD_DIR]
#   Without BUILD_DIR the plugin is built (release) from this checkout in
#   $BENCH_DIR/build.  Run as root (apt-get, FUSE, loop devices, mount).
# Environment: WHICH="drain warm mount" RUNS=5 STORE=s3
#   BENCH_DIR=/var/tmp/tierbd-bg5bench S3_PORT=7560 MON_PORT=3360 S3_DELAY_MS=0
#   DRAIN_SIZE_MIB=2560 DRAIN_WRITE_MIB=768 DRAIN_READ_MAX=60
#   DRAIN_CONFIGS="default;push-threads=1;push-threads=2;push-rate=16M" (';' between
#     sets; words of a set are tierbd parameters, "default" is none)
#   WARM_SIZE_MIB=1024 WARM_QD=1 WARM_S1=90 WARM_S2=60 WARM_WINDOW=2
#   HEAT_COMMIT=write|none
#   WARM_CONFIGS="prefetch=warm;prefetch=none;prefetch=warm pull-threads=16"
#     (as DRAIN_CONFIGS; prefetch=none is the baseline of the ratio)
#   MOUNT_SIZE_MIB=4096 MOUNT_FILES=4000 MOUNT_DIRS=40
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
which=${WHICH:-"drain warm mount"}
runs=${RUNS:-5}
store_kind=${STORE:-s3}
dir=${BENCH_DIR:-/var/tmp/tierbd-bg5bench}
drain_size=${DRAIN_SIZE_MIB:-2560}
drain_write=${DRAIN_WRITE_MIB:-768}
drain_read_max=${DRAIN_READ_MAX:-60}
drain_configs=${DRAIN_CONFIGS:-"default;push-threads=1;push-threads=2;push-rate=16M"}
warm_size=${WARM_SIZE_MIB:-1024}
warm_qd=${WARM_QD:-1}
warm_s1=${WARM_S1:-90}
warm_s2=${WARM_S2:-60}
warm_window=${WARM_WINDOW:-2}
heat_commit=${HEAT_COMMIT:-write}
warm_configs=${WARM_CONFIGS:-"prefetch=warm;prefetch=none;prefetch=warm pull-threads=16"}
mount_size=${MOUNT_SIZE_MIB:-4096}
mount_files=${MOUNT_FILES:-4000}
mount_dirs=${MOUNT_DIRS:-40}
s3_delay=${S3_DELAY_MS:-0}
export S3_PORT=${S3_PORT:-7560} MON_PORT=${MON_PORT:-3360}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-testkey} S3_SECRET_KEY=${S3_SECRET_KEY:-testsecret}
# CEPH_S3_REUSE=1: an RGW already started in CEPH_S3_DIR (same S3_PORT),
# used and left running (bench/run-all.sh starts one for every bench)
if [ -n "${CEPH_S3_REUSE:-}" ]; then
	export CEPH_S3_DIR=${CEPH_S3_DIR:?CEPH_S3_REUSE needs CEPH_S3_DIR}
else
	export CEPH_S3_DIR=$dir/ceph
fi
ep=http://127.0.0.1:$S3_PORT
bucket=bg5
say() { echo "restart-and-drain: $*" >&2; }
die() {
	say "$*"
	exit 1
}
want() { [[ " $which " == *" $1 "* ]]; }

# ---- packages: install only what is missing ------------------------------
[ "$(id -u)" = 0 ] || die "run as root (apt-get, FUSE, loop devices, mount)"
pkgs=(fio curl nbdkit libnbd-bin python3-libnbd fuse3 e2fsprogs util-linux python3)
[ "$store_kind" = s3 ] && pkgs+=(ceph-mon ceph-osd radosgw)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed' || missing+=("$p")
done
# nbdfuse: a package of its own on some releases, in libnbd-bin on others
command -v nbdfuse >/dev/null || missing+=(nbdfuse)
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >&2
fi

# ---- state, cleanup --------------------------------------------------------
run=$dir/run
mnt=$dir/mnt
fusedir=$dir/fuse
pids=()     # processes we started and have not stopped yet
loopdev=    # our loop device, while attached
mounted=    # our mount, while mounted
fuse_pid=   # nbdfuse, while running
s_pid=      # the stats sampler, while running
alive() { # PID: running, not a zombie waiting to be reaped
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
cleanup() {
	set +e
	fs_down
	# newest first (nbdkit before the delay line it talks through); a
	# clean stop that takes over 30 s (a store gone) ends with SIGKILL
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		p=${pids[i]}
		kill "$p" 2>/dev/null
		for _ in $(seq 300); do
			alive "$p" || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -z "${CEPH_S3_REUSE:-}" ] && [ -f "$CEPH_S3_DIR/s3.env" ] &&
		"$src/tests/ceph-s3.sh" stop >&2
}
trap cleanup EXIT
mountpoint -q "$mnt" 2>/dev/null && die "$mnt is mounted: unmount it first"
mountpoint -q "$fusedir" 2>/dev/null && die "$fusedir is mounted: unmount it first"
rm -rf "$run" "$dir/store"
mkdir -p "$run" "$mnt" "$fusedir"

# ---- build tierbd ------------------------------------------------------------
dirty=$(git -C "$src" status --porcelain -- plugin server proto backends common 2>/dev/null | wc -l)
rev="$(git -C "$src" rev-parse --short HEAD) + $dirty uncommitted engine paths"
if [ $# -ge 1 ]; then
	build=$(realpath "$1")
	rev="$rev (as built in $build)"
else
	"$src/scripts/deps.sh" build >&2
	build=$dir/build
	[ -f "$build/build.ninja" ] ||
		meson setup "$build" "$src" --buildtype=release >"$dir/meson.log" 2>&1 ||
		{ cat "$dir/meson.log" >&2; die "meson setup failed"; }
	ninja -C "$build" plugin/nbdkit-tierbd-plugin.so server/tierbd >"$dir/ninja.log" 2>&1 ||
		{ tail -30 "$dir/ninja.log" >&2; die "build failed"; }
fi
plugin=$build/plugin/nbdkit-tierbd-plugin.so
tierbd=$build/server/tierbd
[ -f "$plugin" ] || die "no plugin at $plugin"
[ -x "$tierbd" ] || die "no tierbd command at $tierbd"
nbdkit "$plugin" --help 2>&1 | grep -q 'prefetch=warm|all|none' ||
	die "this tierbd has no prefetch=none (needed for the baselines)"

# ---- the store --------------------------------------------------------------
if [ "$store_kind" = s3 ]; then
	[ -n "${CEPH_S3_REUSE:-}" ] || "$src/tests/ceph-s3.sh" start >&2
	"$src/tests/ceph-s3.sh" mkbucket "$bucket" >&2
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	store_of() { echo "store=s3://$bucket/$1 s3-endpoint=$ep"; }
	store_desc="Ceph RGW $(radosgw --version | awk '{print $3}') (memstore OSD, 127.0.0.1)"
	if [ "$s3_delay" != 0 ]; then
		# a delay line in front of RGW: every byte it sends back reaches
		# tierbd S3_DELAY_MS later (one added round trip per request;
		# two for a PUT that waits for "100 Continue")
		cat >"$run/delay.py" <<'EOF'
import asyncio, sys
lport, tport, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
async def pump(r, w, d):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    async def out():
        while True:
            t, data = await q.get()
            if not data:
                break
            if d and t + d > loop.time():
                await asyncio.sleep(t + d - loop.time())
            w.write(data)
            await w.drain()
    o = asyncio.create_task(out())
    try:
        while True:
            data = await r.read(262144)
            q.put_nowait((loop.time(), data))
            if not data:
                break
        await o
    except (ConnectionError, OSError):
        o.cancel()
    finally:
        w.close()
async def conn(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", tport)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pump(cr, sw, 0), pump(sr, cw, delay), return_exceptions=True)
async def main():
    srv = await asyncio.start_server(conn, "127.0.0.1", lport)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
EOF
		/usr/bin/python3 "$run/delay.py" "$((S3_PORT + 1))" "$S3_PORT" "$s3_delay" \
			2>"$run/delay.log" &
		pids+=($!)
		ep=http://127.0.0.1:$((S3_PORT + 1))
		for _ in $(seq 100); do
			curl -s -o /dev/null "$ep/" && break
			sleep 0.1
		done
		store_desc="$store_desc behind a delay line adding ${s3_delay} ms to every reply"
	fi
else
	store_of() { echo "store=dir:$dir/store/$1"; }
	store_desc="dir: on the cache's file system"
fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- helpers ------------------------------------------------------------------
now() { date +%s.%N; }

wait_file() { # FILE PID: until FILE exists (up to 120 s) while PID lives
	for _ in $(seq 1200); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

forget() { # PID: no longer ours to stop
	local keep=() p
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

# t_start PREFIX SIZE_MIB CACHE_SIZE WORDS...: nbdkit on an empty cache
# directory (the device is reopened from the store, or created); words
# starting with - go to nbdkit.  Sets t_pid and t_ready (serving).
t_start() {
	local pre=$1 size=$2 csize=$3 w nopts=() popts=()
	shift 3
	for w in "$@"; do
		case $w in -*) nopts+=("$w") ;; *) popts+=("$w") ;; esac
	done
	rm -rf "$run/cache" "$run/t.sock" "$run/t.pid"
	# shellcheck disable=SC2046
	nbdkit -f -U "$run/t.sock" -P "$run/t.pid" "${nopts[@]}" "$plugin" \
		size="${size}M" chunk-size=1M cache="$run/cache" cache-size="$csize" \
		$(store_of "$pre") takeover=true "${popts[@]}" 2>>"$run/tierbd.log" &
	t_pid=$!
	pids+=("$t_pid")
	wait_file "$run/t.pid" "$t_pid" ||
		{ tail -20 "$run/tierbd.log" >&2; die "tierbd did not start"; }
	t_ready=$(now)
}
t_uri() { echo "nbd+unix:///?socket=$run/t.sock"; }
t_stop() { # SIGTERM: a clean stop (final commit), wait for the exit
	kill "$t_pid" 2>/dev/null || true
	wait "$t_pid" 2>/dev/null || true
	forget "$t_pid"
}
t_kill() { # SIGKILL: no final commit; the next start takes the lease over
	kill -KILL "$t_pid" 2>/dev/null || true
	wait "$t_pid" 2>/dev/null || true
	forget "$t_pid"
}
t_ctl() { "$tierbd" -s "$run/cache/control" "$@"; }

# The sampler: `stats` on the control socket every INTERVAL seconds, one
# line per sample: time dirty_bytes hits misses reads push_q pull_q
# uploads prefetches fetch_bytes hot_chunks store_get_latency_histogram
cat >"$run/sample.py" <<'EOF'
import json, socket, sys, time
path, interval, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
for _ in range(200):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("sampler: cannot connect to " + path)
f = s.makefile("rwb")
with open(out, "w", buffering=1) as o:
    t_next = time.time()
    while True:
        t = time.time()
        f.write(b"tierbd/1 stats\n")
        f.flush()
        line = f.readline()
        if not line:
            break
        j = json.loads(line)
        if not j.get("ok"):
            continue
        c, st, ch = j["cache"], j["store"], j["chunks"]
        o.write("%.3f %d %d %d %d %d %d %d %d %d %d %s\n" % (
            t, j["dirty"]["bytes"], c["hits"], c["misses"], j["io"]["reads"],
            j["queues"]["push"], j["queues"]["pull"], st["uploads"],
            st["prefetches"], st["fetch_bytes"],
            ch["hot_clean"] + ch["hot_dirty"],
            ",".join(map(str, st["latency"]["hist"]))))
        t_next += interval
        time.sleep(max(0.0, t_next - time.time()))
EOF
sample_start() { # OUT INTERVAL
	/usr/bin/python3 "$run/sample.py" "$run/cache/control" "$2" "$1" &
	s_pid=$!
	pids+=("$s_pid")
}
sample_stop() {
	[ -n "$s_pid" ] || return 0
	kill "$s_pid" 2>/dev/null || true
	wait "$s_pid" 2>/dev/null || true
	forget "$s_pid"
	s_pid=
}

fio_run() { # OUT ARGS...: fio on the device, JSON in OUT
	local out=$1
	shift
	timeout 900 fio --ioengine=nbd --uri="$(t_uri)" --output-format=json \
		"$@" >"$out" 2>"$run/fio.err" ||
		{ cat "$run/fio.err" >&2; die "fio failed: $*"; }
}

fill() { # PREFIX SIZE_MIB: write the whole device once, committed, stop
	t_start "$1" "$2" "$(($2 * 2))M" flush=remote
	fio_run "$run/fill.json" --name=fill --rw=write --bs=1M --iodepth=16 \
		--size="${2}M" --end_fsync=1 --refill_buffers
	t_stop
}

wait_clean() { # until nothing is dirty (up to 900 s)
	local d
	for _ in $(seq 4500); do
		d=$(t_ctl status --json | /usr/bin/python3 -c \
			'import json,sys; print(json.loads(sys.stdin.readline())["dirty"]["bytes"])')
		[ "$d" = 0 ] && return 0
		sleep 0.2
	done
	die "write-back did not drain in 900 s"
}

# ---- nbdfuse + loop device + mount (as tests/fuse-loop.sh) ------------------------
fs_up() { # nbdfuse on our socket, a loop device on its file; sets loopdev
	local i
	rm -f "$run/nbdfuse.pid"
	nbdfuse -P "$run/nbdfuse.pid" "$fusedir/disk.img" --unix "$run/t.sock" \
		>>"$run/nbdfuse.log" 2>&1 </dev/null &
	fuse_pid=$!
	pids+=("$fuse_pid")
	for ((i = 0; i < 300; i++)); do
		[ -s "$run/nbdfuse.pid" ] && break
		kill -0 "$fuse_pid" 2>/dev/null ||
			{ cat "$run/nbdfuse.log" >&2; die "nbdfuse failed"; }
		sleep 0.05
	done
	[ -s "$run/nbdfuse.pid" ] || die "nbdfuse did not start"
	loopdev=$(losetup -f --show "$fusedir/disk.img")
}
fs_mount() { # OPTIONS
	mount -o "$1" "$loopdev" "$mnt"
	mounted=1
}
fs_umount() {
	[ -n "$mounted" ] || return 0
	timeout 120 umount "$mnt" || umount -l "$mnt"
	mounted=
}
fs_down() { # in order: file system, loop device, FUSE
	local i
	fs_umount
	if [ -n "$loopdev" ]; then
		losetup -d "$loopdev" 2>/dev/null
		loopdev=
	fi
	if [ -n "$fuse_pid" ]; then
		for ((i = 0; i < 100; i++)); do # the loop device lets go asynchronously
			fusermount3 -u "$fusedir" 2>/dev/null && break
			sleep 0.1
		done
		for ((i = 0; i < 100; i++)); do
			kill -0 "$fuse_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$fuse_pid" 2>/dev/null; then
			fusermount3 -uz "$fusedir" 2>/dev/null
			kill -KILL "$fuse_pid" 2>/dev/null
		fi
		wait "$fuse_pid" 2>/dev/null || true
		forget "$fuse_pid"
		fuse_pid=
	fi
}

# ---- shared table helpers (python) ---------------------------------------------
cat >"$run/stats.py" <<'EOF'
import statistics as st
def fmt(xs, f="%.1f"):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return "-"
    if len(xs) == 1:
        return (f % xs[0]) + " (1 run)"
    return (f + " (" + f + ".." + f + ")") % (st.median(xs), xs[0], xs[-1])
def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))  # nearest rank
    return xs[k]
EOF

# =============================================================================
# drain: demand-read latency during write-back
# =============================================================================
drain_read_mib=$((drain_size - drain_write))

drain_iolog() { # ROUND: one 4 KiB read in each chunk of the read region, shuffled
	/usr/bin/python3 - "$1" "$drain_read_mib" >"$run/reads.iolog" <<'EOF'
import random, sys
r, n = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(r)
chunks = list(range(n))
rnd.shuffle(chunks)
print("fio version 2 iolog\ndev add\ndev open")
for c in chunks:
    print("dev read %d 4096" % (c * 1048576 + rnd.randrange(256) * 4096))
print("dev close")
EOF
}

# drain_one ROUND NAME idle|drain WORDS...
drain_one() {
	local r=$1 name=$2 mode=$3 tw0=0 tw1=0
	shift 3
	t_start drain "$drain_size" "$((drain_size + 1024))M" prefetch=none "$@"
	sample_start "$run/d.samples" 0.25
	if [ "$mode" = drain ]; then
		tw0=$(now)
		fio_run "$run/dw.json" --name=w --rw=write --bs=1M --iodepth=16 \
			--offset="${drain_read_mib}M" --size="${drain_write}M" --refill_buffers
		tw1=$(now)
	fi
	rm -f "$run"/lat_*.log
	fio_run "$run/dr.json" --name=r --read_iolog="$run/reads.iolog" --iodepth=1 \
		--runtime="$drain_read_max" --write_lat_log="$run/lat" --log_avg_msec=0 \
		--log_unix_epoch=1
	[ "$mode" = drain ] && wait_clean
	sleep 0.5
	sample_stop
	t_stop
	/usr/bin/python3 - "$run" "$r" "$name" "$mode" "$tw0" "$tw1" "$drain_write" \
		>>"$run/drain.results" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from stats import pct
run, r, name, mode, tw0, tw1, wmib = sys.argv[1:8]
tw0, tw1 = float(tw0), float(tw1)
lat = []  # (completion time s, clat ms)
for line in open(run + "/lat_clat.1.log"):
    t, v = line.split(",")[:2]
    lat.append((int(t) / 1000.0, int(v) / 1e6))
end, secs, mibs = None, 0, 0
samples = [l.split() for l in open(run + "/d.samples")]
if mode == "drain":
    for f in samples:
        if float(f[0]) > tw1 and int(f[1]) == 0 and int(f[5]) == 0:
            end = float(f[0])
            break
    secs = end - tw0
    mibs = int(wmib) / secs
    lat = [x for x in lat if x[0] <= end]
else:
    end = float(samples[-1][0])
xs = [v for _, v in lat]
# the store's GETs over the same window, from its log2 histogram (the
# upper edge of the bucket: good to a factor of two)
t_read0 = lat[0][0] - lat[0][1] / 1000 if lat else 0
h0 = h1 = None
for f in samples:
    h = list(map(int, f[11].split(",")))
    if float(f[0]) <= t_read0 or h0 is None:
        h0 = h
    if float(f[0]) <= end + 0.01:
        h1 = h
d = [b - a for a, b in zip(h0, h1)]
def hq(d, q):
    n = sum(d)
    if not n:
        return 0
    acc = 0
    for k, v in enumerate(d):
        acc += v
        if acc >= q * n:
            return 2 ** (k + 1) / 1e6
print(r, name, mode, "%.3f" % pct(xs, 50), "%.3f" % pct(xs, 99), len(xs),
      "%.2f" % secs, "%.1f" % mibs, "%.2f" % (tw1 - tw0),
      "%.1f" % hq(d, 0.5), "%.1f" % hq(d, 0.99), sum(d))
EOF
	tail -1 "$run/drain.results" | {
		read -r _ _ _ p50 p99 n secs mibs wsecs g50 g99 gn
		say "drain round $r $name $mode: p50 ${p50} ms p99 ${p99} ms ($n reads)," \
			"drain ${secs} s, $mibs MiB/s, write ${wsecs} s; GETs <= $g50 / $g99 ms ($gn)"
	}
}

drain_bench() {
	local r i n names=() sets=() order
	IFS=';' read -r -a sets <<<"$drain_configs"
	say "drain: filling a ${drain_size} MiB device"
	fill drain "$drain_size"
	: >"$run/drain.results"
	for r in $(seq "$runs"); do
		drain_iolog "$r"
		# idle and every config once per round, the order rotated
		n=$((${#sets[@]} + 1))
		for ((i = 0; i < n; i++)); do
			order=$(((i + r) % n))
			if [ "$order" = 0 ]; then
				drain_one "$r" idle idle
			else
				local set=${sets[$((order - 1))]}
				# shellcheck disable=SC2086
				if [ "$set" = default ]; then
					drain_one "$r" default drain
				else
					drain_one "$r" "${set// /,}" drain $set
				fi
			fi
		done
	done
	echo
	echo "### Demand reads while write-back drains ($store_kind store)"
	echo
	/usr/bin/python3 - "$run" "$drain_configs" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from stats import fmt
import statistics as st
rows = [l.split() for l in open(sys.argv[1] + "/drain.results")]
idle = {int(x[0]): x for x in rows if x[2] == "idle"}
print("| write-back setting | idle p50 ms | idle p99 ms | drain p50 ms | drain p99 ms "
      "| p99 drain/idle (same round) | reads in drain | drain MiB/s "
      "| store GET p99 ms, idle / drain | goal p99 <= 2x idle |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name in [s.replace(" ", ",") for s in sys.argv[2].split(";")]:
    xs = [x for x in rows if x[1] == name and x[2] == "drain"]
    if not xs:
        continue
    ratios = [float(x[4]) / float(idle[int(x[0])][4]) for x in xs if int(x[0]) in idle]
    ok = st.median(ratios) <= 2 if ratios else False
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
        name, fmt([float(i[3]) for i in idle.values()], "%.2f"),
        fmt([float(i[4]) for i in idle.values()], "%.1f"),
        fmt([float(x[3]) for x in xs], "%.2f"), fmt([float(x[4]) for x in xs], "%.1f"),
        fmt(ratios, "%.2f"), fmt([int(x[5]) for x in xs], "%.0f"),
        fmt([float(x[7]) for x in xs], "%.1f"),
        fmt([float(i[10]) for i in idle.values()], "%.0f"),
        fmt([float(x[10]) for x in xs], "%.0f"), "met" if ok else "**missed**"))
EOF
	echo
	echo "- ${drain_size} MiB device, 1 MiB chunks; reads: one 4 KiB read in each of the" \
		"${drain_read_mib} chunks of the read region in random order, QD 1 (every read a demand" \
		"fetch); drain: ${drain_write} MiB written first (fio 1 MiB, QD 16), reads counted until" \
		"the last dirty byte is in the store; idle p50/p99 over all ${drain_read_mib} reads;" \
		"$runs rounds, median (min..max), ratios within a round; store GET p99 from tierbd's" \
		"log2 histogram of chunk GETs in the same window (the bucket's upper edge: a factor of two)"
}

# =============================================================================
# warm: warm restart after losing the cache
# =============================================================================
warm_job() { # OUT SECONDS: the Zipf workload
	fio_run "$1" --name=zipf --rw=randread --bs=4k --iodepth="$warm_qd" \
		--size="${warm_size}M" --random_distribution=zipf:1.1 --norandommap \
		--time_based --runtime="$2"
}

warm_analyse() { # SAMPLES T_READY -> "first stays end_ratio hot_at_95 MiB_fetched"
	/usr/bin/python3 - "$1" "$2" "$warm_window" <<'EOF'
import sys
path, t0, win = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = [list(map(float, l.split()[:11])) for l in open(path)]
first = stays = None
ok_since = None
ratios = []
for i, x in enumerate(s):
    j = i
    while j > 0 and x[0] - s[j - 1][0] <= win + 0.01:
        j -= 1
    if x[0] - s[j][0] < win - 0.3:
        continue                      # not a whole window yet
    h, m = x[2] - s[j][2], x[3] - s[j][3]
    if h + m == 0:
        continue
    r = h / (h + m)
    ratios.append(r)
    if r >= 0.95:
        if first is None:
            first = (x[0] - t0, x[10], x[9])
        if ok_since is None:
            ok_since = (x[0] - t0, x[10], x[9])
    else:
        ok_since = None
stays = ok_since
def f(v):
    return "%.1f" % v[0] if v else "-"
last = ratios[-1] if ratios else 0
print(f(first), f(stays), "%.3f" % last,
      "%d" % (stays[1] if stays else s[-1][10]),
      "%.0f" % ((stays[2] if stays else s[-1][9]) / 1048576),
      "%d" % s[-1][8])
EOF
}

warm_bench() {
	local r
	say "warm: filling a ${warm_size} MiB device"
	fill warm "$warm_size"
	say "warm: session 1, Zipf for ${warm_s1} s"
	t_start warm "$warm_size" "$((warm_size * 2))M"
	sample_start "$run/s1.samples" 0.5
	warm_job "$run/s1.json" "$warm_s1"
	if [ "$heat_commit" = write ]; then
		# rewrite 4 KiB with what it holds: a new version, so a commit is
		# made, and the commit carries every chunk's heat
		/usr/bin/python3 - "$(t_uri)" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
b = h.pread(4096, 0)
h.pwrite(b, 0)
h.flush()
h.shutdown()
EOF
		t_ctl drain >/dev/null
	fi
	sample_stop
	s1=$(warm_analyse "$run/s1.samples" "$t_ready")
	t_stop
	: >"$run/warm.results"
	local sets=() n i set
	IFS=';' read -r -a sets <<<"$warm_configs"
	n=${#sets[@]}
	for r in $(seq "$runs"); do
		for ((i = 0; i < n; i++)); do # the order rotated
			set=${sets[$(((i + r) % n))]}
			# shellcheck disable=SC2086
			t_start warm "$warm_size" "$((warm_size * 2))M" $set
			sample_start "$run/s2.samples" 0.5
			warm_job "$run/s2.json" "$warm_s2"
			sample_stop
			t_kill
			echo "$r ${set// /,} $(warm_analyse "$run/s2.samples" "$t_ready")" >>"$run/warm.results"
			say "warm round $r $set: $(tail -1 "$run/warm.results")"
		done
	done
	echo
	echo "### Warm restart after losing the cache ($store_kind store)"
	echo
	/usr/bin/python3 - "$run" "$warm_s2" "$warm_configs" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from stats import fmt
import statistics as st
s2 = float(sys.argv[2])
names = [c.replace(" ", ",") for c in sys.argv[3].split(";")]
rows = [l.split() for l in open(sys.argv[1] + "/warm.results")]
def num(v):
    return None if v == "-" else float(v)
by = {}
for x in rows:
    by.setdefault(x[1], {})[int(x[0])] = x
base = by.get("prefetch=none", {})
print("| session 2 | to 95% hit ratio, first (s) | stays >= 95% from (s) "
      "| none/this, stays (same round) | hit ratio, last window "
      "| chunks hot at 95% | MiB fetched by then | background pulls | goal >= 5x |")
print("|---|---|---|---|---|---|---|---|---|")
for name in names:
    xs = by.get(name, {})
    if not xs:
        continue
    ratios = []
    for r, x in xs.items():
        if r in base and num(x[3]):
            b = num(base[r][3])
            ratios.append((b if b is not None else s2) / num(x[3]))
    goal = "-"
    if name != "prefetch=none" and ratios:
        goal = "met" if st.median(ratios) >= 5 else "**missed**"
    v = list(xs.values())
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        name, fmt([num(x[2]) for x in v]), fmt([num(x[3]) for x in v]),
        fmt(ratios, "%.1f") if name != "prefetch=none" else "1",
        fmt([float(x[4]) for x in v], "%.3f"), fmt([float(x[5]) for x in v], "%.0f"),
        fmt([float(x[6]) for x in v], "%.0f"), fmt([float(x[7]) for x in v], "%.0f"),
        goal))
print()
print("- a run that never stays >= 95%% counts as the whole %.0f s in the ratio" % s2)
EOF
	echo "- session 1 (demand only, the same workload, cache lost before it): $s1" \
		"(first, stays, last window, hot chunks, MiB fetched, pulls)"
	echo "- ${warm_size} MiB device, 1 MiB chunks, cache $((warm_size * 2)) MiB; fio randread 4 KiB" \
		"zipf:1.1 QD $warm_qd (the same seed: the same sequence in every session), session 1" \
		"${warm_s1} s, session 2 ${warm_s2} s; hit ratio over the last ${warm_window} s from" \
		"\`stats\` every 0.5 s; times from nbdkit serving; HEAT_COMMIT=$heat_commit; $runs rounds"
}

# =============================================================================
# mount: cold mount of ext4 with and without pins
# =============================================================================
mount_pins() { # -> "META_PINS META_CHUNKS DIR_PINS DIR_CHUNKS" (pin= lists)
	# META: the primary superblock and group descriptors, the block and
	# inode bitmaps and inode tables of every group (dumpe2fs), and the
	# journal's superblock (the first block of inode 8).  DIR: META and
	# the blocks of every directory (debugfs), which ext4 puts beside the
	# data of the files in them.
	dumpe2fs "$loopdev" >"$run/dumpe2fs.txt" 2>/dev/null
	debugfs -R "blocks <8>" "$loopdev" >"$run/journal.blocks" 2>/dev/null
	sed 's/^/blocks /' "$run/dirs.list" >"$run/debugfs.cmd"
	debugfs -f "$run/debugfs.cmd" "$loopdev" >"$run/dir.blocks" 2>/dev/null
	/usr/bin/python3 - "$run" <<'EOF'
import re, sys
run = sys.argv[1]
txt = open(run + "/dumpe2fs.txt").read()
bs = int(re.search(r"^Block size:\s+(\d+)", txt, re.M).group(1))
blocks = set()
def add(a, b):
    blocks.update(range(a, b + 1))
m = re.search(r"Primary superblock at (\d+), Group descriptors at (\d+)-(\d+)", txt)
add(int(m.group(1)), int(m.group(1)))
add(int(m.group(2)), int(m.group(3)))
for m in re.finditer(r"(?:Block bitmap at|Inode bitmap at|Inode table at) (\d+)(?:-(\d+))?", txt):
    add(int(m.group(1)), int(m.group(2) or m.group(1)))
j = open(run + "/journal.blocks").read().split()
if j:
    add(int(j[0]), int(j[0]))
dirs = set()
for line in open(run + "/dir.blocks"):
    if not line.startswith("debugfs"):
        dirs.update(int(w) for w in line.split() if w.isdigit())
def pins(bl):
    mb = 1 << 20
    chunks = sorted({b * bs // mb for b in bl})
    out = []
    for c in chunks:
        if out and out[-1][1] == c:
            out[-1][1] = c + 1
        else:
            out.append([c, c + 1])
    return ",".join("%dM-%dM" % (a, b) for a, b in out), len(chunks)
a, na = pins(blocks)
b, nb = pins(blocks | dirs)
print(a, na, b, nb)
EOF
}

mount_session1() {
	t_start mount "$mount_size" 1G flush=remote
	fs_up
	mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$loopdev" >&2
	fs_mount noatime
	/usr/bin/python3 - "$mnt" "$mount_files" "$mount_dirs" <<'EOF'
import os, random, sys
root, n, nd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(5)
dirs = []
for i in range(nd):
    d = os.path.join(root, "d%02d" % (i // 8), "s%02d" % i)
    os.makedirs(d, exist_ok=True)
    dirs.append(d)
for i in range(n):
    with open(os.path.join(dirs[i % nd], "f%05d" % i), "wb") as f:
        f.write(os.urandom(rnd.randint(1024, 16384)))
EOF
	mount_du=$(du -sm "$mnt" | cut -f1)
	(cd "$mnt" && find . -type d) | sed 's|^\.||; s|^$|/|' >"$run/dirs.list"
	fs_umount
	read -r pins npins dpins ndpins < <(mount_pins)
	sync
	fs_down
	t_ctl drain >/dev/null
	t_stop
	say "mount: ${mount_files} files (${mount_du} MiB), metadata pins on $npins chunks:" \
		"$pins; with directories $ndpins chunks: $dpins"
}

mount_pass() { # ROUND NAME T0: nbdfuse + loop, mount, ls -lR, read every file
	local r=$1 name=$2 t0=$3 t1 t2 t3 t4 st
	fs_up
	t1=$(now)
	fs_mount noatime
	t2=$(now)
	ls -lR "$mnt" >/dev/null
	t3=$(now)
	(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 cat) >/dev/null
	t4=$(now)
	st=$(t_ctl stats --json | /usr/bin/python3 -c '
import json, sys
j = json.loads(sys.stdin.readline())
print(j["cache"]["misses"], j["store"]["prefetches"])')
	fs_down
	echo "$r $name $t0 $t1 $t2 $t3 $t4 $st" | awk '{printf "%s %s %.3f %.3f %.3f %.3f %.3f %s %s\n",
		$1, $2, $5 - $3, $6 - $5, $7 - $6, $7 - $3, $4 - $3, $8, $9}' >>"$run/mount.results"
	say "mount round $r $name: $(tail -1 "$run/mount.results")"
}

mount_one() { # ROUND NAME WORDS...: one cold mount; appends to mount.results
	local r=$1 name=$2 t0
	shift 2
	t_start mount "$mount_size" 1G commit-interval=3600 "$@"
	mount_pass "$r" "$name" "$t_ready"
	if [ "$name" = plain ]; then
		# the floor: the same again with every chunk it needs hot (new
		# nbdfuse and loop device: nothing in the page cache); the
		# counters are cumulative, so its misses are those of both passes
		t0=$(now)
		mount_pass "$r" hot "$t0"
	fi
	t_kill
}

mount_bench() {
	local r i names
	say "mount: session 1 (mkfs, ${mount_files} files)"
	mount_session1
	: >"$run/mount.results"
	for r in $(seq "$runs"); do
		names=(plain pins warm)
		# directory blocks outside the metadata's chunks: a third pin set
		[ "$dpins" != "$pins" ] && names+=(dirs)
		for ((i = 0; i < ${#names[@]}; i++)); do
			case ${names[$(((i + r) % ${#names[@]}))]} in
			plain) mount_one "$r" plain prefetch=none readahead=0 ;;
			pins) mount_one "$r" pins prefetch=none readahead=0 pin="$pins" ;;
			dirs) mount_one "$r" dirs prefetch=none readahead=0 pin="$dpins" ;;
			warm) mount_one "$r" warm ;;
			esac
		done
	done
	echo
	echo "### Cold mount of ext4 ($store_kind store)"
	echo
	/usr/bin/python3 - "$run" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from stats import fmt
import statistics as st
rows = [l.split() for l in open(sys.argv[1] + "/mount.results")]
by = {}
for x in rows:
    by.setdefault(x[1], {})[int(x[0])] = x
print("| session 2 | mount s | ls -lR s | read files s | total s | vs plain (same round) "
      "| demand misses | background pulls |")
print("|---|---|---|---|---|---|---|---|")
desc = {"plain": "plain (prefetch=none readahead=0)",
        "pins": "pins on ext4 metadata (prefetch=none readahead=0 pin=...)",
        "dirs": "pins on metadata and directories (prefetch=none readahead=0 pin=...)",
        "warm": "defaults (prefetch=warm, readahead 16M on S3)",
        "hot": "floor: plain, second mount in the same session (all hot)"}
for name in ("plain", "pins", "dirs", "warm", "hot"):
    xs = by.get(name, {})
    if not xs:
        continue
    pl = by.get("plain", {})
    ratio = [float(x[5]) / float(pl[r][5]) for r, x in xs.items() if r in pl]
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        desc[name], fmt([float(x[2]) for x in xs.values()], "%.2f"),
        fmt([float(x[3]) for x in xs.values()], "%.2f"),
        fmt([float(x[4]) for x in xs.values()], "%.2f"),
        fmt([float(x[5]) for x in xs.values()], "%.2f"),
        fmt(ratio, "%.2f") if name != "plain" else "1",
        fmt([int(x[7]) - (int(pl[r][7]) if name == "hot" else 0)
             for r, x in xs.items()], "%.0f"),
        fmt([int(x[8]) for x in xs.values()], "%.0f")))
EOF
	echo
	echo "- ext4 (4 KiB blocks, mkfs -E lazy_itable_init=0,lazy_journal_init=0) on a ${mount_size} MiB" \
		"device, 1 MiB chunks; ${mount_files} files of 1-16 KiB (${mount_du} MiB) in ${mount_dirs}" \
		"directories; session 2 on an empty cache, through nbdfuse + loop; total = from" \
		"nbdkit serving to the last file read (nbdfuse and losetup included); metadata pins:" \
		"$npins chunks (\`$pins\`); with the directories' blocks (debugfs) $ndpins chunks" \
		"(a row of its own only if that adds chunks); $runs rounds, median (min..max)"
}

# ---- the runs --------------------------------------------------------------------
want drain && drain_bench
want warm && warm_bench
want mount && mount_bench
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "- tierbd $rev; store: $store_desc; nbdkit $(nbdkit --version | awk '{print $2}');" \
	"$(fio --version); machine: $(nproc) cores, $(uname -r); load average $load0 at the" \
	"start, $load1 at the end"
