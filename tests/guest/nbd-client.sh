# shellcheck shell=sh disable=SC3028 # busybox ash has $RANDOM
# Guest side of tests/test-guest-nbd-client.sh (sourced by
# tests/guest/init): the guest kernel's NBD client (nbd.ko, nbd-client)
# reaches tierbd at 10.0.2.100 through qemu's user network (guestfwd to
# the host's unix socket, no host TCP port):
#   port 10809  a byte pipe (tests/guest/unix-pipe.py): a tierbd crash
#               closes the connection, as for a client on tierbd's port;
#   port 10810  nbdkit -s nbd socket=... (nbdkit's nbd plugin as a
#               proxy): it stays connected and answers errors.
# One boot, three crashes: a file tree written and synced, then a writer
# that creates files with fsync while the host stops tierbd (SIGSTOP, so
# that requests are in flight), kills it (SIGKILL) and restarts it:
#   1. port 10809, nbd-client as README.md gives it: the requests in
#      flight never complete: I/O blocks until nbd-client -d;
#   2. port 10810: every request fails at once;
#   3. port 10809 with nbd-client -t 8: the requests in flight fail
#      after the timeout, without help.
# The recovery is the one README.md gives: nbd-client -d, umount,
# nbd-client again, e2fsck -fy, mount.  Every file whose fsync returned
# before the crash must read back.
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

# connect PORT [OPTION...]: as in README.md (netlink; nbd-client exits
# once the device is set up).
connect() {
	_port=$1
	shift
	/sbin/nbd-client $HOST "$_port" $NBD "$@" >/tmp/nbd-client.log 2>&1 &&
		connected || return 1
	# The new connection must serve a read.
	if ! dd if=$NBD of=/dev/null bs=4096 count=1 iflag=direct 2>/tmp/dd.err; then
		DEAD=$((DEAD + 1))
		info "connected, but reading $NBD fails: $(cat /tmp/dd.err)"
		dmesg | tail -5 | sed 's/^/  kmsg: /'
		cat /tmp/nbd-client.log
		value dead_connections $DEAD
		/sbin/nbd-client -d $NBD >/dev/null 2>&1
		return 1
	fi
}
DEAD=0

# reconnect PORT [OPTION...]: retry while tierbd is down (the host
# restarts it).
reconnect() {
	_i=0
	while [ $_i -lt 90 ]; do
		connect "$@" && { info "reconnected after $_i failed attempts"; return 0; }
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

# crash TAG KMSG EXPECT PORT [OPTION...]: the writer runs, the host
# stops and kills tierbd; what the guest sees (KMSG in dmesg, I/O that
# EXPECT = failed by itself, or hung until nbd-client -d), then the
# recovery, reconnecting with nbd-client ... PORT OPTION...
crash() {
	_tag=$1
	_kmsg=$2
	_expect=$3
	shift 3
	rm -f /tmp/writer
	dmesg -c >/dev/null
	dmesg -n 1 # kernel errors to dmesg only, not among the markers
	writer "$MNT/$_tag/w" &
	_wp=$!
	sleep 1
	echo "GUEST-IO-RUNNING $_tag"
	# The host kills tierbd about 3 s from now.  Does I/O fail by itself?
	# (Hanging: 12 s tell.  Failing: within 25 s, the timeout included.)
	_t=$(up)
	_w=25
	[ "$_expect" = hung ] && _w=12
	if wait_pid $_wp $_w; then
		_state=failed
		info "$_tag: I/O failed by itself: $(cat /tmp/writer)"
	else
		_state=hung
		info "$_tag: I/O still blocked $(since "$_t") s after the crash (D state)"
	fi
	value "state_$_tag" $_state
	if [ $_state = "$_expect" ]; then
		pass "after crash $_tag, I/O $_expect"
	else
		fail "after crash $_tag, I/O $_expect (it $_state)"
	fi
	dmesg | grep -E 'nbd0|EXT4|JBD2|I/O error' | grep -v 'I/O error, dev' |
		awk '!seen[substr($0, index($0, "]") + 1)]++' | head -12 |
		sed 's/^/  kmsg: /'
	if dmesg | grep -qE "$_kmsg"; then
		pass "the kernel logs the crash ($_tag)"
	else
		fail "the kernel logs the crash ($_tag): no '$_kmsg' in dmesg"
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
	if reconnect "$@"; then
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
	# 1: mkfs, files, a crash that closes the connection.
	check "nbd-client connect" connect 10809 || { cat /tmp/nbd-client.log; return; }
	info "$NBD: $(cat /sys/block/nbd0/size) sectors"
	check "mkfs.ext4" /sbin/mke2fs -q -F -t ext4 $NBD || return
	check "mount" mount -t ext4 $NBD $MNT || return
	files $MNT/1/a 24 200000
	echo 3 >/proc/sys/vm/drop_caches
	verify "checksums match before crash 1"
	crash 1 'nbd0: (Receive control failed|Dead connection)' hung 10809 ||
		return
	# 2: through nbdkit's nbd plugin as a proxy.
	check "umount before phase 2" umount $MNT
	check "nbd-client -d before phase 2" /sbin/nbd-client -d $NBD
	check "connect through the nbdkit proxy" connect 10810 || return
	check "mount through the nbdkit proxy" mount -t ext4 $NBD $MNT || return
	files $MNT/2/a 12 200000
	crash 2 'nbd0: Other side returned error' failed 10810 || return
	# 3: the connection closes again, with an 8 s timeout (nbd-client -t).
	check "umount before phase 3" umount $MNT
	check "nbd-client -d before phase 3" /sbin/nbd-client -d $NBD
	check "connect with -t 8" connect 10809 -t 8 || return
	check "mount with -t 8" mount -t ext4 $NBD $MNT || return
	files $MNT/3/a 12 200000
	crash 3 'nbd0: Connection timed out' failed 10809 -t 8 || return
	check "umount at the end" umount $MNT
	check "nbd-client -d at the end" /sbin/nbd-client -d $NBD
}
