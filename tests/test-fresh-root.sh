#!/bin/bash
# test-fresh-root.sh - the README's commands on a brand-new Debian 12.
#
# What a new user does, as root, in a fresh clone on a fresh machine,
# done in a chroot made by `debootstrap --variant=minbase bookworm`
# (apt and little else: no compiler, no perl, no package lists), with
# this checkout copied in by `git archive` (tracked files, uncommitted
# changes included).  Nothing inside comes from the host's packages.
# Phases, each with its own timeout, stopping at the first failure:
#
#   deps-offline  scripts/deps.sh build with no network (unshare -n) and
#              no package lists: exit status 1, saying why
#   serve      scripts/serve.sh (README's first command) with SOCKET=:
#              deps.sh build from nothing, meson setup, ninja, nbdkit
#              listening; nbdinfo reads the device's size; SIGTERM must
#              stop it with exit status 0
#   deps-test  scripts/deps.sh test (what scripts/test.sh runs first);
#              then nbdfuse, radosgw, qemu-system-x86_64, fio, mkfs.ext4,
#              nbdsh, debootstrap and a kernel image must be there; a
#              required package apt does not know must be an error that
#              names it; a second deps.sh test, with no network, must
#              find everything installed
#   plugin     nbdkit ./build/plugin/nbdkit-tierbd-plugin.so --dump-plugin
#   install    meson install -C build; nbdkit tierbd --dump-plugin by name;
#              man -w / man for nbdkit-tierbd-plugin(1) and tierbd(1)
#              (man-db installed for the check)
#   systemd    tierbd@.service: systemd-analyze verify (systemd installed
#              for it); its ExecStart and ExecStop run by hand on a
#              /etc/tierbd/NAME.conf: serves, drains written data to the
#              store, SIGTERM stops it with exit status 0
#
# Caches, so that a machine pays for the downloads once (under
# $TIERBD_FRESH_CACHE, default /var/cache/tierbd/fresh-root):
#   bookworm-minbase.tar   the debootstrap result (no package lists),
#                          made again after 30 days or for another mirror
#   archives/              .debs, bind-mounted on the chroot's
#                          /var/cache/apt/archives
# A lock there makes runs on one machine take turns.
#
# The root is a fresh directory under /var/tmp; /proc, /sys, /dev,
# /dev/pts and the .deb cache are mounted into it.  On any exit, the
# processes left inside it (found by their root directory) are killed,
# the mounts undone by path, and the directory removed.  Phase outputs
# go to a log directory under /tmp, kept (and named) after a failure.
#
# Skips (77) only when the test cannot run at all: not root, or no
# debootstrap and apt-get cannot install it.
#
# Environment: TIERBD_FRESH_MIRROR (default http://deb.debian.org/debian),
# TIERBD_FRESH_CACHE, TIERBD_FRESH_TMP (default /var/tmp),
# TIERBD_TEST_KEEP=1 keeps the root (unmounted; the next run removes it)
# and the logs.

source "$(dirname "$0")/functions.sh"

src=${TIERBD_SRC:-$(cd "$srcdir/.." && pwd)}
suite=bookworm
mirror=${TIERBD_FRESH_MIRROR:-http://deb.debian.org/debian}
cachedir=${TIERBD_FRESH_CACHE:-/var/cache/tierbd/fresh-root}
tmpbase=${TIERBD_FRESH_TMP:-/var/tmp}
max_age_days=30
t_start=$SECONDS

[ "$(id -u)" = 0 ] || skip "not root (debootstrap, chroot and mount need root)"
for t in chroot mount umount tar flock timeout unshare; do
	requires "$t"
done
if ! command -v debootstrap >/dev/null; then
	[ -z "${TIERBD_SKIP_APT:-}" ] ||
		skip "debootstrap is not installed, and TIERBD_SKIP_APT is set"
	echo "debootstrap is not installed: apt-get install debootstrap"
	{ apt-get -q update && apt-get install -y -q --no-install-recommends \
		debootstrap; } </dev/null >/dev/null 2>&1 ||
		skip "debootstrap is not installed and apt-get cannot install it"
fi

since() { echo $((SECONDS - $1)); }

# ---- cleanup: processes, mounts, directories ----

root= logs= passed=

# Processes whose root directory is DIR: only ours can be there.
pids_in_root() {
	local d r
	for d in /proc/[0-9]*; do
		r=$(readlink "$d/root" 2>/dev/null) || continue
		if [ "$r" = "$1" ] || [ "${r#"$1"/}" != "$r" ]; then
			echo "${d#/proc/}"
		fi
	done
}

# Mount points at or under DIR (from the kernel, not from our list).
mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' \
		/proc/self/mountinfo
}

