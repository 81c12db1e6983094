#!/usr/bin/env bash
# The compose stack for real, on a machine without an image registry.
#
#   scripts/compose-test.sh          engine, images, `up`, the integration test, teardown
#   scripts/compose-test.sh up       engine, images, `up`; the stack stays running
#   scripts/compose-test.sh images   engine and images only
#   scripts/compose-test.sh down     teardown: containers, networks and volumes of the stack
#   scripts/compose-test.sh exec CMD...
#                                    runs CMD where the stack's published ports are
#                                    (e.g. `exec target/debug/lyceum healthcheck --addr http://127.0.0.1:50052`)
#
# This is the OFFLINE path. With a registry, `docker compose up --build` uses the real
# images and the multi-stage Dockerfile; nothing here changes that. Here instead:
#
# - The engine is Debian's `docker.io` (installed when missing), run as a dedicated
#   daemon in its own network namespace `lyceum-compose`: the compose file publishes
#   127.0.0.1:5432 and :4222, which the host's own PostgreSQL and NATS (scripts/deps.sh,
#   the rest of the test suite) already hold. Inside the namespace 127.0.0.1 is the
#   engine's own loopback; it has no route out, so traffic stays on this machine. Its
#   data root /var/lib/lyceum-compose keeps images between runs.
# - A base image is made once: `debootstrap --variant=minbase bookworm` from Debian's
#   mirror, the stand-ins' packages installed into it on the host, then `docker import`.
# - Stand-ins for the images the compose file names, built FROM that base
#   (deploy/offline/): PostgreSQL 15 and NATS 2.9 from Debian with the official images'
#   variables, entrypoints and tools for the health checks; an OTLP collector and a
#   trace store (our own small receiver: no collector is packaged by Debian or PyPI);
#   the Lyceum image from the binary cargo built on this host (the Rust toolchain cannot
#   be fetched inside a container).
# - `up` with the real docker-compose.yml plus deploy/offline/docker-compose.offline.yml,
#   which overrides image names and build only. Debian's docker-compose 1.29 predates
#   the top-level `name:` key, so it gets the file without that one line and the same
#   name as --project-name; `docker compose` (v2), where present, gets the file as is.
#
# Opt-out: LYCEUM_SKIP_COMPOSE=1 makes scripts/test.sh skip this step (it says so).
# LYCEUM_COMPOSE_KEEP=1 leaves the stack running after the test.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

