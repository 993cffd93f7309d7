#!/usr/bin/env bash
# Static checks of the deployment files that need no Docker engine (`make check-deploy`; .ci/run calls it):
#   1. validate-env: env.example is rejected naming each placeholder; a filled-in copy passes.
#   2. Both compose files parsed, interpolated and validated by a real compose implementation (`config`), with a
#      throwaway env file made from env.example, and their rendered shape checked (services, GPUs, ports, waits).
#   3. nginx -t on nginx/nginx-8gpu.conf: as rewritten for loopback (what the nginx pool test runs), and unmodified
#      with the vllm-N names resolved through a private /etc/hosts in a mount namespace of its own.
#   4. The setup scripts parse as POSIX sh; the Dockerfile runs as non-root and .dockerignore keeps secrets out.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() {
  echo "check-deploy: $*" >&2
  exit 1
}

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || fail "nginx is not installed (make deploy-tools)"
command -v docker-compose >/dev/null || fail "docker-compose is not installed (make deploy-tools)"

step "validate-env"
if scripts/validate-env.sh env.example 2>"$tmp/validate.err"; then fail "env.example passed validate-env"; fi
for name in MODEL_NAME HF_TOKEN POSTGRES_PASSWORD; do
  grep -q "$name is a placeholder" "$tmp/validate.err" || fail "validate-env did not name $name: $(cat "$tmp/validate.err")"
done
echo "env.example rejected, naming: $(grep -o '[A-Z_]* is a placeholder' "$tmp/validate.err" | cut -d' ' -f1 | xargs)"
sed -e 's|^MODEL_NAME=.*|MODEL_NAME=Qwen/Qwen2.5-0.5B-Instruct|' -e 's|^HF_TOKEN=.*|HF_TOKEN=|' \
  -e 's|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=check-deploy-password|' env.example >"$tmp/env"
scripts/validate-env.sh "$tmp/env"
grep -v '^MODEL_NAME=' "$tmp/env" >"$tmp/env-no-model"
if scripts/validate-env.sh "$tmp/env-no-model" 2>"$tmp/validate.err"; then fail "a missing MODEL_NAME passed"; fi
grep -q 'MODEL_NAME is missing' "$tmp/validate.err" || fail "validate-env did not name the missing MODEL_NAME"
echo "a missing MODEL_NAME is named"

step "compose config"
implementations=("docker-compose")
if docker compose version >/dev/null 2>&1; then implementations+=("docker compose"); fi
expected_common="batch-api postgres temporal temporal-namespace temporal-schema temporal-ui worker"
declare -A expected=(
  [docker-compose.yml]="$expected_common vllm"
  [docker-compose.8gpu.yml]="$expected_common vllm-1 vllm-2 vllm-3 vllm-4 vllm-5 vllm-6 vllm-7 vllm-8 vllm-lb"
)
for impl in "${implementations[@]}"; do
  echo "$impl: $($impl version 2>/dev/null | head -1)"
  for file in docker-compose.yml docker-compose.8gpu.yml; do
    # BESH_ENV_FILE: the env_file of the BESH services; --env-file: the interpolation variables. A user's .env
    # is neither read nor written.
    BESH_ENV_FILE="$tmp/env" $impl --env-file "$tmp/env" -f "$file" config >"$tmp/rendered.yml" ||
      fail "$impl rejected $file"
    services=$(BESH_ENV_FILE="$tmp/env" $impl --env-file "$tmp/env" -f "$file" config --services | sort | xargs)
    want=$(tr ' ' '\n' <<<"${expected[$file]}" | sort | xargs)
    [ "$services" = "$want" ] || fail "$file services: got [$services], want [$want]"
    python3 - "$file" "$tmp/rendered.yml" <<'EOF'
import sys, yaml

name, path = sys.argv[1], sys.argv[2]
cfg = yaml.safe_load(open(path))
svc = cfg["services"]
problems = []

