#!/bin/sh
# compose_test.sh SOURCE_DIR
#
# deploy/compose.yaml passes the Compose schema (`docker-compose config`, offline), and the
# same file with a misspelt key does not (so the check is real).  Running it needs a container
# engine, which this machine lacks: tests/deploy/image_test.sh runs the image instead.
set -eu

src=$1
# shellcheck source=tests/deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need docker-compose
docker-compose -f "$src/deploy/compose.yaml" config -q 2>"$tmp/log" ||
	fail "deploy/compose.yaml is invalid: $(cat "$tmp/log")"
# a broken copy, with what its relative paths (.., ./k8s/errqd.yaml) name
mkdir -p "$tmp/deploy/k8s"
cp "$src/deploy/k8s/errqd.yaml" "$tmp/deploy/k8s/"
bad=$tmp/deploy/compose.yaml
sed 's/^    stop_grace_period:/    stop_grace_perod:/' "$src/deploy/compose.yaml" >"$bad"
if docker-compose -f "$bad" config -q 2>"$tmp/log"; then
	fail "docker-compose accepts a misspelt key"
fi
grep -q stop_grace_perod "$tmp/log" || fail "unexpected error for the misspelt key: $(cat "$tmp/log")"
echo "compose_test: deploy/compose.yaml is valid"
