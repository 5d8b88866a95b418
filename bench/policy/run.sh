#!/bin/bash
# run.sh - the tiering policy benchmark: hot-tier hit ratio of the
# engine's policy (server/policy.c, driven as server/device.c drives it)
# beside LRU and Belady's OPT, on the same traces and cache sizes.
#
#   bench/policy/run.sh [BUILD_DIR]        (default: build/ in the repo)
#
# 1. builds bench/policy-replay, bench/policy-gen and the plugin
#    (meson setup BUILD_DIR first if it is not configured);
# 2. installs gnuplot (gnuplot-nox) with apt-get if it is missing;
# 3. generates the synthetic traces (bench/policy/gen.c);
# 4. records a filesystem trace through tierbd (record-fs.sh) and keeps
#    it in bench/policy/fs-recorded.trace.gz; where FUSE, loop devices
#    or root are missing it says so and replays the kept one instead;
# 5. replays every trace at 5, 10, 20 and 40% of the device;
# 6. writes bench/policy/results.md and bench/policy/hitratio.png, and
#    prints which goals are met.
#
# env: WORK=/var/tmp/tierbd-policy-bench (traces, ~600 MB, removed at
#      the end unless KEEP=1), REQUESTS=1500000 (random reads per Zipf
#      trace), RECORD=0 (use the kept recording, do not record),
#      HALF_LIFE (seconds; default: the engine's), TRACES="fs-recorded
#      zipf-1.0 ..." (replay only these; the goals then speak of them
#      alone, and results go to OUT=/var/tmp/tierbd-policy-subset
#      instead of bench/policy/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
work=${WORK:-/var/tmp/tierbd-policy-bench}
requests=${REQUESTS:-1500000}
record=${RECORD:-1}
out=$here
jobs=$(nproc 2>/dev/null || echo 2)
t0=$SECONDS

say() { echo "policy-bench: $*"; }

# ---- 1. build ----------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
	say "configuring $build"
	meson setup "$build" "$src" >/dev/null
fi
ninja -C "$build" bench/policy-replay bench/policy-gen \
	plugin/nbdkit-tierbd-plugin.so >/dev/null
gen=$build/bench/policy-gen
replay=$build/bench/policy-replay

# ---- 2. gnuplot --------------------------------------------------------
if ! command -v gnuplot >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		say "installing gnuplot-nox"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox \
			>/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				gnuplot-nox >/dev/null 2>&1; } || true
	fi
	command -v gnuplot >/dev/null 2>&1 ||
		say "NOTE: gnuplot is missing and could not be installed: no PNG"
fi

rm -rf "$work"
mkdir -p "$work"
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

# ---- 3. synthetic traces ----------------------------------------------
# Zipf: 4 KiB random reads over a 4 GiB device of 4096 chunks, 1000/s.
# +scan: after every 100,000 random reads, a one-pass read of the whole
#   device in 128 KiB requests (a backup, grep -r): 32,768 requests.
# +bgscan: the same scan running all the time beside the random reads
#   (one scan request after each random read, restarting at the end).
# fs-like: see gen.c (ext4-like metadata, working files, read-once
#   large files, new files written).
say "generating traces in $work"
declare -A desc
gentrace() { # name args...
	local name=$1
	shift
	"$gen" "$@" --name "$name" >"$work/$name.trace" 2>/dev/null &
}
for a in 0.8 1.0 1.2; do
	gentrace "zipf-$a" zipf --alpha "$a" --requests "$requests"
	gentrace "zipf-$a+scan" zipf --alpha "$a" --requests "$requests" \
		--scan-every 100000 --scan-ratio 1e9
	desc[zipf-$a]="Zipf $a, 4 KiB random reads"
	desc[zipf-$a+scan]="Zipf $a + a full-device scan (128 KiB reads) every 100k reads"
done
gentrace "zipf-1.0+bgscan" zipf --alpha 1.0 --requests "$requests" \
	--scan-every 32768 --scan-ratio 1
