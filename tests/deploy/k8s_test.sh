#!/bin/sh
# k8s_test.sh SOURCE_DIR ERRQD
#
# deploy/k8s renders offline (`kubectl kustomize`), every rendered object passes the
# Kubernetes API schema of its kind and errq's own checks (tests/deploy/k8s/validate.mjs), the
# validator rejects deliberately broken copies (--selftest), and ERRQD accepts the config and
# rules the ConfigMap carries (and the container image's config).  The validator's packages are
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
for cfg in "$src/deploy/k8s/errqd.yaml" "$src/deploy/container/errqd.yaml"; do
	"$errqd" --config "$cfg" --check-config >"$tmp/check.log" 2>&1 ||
		fail "errqd refuses '$cfg': $(cat "$tmp/check.log")"
done
echo "k8s_test: deploy/k8s renders and validates; $(grep -c rejected "$tmp/selftest.log") broken copies rejected"
