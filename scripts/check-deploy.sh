#!/usr/bin/env bash
# Static checks of the deployment files that need no Docker engine (`make check-deploy`; .ci/run calls it):
#   1. validate-env: env.example is rejected naming each placeholder; a filled-in copy passes, with the local store
#      and with BLOB_STORE=s3 (test/unit/validate-env.test.ts has a case for each bad S3 setting).
#   2. Both compose files, each alone and with docker-compose.s3.yml, parsed, interpolated and validated by a real
#      compose implementation (`config`), with a throwaway env file made from env.example, and their rendered shape
#      checked (services, GPUs, ports, waits, volumes, the S3 store and its bucket job); the bucket job's script run
#      against a stand-in `weed`.
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
for name in BLOB_STORE S3_ENDPOINT S3_REGION S3_BUCKET S3_PREFIX S3_FORCE_PATH_STYLE S3_ACCESS_KEY_ID \
  S3_SECRET_ACCESS_KEY SEAWEEDFS_VERSION; do
  grep -q "^$name=" env.example || fail "env.example does not list $name"
done
grep -qx 'BLOB_STORE=local' env.example || fail "env.example must keep BLOB_STORE=local, the one-host default"
# The S3 variant: what `make check-env` fills in (the keys) plus the two lines a user changes.
{
  cat "$tmp/env"
  printf '%s\n' BLOB_STORE=s3 S3_BUCKET=besh-check S3_ACCESS_KEY_ID=CHECKDEPLOYKEY S3_SECRET_ACCESS_KEY=check-deploy-secret
} >"$tmp/env-s3"
scripts/validate-env.sh "$tmp/env-s3"
{
  cat "$tmp/env-s3"
  printf '%s\n' S3_BUCKET= S3_FORCE_PATH_STYLE=yes
} >"$tmp/env-s3-bad"
if scripts/validate-env.sh "$tmp/env-s3-bad" 2>"$tmp/validate.err"; then fail "BLOB_STORE=s3 without a bucket passed"; fi
for name in S3_BUCKET S3_FORCE_PATH_STYLE; do
  grep -q "^  - $name " "$tmp/validate.err" || fail "validate-env did not name $name: $(cat "$tmp/validate.err")"
done
echo "BLOB_STORE=s3: complete settings pass; a missing bucket and a bad S3_FORCE_PATH_STYLE are named"

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
    for store in local s3; do
      # BESH_ENV_FILE: the env_file of the BESH services; --env-file: the interpolation variables. A user's .env
      # is neither read nor written.
      files=(-f "$file") env="$tmp/env" want=${expected[$file]} label=$file
      if [ "$store" = s3 ]; then
        files+=(-f docker-compose.s3.yml) env="$tmp/env-s3" want="$want s3 s3-bucket" label="$file + docker-compose.s3.yml"
      fi
      BESH_ENV_FILE="$env" $impl --env-file "$env" "${files[@]}" config >"$tmp/rendered.yml" ||
        fail "$impl rejected $label"
      services=$(BESH_ENV_FILE="$env" $impl --env-file "$env" "${files[@]}" config --services | sort | xargs)
      want=$(tr ' ' '\n' <<<"$want" | sort | xargs)
      [ "$services" = "$want" ] || fail "$label services: got [$services], want [$want]"
      python3 - "$file" "$tmp/rendered.yml" "$store" "$label" <<'EOF'
import sys, yaml

name, path, store, label = sys.argv[1:5]
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

def mounts_data(service):
    return any(str(v).startswith("besh-data:/data") or (isinstance(v, dict) and v.get("source") == "besh-data" and v.get("target") == "/data") for v in svc[service].get("volumes", []))

