#!/bin/bash
# run-all.sh - every benchmark in bench/, side by side, in one run on one
# machine (issue 8).  The one command:
#
#   bench/run-all.sh            as root; about 45 minutes on 2 cores
#   QUICK=1 bench/run-all.sh    a smoke run: small sizes, one round, a few
#                               minutes; docs/ is left alone
#
# 1. installs what is missing (scripts/deps.sh bench: the test packages,
#    s3backer, nbdkit's python plugin, boto3, fio, gnuplot);
# 2. builds tierbd (release) from HEAD (git archive, so others' work in
#    progress is not measured; BUILD_FROM=tree builds the work tree) in
#    $BENCH_DIR/build;
# 3. starts ONE throwaway Ceph RGW (tests/ceph-s3.sh: memstore OSD,
#    127.0.0.1 only, ports S3_PORT/MON_PORT) that every S3 benchmark uses
#    (CEPH_S3_REUSE=1); stops it at exit, with everything else it started;
# 4. runs, in this order (WHICH), each with the settings below (sized so
#    that the whole fits in ~45 minutes; NAME_ENV adds or overrides, e.g.
#    S3COLD_ENV="RUNS=3"):
#      matrix    bench/matrix.sh: hot / cold / zipf, tierbd beside nbdkit
#                file, memory and S3 + cache filter, s3backer, parallel curl
#      s3-cold   bench/s3-cold.sh (cold read and write+drain, QD 1 and 16)
#      hot-fio   bench/hot-fio.sh
#      probe     bench/probe-overhead.sh
#      restart   bench/restart-and-drain.sh (drain, warm, mount)
#      policy    bench/policy/run.sh (its results.md and plot are kept in
#                $BENCH_DIR/out; the files in bench/policy/ are restored)
#    every one's tables in $BENCH_DIR/out/NAME.md, its log in NAME.log; one
#    that fails is reported (and in the docs) and the others still run;
# 5. draws docs/bench-{hot,cold,zipf}.png with bench/plot-matrix.gp;
# 6. in docs/benchmarks.md, replaces only what lies between the marker
#    lines `<!-- bench:NAME begin -->` and `<!-- bench:NAME end -->` (NAME:
#    matrix-hot, matrix-cold, matrix-zipf, s3-cold, hot-fio, probe,
#    restart, policy) with the new tables; the prose around them is
#    hand-written, and markers that are missing are skipped.
#
# Environment: QUICK=0 WHICH="matrix s3-cold hot-fio probe restart policy"
#   DOCS=1 (0: do not touch docs/; QUICK=1 implies 0) BUILD_FROM=head|tree
#   BUILD_REV=HEAD (the commit built, e.g. to rerun one part on the
#   same tierbd as an earlier run)
#   BENCH_DIR=/var/tmp/tierbd-runall S3_PORT=7600 MON_PORT=3400
#   RUNS (rounds of the matrix; default 3, 1 with QUICK)
#   MATRIX_ENV S3COLD_ENV HOTFIO_ENV PROBE_ENV RESTART_ENV POLICY_ENV
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
quick=${QUICK:-0}
which=${WHICH:-"matrix s3-cold hot-fio probe restart policy"}
docs=${DOCS:-1}
[ "$quick" = 1 ] && docs=${DOCS_QUICK:-0}
build_from=${BUILD_FROM:-head}
build_rev=${BUILD_REV:-HEAD} # the commit built (BUILD_FROM=head)
dir=${BENCH_DIR:-/var/tmp/tierbd-runall}
out=$dir/out
export S3_PORT=${S3_PORT:-7600} MON_PORT=${MON_PORT:-3400}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-testkey} S3_SECRET_KEY=${S3_SECRET_KEY:-testsecret}
export CEPH_S3_DIR=$dir/ceph
t_start=$SECONDS
say() { echo "run-all: [$(date -u +%H:%M:%S)] $*" >&2; }
die() {
	say "$*"
	exit 1
}
want() { [[ " $which " == *" $1 "* ]]; }
[ "$(id -u)" = 0 ] || die "run as root (apt-get, FUSE, loop devices, the probe)"

# ---- settings of each benchmark (full / QUICK) -------------------------------
if [ "$quick" = 1 ]; then
	matrix_env=(QUICK=1 RUNS="${RUNS:-1}")
	s3cold_env=(RUNS=1 QDS=16 CURL_P=32 NBDKIT_S3_RUNS=0 SIZE_MIB=256 CURL_PUT_SIGNED=1)
	hotfio_env=(SIZE=256M RUNS=1 RUNTIME=2)
	probe_env=(SIZE=256M RUNS=1 RUNTIME=2)
	restart_env=(RUNS=1 DRAIN_SIZE_MIB=256 DRAIN_WRITE_MIB=64 DRAIN_READ_MAX=10
		DRAIN_CONFIGS=default WARM_SIZE_MIB=256 WARM_S1=8 WARM_S2=8
		WARM_CONFIGS="prefetch=warm;prefetch=none" MOUNT_SIZE_MIB=512
		MOUNT_FILES=200 MOUNT_DIRS=4)
	policy_env=(REQUESTS=100000 RECORD=0)
