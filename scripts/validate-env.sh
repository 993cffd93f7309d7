#!/usr/bin/env bash
# Checks the env file the compose stacks read (default .env) and names every variable that is missing or still a
# placeholder, and, with BLOB_STORE=s3, every S3 setting BESH would refuse. Exit 1 when there is any.
#   scripts/validate-env.sh [FILE]
set -euo pipefail
file=${1:-.env}

if [ ! -f "$file" ]; then
  echo "validate-env: $file does not exist (make check-env creates it from env.example)" >&2
  exit 1
fi

declare -A value=()
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%$'\r'}
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
  name=${BASH_REMATCH[2]} v=${BASH_REMATCH[3]}
  if [[ $v =~ ^\"(.*)\"$ || $v =~ ^\'(.*)\'$ ]]; then v=${BASH_REMATCH[1]}; fi
  value[$name]=$v
done <"$file"

is_placeholder() {
  local v=${1,,}
  [[ $v == *change-me* || $v == *changeme* || $v == your_* || $v == your-* || $v == *get_your_own* ||
    $v == \<*\> || $v == todo || $v == xxx* ]]
}

problems=()
# Needed by every stack, with no usable default.
for name in MODEL_NAME POSTGRES_PASSWORD; do
  if [ -z "${value[$name]+set}" ]; then
    problems+=("$name is missing")
  elif [ -z "${value[$name]}" ]; then
    problems+=("$name is empty")
  fi
done
# Any variable left at a placeholder (HF_TOKEN may be empty for public models, but not change-me).
for name in "${!value[@]}"; do
  if is_placeholder "${value[$name]}"; then problems+=("$name is a placeholder (${value[$name]})"); fi
done
pw=${value[POSTGRES_PASSWORD]:-}
if [ -n "$pw" ] && ! is_placeholder "$pw" && [[ ! $pw =~ ^[A-Za-z0-9._~-]+$ ]]; then
  problems+=("POSTGRES_PASSWORD may only contain letters, digits and . _ ~ - (it is part of DATABASE_URL)")
fi
model=${value[MODEL_NAME]:-}
if [ -n "$model" ] && ! is_placeholder "$model" && [[ ! $model =~ ^[A-Za-z0-9._/-]+$ ]]; then
  problems+=("MODEL_NAME does not look like a Hugging Face model id (org/name)")
fi

# The blob store: local (default) or s3, whose settings src/config.ts checks the same way at start.
store=${value[BLOB_STORE]:-local}
if [ "$store" != local ] && [ "$store" != s3 ]; then
  problems+=("BLOB_STORE must be local or s3 (got $store)")
fi
if [ "$store" = s3 ]; then
  bucket=${value[S3_BUCKET]:-}
  if [ -z "$bucket" ]; then
    problems+=("S3_BUCKET is required when BLOB_STORE=s3")
  elif ! is_placeholder "$bucket" && [[ ! $bucket =~ ^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$ ]]; then
    problems+=("S3_BUCKET is not a bucket name (letters, digits, . - _; 2 to 255 of them): $bucket")
  fi
  if [[ ${value[S3_PREFIX]:-} == /* ]]; then
    problems+=("S3_PREFIX must not start with / (got ${value[S3_PREFIX]})")
  fi
  key_id=${value[S3_ACCESS_KEY_ID]:-} secret=${value[S3_SECRET_ACCESS_KEY]:-}
  if [ -n "$key_id" ] && [ -z "$secret" ]; then
    problems+=("S3_ACCESS_KEY_ID is set without S3_SECRET_ACCESS_KEY: set both, or neither (the AWS SDK's chain)")
  elif [ -z "$key_id" ] && [ -n "$secret" ]; then
    problems+=("S3_SECRET_ACCESS_KEY is set without S3_ACCESS_KEY_ID: set both, or neither (the AWS SDK's chain)")
  fi
  endpoint=${value[S3_ENDPOINT]:-}
  if [ -n "$endpoint" ] && ! is_placeholder "$endpoint" &&
    [[ ! $endpoint =~ ^https?://[^/[:space:]]+(/[^[:space:]]*)?$ ]]; then
    problems+=("S3_ENDPOINT must be an http:// or https:// URL, or empty for AWS (got $endpoint)")
  fi
  path_style=${value[S3_FORCE_PATH_STYLE]:-false}
  if [ "${path_style,,}" != true ] && [ "${path_style,,}" != false ]; then
    problems+=("S3_FORCE_PATH_STYLE must be true or false (got $path_style)")
  fi
fi

if [ "${#problems[@]}" -gt 0 ]; then
  echo "validate-env: $file needs attention:" >&2
  printf '%s\n' "${problems[@]}" | sort | sed 's/^/  - /' >&2
  exit 1
fi
echo "validate-env: $file is complete"