for s in ("batch-api", "worker"):
    env = svc[s]["environment"]
    check(env.get("BESH_HOST") == "0.0.0.0", f"{s}: BESH_HOST must be 0.0.0.0")
    check(env.get("DATA_DIR") == "/data", f"{s}: DATA_DIR must be /data")
    check(env.get("TEMPORAL_ADDRESS") == "temporal:7233", f"{s}: TEMPORAL_ADDRESS")
    check(str(env.get("DATABASE_URL", "")).startswith("postgres://besh:check-deploy-password@postgres:5432/"), f"{s}: DATABASE_URL")
    waits(s, "postgres", "service_healthy")
    waits(s, "temporal-namespace", "service_completed_successfully")
    if store == "local":
        check(env.get("BLOB_STORE") == "local", f"{s}: BLOB_STORE=local from .env (got {env.get('BLOB_STORE')})")
        check(mounts_data(s), f"{s}: shared besh-data volume at /data")
    else:
        want = {"BLOB_STORE": "s3", "S3_ENDPOINT": "http://s3:8333", "S3_FORCE_PATH_STYLE": "true", "S3_BUCKET": "besh-check",
                "S3_ACCESS_KEY_ID": "CHECKDEPLOYKEY", "S3_SECRET_ACCESS_KEY": "check-deploy-secret"}
        got = {k: env.get(k) for k in want}
        check(got == want, f"{s}: S3 settings {got}, want {want}")
        waits(s, "s3-bucket", "service_completed_successfully")
if store == "local":
    check("s3" not in svc and "s3-bucket" not in svc, "no S3 store without docker-compose.s3.yml")
else:
    # The workers share nothing but the services: /data is a tmpfs, no volume. The API keeps api-key.txt.
    check(mounts_data("batch-api"), "batch-api keeps besh-data at /data (api-key.txt)")
    wv = svc["worker"].get("volumes", [])
    check(not mounts_data("worker") and all(isinstance(v, dict) and v.get("type") == "tmpfs" for v in wv), f"worker: no volume with S3 (got {wv})")
    image = svc["s3"]["image"]
    repo, _, tag = image.partition(":")
    check(repo == "chrislusf/seaweedfs" and tag and tag != "latest", f"s3: a pinned chrislusf/seaweedfs tag (got {image})")
    check(svc["s3-bucket"]["image"] == image, "s3-bucket runs the store's own image (weed shell)")
    check(svc["s3"]["command"][:1] == ["server"] and "-s3" in svc["s3"]["command"], "s3: weed server -s3")
    env = svc["s3"]["environment"]
    check(env.get("AWS_ACCESS_KEY_ID") == "CHECKDEPLOYKEY" and env.get("AWS_SECRET_ACCESS_KEY") == "check-deploy-secret", "s3: admin key from S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY")
    check("healthz" in " ".join(svc["s3"]["healthcheck"]["test"]), "s3: healthcheck on /healthz")
    check(svc["s3-bucket"]["environment"].get("S3_BUCKET") == "besh-check", "s3-bucket: creates S3_BUCKET")
    waits("s3-bucket", "s3", "service_healthy")
    ports = svc["s3"].get("ports") or []
    check(len(ports) == 1 and (ports[0].get("host_ip") if isinstance(ports[0], dict) else str(ports[0]).split(":")[0]) == "127.0.0.1", f"s3: published on loopback only (got {ports})")
    check(any(str(v).startswith("s3-data:/data") or (isinstance(v, dict) and v.get("source") == "s3-data") for v in svc["s3"].get("volumes", [])), "s3: data in volume s3-data")
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
    if s not in ("temporal-schema", "temporal-namespace", "s3-bucket", "worker", "temporal-ui"):
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
    print(f"{label}: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
extra = "S3 store, bucket job, workers without a volume" if store == "s3" else "shared volume"
print(f"{label}: valid; {len(svc)} services; waits, GPUs, ports and {extra} as intended")
EOF
    done
  done
  # Without a password the stacks refuse to start, naming the variable.
  grep -v '^POSTGRES_PASSWORD=' "$tmp/env" >"$tmp/env-no-pw"
  if BESH_ENV_FILE="$tmp/env-no-pw" $impl --env-file "$tmp/env-no-pw" -f docker-compose.yml config >/dev/null 2>"$tmp/err"; then
    fail "$impl accepted docker-compose.yml without POSTGRES_PASSWORD"
  fi
  grep -q 'POSTGRES_PASSWORD' "$tmp/err" || fail "the error without POSTGRES_PASSWORD does not name it: $(cat "$tmp/err")"
  echo "$impl: without POSTGRES_PASSWORD: refused, naming it"
  # Without a key pair the S3 store would run open to anyone: refused, like a missing bucket.
  for name in S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY S3_BUCKET; do
    grep -v "^$name=" "$tmp/env-s3" >"$tmp/env-s3-without"
    if BESH_ENV_FILE="$tmp/env-s3-without" $impl --env-file "$tmp/env-s3-without" -f docker-compose.yml \
      -f docker-compose.s3.yml config >/dev/null 2>"$tmp/err"; then
      fail "$impl accepted docker-compose.s3.yml without $name"
    fi
    grep -q "$name" "$tmp/err" || fail "the error without $name does not name it: $(cat "$tmp/err")"
  done
  echo "$impl: docker-compose.s3.yml without S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY or S3_BUCKET: refused, naming it"
done

# The bucket job's script as compose runs it ($$ -> $), against a stand-in `weed shell` whose filer is not ready on
# the first attempt: the job must retry, then exit 0 only once the bucket is listed.
python3 -c 'import yaml; print(yaml.safe_load(open("docker-compose.s3.yml"))["services"]["s3-bucket"]["entrypoint"][2].replace("$$", "$"))' \
  >"$tmp/s3-bucket.sh"
mkdir -p "$tmp/fake-bin"
cat >"$tmp/fake-bin/weed" <<'EOF'
#!/bin/sh
# weed shell -master=s3:9333 -filer=s3:8888, commands on stdin; always exits 0, like the real one.
[ "$1 $2 $3" = "shell -master=s3:9333 -filer=s3:8888" ] || { echo "unexpected arguments: $*" >&2; exit 2; }
read -r cmd
state=$(dirname "$0")/state
case $cmd in
  "s3.bucket.create -name "*)
    if [ -f "$state.tried" ]; then echo "${cmd#s3.bucket.create -name }" >"$state"; else touch "$state.tried"; fi
    echo "error: filer not ready" >&2 ;;
  s3.bucket.list) [ -f "$state" ] && printf '  other\tsize:0\n  %s\tsize:0\tlogical:0\tchunk:0\n' "$(cat "$state")" ;;
