# tests/functions.sh - sourced by every tests/test-*.sh.
#
# Exit 77 means "skipped" (meson and nbdkit's own tests use the same
# convention).  The Python harness is tests/tierbd_test.py; it must run
# under /usr/bin/python3, Debian's interpreter, because that is the one
# python3-libnbd's `nbd` module is built for (the python3 first on PATH
# may be another build that cannot import it).
#
# Environment (set by tests/meson.build's test_env, or by hand):
#   TIERBD_PLUGIN          path of nbdkit-tierbd-plugin.so
#   TIERBD_NBDKIT_PRELOAD  LD_PRELOAD for nbdkit only (ASan runtime)

set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
export PYTHONPATH="$srcdir${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export TIERBD_TEST_NAME
TIERBD_TEST_NAME=$(basename "$0" .sh)

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

requires() {
	command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed${2:+ ($2)}"
}

# The harness needs Debian's python3 with the nbd module, and the plugin.
requires_harness() {
	[ -x "$PY" ] || skip "$PY not found"
	"$PY" -c 'import nbd' 2>/dev/null ||
		skip "python3-libnbd is not installed (import nbd failed)"
	requires nbdkit
	if [ -z "${TIERBD_TEST_FAKE:-}" ]; then
		[ -n "${TIERBD_PLUGIN:-}" ] ||
			skip "TIERBD_PLUGIN is not set (run through meson test)"
		[ -f "$TIERBD_PLUGIN" ] ||
			skip "plugin $TIERBD_PLUGIN is not built"
	fi
}

# run_py: run the Python test body on stdin with the harness importable.
run_py() {
	exec "$PY" - "$@"
}

# ---- for shell tests that drive nbdkit themselves ----

# Cleanups run in reverse order at exit, also on failure or signal.
_cleanups=()
on_exit() {
	_cleanups+=("$*")
}
_run_cleanups() {
	local rc=$? i
	set +e
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}"
	done
	exit "$rc"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# nbdkit_env: NAME=VALUE lines, for env(1), that preload the ASan runtime
# (and its shim, see tests/meson.build) when the build asks for it: the
# plugin is instrumented, nbdkit is not.
nbdkit_env() {
	if [ -n "${TIERBD_NBDKIT_PRELOAD:-}" ]; then
		printf '%s\n' \
			"LD_PRELOAD=$TIERBD_NBDKIT_PRELOAD${LD_PRELOAD:+ $LD_PRELOAD}" \
			"ASAN_OPTIONS=${TIERBD_NBDKIT_ASAN_OPTIONS:-detect_leaks=0}"
	fi
}

# nbdkit_run ARGS...: nbdkit in the foreground (a start that must fail,
# --run ...) with the same preload as start_nbdkit.
nbdkit_run() {
	local -a envs
	mapfile -t envs < <(nbdkit_env)
	env "${envs[@]}" nbdkit "$@"
}

# start_nbdkit SOCK PIDFILE LOG ARGS...: start nbdkit in the background on
# a unix socket and wait until it serves.  Sets NBDKIT_PID; the caller
# stops it (stop_pid) and registers its own cleanup, in the right order
# with whatever uses the socket (on_exit "kill_pid $NBDKIT_PID").
# --exit-with-parent makes nbdkit go away with this shell in any case.
NBDKIT_PID=
start_nbdkit() {
	local sock=$1 pidfile=$2 logf=$3 i
	shift 3
	rm -f "$sock" "$pidfile"
	# env(1) directly, not nbdkit_run: a function run in the background
	# is a subshell, and $! must be nbdkit's own PID.
	local -a envs
	mapfile -t envs < <(nbdkit_env)
	env "${envs[@]}" nbdkit -f --exit-with-parent -U "$sock" -P "$pidfile" \
		"$@" >>"$logf" 2>&1 </dev/null &
	local pid=$!
	NBDKIT_PID=$pid
	for ((i = 0; i < 300; i++)); do
		[ -s "$pidfile" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "nbdkit exited at start:" >&2
			cat "$logf" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "nbdkit did not start in 30 s" >&2
	cat "$logf" >&2
	return 1
}

# stop_pid PID [TIMEOUT]: SIGTERM, wait for exit (it must be our child).
stop_pid() {
	local pid=$1 t=${2:-60} i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < t * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "process $pid did not exit in $t s after SIGTERM" >&2
		kill -KILL "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid" 2>/dev/null
}

# kill_pid PID: SIGKILL if still running (cleanup path).
kill_pid() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# check_sanitizer_log LOG: fail if a sanitizer reported in nbdkit's log.
check_sanitizer_log() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; then
		echo "sanitizer report in $1:" >&2
		cat "$1" >&2
		return 1
	fi
}
