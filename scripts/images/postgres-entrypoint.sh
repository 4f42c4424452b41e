#!/bin/sh
# Entrypoint of localhost/gangway-test-postgres:15 (built by scripts/test-env.sh): a subset of the official
# postgres image's. Env: POSTGRES_USER (default postgres), POSTGRES_PASSWORD (default postgres),
# POSTGRES_DB (default = user), PGPORT (default 5432), POSTGRES_LISTEN (default '*').
# A leading "postgres" argument is dropped; other arguments go to postgres. Ready log line (printed once):
# "database system is ready to accept connections".
set -eu
BIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
  "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >/tmp/initdb.log 2>&1 || {
    cat /tmp/initdb.log
    exit 1
  }
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | "$BIN/postgres" --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "entrypoint: initialised $PGDATA (user=$POSTGRES_USER db=$POSTGRES_DB)"
fi
[ "${1:-}" = postgres ] && shift
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses="${POSTGRES_LISTEN:-*}" -c port="${PGPORT:-5432}" \
  -c unix_socket_directories=/tmp -c fsync=off -c full_page_writes=off -c synchronous_commit=off "$@"
