#!/usr/bin/env bash
# Installs (if missing) and starts Debian's PostgreSQL on loopback for the store tests, with
# a `citywatch` role. Idempotent. Prints the admin URL the tests use:
#   postgres://citywatch:citywatch@127.0.0.1:5432/postgres
set -euo pipefail
# Only the URL goes to standard output: whatever the tools print (pg_ctlcluster says
# "Removed stale pid file." after an unclean stop, for one) goes to standard error. No
# extra descriptor is opened, so the server started here holds no pipe of the caller's.
setup() {
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres: installing Debian's postgresql" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
    $SUDO pg_createcluster "$version" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    # A server killed a moment ago may still hold its lock file: try a few times.
    for attempt in 1 2 3; do
      $SUDO pg_ctlcluster "$version" main start && break
      [ "$attempt" -eq 3 ] && exit 1
      sleep 1
    done
  fi
  port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
  as_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
  for _ in $(seq 1 50); do
    as_pg "psql -p $port -Atqc 'select 1'" >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! as_pg "psql -p $port -Atqc \"select 1 from pg_roles where rolname = 'citywatch'\"" | grep -q 1; then
    as_pg "psql -p $port -qc \"create role citywatch login superuser password 'citywatch'\""
  fi
}
setup >&2
port=$(pg_lsclusters -h | awk -v v="$(ls /usr/lib/postgresql | sort -n | tail -1)" '$1==v && $2=="main" {print $3}')
echo "postgres://citywatch:citywatch@127.0.0.1:$port/postgres"