esac
exit 0
EOF
chmod +x "$tmp/fake-bin/weed"
PATH="$tmp/fake-bin:$PATH" S3_BUCKET=besh-check sh "$tmp/s3-bucket.sh" >"$tmp/s3-bucket.out" 2>&1 ||
  fail "the s3-bucket job failed against the stand-in weed: $(cat "$tmp/s3-bucket.out")"
[ "$(cat "$tmp/fake-bin/state")" = besh-check ] || fail "the s3-bucket job did not create S3_BUCKET"
echo "s3-bucket job: retries until the bucket is listed, then exits 0 ($(tail -1 "$tmp/s3-bucket.out"))"

step "nginx -t ($("$nginx_bin" -v 2>&1 | sed 's/.*: //'))"
scripts/nginx-loopback-conf.sh nginx/nginx-8gpu.conf "$tmp/nginx" 18000 18001 18002 18003 18004 18005 18006 18007 18008
"$nginx_bin" -t -q -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" ||
  fail "nginx -t failed on the loopback rewrite of nginx/nginx-8gpu.conf"
echo "nginx/nginx-8gpu.conf rewritten for loopback (upstreams, listen, paths): ok"
# The commented two-model alternative: two upstream groups of four servers, one port each.
scripts/nginx-loopback-conf.sh nginx/nginx-8gpu-2models.conf "$tmp/nginx2" 18000 18001 18002 18003 18004 18005 18006 18007 18008
"$nginx_bin" -t -q -p "$tmp/nginx2" -c "$tmp/nginx2/nginx.conf" -e "$tmp/nginx2/logs/error.log" ||
  fail "nginx -t failed on the loopback rewrite of nginx/nginx-8gpu-2models.conf"
echo "nginx/nginx-8gpu-2models.conf rewritten for loopback: ok"
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
