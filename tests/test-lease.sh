#!/usr/bin/env bash
# One host at a time: two nbdkit processes on one device (same store,
# different cache directories) -- the second is refused and told who
# holds it; the first, killed with -9, restarts on its own cache
# directory without force; takeover=true takes the device from a dead
# owner (reopening it from the store) and the old owner is then refused;
# a clean stop (SIGTERM) uploads dirty data, commits and releases the
# lease, so a new cache directory opens the device without force.
source "$(dirname "$0")/functions.sh"
requires nbdkit
[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built"
PY=/usr/bin/python3
"$PY" -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"

wd=$(mktemp -d /tmp/test-lease.XXXXXX)
on_exit "rm -rf $wd"
# The store: dir:, or with TIERBD_TEST_STORE=s3 (tests/test-s3-suite.sh)
# a fresh prefix in the test bucket; s3 holds what every start needs
# then (the endpoint is not stored in the cache directory).
store="dir:$wd/store"
s3=()
if [ "${TIERBD_TEST_STORE:-dir}" = s3 ]; then
	store="s3://${TIERBD_TEST_S3_BUCKET:-tierbd-test}/$(basename "$wd")"
	s3=("s3-endpoint=$S3_ENDPOINT" "s3-region=${S3_REGION:-us-east-1}")
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
fi
common=(size=8M chunk-size=64K cache-size=1M "store=$store"
	writeback-delay=0 flush=remote "${s3[@]}")

# write SOCK OFFSET BYTE: write one chunk of BYTE and flush (to the store)
write() {
	"$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, nbd
h = nbd.NBD()
h.connect_unix(sys.argv[1])
h.pwrite(bytes([int(sys.argv[3])]) * 65536, int(sys.argv[2]))
h.flush()
PYEOF
}
# check SOCK OFFSET BYTE
check() {
	"$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, nbd
h = nbd.NBD()
h.connect_unix(sys.argv[1])
got = h.pread(65536, int(sys.argv[2]))
assert got == bytes([int(sys.argv[3])]) * 65536, "wrong data"
PYEOF
}

start_nbdkit "$wd/a.sock" "$wd/a.pid" "$wd/a.log" "$TIERBD_PLUGIN" \
	cache="$wd/a-cache" "${common[@]}"
a=$NBDKIT_PID
on_exit "kill_pid $a"
write "$wd/a.sock" 0 17

# A second cache directory on the same store: refused, says who holds it.
if nbdkit_run -f -U "$wd/b.sock" "$TIERBD_PLUGIN" cache="$wd/b-cache" \
	"${common[@]}" >"$wd/b.out" 2>&1 </dev/null; then
	echo "FAIL: a second process opened the device" >&2
	exit 1
fi
grep -q "in use by host $(hostname)" "$wd/b.out" ||
	{ echo "FAIL: refusal does not say who holds the device:" >&2; cat "$wd/b.out" >&2; exit 1; }
grep -q "takeover=true" "$wd/b.out" ||
	{ echo "FAIL: refusal does not say how to take over" >&2; exit 1; }
[ ! -e "$wd/b-cache" ] || { echo "FAIL: the refused process left $wd/b-cache behind" >&2; exit 1; }
echo "ok: second process refused: $(grep -o 'in use by host.*' "$wd/b.out" | head -c 120)"

# The owner dies; it restarts on its own cache without force.
kill -9 "$a"; wait "$a" 2>/dev/null || true
start_nbdkit "$wd/a.sock" "$wd/a.pid" "$wd/a.log" "$TIERBD_PLUGIN" \
	cache="$wd/a-cache" writeback-delay=0 flush=remote "${s3[@]}"
a=$NBDKIT_PID
on_exit "kill_pid $a"
check "$wd/a.sock" 0 17
write "$wd/a.sock" 65536 42
echo "ok: the owner restarted after kill -9 without force"

# It dies again; another host takes over with takeover=true and reopens
# the device from the store: every flushed write is there.
kill -9 "$a"; wait "$a" 2>/dev/null || true
start_nbdkit "$wd/b.sock" "$wd/b.pid" "$wd/b.log" "$TIERBD_PLUGIN" \
	cache="$wd/b-cache" "${common[@]}" takeover=true
b=$NBDKIT_PID
on_exit "kill_pid $b"
check "$wd/b.sock" 0 17
check "$wd/b.sock" 65536 42
grep -q "taking the device over" "$wd/b.log" ||
	{ echo "FAIL: takeover not logged" >&2; cat "$wd/b.log" >&2; exit 1; }
echo "ok: takeover=true reopened the device from the store"

# The old owner is now refused.
if nbdkit_run -f -U "$wd/a2.sock" "$TIERBD_PLUGIN" cache="$wd/a-cache" \
	"${s3[@]}" >"$wd/a2.out" 2>&1 </dev/null; then
	echo "FAIL: the old owner reopened a device taken over" >&2
	exit 1
fi
grep -q "in use by host" "$wd/a2.out" ||
	{ echo "FAIL: old owner's refusal unclear:" >&2; cat "$wd/a2.out" >&2; exit 1; }
echo "ok: the old owner is refused after the takeover"

# A clean stop with everything committed releases the lease.
stop_pid "$b"
start_nbdkit "$wd/c.sock" "$wd/c.pid" "$wd/c.log" "$TIERBD_PLUGIN" \
	cache="$wd/c-cache" "${common[@]}"
c=$NBDKIT_PID
on_exit "kill_pid $c"
check "$wd/c.sock" 65536 42
stop_pid "$c"

# A clean stop with dirty data uploads it first, commits and releases
# the lease: with write-back held off (and flushes local), the data is
# only in c's cache until SIGTERM; a new cache directory then opens the
# device without force and finds it.
start_nbdkit "$wd/c.sock" "$wd/c.pid" "$wd/c.log" "$TIERBD_PLUGIN" \
	cache="$wd/c-cache" writeback-delay=600000 writeback-early=false flush=local "${s3[@]}"
c=$NBDKIT_PID
on_exit "kill_pid $c"
write "$wd/c.sock" 131072 99
stop_pid "$c"
start_nbdkit "$wd/d.sock" "$wd/d.pid" "$wd/d.log" "$TIERBD_PLUGIN" \
	cache="$wd/d-cache" "${common[@]}"
d=$NBDKIT_PID
on_exit "kill_pid $d"
check "$wd/d.sock" 131072 99
check "$wd/d.sock" 0 17
stop_pid "$d"
echo "ok: a clean stop uploaded its dirty data and released the lease"
echo "PASS: test-lease"
