"""Compare two ledgers row for row, table by table, whatever columns the schema has.

Every table of the ledger is read by reflection (so new tables and columns are compared too).
Left out: surrogate keys (an integer primary key ``id``; foreign keys to one are replaced by the
referenced row, recursively, so ``run_energy.run_pk`` compares as the run it belongs to, and
so does ``activity_energy_hours.record_pk`` by its ``record_kind``) and
load bookkeeping that differs between two loads of the same data (columns defaulting to the
load time, ``etl_state.last_load_at`` and ``last_summary`` with its timings, the rollup
watermarks). NaN compares equal to NaN, and floats compare to 12 significant digits: a sum in
a rollup adds the same rows in the ledger's physical order, which differs between two loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, select

from carbonledger.ledger.partitions import PARTITIONED, is_partition_table

# Set by code at load time, not by the data (no server default to recognise them by).
BOOKKEEPING = {
    "etl_state": {"last_load_at", "last_summary"},
    "rollup_state": {
        "refreshed_at",
        "runs_loaded_at",
        "factors_max_id",
        "versions_max_id",
        "windows_max_id",
        "windows_loaded_at",
    },
    "quarantine": {"last_seen_at"},
}
SKIP_TABLES = {"alembic_version"}
# Polymorphic references without a foreign key: (table, kind column, key column) -> kind -> table.
POLYMORPHIC = {
    ("activity_energy_hours", "record_kind", "record_pk"): {
        "run": "runs",
        "window": "inference_windows",
    },
}


def _is_load_time(col: Any) -> bool:
    arg = getattr(col.server_default, "arg", None)
    default = "" if arg is None else str(getattr(arg, "text", arg)).lower()
    return "now()" in default or "current_timestamp" in default


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else float(f"{value:.12g}")
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


@dataclass
class LedgerRows:
    """Each table's rows as sorted tuples of ``(column, value)`` pairs."""

    tables: dict[str, list[tuple[tuple[str, Any], ...]]]

    def diff(self, other: LedgerRows) -> list[str]:
        """One line per table whose rows differ (empty when the ledgers are equal)."""
        out = []
        for name in sorted(set(self.tables) | set(other.tables)):
            mine, theirs = self.tables.get(name), other.tables.get(name)
            if mine == theirs:
                continue
            if mine is None or theirs is None:
                out.append(f"{name}: only in one ledger")
                continue
            a, b = set(map(repr, mine)), set(map(repr, theirs))
            out.append(
                f"{name}: {len(mine)} vs {len(theirs)} rows; only left: {sorted(a - b)[:3]}; "
                f"only right: {sorted(b - a)[:3]}"
            )
        return out


def ledger_rows(engine: Engine) -> LedgerRows:
    """Read every ledger table in natural terms (see the module docstring)."""
    meta = MetaData()
    meta.reflect(engine)
    tables = {
        n: t
        for n, t in meta.tables.items()
        if n not in SKIP_TABLES and not is_partition_table(n)  # a partition's rows: its parent's
    }
    # A surrogate id: the primary key, or with the partition key beside it (PostgreSQL).
    partition_keys = {n: k.column for n, k in PARTITIONED.items()}
    surrogate = {
        n
        for n, t in tables.items()
        if [c.name for c in t.primary_key.columns if c.name != partition_keys.get(n)] == ["id"]
    }
    with engine.connect() as conn:
        raw = {n: [dict(r._mapping) for r in conn.execute(select(t))] for n, t in tables.items()}
    cache: dict[tuple[str, Any], Any] = {}
    by_id = {n: {r["id"]: r for r in raw[n]} for n in surrogate}

    def natural(name: str, row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        table = tables[name]
        refs = {}
        for fk in table.foreign_keys:
            if fk.column.table.name in surrogate and fk.column.name == "id":
                refs[fk.parent.name] = fk.column.table.name
        skip = BOOKKEEPING.get(name, set())
        items = []
        for col in table.columns:
            if col.name in skip or _is_load_time(col):
                continue
            if name in surrogate and col.name == "id":
                continue
            value = row[col.name]
            if col.name in refs and value is not None:
                value = resolve(refs[col.name], value)
            for (table_name, kind, key), targets in POLYMORPHIC.items():
                if name == table_name and col.name == key and row[kind] in targets:
                    value = resolve(targets[row[kind]], value)
            items.append((col.name, _norm(value)))
        return tuple(items)

    def resolve(name: str, key: Any) -> Any:
        if (name, key) not in cache:
            target = by_id[name].get(key)
            cache[(name, key)] = None if target is None else natural(name, target)
        return cache[(name, key)]

    return LedgerRows(
        {n: sorted((natural(n, r) for r in rows), key=repr) for n, rows in raw.items()}
    )


def assert_same_ledger(left: Engine, right: Engine) -> LedgerRows:
    """Fail with the differing tables unless both ledgers hold the same rows."""
    a, b = ledger_rows(left), ledger_rows(right)
    problems = a.diff(b)
    assert not problems, "the ledgers differ:\n" + "\n".join(problems)
    return a
