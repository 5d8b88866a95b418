#!/usr/bin/env bash
# tierbd as a VM disk: qemu (TCG) boots a Debian kernel whose virtio-blk
# disk is tierbd, reached by qemu's own NBD client on a unix socket
# (-drive file=nbd:unix:SOCK,format=raw,if=virtio).  Three boots:
#
#   1. mkfs.ext4, mount, a tree of ~110 files (a few bytes to 11 MiB,
#      more than the 16 MiB cache) with their sha256 list SUMS on the
#      disk, sync, umount, e2fsck -fn clean, power off;
#   2. tierbd restarted on its cache: e2fsck clean, sums match; a second
#      tree, part of the first removed, SUMS rewritten, umount, fsck.
#      This boot's drive has reconnect-delay=60 (README.md): tierbd is
#      killed (SIGKILL) while the tree is written and restarted 3 s
#      later; the guest must see no I/O error, and lose nothing;
#   3. tierbd stopped cleanly, its cache directory deleted, restarted
#      from the store alone (it reopens at its last commit): e2fsck clean,
#      sums match (read only), e2fsck clean again.
#
# tierbd runs with flush=remote, so every flush the guest sends (sync,
# journal commits, qemu's flush at exit) returns only once a commit in
# the store holds it: nothing the guest synced can be missing in step 3.
# The list's own sha256 (GUEST-VALUE sums=) must be the one written.
# Guest side: tests/guest/vmdisk.sh; machinery: tests/guest/lib.sh.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/functions.sh"
# shellcheck source=guest/lib.sh
source "$srcdir/guest/lib.sh"
requires nbdkit
[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built/set"
guest_setup

t0=$SECONDS
work=$(mktemp -d /tmp/tierbd-guest-vmdisk-XXXXXX)
sock=$work/nbdkit.sock
cache=$work/cache
store=$work/store
cleanup() {
	guest_kill_all
	[ -n "$NBDKIT_PID" ] && kill_pid "$NBDKIT_PID"
	if [ "${rc:-1}" = 0 ] && [ -z "${TIERBD_TEST_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "work directory kept: $work (nbdkit.log, boot*.log)"
	fi
}
on_exit cleanup

guest_initramfs "$work/initrd.gz" "$srcdir/guest/vmdisk.sh" \
	virtio_pci virtio_blk ext4
echo "initramfs built ($((SECONDS - t0)) s)"

run=(writeback-delay=100 flush=remote)
drive=(-drive "file=nbd:unix:$sock,format=raw,if=virtio,discard=unmap")

serve() {
	start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" \
		"$TIERBD_PLUGIN" "cache=$cache" "$@" "${run[@]}"
	echo "tierbd serving on $sock (pid $NBDKIT_PID)"
}
stop() {
	stop_pid "$NBDKIT_PID" || { echo "FAIL: tierbd did not stop" >&2; exit 1; }
	NBDKIT_PID=
	check_sanitizer_log "$work/nbdkit.log"
}

# 1. a new device, a new filesystem, the tree.
serve size=1G cache-size=16M "store=dir:$store"
guest_boot "$work/boot1.log" write 300 \
	"mkfs.ext4" "mount" "checksums match after writing" "umount" \
	"e2fsck -fn clean after writing" -- "${drive[@]}"
sums=$(guest_value "$work/boot1.log" sums)
[ -n "$sums" ] || { echo "FAIL: no sums value from boot 1" >&2; exit 1; }
stop

# 2. restart on the cache directory.  The drive in the form README.md
#    gives for production, with reconnect-delay: tierbd is killed while
#    the guest writes, and restarted 3 s later.
serve
guest_start "$work/boot2.log" verify_modify \
	-drive "driver=raw,if=virtio,discard=unmap,file.driver=nbd,file.server.type=unix,file.server.path=$sock,file.reconnect-delay=60"
guest_wait_marker "$work/boot2.log" GUEST-IO-RUNNING 300
sleep 2
if grep -q "t2 written" "$work/boot2.log"; then
	echo "FAIL: the guest finished writing before the kill" >&2
	exit 1
fi
echo "kill -9 tierbd (pid $NBDKIT_PID) while the guest writes"
kill -KILL "$NBDKIT_PID"
wait "$NBDKIT_PID" 2>/dev/null || true
NBDKIT_PID=
sleep 3
serve
guest_wait "$work/boot2.log" 300 \
	"e2fsck -fn clean at boot" "mount" "checksums match after restart" \
	"no I/O error in the guest across the tierbd crash" \
	"checksums match after modifying" "umount" \
	"e2fsck -fn clean after modifying"
if [ "$(guest_value "$work/boot2.log" sums 1)" != "$sums" ]; then
	echo "FAIL: boot 2 read another SUMS list than boot 1 wrote" >&2
	exit 1
fi
sums=$(guest_value "$work/boot2.log" sums)
stop
objects=$(find "$store" -type f | wc -l)
echo "store: $objects objects, $(du -sh "$store" | cut -f1)"

# 3. the cache directory lost: reopen from the store alone.
rm -rf "$cache"
serve cache-size=16M "store=dir:$store"
grep -q "reopened the device from store" "$work/nbdkit.log" || {
	echo "FAIL: tierbd did not say it reopened from the store:" >&2
	cat "$work/nbdkit.log" >&2
	exit 1
}
grep "reopened the device from store" "$work/nbdkit.log"
guest_boot "$work/boot3.log" verify 300 \
	"e2fsck -fn clean at boot" "mount" "checksums match from the store" \
	"umount" "e2fsck -fn clean after reading" -- "${drive[@]}"
if [ "$(guest_value "$work/boot3.log" sums)" != "$sums" ]; then
	echo "FAIL: boot 3 read another SUMS list than boot 2 wrote" >&2
	exit 1
fi
stop
echo "PASS: test-guest-vmdisk ($((SECONDS - t0)) s)"
rc=0
