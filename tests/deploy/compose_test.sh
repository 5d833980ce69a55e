#!/bin/sh
# compose_test.sh SOURCE_DIR
#
# deploy/compose.yaml passes the Compose schema (`docker-compose config`, offline), and the
# same file with a misspelt key does not (so the check is real).  deploy/compose.scale-out.yaml
# passes it too, and what Compose makes of it (the env file merged) passes errq's checks
# (tests/deploy/compose_scale_out.py: three collectors on the postgres service's database with
# its credentials, each with its own ports, a healthcheck, and depends_on the database healthy),
# which reject broken copies; the URL and its password are in the env file, not the compose
# file.  Running them needs a container engine, which this machine lacks:
# tests/deploy/image_test.sh runs the image, tests/deploy/scale_out_pg.sh the replicas' config.
set -eu

src=$1
# shellcheck source=tests/deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need docker-compose
need python3
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

out=$src/deploy/compose.scale-out.yaml
docker-compose -f "$out" config >"$tmp/scale-out.yaml" 2>"$tmp/log" ||
	fail "deploy/compose.scale-out.yaml is invalid: $(cat "$tmp/log")"
python3 "$(dirname "$0")/compose_scale_out.py" "$tmp/scale-out.yaml" 2>"$tmp/log" ||
	fail "deploy/compose.scale-out.yaml: $(cat "$tmp/log")"
python3 "$(dirname "$0")/compose_scale_out.py" --selftest "$tmp/scale-out.yaml" >"$tmp/selftest.log" 2>&1 ||
	fail "compose_scale_out.py's self-test failed: $(cat "$tmp/selftest.log")"
if grep -q "postgres://" "$out"; then
	fail "deploy/compose.scale-out.yaml holds a database URL: it belongs in scale-out.env"
fi
echo "compose_test: deploy/compose.yaml and deploy/compose.scale-out.yaml are valid;" \
	"$(grep -c rejected "$tmp/selftest.log") broken copies of the scale-out rejected"
