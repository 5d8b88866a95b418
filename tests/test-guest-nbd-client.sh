#!/usr/bin/env bash
# The kernel's own NBD client on tierbd, and what a tierbd crash does to
# it.  qemu (TCG) boots a Debian kernel; the guest loads nbd.ko and runs
# nbd-client against 10.0.2.100, which qemu's user network (restrict=on,
# no host TCP port) forwards to tierbd's unix socket:
#   :10809  through tests/guest/unix-pipe.py, a byte pipe: when tierbd
#           dies the connection closes, as for a client on its TCP port;
#   :10810  through `nbdkit -s nbd socket=SOCK` (the recipe's proxy): it
#           stays connected and answers every request with an error.
# In one boot (guest side: tests/guest/nbd-client.sh), for each port:
# mkfs/mount (first only), files written and synced, then a writer
# creating files with fsync; the host kills tierbd with SIGKILL in the
# middle of it, waits 3 s and restarts it on the same socket and cache.
# The guest records what it sees (the kernel's messages, I/O errors or
# I/O blocked until nbd-client -d), recovers as README.md says (nbd-client -d,
# umount, nbd-client, e2fsck -fy, mount), and checks that every file
# whose fsync returned before the crash reads back right.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/functions.sh"
# shellcheck source=guest/lib.sh
source "$srcdir/guest/lib.sh"
requires nbdkit
[ -f "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not built/set"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is missing (unix-pipe.py)"
guest_setup

t0=$SECONDS
work=$(mktemp -d /tmp/tierbd-guest-nbd-XXXXXX)
sock=$work/nbdkit.sock
cache=$work/cache
cleanup() {
	guest_kill_all
	[ -n "$NBDKIT_PID" ] && kill_pid "$NBDKIT_PID"
	if [ "${rc:-1}" = 0 ] && [ -z "${TIERBD_TEST_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "work directory kept: $work (nbdkit.log, console.log)"
	fi
}
on_exit cleanup

guest_initramfs "$work/initrd.gz" "$srcdir/guest/nbd-client.sh" \
	virtio_pci virtio_net nbd ext4 /usr/sbin/nbd-client
echo "initramfs built ($((SECONDS - t0)) s)"

serve() {
	start_nbdkit "$sock" "$work/nbdkit.pid" "$work/nbdkit.log" \
		"$TIERBD_PLUGIN" "cache=$cache" writeback-delay=100 "$@"
	echo "tierbd serving on $sock (pid $NBDKIT_PID)"
}

serve size=1G cache-size=32M "store=dir:$work/store"
# guestfwd's cmd gets the connection as stdin, stdout and stderr: the
# proxies' messages must go elsewhere, or they land in the NBD stream.
fwd1="guestfwd=tcp:10.0.2.100:10809-cmd:/usr/bin/python3 $srcdir/guest/unix-pipe.py $sock"
fwd2="guestfwd=tcp:10.0.2.100:10810-cmd:sh -c 'exec nbdkit -s nbd socket=$sock 2>>$work/proxy.log'"
case $sock in *,*) skip "a comma in $sock would break -netdev" ;; esac

log=$work/console.log
guest_start "$log" crash \
	-netdev "user,id=n0,restrict=on,$fwd1,$fwd2" \
	-device virtio-net-pci,netdev=n0
for tag in 1 2; do
	guest_wait_marker "$log" "GUEST-IO-RUNNING $tag" 400
	sleep 2
	echo "crash $tag: kill -9 tierbd (pid $NBDKIT_PID) during the guest's I/O"
	kill -KILL "$NBDKIT_PID"
	wait "$NBDKIT_PID" || true
	NBDKIT_PID=
	sleep 3
	serve
done
guest_wait "$log" 400 \
	"nbd-client connect" "mkfs.ext4" "mount" \
	"checksums match before crash 1" \
	"nbd-client -d after crash 1" "I/O ends after nbd-client -d (1)" \
	"the kernel logs the crash (1)" "writes fail after crash 1" \
	"umount after crash 1" "reconnect after restart 1" \
	"e2fsck -fy repairs after crash 1" "e2fsck -fn clean after repair 1" \
	"mount after repair 1" "fsynced data intact after crash 1" \
	"connect through the nbdkit proxy" "mount through the nbdkit proxy" \
	"nbd-client -d after crash 2" "I/O ends after nbd-client -d (2)" \
	"the kernel logs the crash (2)" "writes fail after crash 2" \
	"umount after crash 2" "reconnect after restart 2" \
	"e2fsck -fy repairs after crash 2" "e2fsck -fn clean after repair 2" \
	"mount after repair 2" "fsynced data intact after crash 2" \
	"umount at the end" "nbd-client -d at the end"
echo "what the guest saw: connection closed: I/O $(guest_value "$log" state_1);" \
	"nbdkit proxy: I/O $(guest_value "$log" state_2)"
# The proxy answers each request with an error at once: nothing blocks.
if [ "$(guest_value "$log" state_2)" != failed ]; then
	echo "FAIL: through the nbdkit proxy, I/O did not fail by itself" >&2
	exit 1
fi
stop_pid "$NBDKIT_PID" || { echo "FAIL: tierbd did not stop" >&2; exit 1; }
NBDKIT_PID=
check_sanitizer_log "$work/nbdkit.log"
echo "PASS: test-guest-nbd-client ($((SECONDS - t0)) s)"
rc=0
