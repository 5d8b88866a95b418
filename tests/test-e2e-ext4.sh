#!/usr/bin/env bash
# End to end through the host kernel: nbdkit (tierbd) on a unix socket,
# nbdfuse exposing the export as a file, a loop device on that file,
# mkfs.ext4, mount, a tree of a few hundred random files in nested
# directories with their sha256 sums, umount, e2fsck -fn clean; then
# everything is taken down (loop, nbdfuse, nbdkit), nbdkit is restarted
# on the same cache, and the sums and e2fsck must still hold.  The cache
# is a quarter of the device.  (There is no nbd kernel module on our
# hosts, hence FUSE + loop.)  Mounts, the loop device and processes are
# cleaned up on any exit.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdfuse "package libnbd-bin"
requires fusermount3 "package fuse3"
requires losetup
requires mkfs.ext4 "package e2fsprogs"
requires e2fsck "package e2fsprogs"
requires sha256sum
[ "$(id -u)" = 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "/dev/fuse is not available"
[ -e /dev/loop-control ] || skip "loop devices are not available"
if [ -z "${TIERBD_TEST_FAKE:-}" ]; then
	[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built/set"
fi

work=$(mktemp -d /tmp/tierbd-e2e-XXXXXX)
sock=$work/nbdkit.sock
fusedir=$work/fuse
img=$fusedir/disk.img
mnt=$work/mnt
mkdir "$fusedir" "$mnt"
loopdev= mounted= fuse_pid=

take_down() {
	# In order: filesystem, loop device, FUSE, nbdkit.
	if [ -n "$mounted" ]; then
		timeout 60 umount "$mnt" || umount -l "$mnt"
		mounted=
	fi
	if [ -n "$loopdev" ]; then
		losetup -d "$loopdev"
		loopdev=
	fi
	if [ -n "$fuse_pid" ]; then
		local i
		# The loop device lets go of the file asynchronously.
		for ((i = 0; i < 100; i++)); do
			fusermount3 -u "$fusedir" 2>/dev/null && break
			sleep 0.1
		done
		for ((i = 0; i < 300; i++)); do
			kill -0 "$fuse_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$fuse_pid" 2>/dev/null; then
			echo "nbdfuse did not exit after fusermount3 -u" >&2
			fusermount3 -uz "$fusedir"
			kill -KILL "$fuse_pid"
		fi
		wait "$fuse_pid" || true
		fuse_pid=
	fi
}
cleanup() {
	take_down
	[ -n "$NBDKIT_PID" ] && kill_pid "$NBDKIT_PID"
	if [ "${rc:-1}" = 0 ] || [ -z "${TIERBD_TEST_KEEP:-}" ]; then
		rm -rf "$work"
	fi
}
on_exit cleanup

if [ -n "${TIERBD_TEST_FAKE:-}" ]; then
	truncate -s 256M "$work/fake.img"
	create=(file "file=$work/fake.img")
	reopen=("${create[@]}")
else
	create=("$TIERBD_PLUGIN" size=256M chunk-size=1M "cache=$work/cache"
		cache-size=64M "store=dir:$work/store" writeback-delay=100)
	reopen=("$TIERBD_PLUGIN" "cache=$work/cache" writeback-delay=100)
fi

bring_up() {
	local i
	start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" "$@"
	rm -f "$work/nbdfuse.pid"
	nbdfuse -P "$work/nbdfuse.pid" "$img" --unix "$sock" \
		>>"$work/nbdfuse.log" 2>&1 </dev/null &
	fuse_pid=$!
	for ((i = 0; i < 300; i++)); do
		[ -s "$work/nbdfuse.pid" ] && break
		kill -0 "$fuse_pid" 2>/dev/null ||
			{ cat "$work/nbdfuse.log" >&2; return 1; }
		sleep 0.1
	done
	[ -s "$work/nbdfuse.pid" ] || { echo "nbdfuse did not start" >&2; return 1; }
	loopdev=$(losetup -f --show "$img")
	echo "loop device $loopdev on $img"
}

shut_down() {
	take_down
	stop_pid "$NBDKIT_PID"
	NBDKIT_PID=
	check_sanitizer_log "$work/nbdkit.log"
}

fsck_clean() {
	if ! e2fsck -fn "$loopdev" >"$work/fsck.log" 2>&1; then
		echo "FAIL: e2fsck -fn $* is not clean:" >&2
		cat "$work/fsck.log" >&2
		return 1
	fi
	echo "e2fsck -fn $*: clean"
}

t0=$SECONDS
bring_up "${create[@]}"
mkfs.ext4 -q -F -b 4096 "$loopdev"
mount "$loopdev" "$mnt"
mounted=1

# A few hundred files of random sizes (most small, some up to 256K) in
# nested directories: a few MB in all.
n=0
for d1 in a b c d; do
	for d2 in 1 2 3; do
		for d3 in x y; do
			dir=$mnt/$d1/$d2/$d3
			mkdir -p "$dir"
			for ((f = 0; f < 13; f++)); do
				if ((RANDOM % 10 == 0)); then
					sz=$((RANDOM * 8))
				else
					sz=$((RANDOM % 20000))
				fi
				head -c "$sz" /dev/urandom >"$dir/f$f"
				n=$((n + 1))
			done
		done
	done
done
head -c 3000000 /dev/urandom >"$mnt/big"
(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
	>"$work/sums"
echo "wrote $((n + 1)) files, $(du -sh "$mnt" | cut -f1)"
umount "$mnt"
mounted=
fsck_clean "after writing"
sync "$img"
shut_down
echo "first pass: $((SECONDS - t0)) s"

bring_up "${reopen[@]}"
fsck_clean "after restart"
mount "$loopdev" "$mnt"
mounted=1
(cd "$mnt" && sha256sum --quiet -c "$work/sums")
echo "all $(wc -l <"$work/sums") checksums match after restart"
umount "$mnt"
mounted=
fsck_clean "after reading"
shut_down
echo "PASS: test-e2e-ext4 ($((SECONDS - t0)) s)"
rc=0
