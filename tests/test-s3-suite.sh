#!/bin/bash
# test-s3-suite.sh - the whole integration suite again, on Ceph RGW.
#
# Starts a throwaway RGW once (tests/ceph-s3.sh, 127.0.0.1, free ports, a
# fresh CEPH_S3_DIR), makes a bucket, then runs every script of the
# integration section of tests/meson.build with TIERBD_TEST_STORE=s3:
# each device of tests/tierbd_test.py then keeps its chunks under its own
# prefix in the bucket, with s3-endpoint= and the keys in nbdkit's
# environment, and the tests that damage or delete objects do it through
# tests/store_s3.py.  Each test is reported (PASS/FAIL/SKIP, seconds);
# the suite fails if any fails, and prints the tail of its output.  RGW
# is stopped by its script at the end, whatever happened.
#
# Skips (77) only if radosgw is not installed.
#   TIERBD_S3_SUITE_TESTS="io-model lease"   run only these
#   TIERBD_S3_SUITE_TIMEOUT_FACTOR=4          x meson's timeout, per test
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ceph_s3="$here/ceph-s3.sh"

if ! command -v radosgw >/dev/null; then
	echo "SKIP: radosgw is not installed (install it with: $ceph_s3 install)"
	exit 77
fi

# name and timeout of each integration test, from tests/meson.build
# (lines like  ['io-model', 120, true, 'integration'],)
mapfile -t rows < <(sed -n \
	"s/^ *\['\([a-z0-9-]*\)', *\([0-9]*\), *[a-z]*, *'integration'\].*/\1 \2/p" \
	"$here/meson.build")
[ ${#rows[@]} -gt 0 ] || { echo "FAIL: no integration tests found in $here/meson.build"; exit 1; }
if [ -n "${TIERBD_S3_SUITE_TESTS:-}" ]; then
	want=" $TIERBD_S3_SUITE_TESTS "
	sel=()
	for r in "${rows[@]}"; do
		[[ $want == *" ${r%% *} "* ]] && sel+=("$r")
	done
	rows=("${sel[@]}")
fi
factor=${TIERBD_S3_SUITE_TIMEOUT_FACTOR:-4}

# a port nothing listens on (other engineers and tests run their own RGW)
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

export CEPH_S3_DIR
CEPH_S3_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tierbd-s3suite.XXXXXX")
S3_PORT=$(free_port)
MON_PORT=$(free_port)
export S3_PORT MON_PORT
logs=$CEPH_S3_DIR/tests
keep=

cleanup() {
	local rc=$?
	"$ceph_s3" stop || true
	if [ -n "$keep" ]; then
		mkdir -p "$keep"
		cp -r "$logs" "$keep/" 2>/dev/null || true
		cp -r "$CEPH_S3_DIR/log" "$keep/ceph-log" 2>/dev/null || true
		echo "test outputs and ceph logs kept in $keep"
	fi
	rm -rf "$CEPH_S3_DIR"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$ceph_s3" start
eval "$("$ceph_s3" env)"
export TIERBD_TEST_STORE=s3 TIERBD_TEST_S3_BUCKET=tierbd-suite
"$ceph_s3" mkbucket "$TIERBD_TEST_S3_BUCKET"
mkdir -p "$logs"

pass=() fail=() skipped=()
t_all=$SECONDS
for r in "${rows[@]}"; do
	name=${r%% *} tmo=$((${r##* } * factor))
	out="$logs/$name.log"
	echo "== $name (on s3://$TIERBD_TEST_S3_BUCKET at $S3_ENDPOINT, timeout $tmo s)"
	t0=$SECONDS
	rc=0
	timeout -k 10 "$tmo" "$here/test-$name.sh" >"$out" 2>&1 </dev/null || rc=$?
	dt=$((SECONDS - t0))
	case $rc in
	0)
		pass+=("$name")
		echo "PASS: $name ($dt s)"
		;;
	77)
		skipped+=("$name")
		echo "SKIP: $name ($dt s): $(grep -m1 SKIP "$out" || tail -n1 "$out")"
		;;
	*)
		fail+=("$name")
		[ $rc = 124 ] && echo "(timed out after $tmo s)" >>"$out"
		echo "FAIL: $name (exit $rc, $dt s)"
		grep -m3 '^FAIL' "$out" | sed 's/^/    /' || true
		echo "    last lines of its output:"
		tail -n 40 "$out" | sed 's/^/    /'
		;;
	esac
	# a test must leave RGW serving for the next one (no grep -q: under
	# pipefail, status would die of SIGPIPE)
	st=$("$ceph_s3" status 2>&1 || true)
	if [[ $st != *"client.rgw.a: radosgw running"* ]]; then
		echo "FAIL: radosgw is no longer running after $name"
		fail+=("(radosgw died)")
		break
	fi
done

echo "s3 suite: ${#pass[@]} passed, ${#fail[@]} failed, ${#skipped[@]} skipped" \
	"in $((SECONDS - t_all)) s${fail:+; failed: ${fail[*]}}"
if [ ${#fail[@]} -gt 0 ]; then
	keep=$(mktemp -d "${TMPDIR:-/tmp}/tierbd-s3suite-failed.XXXXXX")
	exit 1
fi
exit 0
