#!/bin/bash
# matrix.sh - tierbd side by side with nbdkit (file, memory, S3 plugin +
# cache filter), s3backer and parallel curl, in one run on one machine
# (issue 8).  Three sections, each a set of contenders measured in the
# same rounds, contenders rotating their order from round to round:
#
#   hot    every chunk in the cache: tierbd (cache 1.25x the device, the
#          whole device written and drained to a dir: store first),
#          nbdkit's file plugin (a file on the same disk: the local limit
#          of the NBD path) and its memory plugin; one server each for
#          the whole section, fio's nbd engine, time-based runs.
#          Before the rounds every contender's device is written whole,
#          drained (tierbd) and read once (tierbd's slots are written with
#          O_DIRECT and reach the page cache only when read; the file
#          plugin's file is there from its writes).
#          HOT_NOWB=1 (default) adds tierbd-nowb: tierbd with write-back
#          held off (writeback-delay=1h, max-dirty=the cache), to show
#          what the hot path itself costs without the uploads.
#   cold   every chunk only in the store (Ceph RGW from tests/ceph-s3.sh):
#          a fresh server on an empty cache for every measurement.
#          tierbd reopens the device from the store's newest commit
#          (prefetch=none, so no warm pulls of earlier sessions' heat;
#          cache 2x the device); s3backer (FUSE, 1 MiB blocks,
#          --listBlocks --readAhead=16, block cache in RAM, default size)
#          freshly mounted, read and written with fio libaio --direct=1 on
#          the file it exposes; nbdkit's S3 plugin (python, boto3) with
#          the cache filter (writeback, cache-on-read) and the blocksize
#          filter, at 64 KiB objects (nbdkit 1.32 refuses 1 MiB: see
#          s3-cold.sh).  Limits: parallel curl (one `curl -Z
#          --parallel-max CURL_P`), GETs of tierbd's chunk objects for
#          sequential reads, PUTs of 1 MiB objects for sequential writes.
#          Reads stop at the end of the device or after COLD_RUNTIME s;
#          writes end with an fsync (fio end_fsync=1), counted in the
#          time; what a writer sees, not the upload (s3-cold.sh measures
#          write+drain).  Write sessions stop cleanly (everything
#          uploaded) before the next session, untimed.
#   zipf   a working set larger than the cache: 4 KiB random reads,
#          fio random_distribution=zipf:ZIPF_THETA over the whole cold
#          device, QD ZIPF_QD, with the SAME cache size for all
#          (ZIPF_CACHE_MIB: tierbd cache-size, s3backer --blockCacheSize,
#          nbdkit cache-max-size); each contender fresh and cold, a
#          warm-up of ZIPF_WARM s (other random seed), then ZIPF_RUNTIME
#          s measured.  Hit ratio = 1 - GETs / reads, the GETs counted by
#          RGW itself (perf counter rgw.get on its admin socket, a delta
#          around the measured run; only one contender runs at a time),
#          the same rule for all (each 4 KiB read touches one chunk,
#          block or object, and a miss costs one GET); tierbd's own
#          counters (stats: cache.hits, cache.misses) beside it.  p50 and
#          p99 are fio's latencies from submission to completion
#          (lat_percentiles: with libaio on s3backer's FUSE file the work
#          is done in io_submit, and completion latency alone is ~0).
#          ZIPF_64K=1 (default) adds tierbd-64K: the same device at
#          chunk-size=64K, the granularity of nbdkit S3's objects (s3backer
#          and tierbd use 1 MiB).
#
# Workloads (WORKLOADS, NAME:BS:QD): seqread 1M QD 8, seqwrite 1M QD 8,
# randread and randwrite 4k at QD 1 and 32.  Value: MiB/s for seq*,
# IOPS for rand*.  Each cell is the median of RUNS rounds (min..max);
# each ratio is taken within a round, then the median (min..max) of the
# rounds.  RSS is VmHWM of the server process (nbdkit, s3backer, curl)
# at the end of the measurement, the largest over the rounds.
#
# Writes OUT_DIR/{hot,cold,zipf}.md (markdown tables),
# OUT_DIR/{hot,cold,zipf}.dat (for bench/plot-matrix.gp) and
# OUT_DIR/results (raw rows), and prints the tables.  Nothing here is a
# pass/fail test.  Needs root (FUSE).  bench/run-all.sh runs it.
#
# Usage: bench/matrix.sh [BUILD_DIR]   (default: build/ of this checkout)
# Environment: WHICH="hot cold zipf" RUNS=3 QUICK=0 (QUICK=1: small
#   sizes, 1 round, short runs: a smoke test of a few minutes)
#   HOT_SIZE_MIB=1024 HOT_RUNTIME=4 HOT_NOWB=1 COLD_SIZE_MIB=1024 COLD_RUNTIME=8
#   COLD_WRITE_MIB=256 CURL_P=32 ZIPF_CACHE_MIB=128 ZIPF_THETA=1.1
#   ZIPF_QD=4 ZIPF_WARM=15 ZIPF_RUNTIME=20 ZIPF_64K=1
#   BENCH_DIR=/var/tmp/tierbd-matrix OUT_DIR=$BENCH_DIR/out
#   PREV_RESULTS=FILE (an earlier run's OUT_DIR/results: its rows of the
#   sections not in WHICH go into the tables)
#   S3_PORT=7590 MON_PORT=3390; CEPH_S3_REUSE=1 with CEPH_S3_DIR (and
#   the same S3_PORT) uses an RGW already started there and leaves it
#   running (bench/run-all.sh)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$src/build}")
plugin=$build/plugin/nbdkit-tierbd-plugin.so
tierbd=$build/server/tierbd
quick=${QUICK:-0}
if [ "$quick" = 1 ]; then
	d_runs=1 d_hot=256 d_hrt=2 d_cold=256 d_crt=3 d_cw=64 d_zc=32 d_zw=5 d_zrt=8
