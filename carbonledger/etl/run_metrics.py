"""The latest value of every non-carbon MLflow metric of a run (accuracy, loss, ...).

The Efficiency page plots them against each run's CO2e; the advice on sweeps and early
stopping reads them too. Written by the ETL in the load's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from carbonledger import contract


def store_run_metrics(conn: Connection, source_id: int, runs: list[Any]) -> int:
    """Upsert the latest non-carbon metrics of MLflow runs (one page of changed runs)."""
    rows = []
    for run in runs:
        keys = [
            key
            for key in run.data.metrics
            if not key.startswith(contract.METRIC_PREFIX) and len(key) <= 250
        ]
        if not keys:  # only the plugin's metrics: no point objects to make
            continue
        objs = {m.key: m for m in getattr(run.data, "_metric_objs", [])}
        for key in keys:
            value = run.data.metrics[key]
            obj = objs.get(key)
            rows.append(
                {
                    "source_id": source_id,
                    "run_id": run.info.run_id,
                    "key": key,
                    "value": float(value) if value == value else None,  # NaN -> NULL
                    "step": getattr(obj, "step", None),
                    "timestamp_ms": getattr(obj, "timestamp", None),
                }
            )
    if not rows:
        return 0
    from sqlalchemy.dialects import postgresql, sqlite

    from carbonledger.ledger.rollup_models import RunMetric

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for i in range(0, len(rows), 1000):  # stay under SQLite's bound-parameter limit
        stmt = dialect.insert(RunMetric).values(rows[i : i + 1000])
        stmt = stmt.on_conflict_do_update(
            index_elements=["source_id", "run_id", "key"],
            set_={
                "value": stmt.excluded.value,
                "step": stmt.excluded.step,
                "timestamp_ms": stmt.excluded.timestamp_ms,
            },
        )
        conn.execute(stmt)
    return len(rows)
