#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl) exist under /usr/lib/postgresql/*/bin for the
# `postgres` tests. The tests start their own throwaway server (tests/fixtures_postgres.py); they
# never use the distro's system cluster, so when this script installs the package it also stops
# that cluster and keeps it from starting at boot. Idempotent: does nothing when the binaries are
# already there.
set -euo pipefail

find_bindir() {
  local dir found=""
  # Highest major version wins (sort -V), as the test fixture picks it.
  for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      found=$dir
    fi
  done
  echo "$found"
}

BINDIR=$(find_bindir)
if [ -n "$BINDIR" ]; then
  echo "ensure-postgres: server binaries present in $BINDIR ($("$BINDIR/pg_ctl" --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi

# shellcheck source=scripts/apt.sh
source "$(dirname "$0")/apt.sh"
apt_install ensure-postgres "PostgreSQL (initdb/pg_ctl under /usr/lib/postgresql/*/bin)" postgresql

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  echo "ensure-postgres: installed the 'postgresql' package but there is still no initdb/pg_ctl under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
echo "ensure-postgres: installed $("$BINDIR/pg_ctl" --version 2>/dev/null || echo "$BINDIR")"

# The package creates and (where services may start) starts a system cluster. The tests do not use
# it: stop whatever the install started and keep it from starting at boot.
if command -v pg_lsclusters >/dev/null 2>&1; then
  # pg_lsclusters -h: "version cluster port status owner datadir logfile", no header.
  pg_lsclusters -h 2>/dev/null | while read -r version cluster _port status _rest; do
    if [ "$status" = "online" ] || [[ "$status" == online,* ]]; then
      echo "ensure-postgres: stopping the system cluster $version/$cluster started by the install (the tests run their own server)"
      "${SUDO[@]}" pg_ctlcluster "$version" "$cluster" stop || echo "ensure-postgres: warning: could not stop cluster $version/$cluster" >&2
    fi
  done
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  echo "ensure-postgres: running: ${SUDO[*]:+${SUDO[*]} }systemctl disable --now postgresql"
  "${SUDO[@]}" systemctl disable --now postgresql || echo "ensure-postgres: warning: could not disable the postgresql service" >&2
fi
echo "ensure-postgres: ready; the tests start their own server with $BINDIR/pg_ctl"
