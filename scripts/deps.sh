#!/bin/bash
# deps.sh - install what tierbd needs on Debian 12 (as root, or with
# password-less sudo).  The one list of packages, for serve.sh and
# test.sh.
#
#   scripts/deps.sh build     build and serve (compiler, libraries, nbdkit)
#   scripts/deps.sh test      also everything the tests start (nbdfuse,
#                             e2fsprogs, Ceph RGW, qemu and a guest kernel)
#   scripts/deps.sh bench     also what bench/run-all.sh compares and plots
#                             with (s3backer, nbdkit's S3 plugin, gnuplot)
#
# Installed packages are not fetched again, so a rerun is quick and needs
# no network.  nbdfuse is a virtual package on Debian 12 (libnbd-bin
# provides it): a name counts as installed when a provider is.  Names
# this release does not know are reported and skipped.
set -uo pipefail

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
	ceph-mon ceph-osd radosgw openssl
	qemu-system-x86 linux-image-amd64 busybox-static nbd-client cpio
)

bench_pkgs=(
	"${test_pkgs[@]}"
	s3backer nbdkit-plugin-python python3-boto3 gnuplot-nox time
)

case "${1:-build}" in
build) packages=("${build_pkgs[@]}") ;;
test) packages=("${test_pkgs[@]}") ;;
bench) packages=("${bench_pkgs[@]}") ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive

has_candidate() {
	apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
}

# providers NAME: the packages that provide a virtual package NAME.
providers() {
	apt-cache showpkg "$1" 2>/dev/null |
		sed -n '/^Reverse Provides:/,$p' | awk 'NR > 1 { print $1 }'
}

installed() {
	local p
	dpkg -s "$1" >/dev/null 2>&1 && return 0
	for p in $(providers "$1"); do
		dpkg -s "$p" >/dev/null 2>&1 && return 0
	done
	return 1
}

missing=() install=() unknown=() updated= sudo=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps.sh: all ${#packages[@]} packages are installed"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		echo "deps.sh: missing packages: ${missing[*]}" >&2
		echo "deps.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
fi
# Without package lists (a fresh machine) nothing has a candidate:
# update first.  Otherwise a name with no candidate is no package on
# this release, and needs no update to find out.
if ! has_candidate coreutils; then
	"${sudo[@]}" apt-get update -q </dev/null || exit 1
	updated=1
fi
for p in "${missing[@]}"; do
	if has_candidate "$p" || [ -n "$(providers "$p")" ]; then
		install+=("$p")
	else
		unknown+=("$p")
	fi
done
if [ ${#unknown[@]} -gt 0 ]; then
	echo "deps.sh: no such packages on this release, skipped: ${unknown[*]}"
fi
[ ${#install[@]} -eq 0 ] && exit 0
if [ -z "$updated" ]; then
	"${sudo[@]}" apt-get update -q </dev/null || exit 1
fi
echo "deps.sh: installing ${install[*]}"
"${sudo[@]}" apt-get install -y -q --no-install-recommends \
	-o Dpkg::Use-Pty=0 "${install[@]}" </dev/null