else
	d_runs=3 d_hot=1024 d_hrt=4 d_cold=1024 d_crt=8 d_cw=256 d_zc=128 d_zw=15 d_zrt=20
fi
which=${WHICH:-"hot cold zipf"}
runs=${RUNS:-$d_runs}
hot_mib=${HOT_SIZE_MIB:-$d_hot}
hot_rt=${HOT_RUNTIME:-$d_hrt}
cold_mib=${COLD_SIZE_MIB:-$d_cold}
cold_rt=${COLD_RUNTIME:-$d_crt}
cold_write_mib=${COLD_WRITE_MIB:-$d_cw}
curl_p=${CURL_P:-32}
zipf_cache=${ZIPF_CACHE_MIB:-$d_zc}
zipf_theta=${ZIPF_THETA:-1.1}
zipf_qd=${ZIPF_QD:-4}
zipf_warm=${ZIPF_WARM:-$d_zw}
zipf_rt=${ZIPF_RUNTIME:-$d_zrt}
zipf_64k=${ZIPF_64K:-1}
hot_nowb=${HOT_NOWB:-1}
workloads=${WORKLOADS:-"seqread:1M:8 seqwrite:1M:8 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32"}
dir=${BENCH_DIR:-/var/tmp/tierbd-matrix}
out=${OUT_DIR:-$dir/out}
export S3_PORT=${S3_PORT:-7590} MON_PORT=${MON_PORT:-3390}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-testkey} S3_SECRET_KEY=${S3_SECRET_KEY:-testsecret}
reuse=${CEPH_S3_REUSE:-}
if [ -n "$reuse" ]; then
	export CEPH_S3_DIR=${CEPH_S3_DIR:?CEPH_S3_REUSE needs CEPH_S3_DIR}
else
	export CEPH_S3_DIR=$dir/ceph
