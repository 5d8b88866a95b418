# shellcheck shell=bash
# tests/guest/lib.sh - qemu TCG guests for the tests, sourced after
# tests/functions.sh by tests/test-guest-*.sh.
#
# A guest is Debian's kernel (linux-image-amd64, which has nbd.ko) with a
# small initramfs built here: busybox-static, the real e2fsprogs and
# nbd-client binaries with the shared libraries ldd names, and the
# kernel modules asked for (with their dependencies).  Its /init
# (tests/guest/init) loads the modules, runs one step of the test's guest
# script (tests/guest/<name>.sh, function step_<step>) named on the kernel
# command line (guest.step=...), prints GUEST-END and powers off.
#
# The guest talks to the host only through its serial console, in
# marker lines:
#   GUEST-PASS: <what>      a check passed
#   GUEST-FAIL: <what>      a check failed (the boot fails)
#   GUEST-INFO: <text>      for the log
#   GUEST-VALUE: <k>=<v>    a value the host reads (guest_value)
#   GUEST-END: <step>       the step ran to its end
# A boot fails on a timeout, a kernel panic or oops, any GUEST-FAIL, a
# missing GUEST-END, or a PASS marker the caller expected and did not
# get.  qemu runs with -accel tcg: KVM is present on our hosts but hangs.
#
#   guest_setup                     find or install qemu, the kernel, the
#                                   tools; skip (77) without qemu/kernel
#   guest_initramfs OUT SCRIPT MODULE|/BINARY...
#                                   build OUT (cpio.gz) for SCRIPT; the
#                                   next boots use it (GUEST_INITRD)
#   guest_start LOG STEP QEMU-ARGS...   boot in the background (GUEST_PID)
#   guest_wait_marker LOG TEXT SECS     wait for a line in the log
#   guest_wait LOG SECS PASS...     wait for the end, then check markers
#   guest_boot LOG STEP SECS PASS... -- QEMU-ARGS...
#                                   start + wait
#   guest_value LOG KEY             a GUEST-VALUE the guest printed
#
# Environment: GUEST_SMP (default 2), GUEST_MEM (default 512),
# GUEST_APPEND (more kernel parameters, e.g. loglevel=7),
# GUEST_KERNEL (a /boot/vmlinuz-* to use), TIERBD_SKIP_APT=1 (install
# nothing; skip if qemu or the kernel is missing).

guest_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_SMP=${GUEST_SMP:-2}
GUEST_MEM=${GUEST_MEM:-512}
GUEST_KERNEL=${GUEST_KERNEL:-}
GUEST_KVER=
GUEST_PID=
_guest_pids=()

# Packages the guests need, and the file that says each one is there.
_guest_pkgs=(qemu-system-x86 linux-image-amd64 busybox-static nbd-client
	e2fsprogs cpio kmod)

_guest_installed() {
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

# _guest_install PKG...: apt-get install what dpkg does not have; an
# update only if the install without one fails (a fresh machine has no
# package lists).  Returns non-zero if anything is still missing.
_guest_install() {
	local p missing=()
	for p in "$@"; do
		_guest_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ -n "${TIERBD_SKIP_APT:-}" ]; then
		echo "guest: missing ${missing[*]}; TIERBD_SKIP_APT is set" >&2
		return 1
	fi
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "guest: missing ${missing[*]} and cannot apt-get" \
			"(not root, or no apt-get)" >&2
		return 1
	fi
	echo "guest: installing ${missing[*]}"
	local -a apt=(apt-get -q -y --no-install-recommends
		-o DPkg::Lock::Timeout=300 install)
	if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" \
		</dev/null >"${TMPDIR:-/tmp}/guest-apt.$$.log" 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get -q \
			-o DPkg::Lock::Timeout=300 update </dev/null \
			>>"${TMPDIR:-/tmp}/guest-apt.$$.log" 2>&1
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" \
			</dev/null >>"${TMPDIR:-/tmp}/guest-apt.$$.log" 2>&1 ||
			tail -5 "${TMPDIR:-/tmp}/guest-apt.$$.log" >&2
	fi
	rm -f "${TMPDIR:-/tmp}/guest-apt.$$.log"
	local rc=0
	for p in "$@"; do
		_guest_installed "$p" || {
			echo "guest: $p is still not installed" >&2
			rc=1
		}
	done
	return $rc
}

