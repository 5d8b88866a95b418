#!/bin/bash
# hot-fio.sh - tierbd with every chunk hot, beside nbdkit's file plugin.
#
# Both serve a device of SIZE on a unix socket from the same disk (the
# directory BENCH_DIR); fio's nbd engine drives each with the same jobs:
#   seqread  1 MiB sequential read,  QD 8
#   seqwrite 1 MiB sequential write, QD 8
#   randread 4 KiB random read,      QD 32
# Each job runs RUNS times, alternating contenders, and the median is
# reported with the spread (min..max).  Writes a markdown table on
# stdout; nothing here is a pass/fail test.
#
# Usage: bench/hot-fio.sh [BUILD_DIR]    env: SIZE=1G RUNS=3 RUNTIME=10
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
plugin=$build/plugin/nbdkit-tierbd-plugin.so
size=${SIZE:-1G}
runs=${RUNS:-3}
runtime=${RUNTIME:-10}
dir=${BENCH_DIR:-/var/tmp/tierbd-bench}
[ -f "$plugin" ] || { echo "no plugin at $plugin: build first" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio is not installed" >&2; exit 1; }

rm -rf "$dir"; mkdir -p "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

start() { # name sock args...
	local name=$1 sock=$2; shift 2
	nbdkit -f -U "$sock" -P "$dir/$name.pid" "$@" &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
}

# tierbd: cache larger than the device, every chunk written (hot) and
# pushed to the store before measuring, so the runs see a steady cache.
start tierbd "$dir/tierbd.sock" "$plugin" size="$size" cache="$dir/cache" \
	cache-size="$(( $(numfmt --from=iec "$size") * 5 / 4 ))" \
	store="dir:$dir/store"
truncate -s "$size" "$dir/file.img"
start file "$dir/file.sock" file "$dir/file.img" cache=none

fill() { # sock
	fio --name=fill --ioengine=nbd --uri="nbd+unix:///?socket=$1" \
		--rw=write --bs=1M --iodepth=8 --size="$size" \
		--output-format=terse >/dev/null
}
fill "$dir/tierbd.sock"
fill "$dir/file.sock"
sleep 5 # let write-back drain: the cache stays hot, clean

job() { # sock rw bs qd -> bandwidth KiB/s and IOPS
	fio --name=j --ioengine=nbd --uri="nbd+unix:///?socket=$1" \
		--rw="$2" --bs="$3" --iodepth="$4" --size="$size" \
		--time_based --runtime="$runtime" --ramp_time=2 \
		--output-format=json |
		/usr/bin/python3 -c '
import json, sys
s = sys.stdin.read()  # fio prints a line before the JSON
j = json.loads(s[s.index("{"):])["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] else j["write"]
print(side["bw"], int(side["iops"]))'
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f %.0f\n", m, a[1], a[NR]}'; }

declare -A res
for w in "seqread read 1M 8 bw" "seqwrite write 1M 8 bw" "randread randread 4k 32 iops"; do
	set -- $w
	for c in tierbd file; do : >"$dir/$1.$c"; done
	for i in $(seq "$runs"); do
		for c in tierbd file; do
			out=$(job "$dir/$c.sock" "$2" "$3" "$4")
			if [ "$5" = bw ]; then
				echo "$out" | awk '{printf "%.1f\n", $1/1024}' >>"$dir/$1.$c"
			else
				echo "$out" | awk '{print $2}' >>"$dir/$1.$c"
			fi
		done
	done
	for c in tierbd file; do res[$1.$c]=$(median <"$dir/$1.$c"); done
done

echo "| workload | tierbd (all hot) | nbdkit file | ratio |"
echo "|---|---|---|---|"
for w in "seqread MiB/s" "seqwrite MiB/s" "randread IOPS"; do
	set -- $w
	read -r tm tlo thi <<<"${res[$1.tierbd]}"
	read -r fm flo fhi <<<"${res[$1.file]}"
	ratio=$(awk -v a="$tm" -v b="$fm" 'BEGIN{printf "%.2f", a/b}')
	echo "| $1 ($2) | $tm ($tlo..$thi) | $fm ($flo..$fhi) | $ratio |"
done
echo
echo "median of $runs runs of ${runtime}s each (min..max); device $size;" \
	"$(nproc) cores; $(uname -r); fio $(fio --version)"
