#!/usr/bin/env bash
# Health of a running compose stack: every endpoint must answer 2xx (curl -f), the worker must be running and no
# container may be unhealthy. Exit 1 otherwise. HEALTH_WAIT=<seconds> retries until then (quick-start uses it).
#   scripts/deploy-health.sh 1gpu|8gpu        (COMPOSE: the compose command with its -f option, from the Makefile)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: $0 1gpu|8gpu}
compose=${COMPOSE:-docker compose}
wait_s=${HEALTH_WAIT:-0}

env_value() { # NAME DEFAULT: the value in .env, else the default
  local v
  v=$(sed -n "s/^$1=//p" .env 2>/dev/null | tail -1)
  echo "${v:-$2}"
}
api_port=$(env_value BESH_PORT 5000)
ui_host=$(env_value TEMPORAL_UI_BIND 127.0.0.1)
[ "$ui_host" = 0.0.0.0 ] && ui_host=127.0.0.1

checks=("batch-api http://127.0.0.1:$api_port/health" "temporal-ui http://$ui_host:8080/")
if [ "$mode" = 8gpu ]; then
  checks+=("vllm-lb http://127.0.0.1:8000/health")
  for i in 1 2 3 4 5 6 7 8; do checks+=("vllm-$i http://127.0.0.1:$((8000 + i))/health"); done
else
  checks+=("vllm http://127.0.0.1:8000/health")
fi

run_checks() {
  local failed=0 name url code ps
  for check in "${checks[@]}"; do
    name=${check%% *} url=${check#* }
    code=$(curl -fsS -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null) || failed=1
    if [[ $code == 2* ]]; then
      printf '  %-12s ok    %s\n' "$name" "$url"
    else
      printf '  %-12s FAIL  %s (%s)\n' "$name" "$url" "${code:-no answer}"
      failed=1
    fi
  done
  ps=$($compose ps 2>/dev/null)
  if $compose ps --services --filter status=running 2>/dev/null | grep -qx worker; then
    printf '  %-12s ok    running\n' worker
  else
    printf '  %-12s FAIL  not running\n' worker
    failed=1
  fi
  if grep -q unhealthy <<<"$ps"; then
    echo "  unhealthy containers:"
    grep unhealthy <<<"$ps" | sed 's/^/    /'
    failed=1
  fi
  return $failed
}

deadline=$((SECONDS + wait_s))
while :; do
  out=$(run_checks)
  status=$?
  if [ $status -eq 0 ] || [ $SECONDS -ge $deadline ]; then break; fi
  echo "not healthy yet, retrying for $((deadline - SECONDS)) more seconds..."
  sleep 10
done
echo "$out"
if [ $status -ne 0 ]; then
  echo "unhealthy: see \`make status\` and \`make logs SERVICE=<name>\`" >&2
  exit 1
fi
echo healthy
