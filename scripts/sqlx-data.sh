#!/usr/bin/env bash
# The offline data of the compile-time-checked queries: each crate's `.sqlx/`, which lets
# `cargo build` check every `query!` without a database.
#
#   scripts/sqlx-data.sh          rewrite the data after changing a query or a migration
#   scripts/sqlx-data.sh --check  fail when the committed data is stale (CI runs this)
#
# Both build a database from the migrations alone (`lyceum-schema`'s `migrate` example,
# which has no checked query of its own), then check each crate's queries live against
# it: a query that names a column the migrations do not create fails here, with the
# column's name. The macros read `LYCEUM_SQLX_URL` (set in each crate's `sqlx.toml`), not
# `DATABASE_URL`, so a shell's runtime URL never turns them live by accident.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

./scripts/deps.sh

server=${LYCEUM_SQLX_SERVER_URL:-postgres://postgres@127.0.0.1:5432}
database=lyceum_sqlx_data
# Dropped and created again by the example itself: no psql needed on the machine.
cargo run --quiet --locked -p lyceum-schema --example migrate -- "$server" "$database"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
stale=0
kit_out="$scratch/lyceum-platform"
# crate directory, package, the schema its queries are checked in. The kit's queries run
# in every service's schema, whose kit tables come from the same migrations: identity's
# stand in for all. The kit comes first: a service's check compiles the kit again (cargo
# unifies features per command), which writes the kit's queries once more.
for entry in \
  shared/platform:lyceum-platform:identity \
  services/identity:lyceum-identity:identity \
  services/learning:lyceum-learning:learning \
  services/instructor:lyceum-instructor:instructor; do
  IFS=: read -r dir package schema <<<"$entry"
  [ -f "$dir/sqlx.toml" ] || continue
  out="$scratch/$package"
  mkdir -p "$out"
  # The macros only run when the crate compiles: make it.
  touch "$dir/src/lib.rs"
  LYCEUM_SQLX_URL="$server/$database?options=-c%20search_path%3D$schema" \
    SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" \
    cargo check --quiet --locked -p "$package" --lib
  if [ "$out" != "$kit_out" ]; then
    for file in "$out"/*.json; do
      kit_copy="$kit_out/$(basename "$file")"
      [ -e "$kit_copy" ] || continue
      if ! cmp -s "$file" "$kit_copy"; then
        echo "sqlx-data: a kit query describes differently in the $schema schema:" >&2
        diff "$kit_copy" "$file" >&2 || true
        exit 1
      fi
      rm "$file"
    done
  fi
  count=$(find "$out" -name '*.json' | wc -l)
  if [ "$mode" = write ]; then
    rm -rf "$dir/.sqlx"
    mkdir -p "$dir/.sqlx"
    cp -r "$out"/. "$dir/.sqlx/"
    echo "sqlx-data: $dir/.sqlx: $count queries written"
  elif ! diff -r -q "$dir/.sqlx" "$out" >&2; then
    echo "sqlx-data: $dir/.sqlx is stale: run scripts/sqlx-data.sh and commit it" >&2
    stale=1
  else
    echo "sqlx-data: $dir/.sqlx: $count queries, current"
  fi
done
exit "$stale"
