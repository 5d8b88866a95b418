#!/bin/bash
# serve.sh - build tierbd and serve one device, on a fresh Debian 12 (root).
#
# Defaults make a 4 GiB device whose cold tier is a local directory and
# whose hot cache is 512 MiB, under /var/tmp/tierbd.  Override with:
#   TIERBD_DIR=/var/lib/tierbd  SIZE=100G  CACHE_SIZE=20G
#   STORE=dir:/mnt/cold  or  STORE=s3://bucket/vol1 (plus s3-* parameters
#   in TIERBD_ARGS, see docs/s3.md)
#   ADDR=127.0.0.1  PORT=10809  (TCP listener)  TIERBD_ARGS="..." (extra)
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

cat <<MSG

tierbd: serving $dir/cache on nbd://$addr:$port (Ctrl-C stops it)
  kernel client:  modprobe nbd && nbd-client $addr $port /dev/nbd0
                  mkfs.ext4 /dev/nbd0 && mount /dev/nbd0 /mnt
  qemu VM disk:   qemu-system-x86_64 ... \\
                    -drive file=nbd://$addr:$port,format=raw,if=virtio
  FUSE (no nbd module): mkdir -p /tmp/nbd && nbdfuse /tmp/nbd nbd://$addr:$port &
                  losetup -f --show /tmp/nbd/nbd   # then mkfs/mount the loop device
  look inside:    nbdinfo nbd://$addr:$port

MSG
# shellcheck disable=SC2086
exec nbdkit -f -i "$addr" -p "$port" "$plugin" "${args[@]}" ${TIERBD_ARGS:-}