def check(cond, msg):
    if not cond:
        problems.append(msg)

def waits(service, dep, condition):
    got = (svc[service].get("depends_on") or {}).get(dep, {}).get("condition")
    check(got == condition, f"{service} should wait for {dep} {condition} (got {got})")

def host_ports(service):
    out = []
    for p in svc[service].get("ports") or []:
        out.append(str(p.get("published")) if isinstance(p, dict) else str(p).split(":")[-2])
    return out

def gpus(service):
    devices = svc[service].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return devices

for s in ("batch-api", "worker"):
    env = svc[s]["environment"]
    check(env.get("BESH_HOST") == "0.0.0.0", f"{s}: BESH_HOST must be 0.0.0.0")
    check(env.get("DATA_DIR") == "/data", f"{s}: DATA_DIR must be /data")
    check(env.get("TEMPORAL_ADDRESS") == "temporal:7233", f"{s}: TEMPORAL_ADDRESS")
    check(str(env.get("DATABASE_URL", "")).startswith("postgres://besh:check-deploy-password@postgres:5432/"), f"{s}: DATABASE_URL")
    check(any(str(v).startswith("besh-data:/data") or (isinstance(v, dict) and v.get("source") == "besh-data" and v.get("target") == "/data") for v in svc[s].get("volumes", [])), f"{s}: shared besh-data volume at /data")
    waits(s, "postgres", "service_healthy")
    waits(s, "temporal-namespace", "service_completed_successfully")
check("container_name" not in svc["worker"] and not svc["worker"].get("ports"), "worker must scale: no container_name, no ports")
check(host_ports("batch-api") == ["5000"], f"batch-api on :5000 (got {host_ports('batch-api')})")
check(host_ports("temporal-ui") == ["8080"], f"temporal-ui on :8080 (got {host_ports('temporal-ui')})")
waits("temporal-schema", "postgres", "service_healthy")
waits("temporal", "temporal-schema", "service_completed_successfully")
waits("temporal-namespace", "temporal", "service_healthy")
check(svc["temporal"]["image"].startswith("temporalio/server:"), "temporal runs temporalio/server")
check("auto-setup" not in open(path).read(), "no temporalio/auto-setup")
check(svc["temporal"]["environment"].get("DB") == "postgres12", "temporal persists to PostgreSQL")
for s, spec in svc.items():
    # One-shot jobs exit; the worker has no port; nothing waits for the UI.
    if s not in ("temporal-schema", "temporal-namespace", "worker", "temporal-ui"):
        check("healthcheck" in spec, f"{s}: healthcheck")

if name == "docker-compose.yml":
    waits("worker", "vllm", "service_healthy")
    check(svc["worker"]["environment"]["VLLM_BASE_URL"] == "http://vllm:8000/v1", "worker -> vllm")
    devices = gpus("vllm")
    check(len(devices) == 1 and devices[0].get("count") == 1 and "gpu" in devices[0].get("capabilities", []), f"vllm: one GPU (got {devices})")
    check("--model=Qwen/Qwen2.5-0.5B-Instruct" in svc["vllm"]["command"], "vllm: --model from MODEL_NAME")
else:
    waits("worker", "vllm-lb", "service_healthy")
    env = svc["worker"]["environment"]
    check(env["VLLM_BASE_URL"] == "http://vllm-lb:8000/v1", "worker -> vllm-lb")
    check(int(env["MAX_WORKERS"]) == 1024 and int(env["MAX_CONCURRENT_BATCHES"]) == 8, "8-GPU MAX_WORKERS/MAX_CONCURRENT_BATCHES")
    for i in range(1, 9):
        devices = gpus(f"vllm-{i}")
        check(len(devices) == 1 and devices[0].get("device_ids") == [str(i - 1)], f"vllm-{i}: GPU {i - 1} (got {devices})")
        check(host_ports(f"vllm-{i}") == [str(8000 + i)], f"vllm-{i}: host port {8000 + i}")
        check(f"vllm-{i}" in (svc["vllm-lb"].get("depends_on") or {}), f"vllm-lb starts after vllm-{i}")
    check(host_ports("vllm-lb") == ["8000"], "vllm-lb on :8000")
    check(any("nginx-8gpu.conf" in str(v) for v in svc["vllm-lb"]["volumes"]), "vllm-lb mounts nginx/nginx-8gpu.conf")