fi
export CEPH_CONF=$CEPH_S3_DIR/ceph.conf
ep=http://127.0.0.1:$S3_PORT
bucket=matrix
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
say() { echo "matrix: $*" >&2; }
die() {
	say "$*"
	exit 1
}
want() { [[ " $which " == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts)"
[ -f "$plugin" ] || die "no plugin at $plugin: build first (bench/run-all.sh does)"
[ -x "$tierbd" ] || die "no tierbd command at $tierbd: build first"
for b in fio nbdkit curl s3backer fusermount; do
	command -v "$b" >/dev/null || die "$b is missing: scripts/deps.sh bench"
done

# ---- state, cleanup --------------------------------------------------------
run=$dir/run
mnt=$dir/mnt
pids=() # processes we started and have not stopped yet
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
forget() {
	local keep=() p
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}
stop() { # PID: SIGTERM (a clean stop: tierbd uploads first), SIGKILL after 300 s
	kill "$1" 2>/dev/null || true
	for _ in $(seq 3000); do
		alive "$1" || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget "$1"
}
cleanup() {
	set +e
	mountpoint -q "$mnt" 2>/dev/null && { fusermount -u "$mnt" || umount -l "$mnt"; }
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
	[ -z "$reuse" ] && [ -f "$CEPH_S3_DIR/s3.env" ] && "$src/tests/ceph-s3.sh" stop >&2
}
trap cleanup EXIT
mountpoint -q "$mnt" 2>/dev/null && die "$mnt is mounted: unmount it first"
rm -rf "$run"
mkdir -p "$run" "$mnt" "$out"
: >"$run/results"
# PREV_RESULTS: rows of an earlier run (its OUT_DIR/results) for the
# sections not run now, in the tables as they were measured
if [ -n "${PREV_RESULTS:-}" ]; then
	awk -v w=" $which " 'index(w, " " $1 " ") == 0' "$PREV_RESULTS" >>"$run/results"
fi

dirty=$(git -C "$src" status --porcelain -- plugin server proto backends common 2>/dev/null | wc -l)
rev="$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?') + $dirty uncommitted engine paths"
rev=${TIERBD_REV:-$rev} # what BUILD_DIR was built from, when the caller knows

# ---- measuring helpers -------------------------------------------------------
hwm() { awk '/^VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

# fio_run OUT ARGS...: one fio job, JSON in OUT
fio_run() {
	local o=$1
	shift
	timeout 900 fio --name=job --output-format=json --lat_percentiles=1 "$@" \
		>"$o" 2>"$run/fio.err" ||
		{ cat "$run/fio.err" >&2; die "fio failed: $*"; }
}
# fio_vals FILE: "MiB/s IOPS p50_us p99_us ios" (rates over the job's
# runtime, which includes end_fsync; latency: submission to completion)
fio_vals() {
	/usr/bin/python3 - "$1" <<'EOF'
import json, sys
s = open(sys.argv[1]).read()
j = json.loads(s[s.index("{"):])["jobs"][0]  # the nbd engine prints a line first
side = j["write"] if j["write"]["io_bytes"] else j["read"]
rt = max(j["job_runtime"], 1) / 1000
# total latency, submission + completion: with libaio on a FUSE file
# (s3backer) the read is done inside io_submit, so clat alone is ~0
pc = side.get("lat_ns", {}).get("percentile") or side.get("clat_ns", {}).get("percentile", {})
print("%.1f %.0f %.1f %.1f %d" % (side["io_bytes"] / 1048576 / rt,
      side["total_ios"] / rt, pc.get("50.000000", 0) / 1000,
      pc.get("99.000000", 0) / 1000, side["total_ios"]))
EOF
}

# record SECTION WORKLOAD CONTENDER ROUND VALUE P50 P99 RSS_KB [HIT THIT]
record() {
	echo "$*" | awk '{ for (i = NF + 1; i <= 10; i++) $i = "-"; print }' >>"$run/results"
	say "round $4: $1 $2 $3: $5 (p50 $6 us, p99 $7 us, rss $(($8 / 1024)) MiB${9:+, hit $9}${10:+, own counters ${10}})"
}

# value WORKLOAD FIO_VALS: MiB/s for seq*, IOPS for rand*
value() {
	case $1 in
	seq*) echo "$2" | awk '{print $1}' ;;
	*) echo "$2" | awk '{print $2}' ;;
	esac
}

wait_sock() { # SOCK PID
	for _ in $(seq 600); do
		[ -S "$1" ] && return 0
		alive "$2" || return 1
		sleep 0.1
	done
	return 1
}

# the control socket: one request line, one JSON reply
cat >"$run/ctl.py" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
f.write(("tierbd/1 " + sys.argv[2] + "\n").encode())
f.flush()
j = json.loads(f.readline())
if sys.argv[2] == "stats":
    print(j["cache"]["hits"], j["cache"]["misses"], j["dirty"]["bytes"])
else:
    print(json.dumps(j))
EOF
tstats() { /usr/bin/python3 "$run/ctl.py" "$1/control" stats; }

rotate() { # ROUND WORDS...: the words rotated by ROUND
	local r=$1
	shift
	local a=("$@") n=$# i
	for ((i = 0; i < n; i++)); do printf '%s ' "${a[(i + r) % n]}"; done
}

# fio arguments of a workload: WORKLOAD BS QD SIZE_MIB RUNTIME MODE
# (MODE: hot = time-based with a ramp; cold = until the end or RUNTIME)
wl_args() {
	local w=$1 bs=$2 qd=$3 size=$4 rt=$5 mode=$6 a
	a="--bs=$bs --iodepth=$qd --size=${size}M --runtime=$rt"
	case $w in
	seqread) a="$a --rw=read" ;;
	seqwrite) a="$a --rw=write --refill_buffers" ;;
	randread) a="$a --rw=randread --time_based" ;;
	randwrite) a="$a --rw=randwrite --refill_buffers --time_based" ;;
	esac
	case $w in *write) [ "$mode" = hot ] || a="$a --end_fsync=1" ;; esac
	if [ "$mode" = hot ]; then
		case $a in *time_based*) ;; *) a="$a --time_based" ;; esac
		a="$a --ramp_time=1"
	fi
	echo "$a"
}