NETNS=lyceum-compose
STATE=/var/lib/lyceum-compose
RUN_DIR=/run/lyceum-compose
SOCK=$RUN_DIR/docker.sock
ENGINE_LOG=/var/log/lyceum-compose-dockerd.log
MIRROR=${LYCEUM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Everything the stand-ins need, installed into the base image once.
BASE_PACKAGES=(postgresql-15 nats-server wget python3 python3-grpcio python3-yaml)
WORK=$here/target/compose-offline
export DOCKER_HOST=unix://$SOCK

log() { printf '\ncompose: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup hierarchy dockerd needs.
in_netns() { as_root nsenter --net="/run/netns/$NETNS" "$@"; }
# Entering the namespace needs root; what runs there (cargo, a client) runs as the caller.
in_netns_as_caller() {
  if [ "$(id -u)" -eq 0 ]; then
    in_netns "$@"
  else
    in_netns setpriv --reuid="$(id -u)" --regid="$(id -g)" --init-groups "$@"
  fi
}

declare -A timings=()
timed() {
  local name=$1 start status=0
  shift
  start=$(date +%s)
  "$@" || status=$?
  timings[$name]=$(($(date +%s) - start))
  return "$status"
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing $* from the Debian packages"
  # policy-rc.d in Debian images stops packages from starting services; a fresh machine
  # might start the distribution's dockerd on /var/run/docker.sock, which this script
  # neither needs nor minds.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

engine_up() { docker info >/dev/null 2>&1; }

compose_cmd=()
choose_compose() {
  if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose -f docker-compose.yml)
  else
    # Compose v1 rejects the top-level `name:` (a Compose Specification key); the same
    # name is given as --project-name. Nothing else differs, which is checked here.
    local name
    name=$(sed -n 's/^name: *//p' docker-compose.yml)
    mkdir -p "$WORK"
    grep -v '^name:' docker-compose.yml >"$WORK/docker-compose.yml"
    if [ "$(diff docker-compose.yml "$WORK/docker-compose.yml" | grep -c '^[<>]')" -ne 1 ]; then
      log "docker-compose.yml: expected to drop exactly one line (name:)"
      exit 1
    fi
    compose_cmd=(docker-compose --project-directory "$here" -p "${name:-lyceum}"
      -f "$WORK/docker-compose.yml")
  fi
  compose_cmd+=(-f deploy/offline/docker-compose.offline.yml)
  check_override
}

# The override may name images and builds, nothing else: what runs is the real file.
check_override() {
  python3 - docker-compose.yml deploy/offline/docker-compose.offline.yml <<'PY'
import sys, yaml
real, override = (yaml.safe_load(open(path)) for path in sys.argv[1:])
problems = [f"top-level key {k!r}" for k in override if k != "services"]
for name, service in override.get("services", {}).items():
    if name not in real.get("services", {}):
        problems.append(f"service {name!r} is not in docker-compose.yml")
    problems += [f"{name}.{k}" for k in service if k not in ("image", "build")]
if problems:
    sys.exit("deploy/offline/docker-compose.offline.yml may set image and build only: "
             + ", ".join(problems))
PY
}
compose() { LYCEUM_IMAGE=lyceum-offline/lyceum:dev COMPOSE_PROFILES=platform "${compose_cmd[@]}" "$@"; }

ensure_tools() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    missing+=(docker-compose)
  fi
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    apt_install "${missing[@]}"
  fi
}

start_engine() {
  engine_up && { log "engine answers on $SOCK"; return; }
  if ! ip netns list | grep -qw "$NETNS"; then
    as_root ip netns add "$NETNS"
  fi
  in_netns ip link set lo up
  as_root mkdir -p "$RUN_DIR" "$STATE"
  log "starting dockerd in network namespace $NETNS (log: $ENGINE_LOG)"
  local from
  from=$(($(wc -l <"$ENGINE_LOG" 2>/dev/null || echo 0) + 1))
  # Its own data root, exec root and containerd namespace: nothing is shared with another
  # engine on this machine. cgroupfs: no systemd here.
  in_netns setsid dockerd \
    --host "unix://$SOCK" \
    --data-root "$STATE/docker" \
    --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" \
    --containerd-namespace lyceum-compose \
    --containerd-plugins-namespace lyceum-compose-plugins \
    --storage-driver overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs \
    >>"$ENGINE_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    engine_up && return 0
    sleep 0.5
  done
  log "dockerd did not come up; its warnings and errors ($ENGINE_LOG):"
  tail -n +"$from" "$ENGINE_LOG" | grep -Ev 'level=(info|debug)' | tail -n 20 >&2
  exit 1
}

BASE_TAG=lyceum-offline/base:bookworm-$(printf '%s %s v1' "${BASE_PACKAGES[*]}" "$MIRROR" | sha256sum | cut -c1-12)
base_image() {
  if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "base image $BASE_TAG is cached"
    return
  fi
  local root
  root=$(mktemp -d /var/tmp/lyceum-base.XXXXXX)
  BASE_ROOT=$root
  log "debootstrap --variant=minbase bookworm from $MIRROR"
  as_root debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
  # Packages are installed here, on the host, because the engine's namespace has no
  # route to the mirror. No service starts, and PostgreSQL makes no cluster: the
  # stand-in's entrypoint initialises its data directory like the official image.
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$root/usr/sbin/policy-rc.d" >/dev/null
  as_root chmod +x "$root/usr/sbin/policy-rc.d"
  as_root mkdir -p "$root/etc/postgresql-common/createcluster.d"
  echo 'create_main_cluster = false' | as_root tee "$root/etc/postgresql-common/createcluster.d/lyceum.conf" >/dev/null
  as_root cp /etc/resolv.conf "$root/etc/resolv.conf"
  as_root mount -t proc proc "$root/proc"
  log "installing ${BASE_PACKAGES[*]} into the base image"
  as_root chroot "$root" apt-get update -qq >"$WORK/base-apt.log" 2>&1 ||
    { tail -n 30 "$WORK/base-apt.log" >&2; exit 1; }
  as_root chroot "$root" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${BASE_PACKAGES[@]}" >>"$WORK/base-apt.log" 2>&1 ||
    { tail -n 30 "$WORK/base-apt.log" >&2; exit 1; }
  as_root chroot "$root" apt-get clean
  as_root umount "$root/proc"
  as_root rm -rf "$root/var/lib/apt/lists/"* "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
  log "docker import $BASE_TAG"
  as_root tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' - "$BASE_TAG" >/dev/null
  remove_base_root
}

BASE_ROOT=
remove_base_root() {
  [ -n "$BASE_ROOT" ] || return 0
  as_root umount -l "$BASE_ROOT/proc" 2>/dev/null || true
  as_root rm -rf "$BASE_ROOT"
  BASE_ROOT=
}
trap remove_base_root EXIT

build() {
  local tag=$1 context=$2 dockerfile=${3:-Dockerfile}
  log "building $tag"
  # The legacy builder (Debian's engine has no BuildKit) warns about itself on every
  # build: the output is shown only when the build fails.
  docker build -q --build-arg "BASE=$BASE_TAG" -t "$tag" -f "$context/$dockerfile" "$context" \
    >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
}

standin_images() {
  build lyceum-offline/postgres:15 deploy/offline/postgres
  build lyceum-offline/nats:2.9 deploy/offline/nats
  build lyceum-offline/otel-collector:dev deploy/offline/otlp Dockerfile.collector
  build lyceum-offline/jaeger:dev deploy/offline/otlp Dockerfile.jaeger
}

lyceum_image() {
  # The binary the test command's `cargo test --workspace` builds (same profile and
  # features, so this is a no-op after it), with the compose test itself.
  cargo test --workspace --locked --test compose --no-run >&2
  rm -rf "$WORK/lyceum" && mkdir -p "$WORK/lyceum"
  cp deploy/offline/lyceum/Dockerfile "$WORK/lyceum/"
  # Debug info is half the binary and of no use in the container.
  if command -v objcopy >/dev/null 2>&1; then
    objcopy --strip-debug target/debug/lyceum "$WORK/lyceum/lyceum"
  else
    cp target/debug/lyceum "$WORK/lyceum/lyceum"
  fi
  build lyceum-offline/lyceum:dev "$WORK/lyceum"
}

# The failing containers' own words: every container that is not running and healthy.
show_failures() {
  log "state of the stack:"
  compose ps -a >&2 || true
  local id name state
  for id in $(compose ps -a -q 2>/dev/null); do
    name=$(docker inspect -f '{{.Name}}' "$id" | tr -d /)
    state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
    case "$state" in
      "running 0 healthy" | "running 0 " | "exited 0 ") continue ;;
    esac
    log "$name ($state), its last log lines:"
    docker logs --tail 40 "$id" 2>&1 | sed 's/^/  | /' >&2
  done
}

