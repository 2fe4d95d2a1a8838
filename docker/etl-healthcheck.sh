#!/bin/sh
# Health of the scheduled ETL: healthy when the last successful pass is recent.
#
# Exit 0 when ETL_HEALTH_FILE was touched less than ETL_HEALTH_MAX_AGE_S seconds ago (default
# 1800), or, before any pass has succeeded, when the loop started less than that long ago.
# Exit 1 otherwise, with the reason on stdout (docker inspect shows it).
set -eu

health_file="${ETL_HEALTH_FILE:-/var/lib/carbonledger/etl-last-success}"
max_age="${ETL_HEALTH_MAX_AGE_S:-1800}"
now="$(date +%s)"

if [ -f "$health_file" ]; then
    age=$((now - $(stat -c %Y "$health_file")))
    if [ "$age" -lt "$max_age" ]; then
        echo "ok: last successful ETL pass ${age}s ago"
        exit 0
    fi
    echo "unhealthy: last successful ETL pass ${age}s ago (limit ${max_age}s); see the logs"
    exit 1
fi
if [ -f "$health_file.started" ]; then
    age=$((now - $(cat "$health_file.started")))
    if [ "$age" -lt "$max_age" ]; then
        echo "starting: no successful ETL pass yet, loop started ${age}s ago"
        exit 0
    fi
    echo "unhealthy: no successful ETL pass in the ${age}s since the loop started"
    exit 1
fi
echo "unhealthy: the ETL loop has not started ($health_file.started missing)"
exit 1
