#!/bin/bash
# test-man-params.sh - the man pages name every parameter and command.
#
# nbdkit-tierbd-plugin(1) (man/nbdkit-tierbd-plugin.pod) must have an
# "=item B<key=>..." for each parameter that `nbdkit PLUGIN --help`
# lists (plugin/tierbd.c, tierbd_config_help), and none for a parameter
# that is gone.  tierbd(1) (man/tierbd.pod) must have an item for each
# command and option of `tierbd --help`.  Each difference is named,
# with where to add or remove it.
source "$(dirname "$0")/functions.sh"

top=$(cd "$srcdir/.." && pwd)
requires nbdkit
[ -n "${TIERBD_PLUGIN:-}" ] || skip "TIERBD_PLUGIN is not set (run through meson test)"
[ -f "$TIERBD_PLUGIN" ] || skip "plugin $TIERBD_PLUGIN is not built"
cli=${TIERBD_BUILD:+$TIERBD_BUILD/server/tierbd}
[ -x "$cli" ] || skip "tierbd is not built (TIERBD_BUILD/server/tierbd)"

bad=0
# compare WHAT SOURCE-LIST POD POD-LIST: lists are one name a line.
compare() {
	local what=$1 from=$2 pod=$3 in_pod=$4 missing extra
	missing=$(comm -23 <(sort -u <<<"$from") <(sort -u <<<"$in_pod"))
	extra=$(comm -13 <(sort -u <<<"$from") <(sort -u <<<"$in_pod"))
	if [ -n "$missing" ]; then
		echo "FAIL: $what not in $pod (add an =item for each):" $missing
		bad=1
	fi
	if [ -n "$extra" ]; then
		echo "FAIL: $pod has $what that --help does not list (gone? remove their =item):" $extra
		bad=1
	fi
	echo "$what: $(wc -l <<<"$from") in --help, $(sort -u <<<"$in_pod" | wc -l) in $pod"
}

# ---- the plugin's parameters ----
pod=$top/man/nbdkit-tierbd-plugin.pod
help=$(nbdkit_run "$TIERBD_PLUGIN" --help 2>&1) ||
	{ echo "$help"; echo "FAIL: nbdkit PLUGIN --help failed"; exit 1; }
params=$(sed -n '/^plugin: /,$p' <<<"$help" | sed -n 's/^\([a-z][a-z0-9-]*\)=.*/\1/p')
[ "$(wc -l <<<"$params")" -ge 10 ] ||
	{ echo "$help"; echo "FAIL: no parameter list in nbdkit PLUGIN --help"; exit 1; }
documented=$(sed -n '/^=head1 PARAMETERS/,/^=head1 /s/^=item B<\([a-z][a-z0-9-]*\)=.*/\1/p' "$pod")
compare "plugin parameters" "$params" "$pod" "$documented"

# ---- the tierbd command ----
pod=$top/man/tierbd.pod
help=$("$cli" --help)
cmds=$(sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p' <<<"$help")
documented=$(sed -n '/^=head1 COMMANDS/,/^=head1 /s/^=item B<\([a-z][a-z]*\)>.*/\1/p' "$pod")
compare "tierbd commands" "$cmds" "$pod" "$documented"
opts=$(sed -n '/^options:/,/^$/p' <<<"$help" | grep -o -- '--[a-z][a-z-]*' || true)
documented=$(sed -n '/^=head1 OPTIONS/,/^=head1 /p' "$pod" |
	grep -o -- 'B<--[a-z][a-z-]*' | sed 's/^B<//' || true)
# Every option of --help documented (the page may have more: -d, -n).
compare "tierbd options" "$opts" "$pod" "$(comm -12 <(sort -u <<<"$opts") <(sort -u <<<"$documented"))"
exit $bad
