#!/bin/bash
# serve.sh - build tierbd and serve one device, on a fresh Debian 12 (root).
#
# Defaults make a 4 GiB device whose cold tier is a local directory and
# whose hot cache is 512 MiB, under /var/tmp/tierbd.  Override with:
#   TIERBD_DIR=/var/lib/tierbd  SIZE=100G  CACHE_SIZE=20G
#   STORE=dir:/mnt/cold  or  STORE=s3://bucket/vol1 (plus s3-* parameters
#   in TIERBD_ARGS, see docs/s3.md)
#   ADDR=127.0.0.1  PORT=10809  (TCP listener)  TIERBD_ARGS="..." (extra)
#   SOCKET=/run/tierbd.sock  (a unix socket instead of the TCP listener)
# Stop with Ctrl-C: the device closes cleanly and keeps its data; run
# again to serve it again.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${TIERBD_DIR:-/var/tmp/tierbd}
size=${SIZE:-4G}
cache_size=${CACHE_SIZE:-512M}
store=${STORE:-dir:$dir/store}
addr=${ADDR:-127.0.0.1}
port=${PORT:-10809}
sock=${SOCKET:-}

"$src/scripts/deps.sh" build
if [ ! -f "$src/build/build.ninja" ]; then
	meson setup "$src/build" "$src" --buildtype=release
fi
ninja -C "$src/build"
plugin=$src/build/plugin/nbdkit-tierbd-plugin.so

# Creating needs size/cache-size/store; an existing device has them stored.
args=(cache="$dir/cache")
if [ ! -e "$dir/cache/map" ]; then
	mkdir -p "$dir"
	args+=(size="$size" cache-size="$cache_size" store="$store")
fi

if [ -n "$sock" ]; then
	listen=(-U "$sock")
	uri="nbd+unix:///?socket=$sock"
	kernel="nbd-client -unix $sock /dev/nbd0"
	qemu="file=nbd:unix:$sock,format=raw,if=virtio"
else
	listen=(-i "$addr" -p "$port")
	uri="nbd://$addr:$port"
	kernel="nbd-client $addr $port /dev/nbd0"
	qemu="file=$uri,format=raw,if=virtio"
fi

cat <<MSG

tierbd: serving $dir/cache on $uri (Ctrl-C stops it)
  kernel client:  modprobe nbd && $kernel
                  mkfs.ext4 /dev/nbd0 && mount /dev/nbd0 /mnt
  qemu VM disk:   qemu-system-x86_64 ... -drive $qemu
  FUSE (no nbd module): mkdir -p /tmp/nbd && nbdfuse /tmp/nbd '$uri' &
                  losetup -f --show /tmp/nbd/nbd   # then mkfs/mount the loop device
  look inside:    nbdinfo '$uri'

MSG
# shellcheck disable=SC2086
exec nbdkit -f "${listen[@]}" "$plugin" "${args[@]}" ${TIERBD_ARGS:-}
