#!/bin/bash
# s3-cold.sh - tierbd's cold tier on S3 (Ceph RGW), issue 3.
#
# On a throwaway single-node Ceph RGW (tests/ceph-s3.sh, RAM-backed,
# 127.0.0.1 only), a 1 GiB device of 1 MiB chunks/blocks/objects:
#
#   cold read    every chunk only in the store, nothing cached anywhere:
#                tierbd restarted on a new empty cache directory (it
#                reopens the device from the store's newest commit, every
#                chunk COLD), s3backer freshly mounted (empty block cache),
#                nbdkit's S3 plugin freshly started (empty cache filter);
#                then one sequential read of the whole device.
#   write+drain  a sequential write of the whole device, timed from the
#                first write until every byte is in the store: tierbd with
#                flush=remote and fio's end_fsync=1 (the flush returns when
#                a commit naming every chunk is in the store); s3backer
#                until its process has exited after the unmount (its fsync
#                does not wait for uploads; the unmount does); nbdkit S3
#                with cache=writeback until end_fsync returns.
#
# Contenders:
#   tierbd       fio --ioengine=nbd, iodepth QDS; default parameters except
#                flush=remote (cache-size=2G, push-threads=4, nbdkit -t 16)
#   s3backer     Debian's, FUSE, same RGW (path style), --blockSize=1M,
#                block cache on (in memory, default size), --listBlocks,
#                --readAhead=S3B_READAHEAD; fio --ioengine=libaio --direct=1
#                on the file it exposes, iodepth QDS
#   curl         the limit: one `curl -Z --parallel-max P` process (libcurl
#                multi, SigV4 by curl) GETting the very objects tierbd
#                stores, or PUTting copies of them (64 of tierbd's chunk
#                objects, each PUT 16 times under new keys; UNSIGNED-PAYLOAD),
#                for P in CURL_P; the limit of a round is its best P
#   curl-signed  with CURL_PUT_SIGNED=1, curl PUTs the same copies with
#                each body's SHA-256 in x-amz-content-sha256 (RGW hashes
#                the body and checks it), as tierbd does by default: the
#                limit for tierbd without s3-unsigned-payload
#   curl-1M      with CURL_PUT_1M=1, curl PUTs 1 MiB random objects too (what
#                this bench measured until e49d67b): not the limit, but it
#                shows what the object size alone costs the store (tierbd's
#                objects are 1 MiB + an 83-byte header; on the memstore OSD
#                that doubles the OSD's CPU per object, docs/benchmarks.md)
#   nbdkit S3    Debian's nbdkit-S3-plugin with nbdkit's cache filter, fio
#                --ioengine=nbd at iodepth 16; nbdkit 1.32 refuses its 1 MiB
#                block size (the reason is printed), so it runs with
#                object-size=64K, the largest nbdkit accepts
#
# Each round runs every contender once, pairs (tierbd QD n, s3backer QD n)
# back to back, and ratios are taken within a round; the table gives the
# median of RUNS rounds with (min..max).  RSS is the largest VmHWM of the
# server process (nbdkit, s3backer, curl); CPU is user+system seconds for
# the whole device, of the server, of the client (fio; for curl the same
# process) and of the store (radosgw + ceph-osd); "others" is the average
# number of cores busy with processes that are none of ours (a shared
# machine: kernel threads working for us count there too).
# Nothing here is a pass/fail test.
#
# Usage: bench/s3-cold.sh [BUILD_DIR]
#   Without BUILD_DIR the plugin is built (release) from this checkout in
#   $BENCH_DIR/build.  Run as root (apt-get, FUSE mounts).
# Environment: RUNS=5 QDS="1 8 16 32" CURL_P="16 32 64" NBDKIT_S3_RUNS=1
#   S3B_READAHEAD=16 SIZE_MIB=1024 BENCH_DIR=/var/tmp/tierbd-s3bench
#   S3_PORT=7520 MON_PORT=3320 TIERBD_EXTRA="" (extra tierbd parameters)
#   TIERBD_TUNED="" (if set, a second tierbd, "tierbd-tuned", runs in every
#   round with these parameters; words starting with - go to nbdkit, e.g.
#   TIERBD_TUNED="--threads=32 s3-connections=32 push-threads=16")
#   WORKLOADS="read write" (either alone for a quick look) CURL_PUT_1M=
#   CURL_PUT_SIGNED=
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
qds=${QDS:-"1 8 16 32"}
curl_p=${CURL_P:-"16 32 64"}
nbs3_runs=${NBDKIT_S3_RUNS:-1}
s3b_ra=${S3B_READAHEAD:-16}
workloads=${WORKLOADS:-"read write"}
size_mib=${SIZE_MIB:-1024}
dir=${BENCH_DIR:-/var/tmp/tierbd-s3bench}
read -r -a tierbd_extra <<<"${TIERBD_EXTRA:-}"
read -r -a tierbd_tuned <<<"${TIERBD_TUNED:-}"
export S3_PORT=${S3_PORT:-7520} MON_PORT=${MON_PORT:-3320}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-testkey} S3_SECRET_KEY=${S3_SECRET_KEY:-testsecret}
# CEPH_S3_REUSE=1: an RGW already started in CEPH_S3_DIR (same S3_PORT),
# used and left running (bench/run-all.sh starts one for every bench)
if [ -n "${CEPH_S3_REUSE:-}" ]; then
	export CEPH_S3_DIR=${CEPH_S3_DIR:?CEPH_S3_REUSE needs CEPH_S3_DIR}
