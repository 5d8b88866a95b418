# shellcheck shell=sh disable=SC3028 # busybox ash has $RANDOM
# Guest side of tests/test-guest-nbd-client.sh (sourced by
# tests/guest/init): the guest kernel's NBD client (nbd.ko, nbd-client)
# reaches tierbd at 10.0.2.100 through qemu's user network (guestfwd to
# the host's unix socket, no host TCP port):
#   port 10809  a byte pipe (tests/guest/unix-pipe.py): a tierbd crash
#               closes the connection, as for a client on tierbd's port;
#   port 10810  nbdkit -s nbd socket=... (nbdkit's nbd plugin as a
#               proxy): it stays connected and answers errors.
# One boot, two crashes: for each port, a file tree written and synced,
# then a writer that creates files with fsync while the host kills
# tierbd (kill -9) and restarts it.  The recovery is the one README.md
# gives: nbd-client -d, umount, nbd-client again, e2fsck -fy, mount.
# Every file whose fsync returned before the crash must read back.
NBD=/dev/nbd0
MNT=/mnt
HOST=10.0.2.100
SUMS=/tmp/durable.sums # in guest RAM: the files that must survive
: >$SUMS

net_up() {
	_i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $_i -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	ip link set lo up
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	wait_dev $NBD 10
}

connected() {
	[ "$(cat /sys/block/nbd0/size)" != 0 ]
}

# connect PORT: as in README.md (netlink; nbd-client exits once the
# device is set up).
connect() {
	/sbin/nbd-client $HOST "$1" $NBD >/tmp/nbd-client.log 2>&1 && connected
}

# reconnect PORT: retry while tierbd is down (the host restarts it).
reconnect() {
	_i=0
	while [ $_i -lt 90 ]; do
		connect "$1" && { info "reconnected after $_i failed attempts"; return 0; }
		sleep 1
		_i=$((_i + 1))
	done
	cat /tmp/nbd-client.log
	return 1
}

