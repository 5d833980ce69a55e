#!/bin/sh
# k8s_test.sh SOURCE_DIR ERRQD
#
# deploy/k8s (one collector on SQLite) and deploy/k8s/scale-out (replicas on PostgreSQL) render
# offline (`kubectl kustomize`), every rendered object passes the Kubernetes API schema of its
# kind and errq's own checks for its set (tests/deploy/k8s/validate.mjs), the validator rejects
# deliberately broken copies of each set (--selftest), ERRQD accepts the config, rules and
# credentials each ConfigMap carries (the scale-out one with a PostgreSQL URL in ERRQ_DATABASE,
# as its Secret gives it, and refuses it without: it names no database and says storage:
# postgres), and refuses the container image's config (no credentials, 0.0.0.0) unless
# ERRQ_AUTH_OPEN=true.  The validator's packages are pinned by
# tests/deploy/k8s/package-lock.json and installed by scripts/install-deps (npm ci).
# tests/deploy/scale_out_pg.sh runs replicas with the scale-out config on a real PostgreSQL.
set -eu

src=$1
errqd=$2
dir=$src/tests/deploy/k8s
# shellcheck source=tests/deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need kubectl
need node
[ -d "$dir/node_modules/kubernetes-models" ] ||
	fail "no $dir/node_modules: run scripts/install-deps (npm ci there)"

rejected=0
for set in deploy/k8s deploy/k8s/scale-out; do
	kubectl kustomize "$src/$set" >"$tmp/rendered.yaml" 2>"$tmp/kustomize.log" ||
		fail "kubectl kustomize $set failed: $(cat "$tmp/kustomize.log")"
	node "$dir/validate.mjs" "$tmp/rendered.yaml" || fail "the rendered manifests of $set do not validate"
	node "$dir/validate.mjs" --selftest "$tmp/rendered.yaml" >"$tmp/selftest.log" 2>&1 ||
		fail "the validator's self-test failed on $set: $(cat "$tmp/selftest.log")"
	rejected=$((rejected + $(grep -c rejected "$tmp/selftest.log")))
done
"$errqd" --config "$src/deploy/k8s/errqd.yaml" --check-config >"$tmp/check.log" 2>&1 ||
	fail "errqd refuses deploy/k8s/errqd.yaml: $(cat "$tmp/check.log")"
grep -q "2 credentials" "$tmp/check.log" || fail "deploy/k8s/errqd.yaml: $(cat "$tmp/check.log")"
# the replicas' config: with the Secret's URL it is a PostgreSQL collector with the rules...
cfg=$src/deploy/k8s/scale-out/errqd.yaml
ERRQ_DATABASE='postgres://errq:pw@db.example/errq?sslmode=require' "$errqd" --config "$cfg" --check-config \
	>"$tmp/check.log" 2>&1 || fail "errqd refuses deploy/k8s/scale-out/errqd.yaml: $(cat "$tmp/check.log")"
if ! grep -q "1 rules, 1 notifiers" "$tmp/check.log" || ! grep -q "2 credentials" "$tmp/check.log"; then
	fail "deploy/k8s/scale-out/errqd.yaml: $(cat "$tmp/check.log")"
fi
ERRQ_DATABASE='postgres://errq:pw@db.example/errq' "$errqd" --config "$cfg" --print-config >"$tmp/print.log" 2>&1 ||
	fail "errqd --print-config: $(cat "$tmp/print.log")"
grep -q '^storage: "postgres"' "$tmp/print.log" || fail "the scale-out config does not run on postgres"
# ... and without it (a Secret not mounted) it is refused, not started on a SQLite file
if "$errqd" --config "$cfg" --check-config >"$tmp/check.log" 2>&1; then
	fail "errqd accepts deploy/k8s/scale-out/errqd.yaml without ERRQ_DATABASE"
fi
grep -q "is 'postgres' but database 'errq.db' is a SQLite file" "$tmp/check.log" ||
	fail "unexpected refusal: $(cat "$tmp/check.log")"
# the image's own config has no credentials: refused on 0.0.0.0 until the operator chooses
cfg=$src/deploy/container/errqd.yaml
if "$errqd" --config "$cfg" --check-config >"$tmp/check.log" 2>&1; then
	fail "errqd accepts the image's config without credentials on 0.0.0.0"
fi
grep -q "without credentials" "$tmp/check.log" || fail "unexpected refusal: $(cat "$tmp/check.log")"
ERRQ_AUTH_OPEN=true "$errqd" --config "$cfg" --check-config >"$tmp/check.log" 2>&1 ||
	fail "errqd refuses the image's config with ERRQ_AUTH_OPEN=true: $(cat "$tmp/check.log")"
echo "k8s_test: deploy/k8s and deploy/k8s/scale-out render and validate; $rejected broken copies rejected"
