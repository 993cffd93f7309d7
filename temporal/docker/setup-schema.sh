#!/bin/sh
# One-shot job (temporalio/admin-tools): creates Temporal's two PostgreSQL databases and brings their schemas up
# to the version this admin-tools image ships. Safe to run on every `up`: existing databases are kept, applied
# schema versions are skipped.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
DB_PORT=${DB_PORT:-5432}
SCHEMA_ROOT=${SCHEMA_ROOT:-/etc/temporal/schema/postgresql/v12}

sql_tool() {
  # The password comes from SQL_PASSWORD in the environment, not from the command line.
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

attempt=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "PostgreSQL at $POSTGRES_SEEDS:$DB_PORT did not answer after $attempt attempts" >&2
    exit 1
  fi
  sleep 2
done

setup() {
  db=$1 versioned=$2
  if out=$(sql_tool --db "$db" create 2>&1); then
    echo "created database $db"
  else
    case "$out" in
      *"already exists"*) echo "database $db exists" ;;
      *)
        echo "$out" >&2
        exit 1
        ;;
    esac
  fi
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$versioned"
}

setup "${DBNAME:-temporal}" "$SCHEMA_ROOT/temporal/versioned"
setup "${VISIBILITY_DBNAME:-temporal_visibility}" "$SCHEMA_ROOT/visibility/versioned"
echo "Temporal schema is up to date"
