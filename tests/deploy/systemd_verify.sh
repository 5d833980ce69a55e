#!/bin/sh
# systemd_verify.sh BUILD_DIR
#
# Installs BUILD_DIR into a temporary prefix (no DESTDIR: systemd-analyze verify checks that
# ExecStart's binary exists at the path the unit names) and runs `systemd-analyze verify` on
# the installed errqd.service.  To show that the check bites, the same unit with ExecStart
# pointing at a missing binary, and with a misspelt directive, must both fail it.
set -eu

build=$1
# shellcheck source=tests/deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need systemd-analyze

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
	fail "cmake --install failed: $(cat "$tmp/install.log")"
unit=$prefix/lib/systemd/system/errqd.service
[ -f "$unit" ] || fail "no unit at $unit"
grep -qx "ExecStart=$prefix/bin/errqd --config $prefix/etc/errq/errqd.yaml" "$unit" ||
	fail "unexpected ExecStart: $(grep ExecStart= "$unit")"
# verify prints nothing when the unit is clean; anything it says is a finding
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
# the installed errqd accepts the installed config the unit starts it with
"$prefix/bin/errqd" --config "$prefix/etc/errq/errqd.yaml" --check-config >"$tmp/check.log" 2>&1 ||
	fail "errqd --check-config refuses the installed config: $(cat "$tmp/check.log")"

mkdir "$tmp/bad"
sed "s|^ExecStart=$prefix/bin/errqd|ExecStart=$prefix/bin/errqd-missing|" "$unit" >"$tmp/bad/errqd.service"
if systemd-analyze verify "$tmp/bad/errqd.service" >"$tmp/bad.log" 2>&1; then
	fail "systemd-analyze verify accepts a unit whose ExecStart does not exist"
fi
sed "s|^ProtectSystem=|ProtectSystm=|" "$unit" >"$tmp/bad/errqd.service"
if out=$(systemd-analyze verify "$tmp/bad/errqd.service" 2>&1) && [ -z "$out" ]; then
	fail "systemd-analyze verify says nothing about a misspelt directive"
fi
echo "systemd_verify: $unit verifies"
