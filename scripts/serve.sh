#!/usr/bin/env bash
# Start a local Prefect server (127.0.0.1), wait until it answers, then serve the flow on its cron schedule.
# Schedules do not fire on Prefect's temporary per-run server, so a real server is needed.
set -euo pipefail
port="${1:-4200}"
mkdir -p "${PREFECT_HOME:-.prefect}"
export PREFECT_API_URL="http://127.0.0.1:${port}/api"
prefect server start --host 127.0.0.1 --port "$port" >"${PREFECT_HOME:-.prefect}/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 60); do
  if python -c "import urllib.request,sys; urllib.request.urlopen('${PREFECT_API_URL}/health', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 $server 2>/dev/null || { echo "error: the Prefect server did not start; see ${PREFECT_HOME:-.prefect}/server.log" >&2; exit 1; }
  sleep 1
done
echo "Prefect UI: http://127.0.0.1:${port}  (the deployment runs on the cron of params flow.cron)"
python -m flows.orchestration.prefect_flow serve