if problems:
    print(f"{name}: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{name}: valid; {len(svc)} services; waits, GPUs, ports and shared volume as intended")
EOF
  done
  # Without a password the stacks refuse to start, naming the variable.
  grep -v '^POSTGRES_PASSWORD=' "$tmp/env" >"$tmp/env-no-pw"
  if BESH_ENV_FILE="$tmp/env-no-pw" $impl --env-file "$tmp/env-no-pw" -f docker-compose.yml config >/dev/null 2>"$tmp/err"; then
    fail "$impl accepted docker-compose.yml without POSTGRES_PASSWORD"
  fi
  grep -q 'POSTGRES_PASSWORD' "$tmp/err" || fail "the error without POSTGRES_PASSWORD does not name it: $(cat "$tmp/err")"
  echo "$impl: without POSTGRES_PASSWORD: refused, naming it"
done

step "nginx -t ($("$nginx_bin" -v 2>&1 | sed 's/.*: //'))"
scripts/nginx-loopback-conf.sh nginx/nginx-8gpu.conf "$tmp/nginx" 18000 18001 18002 18003 18004 18005 18006 18007 18008
"$nginx_bin" -t -q -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" ||
  fail "nginx -t failed on the loopback rewrite of nginx/nginx-8gpu.conf"
echo "nginx/nginx-8gpu.conf rewritten for loopback (upstreams, listen, paths): ok"
{
  cat /etc/hosts
  for i in 1 2 3 4 5 6 7 8; do echo "127.0.0.1 vllm-$i"; done
} >"$tmp/hosts"
if unshare --mount true 2>/dev/null; then
  unshare --mount sh -c 'mount --bind "$1" /etc/hosts && "$2" -t -q -c "$3" -e "$4"' sh \
    "$tmp/hosts" "$nginx_bin" "$PWD/nginx/nginx-8gpu.conf" "$tmp/nginx/logs/real-error.log" ||
    fail "nginx -t failed on nginx/nginx-8gpu.conf as written"
  echo "nginx/nginx-8gpu.conf as written (vllm-N resolved by a private /etc/hosts): ok"
else
  echo "nginx/nginx-8gpu.conf as written: skipped (no private mount namespace here; the rewrite above was checked)"
fi

step "scripts and image"
for f in temporal/docker/*.sh; do sh -n "$f" || fail "$f does not parse as POSIX sh"; done
for f in scripts/*.sh; do bash -n "$f" || fail "$f does not parse"; done
echo "shell scripts parse"
for pattern in .env data/; do grep -qxF "$pattern" .dockerignore || fail ".dockerignore must exclude $pattern"; done
last_user=$(awk '/^FROM /{u=""} /^USER /{u=$2} END{print u}' Dockerfile)
[ -n "$last_user" ] && [ "$last_user" != root ] && [ "$last_user" != 0 ] || fail "the final Dockerfile stage must set a non-root USER"
grep -qE '^(ARG|ENV) .*(TOKEN|PASSWORD|SECRET|API_KEY)' Dockerfile && fail "the Dockerfile sets a secret-like variable"
awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) print $i }' Dockerfile | while read -r src; do
  [ -e "$src" ] || fail "Dockerfile COPY source $src does not exist"
done
echo "Dockerfile: runs as $last_user; .dockerignore excludes .env and data/; COPY sources exist"

printf '\ncheck-deploy: ok in %ss\n' "$((SECONDS - started))"
