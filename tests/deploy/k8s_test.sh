#!/bin/sh
# k8s_test.sh SOURCE_DIR ERRQD
#
# deploy/k8s renders offline (`kubectl kustomize`), every rendered object passes the
# Kubernetes API schema of its kind and errq's own checks (tests/deploy/k8s/validate.mjs), the
# validator rejects deliberately broken copies (--selftest), ERRQD accepts the config, rules
# and credentials the ConfigMap carries, and refuses the container image's config (no
# credentials, 0.0.0.0) unless ERRQ_AUTH_OPEN=true.  The validator's packages are
# pinned by tests/deploy/k8s/package-lock.json and installed by scripts/install-deps (npm ci).
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

kubectl kustomize "$src/deploy/k8s" >"$tmp/rendered.yaml" 2>"$tmp/kustomize.log" ||
	fail "kubectl kustomize deploy/k8s failed: $(cat "$tmp/kustomize.log")"
node "$dir/validate.mjs" "$tmp/rendered.yaml" || fail "the rendered manifests do not validate"
node "$dir/validate.mjs" --selftest "$tmp/rendered.yaml" >"$tmp/selftest.log" 2>&1 ||
	fail "the validator's self-test failed: $(cat "$tmp/selftest.log")"
"$errqd" --config "$src/deploy/k8s/errqd.yaml" --check-config >"$tmp/check.log" 2>&1 ||
	fail "errqd refuses deploy/k8s/errqd.yaml: $(cat "$tmp/check.log")"
grep -q "2 credentials" "$tmp/check.log" || fail "deploy/k8s/errqd.yaml: $(cat "$tmp/check.log")"
# the image's own config has no credentials: refused on 0.0.0.0 until the operator chooses
cfg=$src/deploy/container/errqd.yaml
if "$errqd" --config "$cfg" --check-config >"$tmp/check.log" 2>&1; then
	fail "errqd accepts the image's config without credentials on 0.0.0.0"
fi
grep -q "without credentials" "$tmp/check.log" || fail "unexpected refusal: $(cat "$tmp/check.log")"
ERRQ_AUTH_OPEN=true "$errqd" --config "$cfg" --check-config >"$tmp/check.log" 2>&1 ||
	fail "errqd refuses the image's config with ERRQ_AUTH_OPEN=true: $(cat "$tmp/check.log")"
echo "k8s_test: deploy/k8s renders and validates; $(grep -c rejected "$tmp/selftest.log") broken copies rejected"