else
	export CEPH_S3_DIR=$dir/ceph
fi
ep=http://127.0.0.1:$S3_PORT
bucket=bench
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
hz=$(getconf CLK_TCK)
say() { echo "s3-cold: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- packages: install only what is missing ------------------------------
[ "$(id -u)" = 0 ] || die "run as root (apt-get, FUSE mounts)"
pkgs=(fio curl time s3backer fuse3 nbdkit nbdkit-plugin-python python3-boto3
	libnbd-bin ceph-mon ceph-osd radosgw)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >&2
fi

# ---- state, cleanup ------------------------------------------------------
pids=() # servers we started and have not stopped yet
mnt=$dir/mnt
cleanup() {
	set +e
	mountpoint -q "$mnt" 2>/dev/null && { fusermount -u "$mnt" || umount -l "$mnt"; }
	[ -n "${b_pid:-}" ] && kill "$b_pid" 2>/dev/null # s3backer under time(1)
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -z "${CEPH_S3_REUSE:-}" ] && [ -f "$CEPH_S3_DIR/s3.env" ] &&
		"$src/tests/ceph-s3.sh" stop >&2
}
trap cleanup EXIT
mountpoint -q "$mnt" 2>/dev/null && die "$mnt is mounted: unmount it first"
rm -rf "$dir/run"
mkdir -p "$dir/run" "$mnt"
run=$dir/run

