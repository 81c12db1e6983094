#!/usr/bin/env bash
# The test command: dependencies up, then formatting, the checked queries' offline data
# against the migrations, lints, proto lint, the offline
# validation of the deployment files, every test against the real PostgreSQL and NATS, then
# the docker compose stack brought up and driven by its integration test (installs and
# starts a Docker engine when missing; opt out with LYCEUM_SKIP_COMPOSE=1).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

# Before the steps that compile: the check touches the crates with checked queries.
echo "== offline query data (scripts/sqlx-data.sh --check)"
./scripts/sqlx-data.sh --check

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
assurance_report="${CARGO_TARGET_DIR:-target}/tmp/assurance-sizes.txt"
rm -f "$assurance_report"
cargo test --workspace --locked
echo "== assurance suites (sizes)"
cat "$assurance_report"

# After `cargo test`, whose build of the lyceum binary the stack's image reuses.
echo "== docker compose stack (offline stand-ins, integration test: scripts/compose-test.sh)"
if [ "${LYCEUM_SKIP_COMPOSE:-0}" = 1 ]; then
  echo "SKIPPED by LYCEUM_SKIP_COMPOSE=1: the compose stack was NOT tested"
else
  ./scripts/compose-test.sh
fi