# _guest_kernel: the newest /boot/vmlinuz-* that has its modules
# (nbd.ko included) in /lib/modules.
_guest_kernel() {
	local k v
	if [ -n "$GUEST_KERNEL" ]; then
		echo "$GUEST_KERNEL"
		return 0
	fi
	# shellcheck disable=SC2012 # as the recipes do; names have no spaces
	for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -rV); do
		v=${k#/boot/vmlinuz-}
		[ -r "$k" ] && [ -f "/lib/modules/$v/modules.dep" ] &&
			[ -n "$(find "/lib/modules/$v/kernel/drivers/block" \
				-name 'nbd.ko*' 2>/dev/null)" ] &&
			{ echo "$k"; return 0; }
	done
	return 1
}

guest_setup() {
	[ "$(id -u)" = 0 ] || skip "guests need root (apt-get, /boot, modules)"
	if ! _guest_installed qemu-system-x86 ||
		! command -v qemu-system-x86_64 >/dev/null; then
		_guest_install qemu-system-x86 ||
			skip "qemu-system-x86 is not installed and cannot be installed"
	fi
	if ! GUEST_KERNEL=$(_guest_kernel); then
		_guest_install linux-image-amd64 kmod
		GUEST_KERNEL=$(_guest_kernel) ||
			skip "no kernel image with modules (/boot/vmlinuz-*," \
				"/lib/modules/*/.../nbd.ko): linux-image-amd64" \
				"is not installed and cannot be installed"
	fi
	GUEST_KVER=${GUEST_KERNEL#/boot/vmlinuz-}
	# qemu and a kernel are here: anything else missing is a failure.
	_guest_install "${_guest_pkgs[@]}" ||
		{ echo "FAIL: guest tools missing (see above)" >&2; exit 1; }
	local b
	for b in /bin/busybox /sbin/mke2fs /sbin/e2fsck /usr/sbin/nbd-client \
		/sbin/modprobe /usr/bin/cpio; do
		[ -x "$b" ] || { echo "FAIL: $b is missing" >&2; exit 1; }
	done
	echo "guest: kernel $GUEST_KERNEL, $(qemu-system-x86_64 --version | head -1)"
}

# _guest_copy_bin ROOT BINARY: the binary in ROOT/sbin, and the shared
# libraries ldd names at their own paths.
_guest_copy_bin() {
	local r=$1 b=$2 l
	cp -L "$b" "$r/sbin/"
	for l in $(ldd "$b" | grep -o '/[^ ]*'); do
		mkdir -p "$r$(dirname "$l")"
		cp -Ln "$l" "$r$l"
	done
}

# guest_initramfs OUT SCRIPT ITEM...: an initramfs with busybox, the real
# mke2fs and e2fsck, and for each ITEM: a binary (an absolute path, e.g.
# /usr/sbin/nbd-client, copied to /sbin with its libraries) or a kernel
# module (copied with its dependencies, loaded in this order by /init);
# tests/guest/init as /init and SCRIPT as /test.sh.
guest_initramfs() {
	local out=$1 script=$2 m p
	shift 2
	local r
	local -a mods=() bins=(/sbin/mke2fs /sbin/e2fsck)
	for m in "$@"; do
		case $m in
		/*) bins+=("$m") ;;
		*) mods+=("$m") ;;
		esac
	done
	r=$(mktemp -d "${TMPDIR:-/tmp}/tierbd-initramfs-XXXXXX")
	mkdir -p "$r"/{bin,sbin,dev,proc,sys,mnt,tmp,etc,run,lib/modules}
	cp /bin/busybox "$r/bin/"
	for p in $("$r/bin/busybox" --list); do
		[ "$p" = busybox ] || ln -s busybox "$r/bin/$p"
	done
	for p in "${bins[@]}"; do
		_guest_copy_bin "$r" "$p"
	done
	cp /etc/mke2fs.conf "$r/etc/"
	: >"$r/modules.order"
	for m in "${mods[@]}"; do
		modprobe -S "$GUEST_KVER" --show-depends "$m" ||
			{ echo "FAIL: no module $m for $GUEST_KVER" >&2; return 1; }
	done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' |
		while read -r p; do
			case $p in
			*.ko) cp "$p" "$r/lib/modules/" ;;
			*.ko.xz) xz -dc "$p" >"$r/lib/modules/$(basename "$p" .xz)" ;;
			*.ko.zst) zstd -qdc "$p" >"$r/lib/modules/$(basename "$p" .zst)" ;;
			esac
			basename "${p%.xz}" | sed 's/\.zst$//' >>"$r/modules.order"
		done
	cp "$guest_dir/init" "$r/init"
	cp "$script" "$r/test.sh"
	chmod +x "$r/init"
	(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
	rm -rf "$r"
	GUEST_INITRD=$out
}

# guest_start LOG STEP QEMU-ARGS...: boot the guest in the background
# (its console in LOG, GUEST_PID its qemu), running step STEP.
guest_start() {
	local logf=$1 step=$2
	shift 2
	: >"$logf"
	echo "guest: boot, step $step (console: $logf)"
	qemu-system-x86_64 -accel tcg -cpu max -smp "$GUEST_SMP" \
		-m "$GUEST_MEM" -nodefaults -display none -no-reboot \
		-serial "file:$logf" -monitor none \
		-kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
		-append "console=ttyS0 quiet panic=-1 oops=panic no_timer_check rdinit=/init guest.step=$step${GUEST_APPEND:+ $GUEST_APPEND}" \
		"$@" </dev/null >>"$logf.qemu" 2>&1 &
	GUEST_PID=$!
	_guest_pids+=("$GUEST_PID")
	GUEST_T0=$SECONDS
}

# guest_wait_marker LOG TEXT SECS: wait until a console line contains
# TEXT; fail if the guest ends or SECS pass first.
guest_wait_marker() {
	local logf=$1 text=$2 t=$3 i
	for ((i = 0; i < t * 10; i++)); do
		grep -qF -- "$text" "$logf" && return 0
		kill -0 "$GUEST_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -qF -- "$text" "$logf" && return 0
	echo "FAIL: guest: no '$text' on the console within $t s" >&2
	_guest_show "$logf"
	return 1
}

_guest_show() {
	echo "---- guest console ($1) ----" >&2
	tail -n 80 "$1" >&2
	[ -s "$1.qemu" ] && { echo "---- qemu ----" >&2; cat "$1.qemu" >&2; }
	echo "----" >&2
}

# guest_wait LOG SECS PASS...: wait for qemu to exit (killed after SECS:
# a failure), then check the console: no panic/oops, no GUEST-FAIL, a
# GUEST-END, and a "GUEST-PASS: <p>" line for each PASS given.
guest_wait() {
	local logf=$1 t=$2 i rc=0 p
	shift 2
	for ((i = 0; i < t * 10; i++)); do
		kill -0 "$GUEST_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$GUEST_PID" 2>/dev/null; then
		echo "FAIL: guest timed out after $t s (qemu killed)" >&2
		kill -KILL "$GUEST_PID" 2>/dev/null
		rc=1
	fi
	wait "$GUEST_PID" 2>/dev/null
	echo "guest: ran $((SECONDS - GUEST_T0)) s"
	_guest_markers "$logf" | grep -E '^GUEST-(PASS|FAIL|INFO|VALUE)' |
		sed 's/^/  /'
	if grep -qE 'Kernel panic|BUG: |Oops|general protection fault|Call Trace' "$logf"; then
		echo "FAIL: guest kernel panic/oops/BUG" >&2
		rc=1
	fi
	if _guest_markers "$logf" | grep -q '^GUEST-FAIL'; then
		echo "FAIL: the guest reported failures" >&2
		rc=1
	fi
	if ! _guest_markers "$logf" | grep -q '^GUEST-END'; then
		echo "FAIL: the guest did not reach the end of its step" >&2
		rc=1
	fi
	for p in "$@"; do
		_guest_markers "$logf" | grep -qxF "GUEST-PASS: $p" || {
			echo "FAIL: missing marker 'GUEST-PASS: $p'" >&2
			rc=1
		}
	done
	[ $rc = 0 ] || _guest_show "$logf"
	return $rc
}

# guest_boot LOG STEP SECS PASS... -- QEMU-ARGS...
guest_boot() {
	local logf=$1 step=$2 t=$3
	shift 3
	local -a pass=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		pass+=("$1")
		shift
	done
	shift
	guest_start "$logf" "$step" "$@"
	guest_wait "$logf" "$t" "${pass[@]}"
}

# _guest_markers LOG: the marker lines of the console, each from its
# GUEST- on (a kernel message may have been printed in front of it).
_guest_markers() {
	tr -d '\r' <"$1" | sed -n 's/^.*\(GUEST-[A-Z]*: \)/\1/p'
}

# guest_value LOG KEY [N]: the value of the last (or the Nth)
# "GUEST-VALUE: KEY=..." line.
guest_value() {
	if [ -n "${3:-}" ]; then
		_guest_markers "$1" | sed -n "s/^GUEST-VALUE: $2=//p" | sed -n "${3}p"
	else
		_guest_markers "$1" | sed -n "s/^GUEST-VALUE: $2=//p" | tail -1
	fi
}

# guest_kill_all: cleanup path, kill any qemu still running.
guest_kill_all() {
	local p
	for p in "${_guest_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