desc[zipf-1.0+bgscan]="Zipf 1.0 + a full-device scan running all the time beside it"
gentrace fs-like fs --requests $((requests / 15))
desc[fs-like]="synthetic ext4-like: metadata, working files, read-once big files, new files"
wait
traces=(zipf-0.8 zipf-1.0 zipf-1.2 zipf-0.8+scan zipf-1.0+scan zipf-1.2+scan
	zipf-1.0+bgscan fs-like fs-recorded)
if [ -n "${TRACES:-}" ]; then
	for t in $TRACES; do
		[ -n "${desc[$t]:-}" ] || [ "$t" = fs-recorded ] ||
			{ say "unknown trace $t"; exit 2; }
	done
	read -r -a traces <<<"$TRACES"
	out=${OUT:-/var/tmp/tierbd-policy-subset}
	mkdir -p "$out"
fi

# ---- 4. the recorded trace --------------------------------------------
kept=$here/fs-recorded.trace.gz
rec_note=
if [[ " ${traces[*]} " != *" fs-recorded "* ]]; then
	rec_note="not replayed"
elif [ "$record" = 1 ]; then
	say "recording a filesystem trace through tierbd (record-fs.sh)"
	set +e
	"$here/record-fs.sh" "$build" "$work/fs-recorded.trace" \
		>"$work/record.log" 2>&1
	rc=$?
	set -e
	sed 's/^/    /' "$work/record.log"
	if [ "$rc" = 0 ]; then
		rec_note="recorded by this run, kept as bench/policy/fs-recorded.trace.gz"
		gzip -9c "$work/fs-recorded.trace" >"$kept"
	elif [ "$rc" = 77 ]; then
		say "NOTE: cannot record here ($(grep -o 'SKIP: .*' "$work/record.log" | head -1)); replaying the kept recording"
		rec_note="kept recording (this host could not record: $(grep -o 'SKIP: .*' "$work/record.log" | head -1 | cut -c7-))"
	else
		say "NOTE: recording FAILED (exit $rc, log above); replaying the kept recording"
		rec_note="kept recording (recording failed on this run)"
	fi
else
	rec_note="kept recording (RECORD=0)"
fi
if [ ! -s "$work/fs-recorded.trace" ]; then
	if [ -f "$kept" ]; then
		gzip -dc "$kept" >"$work/fs-recorded.trace"
	else
		say "NOTE: no recorded trace: fs-recorded is left out"
		traces=("${traces[@]/fs-recorded/}")
	fi
fi
desc[fs-recorded]="recorded on tierbd: ext4, untar /usr/include + /usr/share/doc, read back, 3x grep -r ($rec_note)"

# ---- 5. replay ---------------------------------------------------------
say "replaying ${#traces[@]} traces at 5, 10, 20, 40% of the device"
hl=()
[ -n "${HALF_LIFE:-}" ] && hl=(--half-life "$HALF_LIFE")
running=0
for t in "${traces[@]}"; do
	[ -n "$t" ] || continue
	"$replay" "${hl[@]}" --name "$t" "$work/$t.trace" >"$work/$t.tsv" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
for t in "${traces[@]}"; do
	[ -z "$t" ] || [ -s "$work/$t.tsv" ] ||
		{ say "replay of $t failed"; exit 1; }
done

# ---- 6. results --------------------------------------------------------
all=$work/all.tsv
for t in "${traces[@]}"; do
	[ -n "$t" ] && grep -v '^#' "$work/$t.tsv"
done >"$all"
# Keep the raw numbers beside the table.
{
	echo "# trace	pct	slots	accesses	tierbd	tierbd_policy	lru	opt	static	small_accesses	tierbd_small	lru_small	opt_small"
	cat "$all"
} >"$out/results.tsv"

# The replayer links server/policy.c: say which one.
commit=$(git -C "$src" log -1 --format=%h -- server/policy.c 2>/dev/null || true)
commit="policy.c of ${commit:-unknown}"
engine=$(git -C "$src" log -1 --format=%h -- server/device.c server/cache.c \
	2>/dev/null || true)