# release_root DIR: kill what runs in it, undo every mount under it
# (deepest first), and remove it; refuses to remove anything still
# mounted (rm would go through a bind mount of /dev).
release_root() {
	local dir=$1 pids m i
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	for ((i = 0; i < 50; i++)); do
		pids=$(pids_in_root "$dir")
		[ -z "$pids" ] && break
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.2
	done
	for m in $(mounts_under "$dir" | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" ||
			echo "cannot unmount $m" >&2
	done
	m=$(mounts_under "$dir")
	if [ -n "$m" ]; then
		echo "NOT removing $dir: still mounted: $m" >&2
		return 1
	fi
	if [ -n "${TIERBD_TEST_KEEP:-}" ] && [ "$dir" = "$root" ]; then
		echo "kept (TIERBD_TEST_KEEP): $dir"
	else
		rm -rf --one-file-system -- "$dir"
	fi
}

cleanup() {
	local ok=$passed
	release_root "$root" || ok=
	if [ -n "$logs" ]; then
		if [ -z "$ok" ] || [ -n "${TIERBD_TEST_KEEP:-}" ]; then
			echo "phase logs kept in $logs"
		else
			rm -rf "$logs"
		fi
	fi
	[ -n "$ok" ]
}
on_exit 'cleanup || exit 1'

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# show_log FILE: its last lines, indented.
show_log() {
	echo "    --- last 60 lines of $1:"
	tail -n 60 "$1" | sed 's/^/    /'
}

# ---- the base root: debootstrap once per machine ----

mkdir -p "$cachedir/archives"
exec 9>"$cachedir/lock"
if ! flock -n 9; then
	echo "another fresh-root test runs on this machine: waiting (at most 40 min)"
	flock -w 2400 9 || fail "$cachedir/lock still held after 40 min"
fi
# With the lock held, a root left in TMP is from a run that was killed
# (SIGKILL, a meson timeout) before its cleanup: undo it now.
for stale in "$tmpbase"/tierbd-fresh-root.* "$tmpbase"/tierbd-debootstrap.*; do
	[ -d "$stale" ] || continue
	echo "removing $stale, left by a run that was killed"
	release_root "$(realpath "$stale")" || fail "cannot remove $stale"
done

base=$cachedir/$suite-minbase.tar
if [ -f "$base" ] && [ "$(cat "$base.mirror" 2>/dev/null)" = "$mirror" ] &&
	[ -z "$(find "$base" -mtime +"$max_age_days")" ]; then
	echo "base: $base (cached, $(du -m "$base" | cut -f1) MiB)"
else
	t=$SECONDS
	root=$(realpath "$(mktemp -d "$tmpbase/tierbd-debootstrap.XXXXXX")")
	echo "base: debootstrap --variant=minbase $suite $mirror"
	if ! timeout -k 10 1200 debootstrap --variant=minbase "$suite" \
		"$root/root" "$mirror" >"$root/debootstrap.log" 2>&1; then
		show_log "$root/debootstrap.log"
		fail "debootstrap failed (or took over 20 min)"
	fi
	[ -z "$(mounts_under "$root")" ] || fail "debootstrap left mounts in $root"
	# A fresh machine has no package lists, and no .debs.
	rm -rf "$root"/root/var/lib/apt/lists/* \
		"$root"/root/var/cache/apt/archives/*.deb
	tar --numeric-owner -C "$root/root" -cf "$base.tmp" . ||
		fail "cannot write $base.tmp"
	mv "$base.tmp" "$base"
	echo "$mirror" >"$base.mirror"
	release_root "$root" || exit 1
	root=
	echo "base: made in $(since "$t") s, $(du -m "$base" | cut -f1) MiB"
fi

# ---- this root ----

logs=$(mktemp -d /tmp/tierbd-fresh-root-logs.XXXXXX)
root=$(realpath "$(mktemp -d "$tmpbase/tierbd-fresh-root.XXXXXX")")
t=$SECONDS
tar --numeric-owner -C "$root" -xf "$base" || fail "cannot unpack $base"
# The checkout: tracked files as they are in the work tree.
mkdir "$root/src"
git_src() { git -c safe.directory='*' -C "$src" "$@"; }
if git_src rev-parse --git-dir >/dev/null 2>&1; then
	tree=$(git_src stash create 2>/dev/null) || tree=
	git_src archive --format=tar "${tree:-HEAD}" | tar -C "$root/src" -xf - ||
		fail "git archive of $src failed"
	echo "source: git archive of $src at $(git_src rev-parse --short HEAD)${tree:+ with its uncommitted changes}"
else
	tar -C "$src" --exclude=./.git --exclude='./build*' -cf - . |
		tar -C "$root/src" -xf - || fail "cannot copy $src"
	echo "source: $src (not a git checkout: copied without build*/)"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# No daemon a package installs may start in a chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# A throwaway root: dpkg need not fsync every file it unpacks.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/tierbd-test-unsafe-io"

