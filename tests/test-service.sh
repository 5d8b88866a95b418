#!/bin/bash
# test-service.sh - tierbd-service and the unit tierbd@.service.
#
# tierbd-service turns /etc/tierbd/NAME.conf into nbdkit's command line
# (the unit's ExecStart) and drains the device (ExecStop).  Checked:
#   - `args`: comments, blank lines, blanks around keys and '=', a value
#     with blanks and '#', the service's own keys (port, address,
#     nbdkit-option, socket), the default socket /run/tierbd/NAME.sock;
#   - every malformed file, name or value is refused with the file and
#     line and what to write;
#   - live, with the built plugin: start listens, a write stays dirty
#     (writeback-delay=60000), stop drains it ("drained", 0 B dirty)
#     while nbdkit runs, SIGTERM then stops nbdkit with status 0; stop
#     of a device that is not running says so and succeeds; a start
#     after SIGKILL (the socket file left behind) listens again and
#     reads the data back;
#   - systemd-analyze verify of the unit and an instance (paths pointed
#     at the build tree), where systemd-analyze is installed (the
#     fresh-root test verifies the installed unit).
source "$(dirname "$0")/functions.sh"

requires_harness
# nbdsh under Debian's python3 (a python3 first on PATH lacks nbd).
nbdsh=("$PY" -m nbd)
cli=$TIERBD_BUILD/server/tierbd
unit=$TIERBD_BUILD/systemd/tierbd@.service
[ -f "$TIERBD_BUILD/systemd/tierbd-service" ] || skip "tierbd-service is not built"
[ -x "$cli" ] || skip "$cli is not built"

w=$(mktemp -d /tmp/tierbd-service.XXXXXX)
ok=
on_exit '[ -n "$ok" ] && [ -z "${TIERBD_TEST_KEEP:-}" ] && rm -rf "$w" || echo "kept $w"'
# configure_file does not make it executable in the build tree.
svc=$w/tierbd-service
install -m 755 "$TIERBD_BUILD/systemd/tierbd-service" "$svc"
mkdir "$w/etc"
export TIERBD_CONF_DIR=$w/etc TIERBD_RUN_DIR=$w/run TIERBD_CLI=$cli
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# ---- args ----
cat >"$w/etc/a.conf" <<'CONF'
# a comment

   # an indented comment
cache = /x/cache
size=1G
	store=dir:/x/cold store  
