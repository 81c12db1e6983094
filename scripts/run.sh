#!/usr/bin/env bash
# The run command: dependencies up, migrations applied, every service served on
# ${LYCEUM_LISTEN:-0.0.0.0:50051}. Extra arguments go to `lyceum serve` (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
cargo build --locked -p lyceum
./target/debug/lyceum migrate all
exec ./target/debug/lyceum serve "${@:-all}"