# ---- build tierbd ----------------------------------------------------------
# From the work tree as it is; the revision and the number of uncommitted
# paths are printed with the table.
dirty=$(git -C "$src" status --porcelain 2>/dev/null | wc -l)
rev="$(git -C "$src" rev-parse --short HEAD) + $dirty uncommitted paths"
if [ $# -ge 1 ]; then
	build=$(realpath "$1")
	rev="$rev (as built in $build)"
else
	"$src/scripts/deps.sh" build >&2
	build=$dir/build
	[ -f "$build/build.ninja" ] ||
		meson setup "$build" "$src" --buildtype=release >"$dir/meson.log" 2>&1 ||
		{ cat "$dir/meson.log" >&2; die "meson setup failed"; }
	ninja -C "$build" plugin/nbdkit-tierbd-plugin.so >"$dir/ninja.log" 2>&1 ||
		{ tail -30 "$dir/ninja.log" >&2; die "build failed"; }
fi
plugin=$build/plugin/nbdkit-tierbd-plugin.so
[ -f "$plugin" ] || die "no plugin at $plugin"

# ---- the store ------------------------------------------------------------
[ -n "${CEPH_S3_REUSE:-}" ] || "$src/tests/ceph-s3.sh" start >&2
"$src/tests/ceph-s3.sh" mkbucket "$bucket" >&2
rgw_pid=$(cat "$CEPH_S3_DIR/run/client.rgw.a.pid")
osd_pid=$(cat "$CEPH_S3_DIR"/run/osd.*.pid)
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1

# keys PREFIX | count PREFIX | rm PREFIX (bench/s3util.py)
s3util() { EP=$ep /usr/bin/python3 "$src/bench/s3util.py" "$1" "$bucket" "${@:2}"; }

# ---- measuring -------------------------------------------------------------
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
hwm() { awk '/^VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

# m_begin SERVER_PID / m_end SERVER_PID CLIENT_TICKS: CPU accounting around
# one measurement; sets m_cpu (server s), m_store (s), m_others (cores).
m_begin() {
	m_t0=$(now)
	m_b0=$(busy)
	m_s0=$(($(ticks "$1") + 0))
	m_r0=$(($(ticks "$rgw_pid") + $(ticks "$osd_pid")))
}
m_end() { # server_pid client_ticks [server_ticks_at_end]
	local t1 b1 s1 r1
	t1=$(now)
	b1=$(busy)
	s1=${3:-$(ticks "$1")}
	r1=$(($(ticks "$rgw_pid") + $(ticks "$osd_pid")))
	m_cpu=$(awk -v a="$m_s0" -v b="$s1" -v h="$hz" 'BEGIN{printf "%.2f", (b-a)/h}')
	m_store=$(awk -v a="$m_r0" -v b="$r1" -v h="$hz" 'BEGIN{printf "%.2f", (b-a)/h}')
	m_client=$(awk -v c="$2" -v h="$hz" 'BEGIN{printf "%.2f", c/h}')
	m_others=$(awk -v b0="$m_b0" -v b1="$b1" -v s="$((s1 - m_s0))" \
		-v r="$((r1 - m_r0))" -v c="$2" -v t0="$m_t0" -v t1="$t1" -v h="$hz" \
		'BEGIN{o=(b1-b0-s-r-c)/h/(t1-t0); if (o<0) o=0; printf "%.2f", o}')
}

# record WORKLOAD CONTENDER PARAM ROUND MIBS RSS_KB
record() {
	echo "$1 $2 $3 $4 $5 $6 $m_cpu $m_client $m_store $m_others" >>"$run/results"
	say "round $4: $1 $2 $3: $5 MiB/s (cpu: server ${m_cpu}s, client" \
		"${m_client}s, store ${m_store}s; others ${m_others} cores;" \
		"rss $(($6 / 1024)) MiB)"
}

# fio_job OUTFILE ARGS...: run fio, wait for it; client ticks in fio_ticks
fio_job() {
	local out=$1
	shift
	/usr/bin/time -f '%U %S' -o "$run/fio.time" \
		timeout 900 fio --name=job --size="${size_mib}M" --bs=1M \
		--output-format=json "$@" >"$out" 2>"$run/fio.err" ||
		{ cat "$run/fio.err" >&2; die "fio failed: $*"; }
	fio_ticks=$(awk -v h="$hz" '{printf "%d", ($1 + $2) * h}' "$run/fio.time")
}

# fio_mibs FILE: bytes moved / job runtime (which includes end_fsync)
fio_mibs() {
	/usr/bin/python3 - "$1" <<'EOF'
import json, sys
s = open(sys.argv[1]).read()
j = json.loads(s[s.index("{"):])["jobs"][0]  # nbd prints a line before
side = j["write"] if j["write"]["io_bytes"] else j["read"]
print("%.1f" % (side["io_bytes"] / 1048576 / (j["job_runtime"] / 1000)))
EOF
}

wait_file() { # FILE PID: until FILE exists (up to 60 s) while PID lives
	for _ in $(seq 600); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop() { # PID: SIGTERM a server we started, wait for it
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

nchunks=$size_mib

# ---- tierbd ----------------------------------------------------------------
tierbd_start() { # CACHE PREFIX [WORDS...]: words starting with - go to nbdkit
	local c=$1 pre=$2 w nopts=() popts=()
	shift 2
	for w in "$@"; do
		case $w in -*) nopts+=("$w") ;; *) popts+=("$w") ;; esac
	done
	rm -rf "$c" "$run/t.sock" "$run/t.pid"
	nbdkit -f -U "$run/t.sock" -P "$run/t.pid" "${nopts[@]}" "$plugin" \
		size="${size_mib}M" chunk-size=1M cache="$c" cache-size=2G \
		store="s3://$bucket/$pre" s3-endpoint="$ep" flush=remote \
		"${popts[@]}" 2>"$run/tierbd.log" &
	t_pid=$!
	pids+=("$t_pid")
	wait_file "$run/t.pid" "$t_pid" ||
		{ cat "$run/tierbd.log" >&2; die "tierbd did not start"; }
}
t_uri() { echo "nbd+unix:///?socket=$run/t.sock"; }

tierbd_fill() { # PREFIX: write the device once, committed, stop
	tierbd_start "$run/tcache" "$1"
	fio_job "$run/fill.json" --ioengine=nbd --uri="$(t_uri)" --rw=write \
		--iodepth=16 --end_fsync=1 --refill_buffers
	stop "$t_pid"
	rm -rf "$run/tcache"
}

# tierbd_read / tierbd_write QD ROUND NAME [WORDS...]: NAME is the contender
# in the table, WORDS extra parameters (TIERBD_EXTRA or TIERBD_TUNED)
tierbd_read() {
	local qd=$1 r=$2 name=$3
	shift 3
	tierbd_start "$run/tcache" tierbd-cold "$@"
	grep -q "reopened the device from store" "$run/tierbd.log" ||
		{ cat "$run/tierbd.log" >&2; die "tierbd did not reopen from the store"; }
	m_begin "$t_pid"
	fio_job "$run/r.json" --ioengine=nbd --uri="$(t_uri)" --rw=read --iodepth="$qd"
	m_end "$t_pid" "$fio_ticks"
	record read "$name" "qd$qd" "$r" "$(fio_mibs "$run/r.json")" "$(hwm "$t_pid")"
	stop "$t_pid"
	rm -rf "$run/tcache"
}

tierbd_write() {
	local qd=$1 r=$2 name=$3 pre n
	shift 3
	pre=$name-w-$r-$qd
	tierbd_start "$run/tcache" "$pre" "$@"
	m_begin "$t_pid"
	fio_job "$run/w.json" --ioengine=nbd --uri="$(t_uri)" --rw=write \
		--iodepth="$qd" --end_fsync=1 --refill_buffers
	m_end "$t_pid" "$fio_ticks"
	record write "$name" "qd$qd" "$r" "$(fio_mibs "$run/w.json")" "$(hwm "$t_pid")"
	stop "$t_pid"
	n=$(s3util count "$pre/chunks/")
	[ "$n" -ge "$nchunks" ] || die "tierbd left $n of $nchunks chunks in the store"
	s3util rm "$pre/"
	rm -rf "$run/tcache"
}

# every tierbd variant of a round, then s3backer (or the other way round)
tierbd_all() { # read|write QD ROUND
	"tierbd_$1" "$2" "$3" tierbd "${tierbd_extra[@]}"
	if [ ${#tierbd_tuned[@]} -gt 0 ]; then
		"tierbd_$1" "$2" "$3" tierbd-tuned "${tierbd_tuned[@]}"
	fi
}

# ---- s3backer ---------------------------------------------------------------
printf '%s:%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$run/s3b.passwd"
chmod 600 "$run/s3b.passwd"
s3b_mount() { # PREFIX; under time(1), which reports its CPU once it has exited
	local w
	/usr/bin/time -f '%U %S' -o "$run/s3b.time" \
		s3backer --accessFile="$run/s3b.passwd" --baseURL="$ep/" \
		--prefix="$1/" --blockSize=1M --size="${size_mib}M" --listBlocks \
		--readAhead="$s3b_ra" -f "$bucket" "$mnt" >"$run/s3b.log" 2>&1 &
	w=$!
	pids+=("$w")
	b_wrap=$w
	b_pid=
	for _ in $(seq 600); do
		[ -n "$b_pid" ] || b_pid=$(pgrep -P "$w" -x s3backer || true)
		[ -n "$b_pid" ] && mountpoint -q "$mnt" && [ -e "$mnt/file" ] && return 0
		kill -0 "$w" 2>/dev/null || break
		sleep 0.1
	done
	cat "$run/s3b.log" >&2
	die "s3backer did not mount"
}
s3b_umount() { # until the process has exited: every dirty block uploaded
	fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
	wait "$b_wrap" || { cat "$run/s3b.log" >&2; die "s3backer failed"; }
	stop "$b_wrap"
}
s3b_fio() { # OUT ARGS...
	local out=$1
	shift
	fio_job "$out" --filename="$mnt/file" --ioengine=libaio --direct=1 "$@"
}

s3b_fill() {
	s3b_mount s3b-cold
	s3b_fio "$run/fill.json" --rw=write --iodepth=16 --end_fsync=1 --refill_buffers
	s3b_umount
}

s3b_read() { # QD ROUND
	s3b_mount s3b-cold
	m_begin "$b_pid"
	s3b_fio "$run/r.json" --rw=read --iodepth="$1"
	m_end "$b_pid" "$fio_ticks"
	record read s3backer "qd$1" "$2" "$(fio_mibs "$run/r.json")" "$(hwm "$b_pid")"
	s3b_umount
}

s3b_write() { # QD ROUND
	local pre=s3b-w-$2-$1 n rt t0 t1 mibs rss
	s3b_mount "$pre"
	m_begin "$b_pid"
	s3b_fio "$run/w.json" --rw=write --iodepth="$1" --end_fsync=1 --refill_buffers
	rss=$(hwm "$b_pid")
	# fsync returned with blocks still dirty: the unmount waits for them
	local s0=$m_s0
	t0=$(now)
	s3b_umount
	t1=$(now)
	# its whole life (mount on an empty prefix is quick) from time(1)
	m_s0=0
	m_end "$b_pid" "$fio_ticks" "$(awk -v h="$hz" '{printf "%d", ($1 + $2) * h}' "$run/s3b.time")"
	m_s0=$s0
	rt=$(/usr/bin/python3 -c '
import json, sys
s = open(sys.argv[1]).read()
print(json.loads(s[s.index("{"):])["jobs"][0]["job_runtime"] / 1000)' "$run/w.json")
	mibs=$(awk -v m="$size_mib" -v r="$rt" -v a="$t0" -v b="$t1" \
		'BEGIN{printf "%.1f", m / (r + b - a)}')
	record write s3backer "qd$1" "$2" "$mibs" "$rss"
	n=$(s3util count "$pre/")
	[ "$n" -ge "$nchunks" ] || die "s3backer left $n of $nchunks blocks in the store"
	s3util rm "$pre/"
}

# ---- parallel curl ----------------------------------------------------------
# CFG P SHA OUT: time a curl -Z run; sets c_secs c_bytes c_rss_kb c_ticks.
# SHA "-": CFG has a group of options per URL (curl_put_signed)
curl_run() {
	local t0 t1 opts=()
	if [ "$3" != - ]; then
		opts=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY"
			-H "x-amz-content-sha256: $3" -w '%{http_code} %{size_download} %{size_upload}\n')
	fi
	t0=$(now)
	/usr/bin/time -f '%M %U %S' -o "$run/curl.time" \
		curl -sS --no-progress-meter -Z --parallel-max "$2" "${opts[@]}" -K "$1" >"$4"
	t1=$(now)
	c_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')
	awk '$1 !~ /^20[04]$/ {bad++} END {exit bad ? 1 : 0}' "$4" ||
		die "curl: some requests failed: $(sort "$4" | uniq -c | head)"
	c_bytes=$(awk '{s += $2 + $3} END {printf "%d", s}' "$4")
	read -r c_rss_kb u s <"$run/curl.time"
	c_ticks=$(awk -v u="$u" -v s="$s" -v h="$hz" 'BEGIN{printf "%d", (u + s) * h}')
}

curl_get() { # P ROUND
	m_begin $$
	curl_run "$run/get.cfg" "$1" "$empty_sha" "$run/curl.out"
	m_end $$ 0
	m_cpu=$(awk -v t="$c_ticks" -v h="$hz" 'BEGIN{printf "%.2f", t/h}')
	m_client=-
	m_others=$(awk -v o="$m_others" -v t="$c_ticks" -v h="$hz" -v s="$c_secs" \
		'BEGIN{o -= t/h/s; if (o < 0) o = 0; printf "%.2f", o}')
	record read curl "p$1" "$2" \
		"$(awk -v b="$c_bytes" -v s="$c_secs" 'BEGIN{printf "%.1f", b/1048576/s}')" \
		"$c_rss_kb"
}

curl_put() { # P ROUND [NAME DIR]: PUT nchunks objects, copies of those in DIR
	local name=${3:-curl} up=${4:-$run/up}
	local pre=$name-w-$2-$1 sha=UNSIGNED-PAYLOAD signed=0
	# curl-signed: a group of options per object, with its own SHA-256
	[ "$name" = curl-signed ] && sha=- signed=1
	awk -v ep="$ep/$bucket/$pre" -v up="$up" -v n="$nchunks" -v signed="$signed" \
		-v cred="$S3_ACCESS_KEY:$S3_SECRET_KEY" -v shas="$run/up.sha" 'BEGIN {
		if (signed)
			while ((getline l < shas) > 0) { split(l, f, " "); h[f[2]] = f[1] }
		for (i = 0; i < n; i++) {
			if (signed) {
				if (i) print "next"
				printf "aws-sigv4 = \"aws:amz:us-east-1:s3\"\nuser = \"%s\"\n", cred
				printf "write-out = \"%%{http_code} %%{size_download} %%{size_upload}\\n\"\n"
				printf "header = \"x-amz-content-sha256: %s\"\n", h[i % 64]
			}
			printf "upload-file = \"%s/%d\"\nurl = \"%s/%06d\"\noutput = \"/dev/null\"\n",
				up, i % 64, ep, i
		} }' >"$run/put.cfg"
	m_begin $$
	curl_run "$run/put.cfg" "$1" "$sha" "$run/curl.out"
	m_end $$ 0
	m_cpu=$(awk -v t="$c_ticks" -v h="$hz" 'BEGIN{printf "%.2f", t/h}')
	m_client=-
	m_others=$(awk -v o="$m_others" -v t="$c_ticks" -v h="$hz" -v s="$c_secs" \
		'BEGIN{o -= t/h/s; if (o < 0) o = 0; printf "%.2f", o}')
	record write "$name" "p$1" "$2" \
		"$(awk -v b="$c_bytes" -v s="$c_secs" 'BEGIN{printf "%.1f", b/1048576/s}')" \
		"$c_rss_kb"
	s3util rm "$pre/"
}

# ---- nbdkit S3 plugin ---------------------------------------------------------
nbs3_obj=64K
nbs3_start() { # KEY OBJECT_SIZE
	rm -f "$run/n.sock" "$run/n.pid"
	TMPDIR=$run nbdkit -f -U "$run/n.sock" -P "$run/n.pid" --filter=cache S3 \
		endpoint-url="$ep" bucket="$bucket" key="$1" size="${size_mib}M" \
		object-size="$2" cache=writeback cache-min-block-size="$2" \
		2>"$run/nbs3.log" &
	n_pid=$!
	pids+=("$n_pid")
	wait_file "$run/n.pid" "$n_pid" ||
		{ cat "$run/nbs3.log" >&2; die "nbdkit S3 did not start"; }
}
n_uri() { echo "nbd+unix:///?socket=$run/n.sock"; }

nbs3_probe() { # does it run with 1 MiB objects? sets nbs3_why
	nbs3_start probe 1M
	if nbdinfo --size "$(n_uri)" >/dev/null 2>"$run/nbdinfo.err"; then
		nbs3_obj=1M
		nbs3_why=""
	else
		nbs3_why=$(grep -m1 'error' "$run/nbs3.log" || head -1 "$run/nbdinfo.err")
	fi
	stop "$n_pid"
}

nbs3_round() { # ROUND: write+drain, then a cold read of what was written
	local key=nbdkit-s3-$1 n
	nbs3_start "$key" "$nbs3_obj"
	m_begin "$n_pid"
	fio_job "$run/w.json" --ioengine=nbd --uri="$(n_uri)" --rw=write \
		--iodepth=16 --end_fsync=1 --refill_buffers
	m_end "$n_pid" "$fio_ticks"
	record write "nbdkit-S3-$nbs3_obj" qd16 "$1" "$(fio_mibs "$run/w.json")" \
		"$(hwm "$n_pid")"
	stop "$n_pid"
	n=$(s3util count "$key/")
	[ "$n" -ge "$((size_mib * 1024 / $(numfmt --from=iec --to-unit=1024 "$nbs3_obj")))" ] ||
		die "nbdkit S3 left only $n objects in the store"
	nbs3_start "$key" "$nbs3_obj"
	m_begin "$n_pid"
	fio_job "$run/r.json" --ioengine=nbd --uri="$(n_uri)" --rw=read --iodepth=16
	m_end "$n_pid" "$fio_ticks"
	record read "nbdkit-S3-$nbs3_obj" qd16 "$1" "$(fio_mibs "$run/r.json")" \
		"$(hwm "$n_pid")"
	stop "$n_pid"
	s3util rm "$key/"
}

# ---- the runs --------------------------------------------------------------------
say "filling the cold devices (tierbd, s3backer)"
tierbd_fill tierbd-cold
s3b_fill
n=$(s3util count tierbd-cold/chunks/)
[ "$n" -ge "$nchunks" ] || die "tierbd stored $n of $nchunks chunks"
s3util keys tierbd-cold/chunks/ |
	awk -v ep="$ep/$bucket" '{printf "url = \"%s/%s\"\noutput = \"/dev/null\"\n", ep, $1}' \
		>"$run/get.cfg"
# what curl PUTs: tierbd's own objects, byte for byte
rm -rf "$run/up" "$run/up1m"
mkdir -p "$run/up" "$run/up1m"
s3util get tierbd-cold/chunks/ "$run/up" 64
(cd "$run/up" && sha256sum $(seq 0 63)) >"$run/up.sha" # "HASH  N" lines
if [ -n "${CURL_PUT_1M:-}" ]; then
	for i in $(seq 0 63); do head -c 1048576 /dev/urandom >"$run/up1m/$i"; done
fi
if [ "$nbs3_runs" -gt 0 ]; then nbs3_probe; fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)

want() { [[ " $workloads " == *" $1 "* ]]; }
for r in $(seq "$runs"); do
	# pairs back to back; alternate which of a pair goes first
	if want write; then
		for qd in $qds; do
			if [ $((r % 2)) = 1 ]; then
				tierbd_all write "$qd" "$r"
				s3b_write "$qd" "$r"
			else
				s3b_write "$qd" "$r"
				tierbd_all write "$qd" "$r"
			fi
		done
		for p in $curl_p; do
			curl_put "$p" "$r"
			if [ -n "${CURL_PUT_SIGNED:-}" ]; then curl_put "$p" "$r" curl-signed; fi
			if [ -n "${CURL_PUT_1M:-}" ]; then curl_put "$p" "$r" curl-1M "$run/up1m"; fi
		done
	fi
	if want read; then
		for qd in $qds; do
			if [ $((r % 2)) = 1 ]; then
				tierbd_all read "$qd" "$r"
				s3b_read "$qd" "$r"
			else
				s3b_read "$qd" "$r"
				tierbd_all read "$qd" "$r"
			fi
		done
		for p in $curl_p; do curl_get "$p" "$r"; done
	fi
	if [ "$r" -le "$nbs3_runs" ]; then nbs3_round "$r"; fi
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ------------------------------------------------------------------
/usr/bin/python3 - "$run/results" <<'EOF'
import os, sys, statistics as st
from collections import defaultdict
v = defaultdict(dict)      # (workload, contender, param) -> {round: row}
for line in open(sys.argv[1]):
    w, c, p, r, mibs, rss, cpu, cli, store, oth = line.split()
    v[(w, c, p)][int(r)] = dict(mibs=float(mibs), rss=int(rss), cpu=float(cpu),
                                cli=None if cli == "-" else float(cli),
                                store=float(store), oth=float(oth))
def fmt(xs, f="%.0f"):
    xs = sorted(xs)
    if not xs:
        return "-"
    if len(xs) == 1:
        return f % xs[0] + " (1 run)"
    return (f + " (" + f + ".." + f + ")") % (st.median(xs), xs[0], xs[-1])
def med(k):
    return st.median(x["mibs"] for x in v[k].values())
def limit(w, r, c="curl"):  # the best curl P of round r
    xs = [v[k][r]["mibs"] for k in v if k[0] == w and k[1] == c and r in v[k]]
    return max(xs) if xs else None
def ratios(k, other):       # same-round ratios k / other(r)
    out = []
    for r, x in v[k].items():
        o = other(r)
        if o:
            out.append(x["mibs"] / o)
    return out
def best(w, c):
    ks = [k for k in v if k[0] == w and k[1] == c]
    return max(ks, key=med) if ks else None
print("| workload | contender | QD / parallel | MiB/s median (min..max) "
      "| vs s3backer, same QD | vs curl limit | RSS MiB | CPU s: server "
      "| client | store | others' cores |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
order = {"tierbd": 0, "tierbd-tuned": 1, "s3backer": 2, "curl": 3,
         "curl-signed": 4, "curl-1M": 5}
for w, name in (("read", "cold read"), ("write", "write+drain")):
    ks = sorted((k for k in v if k[0] == w),
                key=lambda k: (order.get(k[1], 4), k[1], int(k[2].lstrip("qdp"))))
    for k in ks:
        xs = v[k].values()
        vs_b = "-"
        if k[1] != "s3backer" and (w, "s3backer", k[2]) in v:
            b = v[(w, "s3backer", k[2])]
            vs_b = fmt(ratios(k, lambda r: b.get(r, {}).get("mibs")), "%.2f")
        vs_c = fmt(ratios(k, lambda r: limit(w, r)), "%.2f")
        cli = [x["cli"] for x in xs if x["cli"] is not None]
        print("| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |" % (
            name, k[1], k[2], fmt([x["mibs"] for x in xs]), vs_b, vs_c,
            max(x["rss"] for x in xs) / 1024, fmt([x["cpu"] for x in xs], "%.2f"),
            fmt(cli, "%.2f") if cli else "(same)",
            fmt([x["store"] for x in xs], "%.1f"), fmt([x["oth"] for x in xs], "%.1f")))
print()
for w, name in (("read", "cold read"), ("write", "write+drain")):
    for c in ("tierbd", "tierbd-tuned"):
        t, b = best(w, c), best(w, "s3backer")
        if not t or not b:
            continue
        rb = ratios(t, lambda r: v[b].get(r, {}).get("mibs"))
        rc = ratios(t, lambda r: limit(w, r))
        print("- %s, best QD each (%s %s, s3backer %s): %s/s3backer %s "
              "(goal >= 2: %s); %s/curl limit %s (goal >= 0.8: %s)" % (
                  name, c, t[2], b[2], c, fmt(rb, "%.2f"),
                  "reached" if st.median(rb) >= 2 else "NOT reached",
                  c, fmt(rc, "%.2f"),
                  "reached" if st.median(rc) >= 0.8 else "NOT reached"))
        params = os.environ.get("TIERBD_EXTRA" if c == "tierbd" else "TIERBD_TUNED", "")
        if (w == "write" and "s3-unsigned-payload=true" not in params and
                any(k[1] == "curl-signed" for k in v)):
            rs = ratios(t, lambda r: limit(w, r, "curl-signed"))
            print("  - %s/curl-signed limit (both sign each body's SHA-256) %s" % (
                c, fmt(rs, "%.2f")))
EOF
echo
echo "- ratios are taken within a round (same run), then the median (min..max) of the rounds;" \
	"the curl limit of a round is its best P"
echo "- $runs rounds; ${size_mib} MiB device, 1 MiB chunks/blocks/objects; tierbd $rev" \
	"(flush=remote, other parameters default${TIERBD_EXTRA:+, $TIERBD_EXTRA})${TIERBD_TUNED:+; tierbd-tuned: $TIERBD_TUNED}; s3backer" \
	"$(s3backer --version 2>&1 | head -1 | awk '{print $3}') --readAhead=$s3b_ra;" \
	"$(curl --version | head -1 | cut -d' ' -f1-2); nbdkit $(nbdkit --version | awk '{print $2}');" \
	"$(radosgw --version | awk '{print $1, $2, $3}') (memstore OSD)"
if [ "$nbs3_runs" -gt 0 ] && [ -n "${nbs3_why:-}" ]; then
	echo "- nbdkit S3 plugin with object-size=1M: \`${nbs3_why}\`; measured with object-size=$nbs3_obj"
fi
echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo))," \
	"$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r);" \
	"load average $load0 at the start, $load1 at the end; fio $(fio --version)"
