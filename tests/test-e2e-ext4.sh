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
source "$srcdir/fuse-loop.sh"
requires nbdkit
requires sha256sum
fl_requires
if [ -z "${TIERBD_TEST_FAKE:-}" ]; then
	[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built/set"
fi

work=$(mktemp -d /tmp/tierbd-e2e-XXXXXX)
sock=$work/nbdkit.sock
mnt=$work/mnt

cleanup() {
	fl_down
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
	start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" "$@"
	fl_up "$sock" "$work"
	echo "loop device $FL_DEV"
}

shut_down() {
	fl_down
	stop_pid "$NBDKIT_PID"
	NBDKIT_PID=
	check_sanitizer_log "$work/nbdkit.log"
}

fsck_clean() {
	if ! e2fsck -fn "$FL_DEV" >"$work/fsck.log" 2>&1; then
		echo "FAIL: e2fsck -fn $* is not clean:" >&2
		cat "$work/fsck.log" >&2
		return 1
	fi
	echo "e2fsck -fn $*: clean"
}

t0=$SECONDS
bring_up "${create[@]}"
mkfs.ext4 -q -F -b 4096 "$FL_DEV"
fl_mount "$mnt"

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
fl_umount
fsck_clean "after writing"
sync "$FL_FUSEDIR/disk.img"
shut_down
echo "first pass: $((SECONDS - t0)) s"

bring_up "${reopen[@]}"
fsck_clean "after restart"
fl_mount "$mnt"
(cd "$mnt" && sha256sum --quiet -c "$work/sums")
echo "all $(wc -l <"$work/sums") checksums match after restart"
fl_umount
fsck_clean "after reading"
shut_down
echo "PASS: test-e2e-ext4 ($((SECONDS - t0)) s)"
rc=0
