# shellcheck shell=sh disable=SC3028 # busybox ash has $RANDOM
# Guest side of tests/test-guest-vmdisk.sh (sourced by tests/guest/init):
# the disk is /dev/vda, qemu's virtio-blk on tierbd through qemu's own
# NBD client.  The file tree and its checksum list SUMS live on the disk;
# the host compares the list's own checksum (GUEST-VALUE sums=) across
# boots, so that a list lost or rewritten by the device shows too.
DISK=/dev/vda
MNT=/mnt

# tree DIR TAG: files of random sizes (most small, some up to 256 KiB)
# in nested directories, and a few large ones spanning many chunks.
tree() {
	_n=0
	for d1 in a b c; do
		for d2 in 1 2 3; do
			mkdir -p "$1/$d1/$d2"
			_f=0
			while [ $_f -lt 12 ]; do
				if [ $((RANDOM % 8)) = 0 ]; then
					_sz=$((RANDOM * 8))
				else
					_sz=$((RANDOM % 20000))
				fi
				head -c $_sz /dev/urandom >"$1/$d1/$d2/$2-$_f"
				_f=$((_f + 1))
				_n=$((_n + 1))
			done
		done
	done
	# 3 + 7 + 11 MiB, not chunk aligned: more than the 16 MiB cache.
	for _mb in 3 7 11; do
		head -c $((_mb * 1048576 + RANDOM)) /dev/urandom >"$1/$2-big$_mb"
		_n=$((_n + 1))
	done
	info "wrote $_n files under $1 ($(du -sk "$1" | cut -f1) KiB)"
}

# sums: (re)write SUMS, the sha256 of every file but itself, sorted.
sums() {
	(cd $MNT && find . -type f ! -name SUMS | sort | xargs sha256sum) \
		>/tmp/SUMS && cp /tmp/SUMS $MNT/SUMS
	info "SUMS lists $(wc -l <$MNT/SUMS) files"
}

fsck_clean() {
	if /sbin/e2fsck -fn $DISK >/tmp/fsck.log 2>&1; then
		pass "e2fsck -fn clean $1"
	else
		sed 's/^/  fsck: /' /tmp/fsck.log
		fail "e2fsck -fn clean $1"
	fi
}

verify() {
	if (cd $MNT && sha256sum -c -s SUMS); then
		pass "checksums match $1"
	else
		(cd $MNT && sha256sum -c SUMS 2>&1 | grep -v ': OK$' | head -20)
		fail "checksums match $1"
	fi
	value sums "$(sha256sum <$MNT/SUMS | cut -d' ' -f1)"
}

# Boot 1: a new filesystem and the tree.
step_write() {
	wait_dev $DISK 10 || { fail "no $DISK"; return; }
	info "$DISK: $(cat /sys/block/vda/size) sectors"
	t=$(up)
	check "mkfs.ext4" /sbin/mke2fs -q -F -t ext4 $DISK
	info "mkfs.ext4: $(since "$t") s"
	check "mount" mount -t ext4 $DISK $MNT || return
	t=$(up)
	tree $MNT/t1 one
	sums
	sync
	info "write + sync: $(since "$t") s"
	echo 3 >/proc/sys/vm/drop_caches
	verify "after writing"
	check "umount" umount $MNT
	fsck_clean "after writing"
}

# Boot 2 (restarted tierbd): fsck, the sums, then a second tree and a
# rewritten list (overwrites of chunks already in the store).  While the
# tree is written the host kills tierbd (kill -9) and restarts it: qemu's
# NBD client, with reconnect-delay, reconnects and resends; the guest
# must see no I/O error at all.
step_verify_modify() {
	wait_dev $DISK 10 || { fail "no $DISK"; return; }
	fsck_clean "at boot"
	check "mount" mount -t ext4 $DISK $MNT || return
	verify "after restart"
	rm -rf $MNT/t1/b
	dmesg -c >/dev/null
	echo "GUEST-IO-RUNNING"
	tree $MNT/t2 two
	sums
	sync
	echo "GUEST-INFO: t2 written and synced"
	if dmesg | grep -qiE 'I/O error|EXT4-fs error|EXT4-fs warning'; then
		dmesg | grep -iE 'error|warning' | head -10 | sed 's/^/  kmsg: /'
		fail "no I/O error in the guest across the tierbd crash"
	else
		pass "no I/O error in the guest across the tierbd crash"
	fi
	echo 3 >/proc/sys/vm/drop_caches
	verify "after modifying"
	check "umount" umount $MNT
	fsck_clean "after modifying"
}

# Boot 3 (reopened from the store alone): read only.
step_verify() {
	wait_dev $DISK 10 || { fail "no $DISK"; return; }
	fsck_clean "at boot"
	check "mount" mount -t ext4 -o ro $DISK $MNT || return
	verify "from the store"
	check "umount" umount $MNT
	fsck_clean "after reading"
}