commit="$commit, eviction and reclaim as in device.c/cache.c of ${engine:-unknown}"
if [ -n "$(git -C "$src" status --porcelain -- server/policy.c server/policy.h \
	2>/dev/null)" ]; then
	commit="$commit + uncommitted changes"
fi

goals=$work/goals.txt
awk -F'\t' '
function pc(x, a) { return 100 * x / a }
{
	a = $4; t = pc($5, a); l = pc($7, a); o = pc($8, a)
	row = sprintf("%s at %s%%", $1, $2)
	if ($1 ~ /\+(bg)?scan$/) {
		nscan++
		if (t - l < 10) { sbad++; slist = slist sprintf("  %s: %+.1f points\n", row, t - l) }
		if (!sn || t - l < smin) { smin = t - l; sworst = row; sn = 1 }
		rt = pc($11, $10); rl = pc($12, $10)
		if (rt - rl < 10) rbad++
		if (!rn || rt - rl < rmin) { rmin = rt - rl; rworst = row; rn = 1 }
	}
	if (o > 0 && $5 / $8 < 0.9) { obad++; olist = olist sprintf("  %s: %.3f of OPT\n", row, $5 / $8) }
	if (!on || (o > 0 && $5 / $8 < omin)) { omin = $5 / $8; oworst = row; on = 1 }
	if ($5 < $7) { lbad++; llist = llist sprintf("  %s: %+.1f points\n", row, t - l) }
	n++
}
END {
	printf "Goal 1, scan-polluted Zipf at least 10 points above LRU: %s (%d of %d rows; worst %+.1f, %s)\n", sbad ? "NOT MET" : "MET", nscan - sbad, nscan, smin, sworst
	printf "%s", slist
	if (nscan)
		printf "  (for information, counting the random reads only: %d of %d rows at least 10 points above LRU, worst %+.1f, %s)\n", nscan - rbad, nscan, rmin, rworst
	printf "Goal 2, within 90%% of OPT on every trace: %s (%d of %d rows; worst %.3f, %s)\n", obad ? "NOT MET" : "MET", n - obad, n, omin, oworst
	printf "%s", olist
	printf "Goal 3, never below LRU: %s (%d of %d rows)\n", lbad ? "NOT MET" : "MET", n - lbad, n
	printf "%s", llist
}' "$all" >"$goals"

