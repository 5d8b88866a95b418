#!/bin/bash
# probe-overhead.sh - what the kernel I/O probe costs on the hot path.
#
# One tierbd device, every chunk hot (cache larger than the device, all
# written and drained before measuring), served on a unix socket by a
# fresh nbdkit per run, alternately with probe=on and probe=off, so the
# BPF programs are attached only during the "on" runs (once loaded they
# see every block request of the machine, not only ours).  fio's nbd
# engine drives each run:
#   randread  4 KiB random reads, QD $QD: the hot path the goal is about
#             (served from the cache file through the page cache: few
#             block requests reach the probe);
#   randwrite 4 KiB random writes, QD $QD: O_DIRECT to the cache file,
#             every request a block request the probe times (write-back
#             held off: writeback-delay and max-dirty out of the way).
# Each job runs RUNS times per mode, the order of the modes alternating
# from one run to the next; the median IOPS per mode and the spread
# (min..max) are reported with the loss of "on" against "off", and the
# median of the per-run losses (each "on" run against the "off" run
# next to it, which a machine whose load drifts needs).  The cost
# of the probe's programs themselves is measured too, independent of the
# machine's load: the CPU time nbdkit and fio spend per I/O (user +
# system: what the probe adds shows there even when a busy machine hides
# it in the IOPS), and kernel.bpf_stats_enabled is set for the "on" runs
# (restored at exit) and bpftool gives run time / runs per program: the
# nanoseconds each block request pays.  Writes a
# markdown table on stdout (docs/benchmarks.md, "Kernel probe
# overhead"); nothing here is a pass/fail test.  Needs root (the probe).
#
# Usage: bench/probe-overhead.sh [BUILD_DIR]
#        env: SIZE=1G RUNS=5 RUNTIME=10 QD=32 BENCH_DIR=/var/tmp/tierbd-probe
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
plugin=$build/plugin/nbdkit-tierbd-plugin.so
cli=$build/server/tierbd
size=${SIZE:-1G}
runs=${RUNS:-5}
runtime=${RUNTIME:-10}
qd=${QD:-32}
dir=${BENCH_DIR:-/var/tmp/tierbd-probe}
[ -f "$plugin" ] || { echo "no plugin at $plugin: build first" >&2; exit 1; }
[ -x "$cli" ] || { echo "no tierbd command at $cli: build first" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio is not installed" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir"
pid=
stop() {
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	pid=
}
stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo)
cleanup() {
	stop
	[ -z "$stats_was" ] || echo "$stats_was" >/proc/sys/kernel/bpf_stats_enabled
	rm -rf "$dir"
}
trap cleanup EXIT

# Average ns per run of the probe's programs loaded now (by name; with
# several tierbd processes loaded, over all of them).
prog_cost() {
	command -v bpftool >/dev/null || return 0
	bpftool prog show -j 2>/dev/null | /usr/bin/python3 -c '
import json, sys
tot = {}
for p in json.load(sys.stdin):
    n = p.get("name", "")
    if n.split("_", 1)[-1] in ("rq_issue", "rq_complete") and \
            n.split("_", 1)[0] in ("btf", "raw") and p.get("run_cnt"):
        t = tot.setdefault(n, [0, 0])
        t[0] += p["run_time_ns"]
        t[1] += p["run_cnt"]
print(" ".join("%s=%.0f/%d" % (n, t[0] / t[1], t[1])
               for n, t in sorted(tot.items())))' || true
}

bytes=$(numfmt --from=iec "$size")
start() { # probe=on|off, more args
	local mode=$1
	shift
	rm -f "$dir/sock" "$dir/pid"
	nbdkit -f -U "$dir/sock" -P "$dir/pid" "$plugin" cache="$dir/cache" \
		probe="$mode" writeback-delay=3600000 writeback-early=false \
		max-dirty="$((bytes * 5 / 4))" "$@" >>"$dir/nbdkit.log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do [ -s "$dir/pid" ] && break; sleep 0.1; done
	[ -s "$dir/pid" ] || { cat "$dir/nbdkit.log" >&2; exit 1; }
	if [ "$mode" = on ] &&
		! "$cli" -C "$dir/cache" status | grep -q "probe .*loaded"; then
		echo "probe=on but not loaded:" >&2
		"$cli" -C "$dir/cache" status >&2
		exit 1
	fi
}

# Create the device and make every chunk hot and clean.
start off size="$size" cache-size="$((bytes * 5 / 4))" \
	store="dir:$dir/store"
fio --name=fill --ioengine=nbd --uri="nbd+unix:///?socket=$dir/sock" \
	--rw=write --bs=1M --iodepth=8 --size="$size" \
	--output-format=terse >/dev/null