# mount_in TARGET ARGS...: mount into the root (cleanup undoes every
# mount under the root, found in /proc/self/mountinfo).
mount_in() {
	local target=$root/$1
	shift
	mount "$@" "$target" || fail "mount $* $target"
}
mount_in proc -t proc proc
mount_in sys -t sysfs sysfs
mount_in dev --bind /dev
mount_in dev/pts --bind /dev/pts
mount_in var/cache/apt/archives --bind "$cachedir/archives"
echo "root: $root ($(since "$t") s to make)"

# INITRD=No: the kernel package's hook makes no initramfs.  Nothing
# uses it (the guest tests build their own around /boot/vmlinuz-*), and
# on a loaded 2-core machine mkinitramfs took over ten minutes.
env_in=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive
	INITRD=No)

# phase NAME SECONDS SCRIPT: bash -c SCRIPT in the root (in /src), its
# output in $logs/NAME.log; on failure, says why and ends the test.
phase() {
	local name=$1 secs=$2 script=$3 t=$SECONDS rc=0
	timeout -k 10 "$secs" chroot "$root" /usr/bin/env -i "${env_in[@]}" \
		/bin/bash -euo pipefail -c "cd /src; $script" \
		>"$logs/$name.log" 2>&1 </dev/null || rc=$?
	if [ "$rc" -ne 0 ]; then
		show_log "$logs/$name.log"
		[ "$rc" -eq 124 ] && fail "$name: timed out after $secs s"
		fail "$name: exit status $rc after $(since "$t") s"
	fi
	echo "ok   $name ($(since "$t") s)"
}

# deps_lines LOG: what deps.sh said.
deps_lines() {
	grep -a '^deps.sh:' "$1" | sed 's/^/    /' || true
}

# start_bg NAME SOCKET SECONDS ENV... -- COMMAND...: start COMMAND in
# the root in the background and wait until SOCKET (a path in the root)
# is a socket.  Sets BG_PID.
BG_PID=
start_bg() {
	local name=$1 sock=$2 secs=$3 t=$SECONDS i rc envs=()
	shift 3
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	chroot "$root" /usr/bin/env -i "${env_in[@]}" "${envs[@]}" "$@" \
		>"$logs/$name.log" 2>&1 </dev/null &
	BG_PID=$!
	for ((i = 0; i < secs * 10; i++)); do
		[ -S "$root$sock" ] && break
		if ! kill -0 "$BG_PID" 2>/dev/null; then
			rc=0
			wait "$BG_PID" || rc=$?
			deps_lines "$logs/$name.log"
			show_log "$logs/$name.log"
			fail "$name: '$*' exited with status $rc before listening on $sock, after $(since "$t") s"
		fi
		sleep 0.1
	done
	if [ ! -S "$root$sock" ]; then
		show_log "$logs/$name.log"
		fail "$name: no socket $sock after $secs s"
	fi
	echo "ok   $name: '$*' listens on $sock ($(since "$t") s)"
}

# stop_bg NAME: SIGTERM to BG_PID; it must exit 0 within 60 s.
stop_bg() {
	local name=$1 i rc=0
	kill -TERM "$BG_PID"
	for ((i = 0; i < 600; i++)); do
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$BG_PID" 2>/dev/null &&
		fail "$name: still running 60 s after SIGTERM"
	wait "$BG_PID" || rc=$?
	if [ "$rc" -ne 0 ]; then
		show_log "$logs/$name.log"
		fail "$name: exit status $rc after SIGTERM, not 0"
	fi
	echo "ok   $name: SIGTERM, exit status 0"
}

# ---- deps-offline: no network, no package lists ----

t=$SECONDS
rc=0
out=$(timeout 120 unshare -n chroot "$root" /usr/bin/env -i "${env_in[@]}" \
	/src/scripts/deps.sh build 2>&1) || rc=$?
[ "$rc" = 1 ] && grep -q 'ERROR: apt-get update brought no package lists' <<<"$out" ||
	fail "deps.sh build with no network and no package lists: exit status $rc, not 1 with the reason: $out"
echo "ok   deps-offline: exit status 1 ($(since "$t") s): $(grep ERROR <<<"$out")"

# ---- serve: README's first command, on a unix socket ----

# Up to 20 min: the first run on a machine downloads the build packages.
start_bg serve /run/serve.sock 1200 \
	SOCKET=/run/serve.sock TIERBD_DIR=/var/tmp/serve SIZE=256M \
	CACHE_SIZE=64M -- /src/scripts/serve.sh
deps_lines "$logs/serve.log"
phase serve-nbdinfo 60 '
size=$(nbdinfo --size "nbd+unix:///?socket=/run/serve.sock")
echo "nbdinfo --size: $size"
[ "$size" = 268435456 ]'
stop_bg serve