# =============================================================================
# hot
# =============================================================================
hot_section() {
	local h=$run/hot c w bs qd r args v pid p50 p99
	mkdir -p "$h"
	declare -A hpid
	say "hot: starting tierbd, nbdkit file, nbdkit memory (${hot_mib} MiB each)"
	nbdkit -f -U "$h/tierbd.sock" "$plugin" size="${hot_mib}M" cache="$h/cache" \
		cache-size="$((hot_mib * 5 / 4))M" store="dir:$h/store" 2>"$h/tierbd.log" &
	hpid[tierbd]=$!
	pids+=($!)
	truncate -s "${hot_mib}M" "$h/file.img"
	nbdkit -f -U "$h/file.sock" file "$h/file.img" 2>"$h/file.log" &
	hpid[nbdkit-file]=$!
	pids+=($!)
	nbdkit -f -U "$h/memory.sock" memory "${hot_mib}M" 2>"$h/memory.log" &
	hpid[nbdkit-memory]=$!
	pids+=($!)
	declare -A hsock=([tierbd]=$h/tierbd.sock [nbdkit-file]=$h/file.sock
		[nbdkit-memory]=$h/memory.sock [tierbd-nowb]=$h/nowb.sock)
	local hc=(tierbd nbdkit-file nbdkit-memory)
	if [ "$hot_nowb" = 1 ]; then
		# the same, write-back held off: what the hot path costs without
		# the uploads of dirty chunks (or max-dirty's brake)
		nbdkit -f -U "$h/nowb.sock" "$plugin" size="${hot_mib}M" cache="$h/cache-nowb" \
			cache-size="$((hot_mib * 5 / 4))M" store="dir:$h/store-nowb" \
			writeback-delay=3600000 writeback-early=false max-dirty="$((hot_mib * 5 / 4))M" 2>"$h/nowb.log" &
		hpid[tierbd-nowb]=$!
		pids+=($!)
		hc+=(tierbd-nowb)
	fi
	for c in "${hc[@]}"; do
		wait_sock "${hsock[$c]}" "${hpid[$c]}" || die "hot: $c did not start"
		fio_run "$h/fill.json" --ioengine=nbd --uri="nbd+unix:///?socket=${hsock[$c]}" \
			--rw=write --bs=1M --iodepth=8 --size="${hot_mib}M" --refill_buffers
	done
	# tierbd: every chunk written and uploaded: hot and clean
	"$tierbd" -C "$h/cache" drain >/dev/null
	[ "$hot_nowb" = 1 ] && "$tierbd" -C "$h/cache-nowb" drain >/dev/null
	# and read once through every contender: tierbd writes its slots with
	# O_DIRECT, so until read they are on disk only, while the file
	# plugin's writes left its file in the page cache
	for c in "${hc[@]}"; do
		fio_run "$h/warm.json" --ioengine=nbd --uri="nbd+unix:///?socket=${hsock[$c]}" \
			--rw=read --bs=1M --iodepth=8 --size="${hot_mib}M"
	done
	for r in $(seq "$runs"); do
		for wl in $workloads; do
			IFS=: read -r w bs qd <<<"$wl"
			args=$(wl_args "$w" "$bs" "$qd" "$hot_mib" "$hot_rt" hot)
			for c in $(rotate "$r" "${hc[@]}"); do
				# shellcheck disable=SC2086 # args are words
				fio_run "$h/j.json" --ioengine=nbd \
					--uri="nbd+unix:///?socket=${hsock[$c]}" $args
				v=$(fio_vals "$h/j.json")
				pid=${hpid[$c]}
				read -r _ _ p50 p99 _ <<<"$v"
				record hot "$w-$bs-qd$qd" "$c" "$r" "$(value "$w" "$v")" \
					"$p50" "$p99" "$(hwm "$pid")"
			done
		done
	done
	for c in "${hc[@]}"; do stop "${hpid[$c]}"; done
	rm -rf "$h"
}

# =============================================================================
# the store (cold, zipf)
# =============================================================================
store_up() {
	if [ -n "$reuse" ]; then
		[ -f "$CEPH_S3_DIR/s3.env" ] || die "CEPH_S3_REUSE: no RGW in $CEPH_S3_DIR"
	else
		"$src/tests/ceph-s3.sh" start >&2
	fi
	"$src/tests/ceph-s3.sh" mkbucket "$bucket" >&2
	rgw_asok=$CEPH_S3_DIR/run/client.rgw.a.asok
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	export AWS_DEFAULT_REGION=us-east-1
}
# keys PREFIX | count PREFIX | rm PREFIX (bench/s3util.py)
s3util() { EP=$ep /usr/bin/python3 "$src/bench/s3util.py" "$1" "$bucket" "$2"; }
rgw_gets() { # GETs RGW has served so far
	ceph --admin-daemon "$rgw_asok" perf dump 2>/dev/null |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["rgw"]["get"])'
}