"$cli" -C "$dir/cache" drain >/dev/null
stop

# CPU seconds nbdkit has used (user + system, all its threads).
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' \
		"/proc/$1/stat"
}

job() { # rw -> "IOPS CPU-us-per-IO" (nbdkit's and fio's CPU)
	local c0 c1
	c0=$(cpu_of "$pid")
	fio --name=j --ioengine=nbd --uri="nbd+unix:///?socket=$dir/sock" \
		--rw="$1" --bs=4k --iodepth="$qd" --size="$size" \
		--time_based --runtime="$runtime" --ramp_time=2 \
		--output-format=json >"$dir/fio.json"
	c1=$(cpu_of "$pid")
	/usr/bin/python3 - "$dir/fio.json" "$c0" "$c1" "$runtime" <<'EOF'
import json, sys
s = open(sys.argv[1]).read()  # fio may print a line before the JSON
j = json.loads(s[s.index("{"):])["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] else j["write"]
secs = float(sys.argv[4]) + 2  # with the ramp, as the CPU counts it
ios = side["iops"] * secs
fio_cpu = (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] / 1000
cpu = float(sys.argv[3]) - float(sys.argv[2]) + fio_cpu
print(int(side["iops"]), "%.2f" % (cpu / ios * 1e6))
EOF
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f %.0f\n", m, a[1], a[NR]}'; }

for w in randread randwrite; do
	for m in on off; do : >"$dir/$w.$m"; done
done
for i in $(seq "$runs"); do
	if [ $((i % 2)) = 1 ]; then order="on off"; else order="off on"; fi
	for m in $order; do
		if [ "$m" = on ] && [ -n "$stats_was" ]; then
			echo 1 >/proc/sys/kernel/bpf_stats_enabled
		fi
		start "$m"
		for w in randread randwrite; do
			job "$w" >>"$dir/$w.$m"
		done
		if [ "$m" = on ]; then
			"$cli" -C "$dir/cache" stats --json >"$dir/stats.$i.json"
			prog_cost >>"$dir/cost"
		fi
		stop
		[ -z "$stats_was" ] ||
			echo "$stats_was" >/proc/sys/kernel/bpf_stats_enabled
	done
done

# Paired: run i's "on" against its own "off" (adjacent in time), so a
# machine whose load drifts compares like with like.
paired() { # w -> median of per-run losses in %
	paste "$dir/$1.on.iops" "$dir/$1.off.iops" |
		awk '{printf "%.2f\n", ($2-$1)*100/$2}' | sort -n |
		awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f%% (%.1f..%.1f)", m, a[1], a[NR]}'
}

medianf() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f %.2f %.2f\n", m, a[1], a[NR]}'; }

echo "| workload (4 KiB, QD $qd) | probe off IOPS | probe on IOPS | loss of medians | median paired loss | CPU us/IO off | CPU us/IO on |"
echo "|---|---|---|---|---|---|---|"
for w in randread randwrite; do
	for m in on off; do
		cut -d' ' -f1 "$dir/$w.$m" >"$dir/$w.$m.iops"
		cut -d' ' -f2 "$dir/$w.$m" >"$dir/$w.$m.cpu"
	done
	read -r off_m off_lo off_hi < <(median <"$dir/$w.off.iops")
	read -r on_m on_lo on_hi < <(median <"$dir/$w.on.iops")
	read -r offc _ _ < <(medianf <"$dir/$w.off.cpu")
	read -r onc _ _ < <(medianf <"$dir/$w.on.cpu")
	loss=$(awk -v a="$on_m" -v b="$off_m" 'BEGIN{printf "%.1f%%", (b-a)*100/b}')
	echo "| $w | $off_m ($off_lo..$off_hi) | $on_m ($on_lo..$on_hi) | $loss | $(paired "$w") | $offc | $onc |"
done
echo
/usr/bin/python3 - "$dir/stats.1.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
p = j["probe"]
devs = ", ".join("%s %s: %d reads, %d writes timed" %
                 (d["name"], d["role"], d["read"]["ops"], d["write"]["ops"])
                 for d in p["devices"])
print("probe in the first \"on\" run: %s; %s" % (p["state"], devs or "-"))
EOF
if [ -s "$dir/cost" ]; then
	echo "BPF program cost, ns per run (runs), each \"on\" run:"
	sed 's/^/    /' "$dir/cost"
fi
echo "median of $runs runs of ${runtime}s each per mode (min..max), modes" \
	"alternating; device $size, all hot; $(nproc) cores; $(uname -r);" \
	"fio $(fio --version)"
