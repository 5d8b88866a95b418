#!/usr/bin/env bash
# Mapped memory on tierbd, through the host kernel: nbdkit (tierbd) on a
# unix socket, nbdfuse exposing it as a file, a loop device on the file
# (tests/fuse-loop.sh).  tests/mmap-pattern.c writes a pattern
# through a MAP_SHARED mapping, msync(MS_SYNC)s and unmaps; the pattern
# is a function of each byte's offset, so misplaced or stale blocks show.
#
#   1. a new 128 MiB device (16 MiB cache, 1 MiB chunks): 96 MiB and a
#      bit written through a mapping of the loop device; loop, nbdfuse
#      and tierbd taken down cleanly;
#   2. tierbd restarted on its cache: every byte verified (through a
#      mapping of the loop device); then 50 MiB at an unaligned offset
#      written through a mapping of the nbdfuse file itself, and tierbd
#      killed with SIGKILL as soon as msync returns;
#   3. the cache directory deleted, tierbd reopened from the store alone
#      (takeover=true: the killed process left its lease): every byte
#      verified, through the loop device and the file.
#
# tierbd runs with flush=remote and commit-interval=3600: a commit in the
# store is made only when a flush asks for one, so each msync must have
# produced one (the newest commit's number grows) and what it covered
# must be in the store when the cache is gone.
# Usage: test-mmap.sh [PATH-OF-mmap-pattern] (meson passes it).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/functions.sh"
source "$srcdir/fuse-loop.sh"
requires nbdkit
requires blockdev
fl_requires
[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built/set"
mp=${1:-${TIERBD_BUILD:-}/tests/mmap-pattern}
[ -x "$mp" ] || { echo "FAIL: mmap-pattern not built ($mp)" >&2; exit 1; }

work=$(mktemp -d /tmp/tierbd-mmap-XXXXXX)
sock=$work/nbdkit.sock
img=$work/fuse/disk.img # fl_up's nbdfuse file
store=$work/store

cleanup() {
	fl_down
	[ -n "$NBDKIT_PID" ] && kill_pid "$NBDKIT_PID"
	if [ "${rc:-1}" = 0 ] && [ -z "${TIERBD_TEST_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "work directory kept: $work (nbdkit.log)"
	fi
}
on_exit cleanup

run=(writeback-delay=100 flush=remote commit-interval=3600)
bring_up() {
	start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" \
		"$TIERBD_PLUGIN" "cache=$work/cache" "$@" "${run[@]}"
	fl_up "$sock" "$work"
	echo "tierbd pid $NBDKIT_PID, $img, loop device $FL_DEV"
}

# newest_commit: the sequence number of the newest commit in the store.
newest_commit() {
	local c
	c=$(find "$store/commits" -type f -printf '%f\n' 2>/dev/null |
		sort | tail -1)
	echo "$((16#${c:-0}))"
}

# write_pattern FILE SEED OFFSET LENGTH: through a mapping; the msync
# must have made a commit in the store.
write_pattern() {
	local before after
	before=$(newest_commit)
	"$mp" write "$@"
	after=$(newest_commit)
	echo "newest commit in the store: $before before the write, $after after msync"
	if [ "$after" -le "$before" ]; then
		echo "FAIL: msync on $1 returned without a new commit in the store" \
			"(flush=remote)" >&2
		return 1
	fi
}

verify() {
	local f=$1
	shift
	[ -b "$f" ] && blockdev --flushbufs "$f"
	if ! "$mp" verify "$f" "$@"; then
		echo "FAIL: the pattern on $f is wrong ($*)" >&2
		return 1
	fi
}

MiB=$((1 << 20))
seg1="1:0:$((96 * MiB + 12345))"
seg2="2:$((40 * MiB + 777)):$((50 * MiB))"
t0=$SECONDS

# 1. a new device, the pattern through the loop device.
bring_up size=128M chunk-size=1M cache-size=16M "store=dir:$store"
write_pattern "$FL_DEV" ${seg1//:/ }
fl_down
stop_pid "$NBDKIT_PID"
NBDKIT_PID=
check_sanitizer_log "$work/nbdkit.log"

# 2. restart on the cache: verify; a second pattern through the file
#    itself, then SIGKILL right after msync.
bring_up
verify "$FL_DEV" "$seg1"
write_pattern "$img" ${seg2//:/ }
kill -KILL "$NBDKIT_PID"
wait "$NBDKIT_PID" || true
NBDKIT_PID=
echo "tierbd killed (SIGKILL) after msync returned"
fl_down
check_sanitizer_log "$work/nbdkit.log"

# 3. no cache directory: reopen from the store alone.  The killed process
#    still holds the device's lease in the store (only a clean close
#    releases it): takeover=true, as for a host that died.
rm -rf "$work/cache"
bring_up cache-size=16M "store=dir:$store" takeover=true
grep "reopened the device from store" "$work/nbdkit.log" || {
	echo "FAIL: tierbd did not say it reopened from the store" >&2
	cat "$work/nbdkit.log" >&2
	exit 1
}
verify "$FL_DEV" "$seg1" "$seg2"
verify "$img" "$seg1" "$seg2"
fl_down
stop_pid "$NBDKIT_PID"
NBDKIT_PID=
check_sanitizer_log "$work/nbdkit.log"
echo "PASS: test-mmap ($((SECONDS - t0)) s)"
rc=0