# ---- tierbd on S3 ----------------------------------------------------------------
t_cache=
tierbd_up() { # CACHE_MIB PREFIX [WORDS...]: a fresh empty cache, reopened from the store
	local cm=$1 pre=$2
	shift 2
	t_cache=$run/tcache
	rm -rf "$t_cache" "$run/t.sock"
	nbdkit -f -U "$run/t.sock" "$plugin" cache="$t_cache" cache-size="${cm}M" \
		store="s3://$bucket/$pre" s3-endpoint="$ep" "$@" 2>"$run/tierbd.log" &
	t_pid=$!
	pids+=("$t_pid")
	wait_sock "$run/t.sock" "$t_pid" || { cat "$run/tierbd.log" >&2; die "tierbd did not start"; }
	srv_pid=$t_pid
	srv_uri="nbd+unix:///?socket=$run/t.sock"
	srv_engine=(--ioengine=nbd --uri="$srv_uri")
}
# A clean stop leaves dirty chunks in the cache (server/devopen.c
# device_close: "the next open pushes them"): drain first, untimed.
tierbd_down() {
	"$tierbd" -C "$t_cache" drain >/dev/null || die "tierbd drain failed"
	stop "$t_pid"
}

# ---- s3backer ------------------------------------------------------------------------
printf '%s:%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$run/s3b.passwd"
chmod 600 "$run/s3b.passwd"
s3b_up() { # [BLOCK_CACHE_BLOCKS]
	s3backer --accessFile="$run/s3b.passwd" --baseURL="$ep/" --prefix=s3b/ \
		--blockSize=1M --size="${cold_mib}M" --listBlocks --readAhead=16 \
		${1:+--blockCacheSize="$1"} -f "$bucket" "$mnt" >"$run/s3b.log" 2>&1 &
	b_pid=$!
	pids+=("$b_pid")
	for _ in $(seq 600); do
		mountpoint -q "$mnt" && [ -e "$mnt/file" ] && break
		alive "$b_pid" || { cat "$run/s3b.log" >&2; die "s3backer did not mount"; }
		sleep 0.1
	done
	mountpoint -q "$mnt" || die "s3backer did not mount"
	srv_pid=$b_pid
	srv_engine=(--filename="$mnt/file" --ioengine=libaio --direct=1)
}
s3b_down() { # the unmount returns once every dirty block is uploaded
	fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
	for _ in $(seq 3000); do
		alive "$b_pid" || break
		sleep 0.1
	done
	stop "$b_pid"
}

# ---- nbdkit S3 + cache filter --------------------------------------------------------------
nbs3_obj=64K
n_up() { # [CACHE_MAX_MIB]
	rm -f "$run/n.sock"
	TMPDIR=$run nbdkit -f -U "$run/n.sock" --filter=blocksize --filter=cache S3 \
		endpoint-url="$ep" bucket="$bucket" key=nbs3 size="${cold_mib}M" \
		object-size="$nbs3_obj" cache=writeback cache-min-block-size="$nbs3_obj" \
		cache-on-read=true ${1:+cache-max-size="$1"M} 2>"$run/nbs3.log" &
	n_pid=$!
	pids+=("$n_pid")
	wait_sock "$run/n.sock" "$n_pid" || { cat "$run/nbs3.log" >&2; die "nbdkit S3 did not start"; }
	srv_pid=$n_pid
	srv_engine=(--ioengine=nbd --uri="nbd+unix:///?socket=$run/n.sock")
}
n_down() { stop "$n_pid"; }

# contender C up / down, for the cold section or for zipf (cache size given)
up() { # CONTENDER [ZIPF_CACHE_MIB]
	case $1 in
	tierbd | tierbd-64K)
		tierbd_up "${2:-$((cold_mib * 2))}" "$([ "$1" = tierbd ] && echo tierbd || echo tierbd64)" \
			prefetch=none
		grep -q "reopened the device from store" "$run/tierbd.log" ||
			{ cat "$run/tierbd.log" >&2; die "tierbd did not reopen from the store"; } ;;
	s3backer) s3b_up "${2:-}" ;;
	nbdkit-S3) n_up "${2:-}" ;;
	esac
}
down() {
	case $1 in
	tierbd | tierbd-64K) tierbd_down ;;
	s3backer) s3b_down ;;
	nbdkit-S3) n_down ;;
	esac
}

# ---- parallel curl ----------------------------------------------------------------------------
curl_run() { # CFG SHA: sets c_mibs c_rss_kb
	local t0 t1
	t0=$(now)
	/usr/bin/time -f '%M %U %S' -o "$run/curl.time" \
		curl -sS --no-progress-meter -Z --parallel-max "$curl_p" \
		--aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
		-H "x-amz-content-sha256: $2" -K "$1" \
		-w '%{http_code} %{size_download} %{size_upload}\n' >"$run/curl.out"
	t1=$(now)
	awk '$1 !~ /^20[04]$/ {bad++} END {exit bad ? 1 : 0}' "$run/curl.out" ||
		die "curl: some requests failed: $(sort "$run/curl.out" | uniq -c | head)"
	c_mibs=$(awk -v a="$t0" -v b="$t1" '{s += $2 + $3} END {printf "%.1f", s / 1048576 / (b - a)}' \
		"$run/curl.out")
	read -r c_rss_kb _ <"$run/curl.time"
}

