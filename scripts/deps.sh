#!/usr/bin/env bash
# Makes sure PostgreSQL and NATS (with JetStream) answer on their local ports.
#
# In order: already running -> nothing to do; a Docker engine -> `docker compose up -d`
# of that one service with the "deps" profile (docker-compose.yml; its `.env` selects the
# whole platform, which the COMPOSE_PROFILES variable overrides); otherwise start the OS
# services, installing them from the Debian/Ubuntu packages first when they are missing
# (needs root or sudo).
#
# For a development machine only: a freshly installed PostgreSQL is configured to trust
# connections from 127.0.0.1, as the default DATABASE_URL expects.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=${LYCEUM_PG_PORT:-5432}
NATS_PORT=${LYCEUM_NATS_PORT:-4222}
here=$(cd "$(dirname "$0")/.." && pwd)

log() { printf 'deps: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 0.5
  done
  log "$what did not come up on port $port"
  return 1
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

ensure_postgres() {
  port_open "$PG_PORT" && { log "PostgreSQL answers on $PG_PORT"; return; }
  if docker_engine; then
    log "starting PostgreSQL with docker compose"
    COMPOSE_PROFILES=deps docker compose -f "$here/docker-compose.yml" up -d postgres
    wait_for_port "$PG_PORT" PostgreSQL
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing PostgreSQL from the OS packages"
    apt_install postgresql
    local version hba
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # Development only: trust local TCP connections, as the default DATABASE_URL expects.
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for_port "$PG_PORT" PostgreSQL
}

ensure_nats() {
  port_open "$NATS_PORT" && { log "NATS answers on $NATS_PORT"; return; }
  if docker_engine; then
    log "starting NATS with docker compose"
    COMPOSE_PROFILES=deps docker compose -f "$here/docker-compose.yml" up -d nats
    wait_for_port "$NATS_PORT" NATS
    return
  fi
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    log "installing NATS from the OS packages"
    apt_install nats-server
  fi
  local bin store
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  store=/var/lib/nats-server
  as_root mkdir -p "$store"
  log "starting NATS with JetStream"
  as_root start-stop-daemon --start --oknodo --background --exec "$bin" -- \
    -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$store" -l /var/log/nats-server.log
  wait_for_port "$NATS_PORT" NATS
}

ensure_postgres
ensure_nats
