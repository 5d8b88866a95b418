#!/bin/bash
# deps.sh - install what tierbd needs on Debian 12, as root.
#
#   scripts/deps.sh build     build and serve (compiler, libraries, nbdkit)
#   scripts/deps.sh test      also everything the test suite starts
#                             (nbdfuse, e2fsprogs, Ceph RGW, qemu, fio...)
#
# Packages already installed are not fetched again, so a rerun is quick.
set -euo pipefail

build_pkgs=(
	gcc clang pkg-config meson ninja-build
	nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin python3-libnbd
	liburing-dev liblz4-dev libxxhash-dev libcurl4-openssl-dev libssl-dev
	libbpf-dev bpftool
)
test_pkgs=(
	"${build_pkgs[@]}"
	nbdfuse fuse3 e2fsprogs util-linux kmod curl fio
	libclang-rt-14-dev
	ceph-mon ceph-osd radosgw
	qemu-system-x86 linux-image-amd64 busybox-static nbd-client cpio
)

case "${1:-build}" in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${test_pkgs[@]}") ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
