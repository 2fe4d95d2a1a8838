#!/usr/bin/env bash
# Creates the carbonledger databases and roles on the first start of an empty data volume.
#
# Mounted as /docker-entrypoint-initdb.d/10-carbonledger-init.sh in the postgres service
# (docker/compose.yaml); the official image runs it (or sources it when it is not executable)
# as POSTGRES_USER against POSTGRES_DB. The SQL itself is docker/postgres/carbonledger-init.sql,
# mounted at INIT_SQL_FILE (default /carbonledger/carbonledger-init.sql). Every name and
# password comes from the environment.
#
# Run it again by hand after changing a password in docker/.env:
#   docker compose -f docker/compose.yaml exec postgres \
#       /docker-entrypoint-initdb.d/10-carbonledger-init.sh
set -euo pipefail

init_sql="${INIT_SQL_FILE:-/carbonledger/carbonledger-init.sql}"

missing=()
for name in POSTGRES_USER LEDGER_DB LEDGER_ETL_USER LEDGER_ETL_PASSWORD LEDGER_APP_USER \
    LEDGER_APP_PASSWORD MLFLOW_DB MLFLOW_DB_USER MLFLOW_DB_PASSWORD; do
    if [ -z "${!name:-}" ]; then
        missing+=("$name")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "carbonledger init: set ${missing[*]} in docker/.env (see docker/.env.example)" >&2
    exit 1
fi

# Fail closed on the placeholders of docker/.env.example.
for name in POSTGRES_PASSWORD LEDGER_ETL_PASSWORD LEDGER_APP_PASSWORD MLFLOW_DB_PASSWORD; do
    case "${!name:-}" in
        change-me*)
            echo "carbonledger init: $name still holds the placeholder from .env.example;" \
                "generate one (openssl rand -hex 24) and put it in docker/.env" >&2
            exit 1
            ;;
    esac
done

distinct="$(printf '%s\n' "$LEDGER_ETL_USER" "$LEDGER_APP_USER" "$MLFLOW_DB_USER" | sort -u | wc -l)"
if [ "$distinct" -ne 3 ]; then
    echo "carbonledger init: LEDGER_ETL_USER, LEDGER_APP_USER and MLFLOW_DB_USER must differ" >&2
    exit 1
fi

psql --no-psqlrc --set ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    --file "$init_sql"
echo "carbonledger init: databases $LEDGER_DB and $MLFLOW_DB, roles $LEDGER_ETL_USER (owner)," \
    "$LEDGER_APP_USER (read-only) and $MLFLOW_DB_USER ready"
