#!/usr/bin/env bash
# Creates .env from env.example when it is missing, with a random POSTGRES_PASSWORD. Never touches an existing .env.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f .env ]; then
  exit 0
fi
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
sed "s/^POSTGRES_PASSWORD=change-me\$/POSTGRES_PASSWORD=$password/" env.example >.env.tmp
chmod 600 .env.tmp
mv .env.tmp .env
echo "Created .env from env.example (with a random POSTGRES_PASSWORD). Set MODEL_NAME and HF_TOKEN in it."