{
	echo "# Tiering policy: hot-tier hit ratio"
	echo
	echo "Made by \`bench/policy/run.sh\` on $(date -u +%Y-%m-%d), $commit,"
	echo "$(nproc) CPUs.  Hit ratio = hits / chunk accesses (one access per"
	echo "request and chunk it touches; reads of never-written chunks, which"
	echo "the engine answers with zeros, are not accesses).  **tierbd**: the"
	echo "engine's policy (server/policy.c) driven by bench/policy/replay.c"
	echo "as server/device.c drives it, with the engine's eviction between"
	echo "watermarks (95% → 85% of the slots) and its reclaim of an evicted"
	echo "chunk from the free slot it left (a hit: no store GET);"
	echo "**policy alone**: the same without watermarks (one victim per"
	echo "miss, when full).  **LRU** and"
	echo "**OPT** (Belady) hold the same number of chunks.  Cache sizes are"
	echo "percent of the device (1 MiB chunks); default heat half-life."
	echo
	echo "| trace | cache | tierbd % | LRU % | OPT % | tierbd−LRU (points) | tierbd/OPT | policy alone % |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' '{
		a = $4
		printf "| %s | %s%% (%d) | %.1f | %.1f | %.1f | %+.1f | %.3f | %.1f |\n",
			$1, $2, $3, 100*$5/a, 100*$7/a, 100*$8/a, 100*($5-$7)/a,
			$8 ? $5/$8 : 1, 100*$6/a
	}' "$all"
	echo
	echo "Traces:"
	echo
	for t in "${traces[@]}"; do
		[ -n "$t" ] || continue
		n=$(grep -vc '^#' "$work/$t.trace")
		acc=$(grep -v '^#' "$work/$t.tsv" | head -1 | cut -f4)
		echo "- **$t**: ${desc[$t]}; $n requests, $acc accesses."
	done
	echo
	echo "On the scan-polluted traces a quarter (+scan) to a half (+bgscan) of"
	echo "the accesses are the scans' 128 KiB reads, seven in eight of them"
	echo "hits for every policy.  The same runs, counting only the accesses of"
	echo "the random 4 KiB reads (requests of at most 64 KiB):"
	echo
	echo "| trace | cache | random reads | tierbd % | LRU % | OPT % | tierbd−LRU (points) | tierbd/OPT | all accesses: tierbd−LRU |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' '$1 ~ /\+(bg)?scan$/ {
		a = $4; r = $10
		printf "| %s | %s%% | %d | %.1f | %.1f | %.1f | %+.1f | %.3f | %+.1f |\n",
			$1, $2, r, 100*$11/r, 100*$12/r, 100*$13/r,
			100*($11-$12)/r, $13 ? $11/$13 : 1, 100*($5-$7)/a
	}' "$all"
	echo
	echo "On the stationary Zipf traces, no policy without foresight can beat"
	echo "holding the most accessed chunks (**static top-N**: the N chunks most"
	echo "accessed over the whole trace, held from their first access); OPT's"
	echo "knowledge of each next access is worth more than that:"
	echo
	echo "| trace | cache | static top-N % | static/OPT | tierbd/static | policy alone/static |"
	echo "|---|---:|---:|---:|---:|---:|"
	awk -F'\t' '$1 ~ /^zipf-[0-9.]+$/ {
		a = $4
		printf "| %s | %s%% | %.1f | %.3f | %.3f | %.3f |\n", $1, $2,
			100*$9/a, $9/$8, $5/$9, $6/$9
	}' "$all"
	echo
	echo "Goals:"
	echo
	echo '```'
	cat "$goals"
	echo '```'
	echo
	echo "![hit ratio against cache size](hitratio.png)"
} >"$out/results.md"

# ---- the plot ----------------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
	gp=$work/plot.gp
	{
		echo "set terminal pngcairo size 1500,1250 font 'DejaVu Sans,10'"
		echo "set output '$out/hitratio.png'"
		echo "set multiplot layout 3,3 title 'tierbd hot-tier hit ratio against cache size (percent of the device)'"
		echo "set logscale x 2"
		echo "set xtics ('5' 5, '10' 10, '20' 20, '40' 40)"
		echo "set xrange [4.5:44]"
		echo "set ylabel 'hit ratio %'"
		echo "set key bottom right"
		echo "set grid"
		for t in "${traces[@]}"; do
			[ -n "$t" ] || continue
			awk -F'\t' -v t="$t" '$1 == t {a = $4; print $2, 100*$5/a, 100*$7/a, 100*$8/a, 100*$6/a}' \
				"$all" >"$work/$t.dat"
			echo "set title '$t'"
			echo "plot '$work/$t.dat' using 1:4 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'OPT', \\"
			echo "     '' using 1:2 with linespoints lw 2 pt 5 lc rgb '#1f77b4' title 'tierbd', \\"
			echo "     '' using 1:5 with linespoints lw 1 dt 2 pt 4 lc rgb '#1f77b4' title 'policy alone', \\"
			echo "     '' using 1:3 with linespoints lw 2 pt 9 lc rgb '#d62728' title 'LRU'"
		done
		echo "unset multiplot"
	} >"$gp"
	gnuplot "$gp"
	say "wrote $out/hitratio.png"
fi

say "wrote $out/results.md ($((SECONDS - t0)) s)"
echo
column -t -s'|' <(grep '^| [a-z]' "$out/results.md") 2>/dev/null || grep '^|' "$out/results.md"
echo
cat "$goals"