# =============================================================================
# cold
# =============================================================================
tierbd_fill() { # PREFIX CHUNK_SIZE NCHUNKS: a new device, written once, drained
	local n
	t_cache=$run/tcache
	rm -rf "$t_cache" "$run/t.sock"
	nbdkit -f -U "$run/t.sock" "$plugin" size="${cold_mib}M" chunk-size="$2" \
		cache="$t_cache" cache-size="$((cold_mib * 2))M" \
		store="s3://$bucket/$1" s3-endpoint="$ep" 2>"$run/tierbd.log" &
	t_pid=$!
	pids+=("$t_pid")
	wait_sock "$run/t.sock" "$t_pid" || { cat "$run/tierbd.log" >&2; die "tierbd did not start"; }
	fio_run "$run/fill.json" --ioengine=nbd --uri="nbd+unix:///?socket=$run/t.sock" \
		--rw=write --bs=1M --iodepth=16 --size="${cold_mib}M" --refill_buffers --end_fsync=1
	tierbd_down
	n=$(s3util count "$1/chunks/")
	[ "$n" -ge "$3" ] || die "tierbd ($1) stored $n of $3 chunks"
}

cold_fill() {
	local n nobj
	say "cold: filling the devices in the store (${cold_mib} MiB each)"
	tierbd_fill tierbd 1M "$cold_mib"
	# s3backer
	s3b_up
	fio_run "$run/fill.json" "${srv_engine[@]}" --rw=write --bs=1M --iodepth=16 \
		--size="${cold_mib}M" --refill_buffers --end_fsync=1
	s3b_down
	# nbdkit S3: its objects (KEY/%016x, 64 KiB) PUT directly, as it writes them
	nobj=$((cold_mib * 16))
	mkdir -p "$run/up"
	for i in $(seq 0 63); do head -c 65536 /dev/urandom >"$run/up/$i"; done
	awk -v ep="$ep/$bucket/nbs3" -v up="$run/up" -v n="$nobj" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "upload-file = \"%s/%d\"\nurl = \"%s/%016x\"\noutput = \"/dev/null\"\n",
				up, i % 64, ep, i }' >"$run/nput.cfg"
	curl_run "$run/nput.cfg" UNSIGNED-PAYLOAD
	n=$(s3util count nbs3/)
	[ "$n" -ge "$nobj" ] || die "nbdkit S3: $n of $nobj objects stored"
	get_cfg
	mkdir -p "$run/up1m"
	for i in $(seq 0 15); do head -c 1048576 /dev/urandom >"$run/up1m/$i"; done
	awk -v ep="$ep/$bucket/curl-put" -v up="$run/up1m" -v n="$cold_write_mib" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "upload-file = \"%s/%d\"\nurl = \"%s/%06d\"\noutput = \"/dev/null\"\n",
				up, i % 16, ep, i }' >"$run/put.cfg"
}

# curl's GETs: tierbd's chunk objects as they are now (a write session
# replaces the versions it wrote, and the old ones are deleted)
get_cfg() {
	s3util keys tierbd/chunks/ | head -n "$cold_mib" |
		awk -v ep="$ep/$bucket" '{printf "url = \"%s/%s\"\noutput = \"/dev/null\"\n", ep, $1}' \
			>"$run/get.cfg"
}

cold_section() {
	local r wl w bs qd c args v p50 p99 rss g0
	cold_fill
	for r in $(seq "$runs"); do
		for wl in $workloads; do
			IFS=: read -r w bs qd <<<"$wl"
			for c in $(rotate "$r" tierbd s3backer nbdkit-S3); do
				up "$c"
				if [ "$w" = seqwrite ]; then
					args=$(wl_args "$w" "$bs" "$qd" "$cold_write_mib" "$cold_rt" cold)
				else
					args=$(wl_args "$w" "$bs" "$qd" "$cold_mib" "$cold_rt" cold)
				fi
				g0=$(rgw_gets)
				# shellcheck disable=SC2086 # args are words
				fio_run "$run/j.json" "${srv_engine[@]}" $args
				rss=$(hwm "$srv_pid")
				v=$(fio_vals "$run/j.json")
				read -r _ _ p50 p99 _ <<<"$v"
				# the store's GETs during the run, in the hit column
				record cold "$w-$bs-qd$qd" "$c" "$r" "$(value "$w" "$v")" "$p50" "$p99" "$rss" \
					$(($(rgw_gets) - g0))
				down "$c"
			done
			case $w in
			seqread)
				get_cfg
				curl_run "$run/get.cfg" "$empty_sha"
				record cold "$w-$bs-qd$qd" curl "$r" "$c_mibs" - - "$c_rss_kb" ;;
			seqwrite)
				curl_run "$run/put.cfg" UNSIGNED-PAYLOAD
				record cold "$w-$bs-qd$qd" curl "$r" "$c_mibs" - - "$c_rss_kb"
				s3util rm curl-put/ ;;
			esac
		done
	done
}

