#!/bin/sh
# The scheduled ETL of docker/compose.yaml: `carbonledger etl` every ETL_INTERVAL_S seconds.
#
# The migrations have already run (the `migrate` service, `carbonledger db upgrade`). Tracking
# servers, ledger and team rules come from the CARBONLEDGER_* settings. After every pass that
# succeeds the loop touches ETL_HEALTH_FILE; `carbonledger-etl-healthcheck` reports unhealthy
# when that file is older than ETL_HEALTH_MAX_AGE_S. A failed pass (tracking server down,
# another ETL holding the lock) is logged and retried at the next tick: the load is one
# transaction per source, so a failure leaves the ledger as it was.
#
# Variables:
#   ETL_INTERVAL_S       seconds between the starts of two passes (default 300)
#   ETL_LOCK_TIMEOUT_S   --lock-timeout of each pass (default 60)
#   ETL_HEALTH_FILE      file touched after each successful pass
#                        (default /var/lib/carbonledger/etl-last-success)
#   ETL_MAX_PASSES       stop after this many passes (default 0: forever; for tests)
set -eu

interval="${ETL_INTERVAL_S:-300}"
lock_timeout="${ETL_LOCK_TIMEOUT_S:-60}"
health_file="${ETL_HEALTH_FILE:-/var/lib/carbonledger/etl-last-success}"
max_passes="${ETL_MAX_PASSES:-0}"

case "$interval" in
    '' | *[!0-9]*)
        echo "carbonledger-etl-loop: ETL_INTERVAL_S must be a whole number of seconds" >&2
        exit 2
        ;;
esac
if [ "$interval" -lt 1 ]; then
    echo "carbonledger-etl-loop: ETL_INTERVAL_S must be at least 1" >&2
    exit 2
fi

mkdir -p "$(dirname "$health_file")"
# The health check measures age from the start of the loop until the first pass succeeds.
date +%s > "$health_file.started"

stop=0
trap 'stop=1' TERM INT

log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) carbonledger-etl-loop: $*" >&2
}

log "every ${interval}s, lock timeout ${lock_timeout}s, health file ${health_file}"
passes=0
while [ "$stop" -eq 0 ]; do
    started="$(date +%s)"
    if carbonledger etl --quiet --lock-timeout "$lock_timeout"; then
        touch "$health_file"
    else
        log "pass failed (exit $?); retrying in ${interval}s"
    fi
    passes=$((passes + 1))
    if [ "$max_passes" -gt 0 ] && [ "$passes" -ge "$max_passes" ]; then
        break
    fi
    elapsed=$(($(date +%s) - started))
    wait_s=$((interval - elapsed))
    if [ "$wait_s" -gt 0 ] && [ "$stop" -eq 0 ]; then
        # sleep in the background so that SIGTERM (docker stop) ends the wait at once
        sleep "$wait_s" &
        wait $! || true
    fi
done
log "stopped after ${passes} pass(es)"