else
	matrix_env=(RUNS="${RUNS:-3}")
	s3cold_env=(RUNS=1 QDS="1 16" CURL_P="32 64" NBDKIT_S3_RUNS=0 CURL_PUT_SIGNED=1)
	hotfio_env=(SIZE=1G RUNS=2 RUNTIME=4)
	probe_env=(SIZE=1G RUNS=3 RUNTIME=4)
	restart_env=(RUNS=1 DRAIN_SIZE_MIB=768 DRAIN_WRITE_MIB=256 DRAIN_READ_MAX=30
		DRAIN_CONFIGS="default;push-threads=2" WARM_SIZE_MIB=512 WARM_S1=30
		WARM_S2=20 WARM_CONFIGS="prefetch=warm;prefetch=none"
		MOUNT_SIZE_MIB=1024 MOUNT_FILES=1000 MOUNT_DIRS=10)
	policy_env=()
fi
# NAME_ENV: more words, shell-quoted (eval'd: this is your own command line)
eval "matrix_env+=(${MATRIX_ENV:-})"
eval "s3cold_env+=(${S3COLD_ENV:-})"
eval "hotfio_env+=(${HOTFIO_ENV:-})"
eval "probe_env+=(${PROBE_ENV:-})"
eval "restart_env+=(${RESTART_ENV:-})"
eval "policy_env+=(${POLICY_ENV:-})"

# ---- 1. packages ------------------------------------------------------------------
"$src/scripts/deps.sh" bench >&2 || die "scripts/deps.sh bench failed"

# ---- state, cleanup ---------------------------------------------------------------
mkdir -p "$dir" "$out"
policy_saved=
cleanup() {
	set +e
	if [ -n "$policy_saved" ]; then # bench/policy/ as it was
		for f in results.md results.tsv hitratio.png fs-recorded.trace.gz; do
			[ -f "$policy_saved/$f" ] && cp -p "$policy_saved/$f" "$src/bench/policy/$f"
		done
	fi
	[ -f "$CEPH_S3_DIR/s3.env" ] && "$src/tests/ceph-s3.sh" stop >&2
}
trap cleanup EXIT

# ---- 2. build -----------------------------------------------------------------------
if [ "$build_from" = tree ]; then
	bsrc=$src
	dirty=$(git -C "$src" status --porcelain -- plugin server proto backends common | wc -l)
	rev="$(git -C "$src" rev-parse --short HEAD) + $dirty uncommitted engine paths (work tree)"
else
	bsrc=$dir/src
	rm -rf "$bsrc"
	mkdir -p "$bsrc"
	git -C "$src" archive "$build_rev" | tar -x -C "$bsrc"
	rev="$(git -C "$src" rev-parse --short "$build_rev") ($build_rev)"
fi
build=$dir/build
say "building tierbd $rev in $build"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$dir/build.from" 2>/dev/null)" != "$bsrc" ]; then
	rm -rf "$build"
	meson setup "$build" "$bsrc" --buildtype=release >"$dir/meson.log" 2>&1 ||
		{ tail -30 "$dir/meson.log" >&2; die "meson setup failed"; }
	echo "$bsrc" >"$dir/build.from"
fi
ninja -C "$build" >"$dir/ninja.log" 2>&1 || { tail -30 "$dir/ninja.log" >&2; die "build failed"; }

# ---- 3. the store -------------------------------------------------------------------
say "starting Ceph RGW on 127.0.0.1:$S3_PORT"
"$src/tests/ceph-s3.sh" start >&2
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1
# purge: empty every bucket (the OSD keeps objects in RAM)
purge() {
	/usr/bin/python3 - "http://127.0.0.1:$S3_PORT" <<'EOF' || say "purge failed"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for b in s3.list_buckets().get("Buckets", []):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b["Name"]):
        ks = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(ks), 1000):
            s3.delete_objects(Bucket=b["Name"], Delete={"Objects": ks[i:i + 1000], "Quiet": True})
EOF
}

# ---- 4. the benchmarks ----------------------------------------------------------------
declare -A status took
# bench NAME ENV_ARRAY_NAME CMD...: run one, stdout to out/NAME.md
bench() {
	local name=$1 t0=$SECONDS rc=0
	local -n envs=$2
	shift 2
	say "$name: ${envs[*]} $*"
	# WHICH means something else to matrix.sh and restart-and-drain.sh
	env -u WHICH "${envs[@]}" CEPH_S3_REUSE=1 "$@" >"$out/$name.md" 2>"$out/$name.log" || rc=$?
	took[$name]=$((SECONDS - t0))
	if [ $rc = 0 ]; then
		status[$name]=ok
		say "$name: done in ${took[$name]} s"
	else
		status[$name]="failed (exit $rc)"
		say "$name: FAILED (exit $rc) after ${took[$name]} s; the end of its log:"
		tail -15 "$out/$name.log" >&2
	fi
}

