#!/usr/bin/env bash
# Creates .env from env.example when it is missing, with a random POSTGRES_PASSWORD and random S3 keys (what the
# bundled SeaweedFS store of docker-compose.s3.yml accepts). Never touches an existing .env.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f .env ]; then
  exit 0
fi
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
password=$(random_hex 16)
# The shape of AWS keys: a 20-character key id and a 40-character secret.
access_key=$(random_hex 10 | tr a-f A-F)
secret_key=$(random_hex 20)
sed -e "s/^POSTGRES_PASSWORD=change-me\$/POSTGRES_PASSWORD=$password/" \
  -e "s/^S3_ACCESS_KEY_ID=\$/S3_ACCESS_KEY_ID=$access_key/" \
  -e "s/^S3_SECRET_ACCESS_KEY=\$/S3_SECRET_ACCESS_KEY=$secret_key/" env.example >.env.tmp
chmod 600 .env.tmp
mv .env.tmp .env
echo "Created .env from env.example (with a random POSTGRES_PASSWORD and S3 keys). Set MODEL_NAME and HF_TOKEN in it."
