# shellcheck shell=sh
# Sourced by the deploy tests after `set -eu`: the test's name, a temporary directory $tmp
# removed at exit, fail MSG (one line on stderr, exit 1) and need TOOL (fail when missing).
# A developer's ERRQ_* settings (errqd reads ERRQ_<KEY>) must not reach the errqd they run.
for _v in $(env | sed -n 's/^\(ERRQ_[A-Z0-9_]*\)=.*/\1/p'); do
	unset "$_v"
done
test_name=$(basename "$0" .sh)
tmp=$(mktemp -d "/tmp/errq-$test_name-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "$test_name: $*" >&2
	exit 1
}
need() {
	command -v "$1" >/dev/null || fail "$1 not found (scripts/install-deps installs it)"
}
