#!/bin/sh
# One-shot job (temporalio/admin-tools): waits for the Temporal server, creates BESH's namespace and registers the
# search attributes the batch workflow sets (src/contract/batch-workflow.ts). Safe to run on every `up`.
set -eu

TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${TEMPORAL_RETENTION:-168h}
SEARCH_ATTRIBUTES="BatchStatus BatchEndpoint BatchModel BatchOwner"

# Talk to the server by IPv4 address: the CLI may otherwise try an IPv6 address the container network lacks.
host=${TEMPORAL_ADDRESS%:*}
port=${TEMPORAL_ADDRESS##*:}
ip=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }') || true
address=${ip:-$host}:$port

attempt=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "Temporal at $TEMPORAL_ADDRESS ($address) is not healthy after $attempt attempts" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --address "$address" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create --address "$address" --namespace "$NAMESPACE" --retention "$RETENTION"
fi

existing=$(temporal operator search-attribute list --address "$address" --namespace "$NAMESPACE")
added=0
for name in $SEARCH_ATTRIBUTES; do
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --address "$address" --namespace "$NAMESPACE" \
      --name "$name" --type Keyword
    added=1
  fi
done

# Frontends learn about new namespaces and search attributes from a cache refreshed every ~10 s; wait it out so
# the first batch after `up` does not meet "unknown search attribute".
if [ "$added" = 1 ]; then sleep 15; fi
echo "namespace $NAMESPACE is ready for BESH"
