#!/bin/bash
# deps.sh - install what tierbd needs on Debian 12 (as root, or with
# password-less sudo).  The one list of packages, for serve.sh and
# test.sh.
#
#   scripts/deps.sh build     build and serve (compiler, libraries, nbdkit,
#                             perl for the man pages)
#   scripts/deps.sh test      also everything the tests start (nbdfuse,
#                             e2fsprogs, Ceph RGW, qemu and a guest kernel,
#                             debootstrap for the fresh-root test)
#   scripts/deps.sh bench     also what bench/run-all.sh compares and plots
#                             with (s3backer, nbdkit's S3 plugin, gnuplot)
#
# Installed packages are not fetched again: when all are installed it
# says so and exits at once, with no network.  Otherwise it runs
# `apt-get update` once (a fresh machine has no package lists), finds
# each missing name in them and installs them all with one `apt-get
# install`.  A virtual package (nbdfuse: on Debian 12 libnbd-bin
# provides it) counts as installed when a provider is, and is installed
# through its provider.  Every package of the list is required: a name
# apt does not know, a package that cannot be installed, or one still
# missing afterwards is named with the reason, and the exit status is 1
# (after installing the others).  Exit 2: usage.
#
# Never `apt-cache ... | grep -q` here: grep exits at its first match,
# apt-cache dies of SIGPIPE, and under pipefail the pipeline fails (this
# once made every missing package look unknown, and installed nothing).
# Output is captured in a variable and searched afterwards.
set -uo pipefail

build_pkgs=(
	gcc clang pkg-config meson ninja-build perl
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
	debootstrap
)

bench_pkgs=(
	"${test_pkgs[@]}"
	s3backer nbdkit-plugin-python python3-boto3 gnuplot-nox time
)

case "${1:-build}" in
build) packages=("${build_pkgs[@]}") ;;
test) packages=("${test_pkgs[@]}") ;;
bench) packages=("${bench_pkgs[@]}") ;;
*)
	echo "usage: $0 build|test|bench" >&2
	exit 2
	;;
esac
mode=${1:-build}
export DEBIAN_FRONTEND=noninteractive

say() { echo "deps.sh: $*"; }
err() { echo "deps.sh: $*" >&2; }

# candidate NAME: the version apt would install; empty if none (a
# virtual package, or a name the package lists do not have).
candidate() {
	local out
	out=$(apt-cache policy "$1" 2>/dev/null) || return 0
	out=$(sed -n 's/^ *Candidate: //p' <<<"$out")
	[ "$out" = "(none)" ] || printf '%s' "$out"
}

# providers NAME: the packages that provide a virtual package NAME, one
# a line (from the package lists and the installed packages).
providers() {
	local out
	out=$(apt-cache showpkg "$1" 2>/dev/null) || return 0
	sed -n '/^Reverse Provides:/,$p' <<<"$out" | awk 'NR > 1 { print $1 }'
}

pkg_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# installed NAME: the package, or a package providing it, is installed.
installed() {
	local p
	pkg_installed "$1" && return 0
	for p in $(providers "$1"); do
		pkg_installed "$p" && return 0
	done
	return 1
}

# missing_now ARRAY: the list's packages not installed, into ARRAY.
# (No process substitution: it needs /dev/fd, which a bare chroot lacks.)
missing_now() {
	local -n out=$1
	local p
	out=()
	for p in "${packages[@]}"; do
		installed "$p" || out+=("$p")
	done
}

missing_now missing
if [ ${#missing[@]} -eq 0 ]; then
	say "all ${#packages[@]} packages for '$mode' are installed"
	exit 0
fi
say "${#missing[@]} of ${#packages[@]} packages for '$mode' are missing: ${missing[*]}"

sudo=()
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		err "run as root, or: sudo apt-get update && sudo apt-get install ${missing[*]}"
		exit 1
	fi
fi

apt_get() {
	"${sudo[@]}" apt-get -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 \
		"$@" </dev/null
}

# Once per run, before looking names up: a fresh machine has no package
# lists at all, and old ones may name versions the mirror no longer has.
# apt-get update fails when any one source is unreachable, while the
# others' lists still serve; and it exits 0 when it could fetch nothing
# at all for lack of a network.  What counts is whether apt has lists.
# (Not a candidate of some package: an installed one has a candidate,
# from dpkg's status, without any list.)
has_lists() {
	local dir=
	eval "$(apt-config shell dir Dir::State::Lists/d)"
	compgen -G "${dir:-/var/lib/apt/lists/}*_Packages*" >/dev/null
}
update_rc=0
apt_get update || update_rc=$?
if ! has_lists; then
	err "ERROR: apt-get update brought no package lists: nothing was"
	err "installed (apt said why above: the network, or the sources in"
	err "/etc/apt/sources.list and /etc/apt/sources.list.d/)"
	exit 1
fi
if [ "$update_rc" -ne 0 ]; then
	err "warning: apt-get update failed (see above); going on with the"
	err "package lists this machine has"
fi

# Resolve each missing name to a package with a candidate: itself, or
# for a virtual package its first provider that has one.
install=() unknown=()
for p in "${missing[@]}"; do
	if [ -n "$(candidate "$p")" ]; then
		install+=("$p")
		continue
	fi
	prov=
	for q in $(providers "$p"); do
		if [ -n "$(candidate "$q")" ]; then
			prov=$q
			break
		fi
	done
	if [ -n "$prov" ]; then
		say "$p is a virtual package: installing $prov, which provides it"
		install+=("$prov")
	else
		unknown+=("$p")
	fi
done
status=0
if [ ${#unknown[@]} -gt 0 ]; then
	err "ERROR: no package named: ${unknown[*]}, in this machine's apt sources"
	err "(no candidate in \`apt-cache policy\` after apt-get update, and no"
	err "package provides it).  tierbd's '$mode' needs it; this list is for"
	err "Debian 12 (bookworm) with its main component: check"
	err "/etc/apt/sources.list and /etc/apt/sources.list.d/."
	status=1
fi

# One apt-get for all, so that apt resolves them together.  If apt
# refuses the set (a conflict, a dependency it cannot satisfy), ask it
# about each package alone to name the ones at fault, with its reason,
# and install the others.
if [ ${#install[@]} -gt 0 ] && ! apt_get install -s "${install[@]}" >/dev/null 2>&1; then
	ok=()
	for p in "${install[@]}"; do
		if out=$(apt_get install -s "$p" 2>&1); then
			ok+=("$p")
		else
			err "ERROR: apt cannot install $p:"
			grep -E '^(E:| |.*Depends:|.*Conflicts:|.*Breaks:)' <<<"$out" |
				sed 's/^/deps.sh:   /' >&2
			status=1
		fi
	done
	install=("${ok[@]}")
fi
if [ ${#install[@]} -gt 0 ]; then
	say "installing ${install[*]}"
	if ! apt_get install -y --no-install-recommends "${install[@]}"; then
		err "ERROR: apt-get install failed (its messages are above)"
		status=1
	fi
fi

# What the list needs must be there now, whatever apt said.
missing_now still
late=()
for p in "${still[@]}"; do
	[[ " ${unknown[*]} " == *" $p "* ]] || late+=("$p")
done
if [ ${#late[@]} -gt 0 ]; then
	err "ERROR: not installed after apt-get install: ${late[*]}"
	status=1
fi
if [ "$status" -ne 0 ]; then
	err "ERROR: '$mode' is incomplete, missing: ${still[*]}"
	exit 1
fi
say "all ${#packages[@]} packages for '$mode' are installed"