# =============================================================================
# zipf
# =============================================================================
zipf_section() {
	local r c g0 g1 h0 m0 h1 m1 v ios p50 p99 rss hit thit
	[ -f "$run/get.cfg" ] || cold_fill
	local zc=(tierbd s3backer nbdkit-S3)
	if [ "$zipf_64k" = 1 ]; then
		say "zipf: filling tierbd-64K (chunk-size=64K, as nbdkit S3's objects)"
		tierbd_fill tierbd64 64K $((cold_mib * 16))
		zc+=(tierbd-64K)
	fi
	local zargs="--rw=randread --bs=4k --iodepth=$zipf_qd --size=${cold_mib}M"
	zargs="$zargs --random_distribution=zipf:$zipf_theta --time_based"
	for r in $(seq "$runs"); do
		for c in $(rotate "$r" "${zc[@]}"); do
			up "$c" "$zipf_cache"
			# shellcheck disable=SC2086 # zargs are words
			fio_run "$run/z.json" "${srv_engine[@]}" $zargs --runtime="$zipf_warm" \
				--randseed=$((1000 + r))
			g0=$(rgw_gets)
			h0=0 m0=0
			case $c in tierbd*) read -r h0 m0 _ <<<"$(tstats "$t_cache")" ;; esac
			# shellcheck disable=SC2086
			fio_run "$run/z.json" "${srv_engine[@]}" $zargs --runtime="$zipf_rt" \
				--randseed=$((2000 + r))
			g1=$(rgw_gets)
			rss=$(hwm "$srv_pid")
			thit=-
			if [[ $c == tierbd* ]]; then
				read -r h1 m1 _ <<<"$(tstats "$t_cache")"
				thit=$(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) \
					'BEGIN{printf "%.1f", h + m ? 100 * h / (h + m) : 0}')
			fi
			v=$(fio_vals "$run/z.json")
			read -r _ _ p50 p99 ios <<<"$v"
			hit=$(awk -v g=$((g1 - g0)) -v n="$ios" 'BEGIN{printf "%.1f", n ? 100 * (1 - g / n) : 0}')
			record zipf "zipf$zipf_theta-4k-qd$zipf_qd" "$c" "$r" "$(value randread "$v")" \
				"$p50" "$p99" "$rss" "$hit" "$thit"
			down "$c"
		done
	done
}

# =============================================================================
load0=$(cut -d' ' -f1-3 /proc/loadavg)
want hot && hot_section
if want cold || want zipf; then
	store_up
	want cold && cold_section
	want zipf && zipf_section
	s3util rm tierbd/
	s3util rm s3b/
	s3util rm nbs3/
	s3util rm tierbd64/
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tables --------------------------------------------------------------------------------------
{
	echo "- bench/matrix.sh, $(date -u '+%Y-%m-%d %H:%M UTC'): $runs round(s); tierbd $rev;" \
		"nbdkit $(nbdkit --version | awk '{print $2}');" \
		"s3backer $(s3backer --version 2>&1 | head -1 | awk '{print $3}');" \
		"$(curl --version | head -1 | cut -d' ' -f1-2); $(fio --version);" \
		"$(radosgw --version | awk '{print $1, $2, $3}') (memstore OSD, same machine)"
	echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo))," \
		"$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r);" \
		"load average $load0 at the start, $load1 at the end"
	echo "- env: QUICK=$quick HOT_SIZE_MIB=$hot_mib HOT_RUNTIME=$hot_rt HOT_NOWB=$hot_nowb COLD_SIZE_MIB=$cold_mib" \
		"COLD_RUNTIME=$cold_rt COLD_WRITE_MIB=$cold_write_mib CURL_P=$curl_p" \
		"ZIPF_CACHE_MIB=$zipf_cache ZIPF_THETA=$zipf_theta ZIPF_QD=$zipf_qd ZIPF_WARM=$zipf_warm" \
		"ZIPF_RUNTIME=$zipf_rt ZIPF_64K=$zipf_64k"
} >"$run/footer"
/usr/bin/python3 - "$run/results" "$out" "$run/footer" <<'EOF'
import sys, os, statistics as st
from collections import defaultdict
res, out, footer = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
rows = defaultdict(dict)   # (section, workload, contender) -> {round: fields}
order = []
for line in open(res):
    f = line.split()
    if len(f) < 8:
        continue
    sec, wl, c, r = f[0], f[1], f[2], int(f[3])
    num = lambda x: None if x == "-" else float(x)
    rows[(sec, wl, c)][r] = dict(v=float(f[4]), p50=num(f[5]), p99=num(f[6]),
                                 rss=int(f[7]), hit=num(f[8]), thit=num(f[9]))
    if (sec, wl) not in order:
        order.append((sec, wl))
