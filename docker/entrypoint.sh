#!/bin/sh
# Entrypoint of the carbonledger image: drop empty CARBONLEDGER_* variables, then run the
# command. Compose passes optional settings as `${VAR:-}`, which arrive as empty strings, and
# an empty CARBONLEDGER_TEAM_RULES_PATH or CARBONLEDGER_BUDGETS_PATH would otherwise be read
# as the path "." (pydantic turns "" into Path(".")). Unset means "use the default".
set -eu

for name in $(env | sed -n 's/^\(CARBONLEDGER_[A-Za-z0-9_]*\)=$/\1/p'); do
    unset "$name"
done

if [ "$#" -eq 0 ]; then
    set -- carbonledger --help
fi
exec "$@"