trace=/x/a#b
port=10999
address=127.0.0.2
nbdkit-option=--filter=blocksize
nbdkit-option = -v
CONF
got=$(TIERBD_SERVICE_PLUGIN= "$svc" args a)
want=$(printf '%s\n' nbdkit -f -i 127.0.0.2 -p 10999 --filter=blocksize -v \
	tierbd cache=/x/cache size=1G 'store=dir:/x/cold store' trace=/x/a#b)
[ "$got" = "$want" ] || fail "args a: got
$got
want
$want"
printf 'cache=/x/c\n' >"$w/etc/b.conf"
got=$(TIERBD_SERVICE_PLUGIN= "$svc" args b | tr '\n' ' ')
[ "$got" = "nbdkit -f -U $w/run/b.sock tierbd cache=/x/c " ] ||
	fail "args b: got '$got'"
echo "ok: args"

# ---- refusals ----
# refuse NAME 'FILE CONTENT' EXPECTED-MESSAGE [STATUS]
refuse() {
	local name=$1 content=$2 want=$3 status=${4:-1} rc=0 out
	[ -z "$content" ] || printf '%s\n' "$content" >"$w/etc/$name.conf"
	out=$("$svc" start "$name" 2>&1) || rc=$?
	[ "$rc" = "$status" ] ||
		fail "start $name: exit status $rc, not $status: $out"
	[[ $out == *"$want"* ]] || fail "start $name: '$out' does not say '$want'"
	echo "ok: refused: $out"
}
refuse c1 $'cache=/x\nsize 1G' "c1.conf:2: not key=value"
refuse c2 $'cache=/x\nSize=1G' "c2.conf:2: not key=value"
refuse c3 $'=1G\ncache=/x' "c3.conf:1: not key=value"
refuse c4 $'cache=/x\nport=99999' "port=99999: a TCP port"
refuse c5 'size=1G' "no cache= line"
refuse c6 $'cache=/x\ndrain-timeout=soon' "c6.conf:2: drain-timeout=soon"
refuse c7 $'cache=/x\nsocket=run/x.sock' "socket=run/x.sock: an absolute path"
refuse nope '' "no $w/etc/nope.conf"
refuse ../etc/a '' "a device name is"
rc=0
out=$("$svc" start 2>&1) || rc=$?
[ "$rc" = 2 ] && [[ $out == *usage:* ]] || fail "start without NAME: $rc: $out"

# ---- live ----
mapfile -t envs < <(nbdkit_env)
cat >"$w/etc/live.conf" <<CONF
cache=$w/cache
size=64M
cache-size=16M
store=dir:$w/store
writeback-delay=60000
CONF
sock=$w/run/live.sock
uri="nbd+unix:///?socket=$sock"
# start_live: tierbd-service start in the background; LIVE_PID.
start_live() {
	local i
	env "${envs[@]}" TIERBD_SERVICE_PLUGIN="$TIERBD_PLUGIN" \
		"$svc" start live >>"$w/live.log" 2>&1 </dev/null &
	LIVE_PID=$!
	on_exit "kill_pid $LIVE_PID"
	for ((i = 0; i < 300; i++)); do
		[ -S "$sock" ] && "${nbdsh[@]}" -u "$uri" -c 'pass' 2>/dev/null && return 0
		kill -0 "$LIVE_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$w/live.log" >&2
	fail "start live: not listening on $sock after 30 s"
}
start_live
timeout 60 "${nbdsh[@]}" -u "$uri" -c 'h.pwrite(b"tierbd" * 174763, 0)' -c 'h.flush()'
st=$(timeout 30 "$cli" -C "$w/cache" status)
grep -q 'dirty *[1-9]' <<<"$st" || fail "nothing dirty after a write: $st"
out=$(timeout 300 "$svc" stop live 2>&1) || fail "stop live: $out"
grep -q drained <<<"$out" || fail "stop live did not drain: $out"
st=$(timeout 30 "$cli" -C "$w/cache" status)
grep -q 'dirty *0 B' <<<"$st" || fail "dirty data after stop's drain: $st"
echo "ok: stop drains: $(grep drained <<<"$out")"
stop_pid "$LIVE_PID" 60 || fail "nbdkit did not exit 0 after SIGTERM"
check_sanitizer_log "$w/live.log"
echo "ok: SIGTERM after the drain: exit status 0"
out=$("$svc" stop live 2>&1) || fail "stop of a stopped device failed: $out"
grep -q 'not running' <<<"$out" || fail "stop of a stopped device: $out"
echo "ok: $out"

start_live
kill_pid "$LIVE_PID"
[ -S "$sock" ] || fail "no socket file left by SIGKILL (the case to test)"
start_live
got=$(timeout 60 "${nbdsh[@]}" -u "$uri" -c 'print(h.pread(12, 1048560).decode())')
[ "$got" = tierbdtierbd ] || fail "after SIGKILL and start: read '$got'"
stop_pid "$LIVE_PID" 60 || fail "nbdkit did not exit 0 after SIGTERM"
echo "ok: start after SIGKILL (stale socket) serves the data"

# ---- the unit ----
if ! command -v systemd-analyze >/dev/null; then
	echo "systemd-analyze is not installed: the unit is not verified here"
else
	sed "s|^\(Exec[A-Za-z]*=\)[^ ]*/tierbd-service|\1$svc|" "$unit" \
		>"$w/tierbd@.service"
	grep -q "^ExecStart=$svc start %i$" "$w/tierbd@.service" ||
		fail "no ExecStart=.../tierbd-service start %i in $unit"
	grep -q "^ExecStop=$svc stop %i$" "$w/tierbd@.service" ||
		fail "no ExecStop=.../tierbd-service stop %i in $unit"
	cp "$w/tierbd@.service" "$w/tierbd@t1.service"
	for u in "$w/tierbd@.service" "$w/tierbd@t1.service"; do
		out=$(systemd-analyze verify --man=no "$u" 2>&1) ||
			fail "systemd-analyze verify $u: $out"
		[ -z "$out" ] || fail "systemd-analyze verify $u: $out"
	done
	echo "ok: systemd-analyze verify: the unit and tierbd@t1"
fi
ok=1
