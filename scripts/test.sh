#!/bin/bash
# scripts/test.sh - the one command that sets up a fresh Debian 12 machine
# (as root) and runs the whole test suite:
#
#   1. apt-get install every dependency (skipped when all are installed);
#   2. gcc build with -Dwerror=true, `meson test` (everything);
#   3. gcc build with -Db_sanitize=address,undefined, `meson test` of the
#      unit and integration suites (proto, backends, server, integration,
#      observability); nbdkit gets the ASan runtime by LD_PRELOAD
#      (tests/meson.build sets TIERBD_NBDKIT_PRELOAD);
#   4. clang build with -Dfuzz=true, `meson test --suite fuzz`.
#
# The last line printed is "N passed, N failed, N skipped", counted from
# the meson test logs of all runs (a build that fails counts as one
# failure); the exit status is non-zero if anything failed.
#
# Environment: TIERBD_BUILDROOT (default: the source tree) holds the
# build directories build-test-{gcc,asan,fuzz}; reruns reuse them.
# TIERBD_SKIP_APT=1 skips the package step.  See docs/testing.md.

set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 1
buildroot=${TIERBD_BUILDROOT:-$top}
t0=$SECONDS
export DEBIAN_FRONTEND=noninteractive

# Packages: scripts/deps.sh (the one list, shared with serve.sh).
step() {
	printf '\n==> %s  [%d s]\n' "$*" $((SECONDS - t0))
}


# ---- counting ----

passed=0 failed=0 skipped=0
failures=()

# count_log FILE LABEL: add up one meson test log (JSON, a test per line).
count_log() {
	local out
	if ! out=$(/usr/bin/python3 - "$1" "$2" <<'EOF'
import json, sys
p = f = s = 0
bad = []
with open(sys.argv[1]) as log:
    for line in log:
        if not line.strip():
            continue
        t = json.loads(line)
        r = t.get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
            bad.append("%s: %s (%s)" % (sys.argv[2], t.get("name"), r))
print(p, f, s)
for b in bad:
    print(b)
EOF
	); then
		failed=$((failed + 1))
		failures+=("$2: cannot read $1")
		return
	fi
	local first p f s
	first=$(head -n1 <<<"$out")
	read -r p f s <<<"$first"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	echo "$2: $p passed, $f failed, $s skipped"
	while IFS= read -r line; do
		[ -n "$line" ] && failures+=("$line")
	done < <(tail -n +2 <<<"$out")
}

# build NAME DIR OPTIONS...: configure (or reconfigure) and compile.
build() {
	local name=$1 dir=$2
	shift 2
	step "build $name: meson setup $dir $*"
	if [ -d "$dir/meson-private" ]; then
		meson setup --reconfigure "$dir" "$@" ||
			meson setup --wipe "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi || { failed=$((failed + 1)); failures+=("$name: meson setup failed"); return 1; }
	if ! ninja -C "$dir"; then
		failed=$((failed + 1))
		failures+=("$name: build failed")
		return 1
	fi
}

# run_tests NAME DIR MESON-TEST-ARGS...
run_tests() {
	local name=$1 dir=$2
	shift 2
	step "test $name: meson test -C $dir $*"
	rm -f "$dir/meson-logs/$name.json"
	meson test -C "$dir" --no-rebuild --print-errorlogs --logbase "$name" "$@"
	if [ -f "$dir/meson-logs/$name.json" ]; then
		count_log "$dir/meson-logs/$name.json" "$name"
	else
		failed=$((failed + 1))
		failures+=("$name: meson test wrote no log")
	fi
}

# ---- 1. packages ----

step "packages"
if [ -n "${TIERBD_SKIP_APT:-}" ]; then
	echo "TIERBD_SKIP_APT is set: not checking packages"
elif ! "$top/scripts/deps.sh" test; then
	failed=$((failed + 1))
	failures+=("packages: installation failed")
fi

# ---- 2. gcc, -Werror, everything ----

if CC=gcc build gcc "$buildroot/build-test-gcc" -Dwerror=true; then
	run_tests gcc "$buildroot/build-test-gcc"
fi

# ---- 3. ASan + UBSan: unit and integration (not fuzz) ----

if CC=gcc build asan "$buildroot/build-test-asan" \
	-Db_sanitize=address,undefined; then
	# The unit and integration suites; the slow whole-system ones
	# (guests, the RGW re-run, 60 crash rounds) run in step 2 only.
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_tests asan "$buildroot/build-test-asan" \
		--suite proto --suite backends --suite server \
		--suite integration --suite observability \
		--timeout-multiplier 3
fi

# ---- 4. clang + libFuzzer: the fuzz suite ----

if ! command -v clang >/dev/null; then
	echo "clang not found: fuzz build skipped"
	skipped=$((skipped + 1))
elif CC=clang build fuzz "$buildroot/build-test-fuzz" -Dfuzz=true; then
	# (Not `| grep -q`: with pipefail, meson's SIGPIPE fails the test.)
	fuzz_list=$(meson test -C "$buildroot/build-test-fuzz" --no-rebuild \
		--list --suite fuzz 2>/dev/null)
	if grep -q ' / ' <<<"$fuzz_list"; then
		run_tests fuzz "$buildroot/build-test-fuzz" --suite fuzz
	else
		echo "no tests in the fuzz suite"
	fi
fi

# ---- summary ----

step "summary (all builds and tests took $((SECONDS - t0)) s)"
for f in "${failures[@]}"; do
	echo "FAILED: $f"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
