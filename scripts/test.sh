#!/usr/bin/env bash
# The test command: dependencies up, then formatting, lints, proto lint, the offline
# validation of the deployment files and every test against the real PostgreSQL and NATS.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== buf lint"
if command -v buf >/dev/null 2>&1; then
  buf lint
elif command -v npx >/dev/null 2>&1; then
  npx --yes @bufbuild/buf@1.75.0 lint
else
  echo "buf lint skipped: neither buf nor npx is installed"
fi

echo "== deployment files (Dockerfile, compose, Kubernetes manifests)"
./scripts/validate-deploy.sh

echo "== cargo test"
cargo test --workspace --locked