# files DIR N SIZE: N random files, then sync; their sums go in SUMS.
files() {
	mkdir -p "$1"
	_f=0
	while [ $_f -lt "$2" ]; do
		head -c $(($3 + RANDOM)) /dev/urandom >"$1/f$_f"
		_f=$((_f + 1))
	done
	sync
	sha256sum "$1"/* >>$SUMS
}

verify() {
	if sha256sum -c -s $SUMS; then
		pass "$1"
	else
		sha256sum -c $SUMS 2>&1 | grep -v ': OK$' | head -20
		fail "$1"
	fi
	info "$(wc -l <$SUMS) files checked"
}

# writer DIR: files of 256 KiB+ written with fsync (dd conv=fsync, then
# an fsync of the directory); each one whose fsyncs returned goes in
# SUMS.  Stops at the first error.  Prints WRITER-DONE <n> <status>.
writer() {
	mkdir -p "$1"
	sync
	_i=0
	while [ $_i -lt 100000 ]; do
		if ! dd if=/dev/urandom of="$1/w$_i" bs=64k count=4 conv=fsync \
			2>/tmp/dd.err; then
			echo "WRITER-DONE $_i error: $(tail -1 /tmp/dd.err)" >/tmp/writer
			return
		fi
		if ! sync "$1" 2>/tmp/dd.err; then
			echo "WRITER-DONE $_i error: sync: $(tail -1 /tmp/dd.err)" >/tmp/writer
			return
		fi
		sha256sum "$1/w$_i" >>$SUMS
		_i=$((_i + 1))
	done
	echo "WRITER-DONE $_i no error" >/tmp/writer
}

# wait_pid PID SECS: wait for PID to exit; 0 if it did.
wait_pid() {
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	! kill -0 "$1" 2>/dev/null
}

# crash PORT TAG KMSG: the writer runs, the host kills tierbd; what the guest
# sees, then the recovery.
crash() {
	_port=$1
	_tag=$2
	rm -f /tmp/writer
	dmesg -c >/dev/null
	dmesg -n 1 # kernel errors to dmesg only, not among the markers
	writer "$MNT/$_tag/w" &
	_wp=$!
	sleep 1
	echo "GUEST-IO-RUNNING $_tag"
	# The host kills tierbd about 2 s from now.  Does I/O fail by itself?
	if wait_pid $_wp 25; then
		value "state_$_tag" "failed"
		info "$_tag: without help, I/O failed: $(cat /tmp/writer)"
	else
		value "state_$_tag" "hung"
		info "$_tag: I/O still blocked 25 s after the crash (D state)"
	fi
	dmesg | grep -E 'nbd0|EXT4|JBD2|I/O error' | grep -v 'I/O error, dev' |
		awk '!seen[substr($0, index($0, "]") + 1)]++' | head -12 |
		sed 's/^/  kmsg: /'
	if dmesg | grep -qE "$3"; then
		pass "the kernel logs the crash ($_tag)"
	else
		fail "the kernel logs the crash ($_tag): no '$3' in dmesg"
	fi
	_t=$(up)
	check "nbd-client -d after crash $_tag" /sbin/nbd-client -d $NBD
	if wait_pid $_wp 15; then
		pass "I/O ends after nbd-client -d ($_tag)"
	else
		fail "I/O still blocked 15 s after nbd-client -d ($_tag)"
		return 1
	fi
	info "$_tag: writer: $(cat /tmp/writer), $(since "$_t") s after nbd-client -d"
	case $(cat /tmp/writer) in
	*" error: "*) pass "writes fail after crash $_tag" ;;
	*) fail "writes fail after crash $_tag (writer: $(cat /tmp/writer))" ;;
	esac
	# Whether ext4 has gone read-only yet depends on what failed (data
	# only, or its journal too): recorded, not asserted.
	if touch "$MNT/$_tag/after" 2>/tmp/touch.err; then
		info "$_tag: the filesystem still takes writes (into the page cache)"
	else
		info "$_tag: touch: $(cat /tmp/touch.err)"
	fi
	grep " $MNT " /proc/mounts | sed "s/^/  mount after crash $_tag: /"
	check "umount after crash $_tag" umount $MNT || return 1
	dmesg -n 4
	if reconnect "$_port"; then
		pass "reconnect after restart $_tag"
	else
		fail "reconnect after restart $_tag"
		return 1
	fi
	/sbin/e2fsck -fy $NBD >/tmp/fsck.log 2>&1
	_rc=$?
	info "$_tag: e2fsck -fy exit $_rc: $(grep -c . /tmp/fsck.log) lines"
	grep -iE 'fix|recover|clear|wrong|orphan|journal' /tmp/fsck.log |
		sort | uniq -c | head -8 | sed 's/^/  fsck: /'
	if [ $_rc -le 1 ]; then
		pass "e2fsck -fy repairs after crash $_tag"
	else
		tail -20 /tmp/fsck.log
		fail "e2fsck -fy repairs after crash $_tag (exit $_rc)"
	fi
	if /sbin/e2fsck -fn $NBD >/tmp/fsck.log 2>&1; then
		pass "e2fsck -fn clean after repair $_tag"
	else
		tail -20 /tmp/fsck.log
		fail "e2fsck -fn clean after repair $_tag"
	fi
	check "mount after repair $_tag" mount -t ext4 $NBD $MNT || return 1
	verify "fsynced data intact after crash $_tag"
}

step_crash() {
	net_up || { fail "no $NBD"; return; }
	# 1: mkfs, files, crash with the connection closed.
	check "nbd-client connect" connect 10809 || { cat /tmp/nbd-client.log; return; }
	info "$NBD: $(cat /sys/block/nbd0/size) sectors"
	check "mkfs.ext4" /sbin/mke2fs -q -F -t ext4 $NBD || return
	check "mount" mount -t ext4 $NBD $MNT || return
	files $MNT/1/a 24 200000
	echo 3 >/proc/sys/vm/drop_caches
	verify "checksums match before crash 1"
	crash 10809 1 'nbd0: (Receive control failed|Dead connection)' || return
	# 2: the same through nbdkit's nbd plugin as a proxy.
	check "umount before phase 2" umount $MNT
	check "nbd-client -d before phase 2" /sbin/nbd-client -d $NBD
	check "connect through the nbdkit proxy" connect 10810 || return
	check "mount through the nbdkit proxy" mount -t ext4 $NBD $MNT || return
	files $MNT/2/a 12 200000
	crash 10810 2 'nbd0: Other side returned error' || return
	check "umount at the end" umount $MNT
	check "nbd-client -d at the end" /sbin/nbd-client -d $NBD
}
