#!/usr/bin/env bash
# The run command: dependencies up, migrations applied, every service served on
# ${LYCEUM_LISTEN:-0.0.0.0:50051}. Extra arguments go to `lyceum serve` (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
cargo build --locked -p lyceum
./target/debug/lyceum migrate all
# Development mode, chosen here in the open: without LYCEUM_DATA_KEY the services seal
# secrets with the public development key (and say so in their log). Production sets
# LYCEUM_DATA_KEY and never LYCEUM_DEV_MODE.
export LYCEUM_DEV_MODE="${LYCEUM_DEV_MODE:-1}"
exec ./target/debug/lyceum serve "${@:-all}"
