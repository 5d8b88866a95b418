# tests/fuse-loop.sh - attach an NBD export as a block device on a host
# without the nbd module: nbdfuse exposes it as a file, a loop device
# sits on the file.  Sourced after functions.sh.  One attachment at a
# time; state in FL_* variables.
#
#   fl_up SOCK WORKDIR      nbdfuse + losetup; sets FL_DEV (/dev/loopN)
#   fl_down                 umount (lazily if the device is dead), loop
#                           detach, FUSE unmount, nbdfuse gone
#   fl_mount MNT / fl_umount
FL_DEV= FL_MNT= FL_FUSE_PID= FL_FUSEDIR= FL_WORK=

fl_requires() {
	requires nbdfuse "package nbdfuse / libnbd-bin"
	requires fusermount3 "package fuse3"
	requires losetup
	requires mkfs.ext4 "package e2fsprogs"
	requires e2fsck "package e2fsprogs"
	[ "$(id -u)" = 0 ] || skip "needs root (losetup, mount)"
	[ -c /dev/fuse ] || skip "/dev/fuse is not available"
	[ -e /dev/loop-control ] || skip "loop devices are not available"
}

fl_up() {
	local sock=$1 i
	FL_WORK=$2
	FL_FUSEDIR=$FL_WORK/fuse
	mkdir -p "$FL_FUSEDIR"
	rm -f "$FL_WORK/nbdfuse.pid"
	nbdfuse -P "$FL_WORK/nbdfuse.pid" "$FL_FUSEDIR/disk.img" \
		--unix "$sock" >>"$FL_WORK/nbdfuse.log" 2>&1 </dev/null &
	FL_FUSE_PID=$!
	for ((i = 0; i < 300; i++)); do
		[ -s "$FL_WORK/nbdfuse.pid" ] && break
		kill -0 "$FL_FUSE_PID" 2>/dev/null ||
			{ cat "$FL_WORK/nbdfuse.log" >&2; return 1; }
		sleep 0.1
	done
	[ -s "$FL_WORK/nbdfuse.pid" ] ||
		{ echo "nbdfuse did not start" >&2; return 1; }
	FL_DEV=$(losetup -f --show "$FL_FUSEDIR/disk.img")
}

fl_mount() {
	FL_MNT=$1
	mkdir -p "$FL_MNT"
	mount "$FL_DEV" "$FL_MNT"
}

fl_umount() {
	[ -n "$FL_MNT" ] || return 0
	timeout 60 umount "$FL_MNT" || umount -l "$FL_MNT"
	FL_MNT=
}

fl_down() {
	local i
	if [ -n "$FL_MNT" ]; then
		# A dead server leaves writeback that cannot finish: detach.
		timeout 20 umount "$FL_MNT" 2>/dev/null || umount -l "$FL_MNT"
		FL_MNT=
	fi
	if [ -n "$FL_DEV" ]; then
		losetup -d "$FL_DEV" 2>/dev/null
		FL_DEV=
	fi
	if [ -n "$FL_FUSE_PID" ]; then
		for ((i = 0; i < 100; i++)); do
			fusermount3 -u "$FL_FUSEDIR" 2>/dev/null && break
			sleep 0.1
		done
		for ((i = 0; i < 100; i++)); do
			kill -0 "$FL_FUSE_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$FL_FUSE_PID" 2>/dev/null; then
			fusermount3 -uz "$FL_FUSEDIR" 2>/dev/null
			kill -KILL "$FL_FUSE_PID" 2>/dev/null
		fi
		wait "$FL_FUSE_PID" 2>/dev/null || true
		FL_FUSE_PID=
	fi
}
