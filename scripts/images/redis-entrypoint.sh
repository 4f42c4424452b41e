#!/bin/sh
# Entrypoint of localhost/gangway-test-redis:7 (built by scripts/test-env.sh).
# Env: LISTEN (default 0.0.0.0; 127.0.0.1 with --network host), PORT (default 6379).
# Extra arguments are passed on to redis-server. Ready log line: "Ready to accept connections".
set -eu
exec redis-server --bind "${LISTEN:-0.0.0.0}" --port "${PORT:-6379}" --protected-mode no \
  --save '' --appendonly no "$@"