# ---- deps-test: what scripts/test.sh installs first ----

phase deps-test 2400 'scripts/deps.sh test'
deps_lines "$logs/deps-test.log"
phase tools 60 '
missing=
for c in nbdfuse radosgw qemu-system-x86_64 fio mkfs.ext4 nbdinfo nbdsh \
	debootstrap losetup; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$missing /boot/vmlinuz-*"
[ -z "$missing" ] || { echo "missing after deps.sh test:$missing"; exit 1; }'
# A required package apt does not know: an error that names it.
phase deps-unknown 300 '
sed "s/^\tdebootstrap\$/\tdebootstrap no-such-package-tierbd/" \
	scripts/deps.sh >/tmp/deps-unknown.sh
grep -q no-such-package-tierbd /tmp/deps-unknown.sh
rc=0
out=$(bash /tmp/deps-unknown.sh test 2>&1) || rc=$?
echo "$out"
[ "$rc" = 1 ] || { echo "exit status $rc, not 1"; exit 1; }
grep -q "ERROR: no package named: no-such-package-tierbd" <<<"$out"'
# Everything is installed: a rerun must say so, with no network at all.
t=$SECONDS
out=$(timeout 120 unshare -n chroot "$root" /usr/bin/env -i "${env_in[@]}" \
	/src/scripts/deps.sh test 2>&1) ||
	fail "deps.sh test again, without network: $out"
grep -q "packages for 'test' are installed" <<<"$out" ||
	fail "deps.sh test again: unexpected output: $out"
echo "ok   deps-test again, no network ($(since "$t") s): $out"

# ---- the plugin, installed ----

phase plugin 60 '
out=$(nbdkit ./build/plugin/nbdkit-tierbd-plugin.so --dump-plugin)
grep -qx name=tierbd <<<"$out" || { echo "$out"; exit 1; }'
phase install 600 '
meson install -C build
out=$(nbdkit tierbd --dump-plugin)
grep -qx name=tierbd <<<"$out" || { echo "$out"; exit 1; }
tierbd --help
# For the checks only: man(1), and systemd-analyze for the next phase.
apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends man-db systemd
for page in nbdkit-tierbd-plugin tierbd; do
	man -w "$page"
	MANWIDTH=80 man "$page" >"/tmp/$page.txt"
done
grep -q "^ *cache=DIR" /tmp/nbdkit-tierbd-plugin.txt
grep -q "drain" /tmp/tierbd.txt'

# ---- systemd: the unit verified, its commands run by hand ----

unit=/usr/local/lib/systemd/system/tierbd@.service
# With its man: pages checked too; any message is a failure.
phase systemd-verify 120 "
for u in $unit tierbd@t1.service; do
	out=\$(systemd-analyze verify \"\$u\" 2>&1)
	echo \"systemd-analyze verify \$u: \${out:-no messages}\"
	[ -z \"\$out\" ]
done"

exec_start=$(sed -n 's/^ExecStart=//p' "$root$unit")
exec_stop=$(sed -n 's/^ExecStop=//p' "$root$unit")
[ -n "$exec_start" ] && [ -n "$exec_stop" ] ||
	fail "no ExecStart= or ExecStop= in $unit"
mkdir -p "$root/etc/tierbd"
cat >"$root/etc/tierbd/t1.conf" <<'EOF'
# tierbd@t1: a test device
cache=/var/lib/tierbd/t1
size=64M
cache-size=16M
store=dir:/var/lib/tierbd/t1-store

  writeback-delay = 60000
EOF
# The unit's command lines, split into words as systemd does (%i: t1).
# shellcheck disable=SC2086
start_bg unit-start /run/tierbd/t1.sock 60 -- ${exec_start//%i/t1}
phase unit-write 60 '
nbdsh -u "nbd+unix:///?socket=/run/tierbd/t1.sock" \
	-c "h.pwrite(b\"tierbd\" * 174763, 0)" -c "h.flush()"
tierbd -C /var/lib/tierbd/t1 status'
grep -q 'dirty *[1-9]' "$logs/unit-write.log" || {
	show_log "$logs/unit-write.log"
	fail "unit-write: nothing dirty after a write (writeback-delay=60000)"
}
phase unit-stop 300 "${exec_stop//%i/t1}
tierbd -C /var/lib/tierbd/t1 status"
grep -q 'drained' "$logs/unit-stop.log" &&
	grep -q 'dirty *0 B' "$logs/unit-stop.log" || {
	show_log "$logs/unit-stop.log"
	fail "unit-stop: ExecStop did not drain"
}
grep -a 'drained' "$logs/unit-stop.log" | sed 's/^/    /'
stop_bg unit-start

echo "archives: $(du -sm "$cachedir/archives" | cut -f1) MiB of .debs cached"
passed=1
echo "PASS: fresh-root in $(since "$t_start") s"