for b in $which; do
	case $b in
	matrix)
		matrix_env+=(BENCH_DIR="$dir/matrix" OUT_DIR="$out/matrix" TIERBD_REV="$rev")
		bench matrix matrix_env "$src/bench/matrix.sh" "$build" ;;
	s3-cold)
		s3cold_env+=(BENCH_DIR="$dir/s3-cold")
		bench s3-cold s3cold_env "$src/bench/s3-cold.sh" "$build"
		purge ;;
	hot-fio)
		hotfio_env+=(BENCH_DIR="$dir/hot-fio")
		bench hot-fio hotfio_env "$src/bench/hot-fio.sh" "$build" ;;
	probe)
		probe_env+=(BENCH_DIR="$dir/probe")
		bench probe probe_env "$src/bench/probe-overhead.sh" "$build" ;;
	restart)
		restart_env+=(BENCH_DIR="$dir/restart")
		bench restart restart_env "$src/bench/restart-and-drain.sh" "$build"
		purge ;;
	policy)
		policy_saved=$dir/policy-saved
		rm -rf "$policy_saved"
		mkdir -p "$policy_saved"
		for f in results.md results.tsv hitratio.png fs-recorded.trace.gz; do
			[ -f "$src/bench/policy/$f" ] && cp -p "$src/bench/policy/$f" "$policy_saved/$f"
		done
		policy_env+=(WORK="$dir/policy")
		bench policy policy_env "$src/bench/policy/run.sh" "$build"
		mv "$out/policy.md" "$out/policy.stdout"
		# its tables: results.md from the first table up to the goals
		if [ -f "$src/bench/policy/results.md" ]; then
			cp "$src/bench/policy/results.md" "$out/policy-results.md"
			cp "$src/bench/policy/hitratio.png" "$out/policy-hitratio.png" 2>/dev/null || true
			awk '/^\|/ {t = 1} t && !/^\|/ && !/^$/ {exit} t' \
				"$out/policy-results.md" >"$out/policy.md"
		fi
		for f in results.md results.tsv hitratio.png fs-recorded.trace.gz; do
			[ -f "$policy_saved/$f" ] && cp -p "$policy_saved/$f" "$src/bench/policy/$f"
		done
		policy_saved= ;;
	*) die "unknown benchmark $b (WHICH: matrix s3-cold hot-fio probe restart policy)" ;;
	esac
done
say "benchmarks done in $((SECONDS - t_start)) s"

# ---- 5. plots ------------------------------------------------------------------------------
pngdir=$out
[ "$docs" = 1 ] && pngdir=$src/docs
if want matrix && [ -f "$out/matrix/hot.dat" ] && command -v gnuplot >/dev/null; then
	gnuplot -e "dat='$out/matrix'; png='$pngdir'" "$src/bench/plot-matrix.gp" 2>"$out/plot.log" ||
		{ cat "$out/plot.log" >&2; say "plotting failed"; }
	say "plots in $pngdir/bench-{hot,cold,zipf}.png"
fi

# ---- 6. docs/benchmarks.md -----------------------------------------------------------------------
# each block: a line saying which run made it, then the tables
block() { # NAME FILE BENCH
	local name=$1 f=$2
	{
		echo "*\`bench/run-all.sh\` on $(date -u +%Y-%m-%d), tierbd $rev," \
			"$(nproc) cores; ${status[$3]:-not run}${took[$3]:+ in ${took[$3]} s}*"
		echo
		if [ "${status[$3]:-}" = ok ] && [ -s "$f" ]; then
			cat "$f"
		else
			echo '```'
			tail -15 "$out/$3.log" 2>/dev/null
			echo '```'
		fi
	} >"$out/block-$name.md"
}
for b in $which; do
	case $b in
	matrix)
		for s in hot cold zipf; do block "matrix-$s" "$out/matrix/$s.md" matrix; done ;;
	*) block "$b" "$out/$b.md" "$b" ;;
	esac
done
if [ "$docs" = 1 ]; then
	# read, replace between the markers, write: at once, on the current file
	/usr/bin/python3 - "$src/docs/benchmarks.md" "$out" <<'EOF'
import os, sys, glob
doc, out = sys.argv[1], sys.argv[2]
text = open(doc).read()
for f in sorted(glob.glob(os.path.join(out, "block-*.md"))):
    name = os.path.basename(f)[len("block-"):-len(".md")]
    b, e = "<!-- bench:%s begin -->" % name, "<!-- bench:%s end -->" % name
    i, j = text.find(b), text.find(e)
    if i < 0 or j < i:
        print("run-all: docs/benchmarks.md has no markers for %s: skipped" % name, file=sys.stderr)
        continue
    body = open(f).read().rstrip("\n")
    text = text[:i + len(b)] + "\n" + body + "\n" + text[j:]
open(doc + ".tmp", "w").write(text)
os.replace(doc + ".tmp", doc)
EOF
	say "docs/benchmarks.md: tables replaced between the markers"
fi
for b in $which; do say "$b: ${status[$b]:-not run} (${took[$b]:-0} s)"; done
say "all done in $((SECONDS - t_start)) s; tables in $out"
