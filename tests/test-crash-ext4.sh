#!/usr/bin/env bash
# ext4 across kill -9 of nbdkit, and across the loss of the cache:
# mkfs.ext4 and mount on tierbd (nbdfuse + loop), write files and sync
# them (flush=remote: each flush waits until a commit naming it is in
# the store), then keep writing more, unsynced, and kill -9 nbdkit in
# the middle.  Restart on the same cache: mount (the journal replays),
# umount, `e2fsck -fn` must be clean and every synced file intact.  Then
# once more, and this time delete the cache directory and reopen the
# device from the store alone (takeover=true: the lost cache directory
# still holds the lease): again clean, and the synced files intact.
source "$(dirname "$0")/functions.sh"
source "$srcdir/fuse-loop.sh"
requires nbdkit
fl_requires
[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built/set"

work=$(mktemp -d /tmp/tierbd-crash-ext4-XXXXXX)
sock=$work/nbdkit.sock
writer=
cleanup() {
	[ -n "$writer" ] && kill "$writer" 2>/dev/null
	fl_down
	[ -n "$NBDKIT_PID" ] && kill_pid "$NBDKIT_PID"
	[ "${rc:-1}" = 0 ] && rm -rf "$work"
}
on_exit cleanup

common=(writeback-delay=50 commit-interval=1 flush=remote)
create=("$TIERBD_PLUGIN" size=256M chunk-size=256K "cache=$work/cache"
	cache-size=32M "store=dir:$work/store" "${common[@]}")
reopen=("$TIERBD_PLUGIN" "cache=$work/cache" "${common[@]}")

fsck_clean() {
	if ! e2fsck -fn "$FL_DEV" >"$work/fsck.log" 2>&1; then
		echo "FAIL: e2fsck -fn $* is not clean:" >&2
		cat "$work/fsck.log" >&2
		exit 1
	fi
	echo "e2fsck -fn $*: clean"
}

# write_files DIR N: N files of random sizes under DIR
write_files() {
	local d=$1 n=$2 i
	mkdir -p "$d"
	for ((i = 0; i < n; i++)); do
		head -c $((RANDOM * 4 + RANDOM % 1000)) /dev/urandom >"$d/f$i"
	done
}

# crash_round NAME: synced files, unsynced writes, kill -9 mid-way.
crash_round() {
	local name=$1
	fl_mount "$work/mnt"
	write_files "$work/mnt/$name" 60
	sync -f "$work/mnt"
	(cd "$work/mnt" && find "$name" -type f -print0 | sort -z |
		xargs -0 sha256sum) >>"$work/sums"
	# More writes, never synced, still going when nbdkit dies.
	( i=0; while :; do
		head -c 200000 /dev/urandom >"$work/mnt/$name/late$i" 2>/dev/null || exit 0
		i=$((i + 1)); done ) &
	writer=$!
	sleep $((RANDOM % 3 + 1))
	kill -9 "$NBDKIT_PID"
	wait "$NBDKIT_PID" 2>/dev/null || true
	NBDKIT_PID=
	kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true
	writer=
	echo "$name: killed nbdkit during writes"
	fl_down
}

# check_after NAME: journal replay, fsck, synced files intact.
check_after() {
	fl_mount "$work/mnt"
	fl_umount
	fsck_clean "$1"
	fl_mount "$work/mnt"
	(cd "$work/mnt" && sha256sum --quiet -c "$work/sums") ||
		{ echo "FAIL: synced files damaged $1" >&2; exit 1; }
	echo "$1: all $(wc -l <"$work/sums") synced files intact"
	fl_umount
}

start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" "${create[@]}"
fl_up "$sock" "$work"
mkfs.ext4 -q -F -b 4096 "$FL_DEV"
sync
: >"$work/sums"

crash_round one
start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" "${reopen[@]}"
fl_up "$sock" "$work"
check_after "after kill -9 (same cache)"

crash_round two
# The cache is lost with its owner token: the lease in the store still
# names it, so reopening takes the device over, as a user would.
rm -rf "$work/cache"
start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" "${create[@]}" \
	takeover=true
grep -q "reopened the device from store" "$work/nbdkit.log" ||
	{ echo "FAIL: did not reopen from the store" >&2; cat "$work/nbdkit.log" >&2; exit 1; }
fl_up "$sock" "$work"
check_after "after kill -9 and losing the cache (from the store)"
fl_down
stop_pid "$NBDKIT_PID"
NBDKIT_PID=
check_sanitizer_log "$work/nbdkit.log"
echo "PASS: test-crash-ext4"
rc=0