def fmt(xs, f="%.0f"):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return "-"
    if len(xs) == 1:
        return f % xs[0]
    return (f + " (" + f + ".." + f + ")") % (st.median(xs), xs[0], xs[-1])
def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None
def ratios(a, b):          # same-round ratios a/b
    return [a[r]["v"] / b[r]["v"] for r in a if r in b and b[r]["v"]]
def unit(wl):
    return "MiB/s" if wl.startswith("seq") else "IOPS"
def lat(x):
    return "-" if x is None else ("%.0f" % x if x >= 10 else "%.1f" % x)
conts = {"hot": ["tierbd", "nbdkit-file", "nbdkit-memory", "tierbd-nowb"],
         "cold": ["tierbd", "s3backer", "nbdkit-S3", "curl"],
         "zipf": ["tierbd", "tierbd-64K", "s3backer", "nbdkit-S3"]}
base = {"hot": "nbdkit-file", "cold": "s3backer", "zipf": "s3backer"}
for sec in ("hot", "cold", "zipf"):
    wls = [wl for s, wl in order if s == sec]
    if not wls:
        continue
    md, dat = [], []
    if sec == "zipf":
        md.append("| workload | contender | hit ratio % (1 - GETs/reads) | tierbd's own hit ratio % "
                  "| IOPS | p50 us | p99 us | RSS MiB |")
        md.append("|---|---|---|---|---|---|---|---|")
    else:
        b = base[sec]
        extra = " | vs curl limit" if sec == "cold" else ""
        gets = " | store GETs" if sec == "cold" else ""
        md.append("| workload | contender | value median (min..max) | vs %s, same round%s "
                  "| p50 us | p99 us | RSS MiB%s |" % (b, extra, gets))
        md.append("|---|---|---|---|" + ("---|---|" if sec == "cold" else "") + "---|---|---|")
    for wl in wls:
        datrow = [wl]
        for c in conts[sec]:
            k = (sec, wl, c)
            if k not in rows:
                if sec != "zipf" and c != base[sec]:
                    datrow += ["?", "?", "?"]
                continue
            x = rows[k]
            xs = list(x.values())
            rss = "%d" % (max(y["rss"] for y in xs) / 1024)
            p50 = lat(med([y["p50"] for y in xs]))
            p99 = lat(med([y["p99"] for y in xs]))
            if sec == "zipf":
                md.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    wl, c, fmt([y["hit"] for y in xs], "%.1f"),
                    fmt([y["thit"] for y in xs], "%.1f"), fmt([y["v"] for y in xs]),
                    p50, p99, rss))
                hs = sorted(y["hit"] for y in xs)
                ps = sorted(y["p99"] / 1000 for y in xs)
                dat.append("%s %.2f %.2f %.2f %.3f %.3f %.3f" % (
                    c, st.median(hs), hs[0], hs[-1], st.median(ps), ps[0], ps[-1]))
                continue
            bk = (sec, wl, base[sec])
            if c == base[sec] or bk not in rows:
                vb = "-"
            else:
                rr = ratios(x, rows[bk])
                vb = fmt(rr, "%.2f")
                datrow += ["%.3f" % st.median(rr), "%.3f" % min(rr), "%.3f" % max(rr)] if rr else ["?"] * 3
            vc = ""
            if sec == "cold":
                ck = (sec, wl, "curl")
                vc = " | " + (fmt(ratios(x, rows[ck]), "%.2f") if ck in rows and c != "curl" else "-")
            gc = ""
            if sec == "cold":
                gc = " | " + fmt([y["hit"] for y in xs])
            md.append("| %s (%s) | %s | %s | %s%s | %s | %s | %s%s |" % (
                wl, unit(wl), c, fmt([y["v"] for y in xs]), vb, vc, p50, p99, rss, gc))
        if sec != "zipf":
            dat.append(" ".join(datrow))
    with open(os.path.join(out, sec + ".md"), "w") as f:
        f.write("\n".join(md) + "\n\n" + footer)
    with open(os.path.join(out, sec + ".dat"), "w") as f:
        if sec != "zipf":
            f.write("# workload " + " ".join(
                c + "_med " + c + "_min " + c + "_max" for c in conts[sec] if c != base[sec]) + "\n")
        f.write("\n".join(dat) + "\n")
    print("### " + sec + "\n")
    print("\n".join(md) + "\n")
print(footer)
EOF
cp "$run/results" "$out/results"
