#!/bin/bash
# record-fs.sh - record a block trace of a real filesystem workload on
# tierbd, for bench/policy/replay.
#
# nbdkit serves a new tierbd device (SIZE, chunk 1 MiB, a small cache of
# CACHE_SIZE, a dir store) on a unix socket with trace=FILE; nbdfuse
# exposes it as a file and a loop device attaches it on this host (there
# is no nbd kernel module here; see tests/test-e2e-ext4.sh).  On it:
#   mkfs.ext4, mount;
#   unpack a source tree: a tarball of /usr/include and /usr/share/doc
#     (about 13,000 files, 250 MB; made beforehand on local disk);
#   umount, drop the page cache, mount, read every file back;
#   three times: drop caches, grep -r over a fifth of the tree (the
#     headers a developer searches: include/linux, c++, llvm-14 ...);
#   umount.
# The engine writes one line per request it serves (the trace=FILE
# format: "<us> <R|W|T|Z|F> <offset> <length>"); the result is that
# trace after a "# tierbd-trace size=... chunk=... name=fs-recorded"
# line and "# phase <us> <name>" lines (when each step began).
# Everything is taken down on exit (mount, loop, FUSE, nbdkit).
#
# Usage: bench/policy/record-fs.sh BUILD_DIR OUT_TRACE
#   env: SIZE=1G CACHE_SIZE=64M
# Exit 77 (with a reason) when FUSE, loop devices or root are missing.
set -euo pipefail
build=${1:?usage: record-fs.sh BUILD_DIR OUT_TRACE}
out=${2:?usage: record-fs.sh BUILD_DIR OUT_TRACE}
size=${SIZE:-1G}
cache_size=${CACHE_SIZE:-64M}
plugin=$build/plugin/nbdkit-tierbd-plugin.so

skip() {
	echo "record-fs: SKIP: $*" >&2
	exit 77
}
for c in nbdkit nbdfuse fusermount3 losetup mkfs.ext4 mount umount tar; do
	command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
done
[ "$(id -u)" = 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "/dev/fuse is not available"
[ -e /dev/loop-control ] || skip "loop devices are not available"
[ -f "$plugin" ] || { echo "record-fs: no plugin at $plugin" >&2; exit 1; }
nbdkit "$plugin" --help 2>/dev/null | grep -q '^trace=' ||
	skip "this tierbd build has no trace= parameter"

work=$(mktemp -d /var/tmp/tierbd-record-XXXXXX)
sock=$work/nbdkit.sock
fusedir=$work/fuse
img=$fusedir/disk.img
mnt=$work/mnt
mkdir "$fusedir" "$mnt"
nbdkit_pid= fuse_pid= loopdev= mounted=

take_down() {
	# In order: filesystem, loop device, FUSE, nbdkit.
	if [ -n "$mounted" ]; then
		timeout 60 umount "$mnt" || umount -l "$mnt"
		mounted=
	fi
	if [ -n "$loopdev" ]; then
		losetup -d "$loopdev" || true
		loopdev=
	fi
	if [ -n "$fuse_pid" ]; then
		local i
		for ((i = 0; i < 100; i++)); do
			fusermount3 -u "$fusedir" 2>/dev/null && break
			sleep 0.1
		done
		for ((i = 0; i < 300; i++)); do
			kill -0 "$fuse_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$fuse_pid" 2>/dev/null; then
			fusermount3 -uz "$fusedir" || true
			kill -KILL "$fuse_pid" 2>/dev/null || true
		fi
		wait "$fuse_pid" 2>/dev/null || true
		fuse_pid=
	fi
	if [ -n "$nbdkit_pid" ]; then
		local i
		kill -TERM "$nbdkit_pid" 2>/dev/null || true
		for ((i = 0; i < 600; i++)); do
			kill -0 "$nbdkit_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$nbdkit_pid" 2>/dev/null || true
		wait "$nbdkit_pid" 2>/dev/null || true
		nbdkit_pid=
	fi
}
cleanup() {
	local rc=$?
	set +e
	take_down
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null ||
		echo "record-fs: cannot drop the page cache; the remount alone must do" >&2
}
remount() {
	umount "$mnt"
	mounted=
	drop_caches
	mount "$loopdev" "$mnt"
	mounted=1
}

# The source tree, on local disk (not on the device).
echo "record-fs: making the tarball (/usr/include, /usr/share/doc)"
tar cf "$work/tree.tar" -C /usr include share/doc 2>/dev/null || true
[ -s "$work/tree.tar" ] || { echo "record-fs: tar of /usr failed" >&2; exit 1; }

t0=$SECONDS
# Phase marks, in microseconds from about when the engine's trace clock
# starts (device open, a few ms after nbdkit starts): comment lines
# "# phase <us> <name>" in the trace, for whoever studies it.
start_ns=$(date +%s%N)
phase() {
	echo "# phase $((($(date +%s%N) - start_ns) / 1000)) $1" >>"$work/phases"
}
nbdkit -f --exit-with-parent -U "$sock" -P "$work/nbdkit.pid" "$plugin" \
	size="$size" chunk-size=1M cache="$work/cache" cache-size="$cache_size" \
	store="dir:$work/store" trace="$work/trace" \
	>"$work/nbdkit.log" 2>&1 </dev/null &
nbdkit_pid=$!
for ((i = 0; i < 300; i++)); do
	[ -s "$work/nbdkit.pid" ] && break
	kill -0 "$nbdkit_pid" 2>/dev/null || { cat "$work/nbdkit.log" >&2; exit 1; }
	sleep 0.1
done
nbdfuse -P "$work/nbdfuse.pid" "$img" --unix "$sock" \
	>"$work/nbdfuse.log" 2>&1 </dev/null &
fuse_pid=$!
for ((i = 0; i < 300; i++)); do
	[ -s "$work/nbdfuse.pid" ] && break
	kill -0 "$fuse_pid" 2>/dev/null || { cat "$work/nbdfuse.log" >&2; skip "nbdfuse did not start"; }
	sleep 0.1
done
[ -s "$work/nbdfuse.pid" ] || skip "nbdfuse did not start"
loopdev=$(losetup -f --show "$img") || skip "losetup failed"
echo "record-fs: tierbd size=$size cache-size=$cache_size on $loopdev"

phase mkfs
mkfs.ext4 -q -F -b 4096 "$loopdev"
mount "$loopdev" "$mnt"
mounted=1
echo "record-fs: unpacking $(du -h "$work/tree.tar" | cut -f1) of source tree"
phase untar
tar xf "$work/tree.tar" -C "$mnt"
nfiles=$(find "$mnt" -type f | wc -l)
remount
echo "record-fs: reading back $nfiles files"
phase readback
(cd "$mnt" && find . -type f -print0 | xargs -0 cat >/dev/null)
for round in 1 2 3; do
	remount
	echo "record-fs: grep -r round $round"
	phase "grep$round"
	(cd "$mnt" && grep -r -l -e 'PAGE_SIZE' -e 'copyright' \
		include/linux include/c++ include/x86_64-linux-gnu \
		include/llvm-14 include/openssl include/python3.11 \
		>/dev/null 2>&1 || true)
done
phase umount
umount "$mnt"
mounted=
take_down
echo "record-fs: recorded in $((SECONDS - t0)) s"

bytes=$(numfmt --from=iec "$size")
{
	echo "# tierbd-trace size=$bytes chunk=1048576 name=fs-recorded"
	cat "$work/phases"
	cat "$work/trace"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "record-fs: $(grep -vc '^#' "$out") requests in $out"
