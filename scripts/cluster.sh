#!/usr/bin/env bash
# A local cluster: the gateway on :3000 (PORT=), two events workers, one auth worker and one audit
# worker (their /metrics on :3101-3104), on the local PostgreSQL and NATS (with JetStream, for
# notifications). It says "cluster up" once /health counts a worker for every module.
# Ctrl+C stops everything. Logs and pid files are in data/cluster/.
#
#   make cluster                                 # or: make cluster PORT=3100
#   kill "$(cat data/cluster/events-1.pid)"     # stop one events worker: the other takes over
set -euo pipefail
cd "$(dirname "$0")/.."

UV=$(command -v uv || echo "python3 -m uv")
POSTGRES=${POSTGRES:-postgresql+asyncpg://postgres@127.0.0.1:5432}
export DATABASE_URL=${DATABASE_URL:-$POSTGRES/eventboard}
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export BUS_TRANSPORT=nats BUS_LOCAL_MODULES=none
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
PORT=${PORT:-3000}
GATEWAY=http://127.0.0.1:$PORT
LOGS=data/cluster
mkdir -p "$LOGS"

$UV sync --frozen --quiet
# The database, created on first use.
$UV run --frozen python - <<'PY'
import asyncio, os
import asyncpg
from sqlalchemy.engine import make_url

async def main() -> None:
    url = make_url(os.environ["DATABASE_URL"])
    admin = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                  password=url.password, database="postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database):
            await admin.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await admin.close()

asyncio.run(main())
PY

pids=()
stop() {
  trap - EXIT INT TERM
  echo "stopping the cluster"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop EXIT INT TERM

start() {  # start NAME COMMAND...: in the background, log and pid in data/cluster/
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$LOGS/$name.pid"
  pids+=($!)
  echo "$name: pid $!, log $LOGS/$name.log"
}

PY=.venv/bin/python  # the processes themselves, not a wrapper: their pids are what kill reaches
start gateway $PY -m uvicorn app.main:app --host 127.0.0.1 --port "$PORT" --no-access-log --no-proxy-headers --loop asyncio
for _ in $(seq 1 150); do  # the gateway migrates and seeds before the workers start
  curl -sf -o /dev/null "$GATEWAY/health/live" && break
  sleep 0.2
done
# Each worker serves its own /metrics and probes: on PORT+101 to +104 (3101-3104 by default).
start events-1 env METRICS_PORT=$((PORT + 101)) $PY -m app.worker events  # env execs: same pid
start events-2 env METRICS_PORT=$((PORT + 102)) $PY -m app.worker events
start auth-1 env METRICS_PORT=$((PORT + 103)) $PY -m app.worker auth
start audit-1 env METRICS_PORT=$((PORT + 104)) $PY -m app.worker audit
# /health is 200 once every module has a worker answering (it is 503 "degraded" until then).
for _ in $(seq 1 300); do
  if curl -sf -o /dev/null "$GATEWAY/health"; then
    echo "cluster up: $GATEWAY (gateway) on $DATABASE_URL and $NATS_URL; Ctrl+C stops it"
    wait
    exit
  fi
  sleep 0.2
done
echo "cluster not up after 60 s: see $LOGS/*.log; /health says:" >&2
curl -s "$GATEWAY/health" >&2 || true
exit 1