stack_up() {
  compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  if ! compose up -d --no-build; then
    show_failures
    return 1
  fi
  local service status
  for service in identity learning instructor; do
    for _ in $(seq 1 120); do
      # A service that exited (and is being restarted) has failed: no need to wait.
      status=$(docker inspect -f '{{.State.Health.Status}} {{.RestartCount}}' \
        "$(compose ps -q "$service")" 2>/dev/null || true)
      case "$status" in
        "healthy 0") status=healthy; break ;;
        unhealthy* | *" "[1-9]*) break ;;
      esac
      sleep 1
    done
    if [ "$status" != healthy ]; then
      log "$service is not healthy ($status)"
      show_failures
      return 1
    fi
  done
  log "the stack is up and healthy"
}

stack_down() {
  log "teardown: containers, networks and volumes of the stack"
  compose down --volumes --remove-orphans --timeout 5 >&2
}

# A wrapper the integration test calls for `stop`, `start` and `exec`.
write_wrapper() {
  mkdir -p "$WORK"
  {
    echo '#!/usr/bin/env bash'
    echo "export DOCKER_HOST=$DOCKER_HOST LYCEUM_IMAGE=lyceum-offline/lyceum:dev COMPOSE_PROFILES=platform"
    echo "cd $(printf '%q' "$here")"
    printf 'exec'
    printf ' %q' "${compose_cmd[@]}"
    echo ' "$@"'
  } >"$WORK/compose"
  chmod +x "$WORK/compose"
}

run_test() {
  log "integration test (inside $NETNS, against the published ports)"
  in_netns_as_caller env LYCEUM_COMPOSE="$WORK/compose" PATH="$PATH" HOME="$HOME" \
    cargo test --workspace --locked --offline --test compose -- --ignored --nocapture
}

report_timings() {
  local name
  log "time taken (seconds):"
  for name in tools engine base-image stand-ins lyceum-image stack-up scenario teardown; do
    [ -n "${timings[$name]:-}" ] && printf '  %-13s %4s\n' "$name" "${timings[$name]}" >&2
  done
  return 0
}

prepare() {
  mkdir -p "$WORK"
  timed tools ensure_tools
  timed engine start_engine
  choose_compose
  write_wrapper
  timed base-image base_image
  timed stand-ins standin_images
  timed lyceum-image lyceum_image
}

case "${1:-test}" in
  up)
    prepare
    timed stack-up stack_up
    report_timings
    log "stack running; reach its ports with: scripts/compose-test.sh exec <command>"
    ;;
  down)
    choose_compose
    engine_up || { log "engine not running: nothing to tear down"; exit 0; }
    stack_down
    ;;
  images)
    prepare
    report_timings
    ;;
  exec)
    shift
    in_netns_as_caller "$@"
    ;;
  test)
    prepare
    status=0
    timed stack-up stack_up || status=$?
    if [ "$status" -eq 0 ]; then
      timed scenario run_test || { status=$?; show_failures; }
    fi
    if [ "${LYCEUM_COMPOSE_KEEP:-0}" = 1 ]; then
      log "LYCEUM_COMPOSE_KEEP=1: the stack stays up"
    else
      timed teardown stack_down
    fi
    report_timings
    exit "$status"
    ;;
  *)
    echo "usage: $0 [test|up|down|images|exec CMD...]" >&2
    exit 2
    ;;
esac
