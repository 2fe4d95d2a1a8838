"""Metric histories the recommendations need, kept in ``run_metric_history``.

For each changed training run the ETL reads the full history of its objective metrics (keys
matching ``CARBONLEDGER_HISTORY_KEYS``) and of the plugin's cumulative energy metric, and
replaces what the ledger held for them. A run without an objective metric is skipped on
every read path (REST and direct store read give the same ledger). A history longer than
``CARBONLEDGER_HISTORY_MAX_POINTS`` is downsampled to evenly spaced points that always keep
the first, the last and the best (minimum and maximum) point, so the ledger stays bounded
(``max_points`` rows per key and run) and the step of the best value is never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, delete, insert

from carbonledger import contract
from carbonledger.etl.sources import Source
from carbonledger.etl.transform import RunRecord


def history_keys(metric_keys: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The keys of a run whose histories the ledger keeps (objective metrics, energy)."""
    patterns = tuple(patterns)
    keys = sorted(k for k in metric_keys if _matches(k, patterns))
    if contract.M_ENERGY_KWH in metric_keys:
        keys.append(contract.M_ENERGY_KWH)
    return keys


@lru_cache(maxsize=4096)
def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    """Whether a metric key matches one of the patterns (cached: a store repeats its keys)."""
    return any(fnmatchcase(key.lower(), p) for p in patterns)


def downsample(
    points: list[tuple[int, int, float]], max_points: int
) -> list[tuple[int, int, float]]:
    """At most ``max_points`` of ``(step, timestamp_ms, value)`` points, in step order.

    Keeps evenly spaced points plus the first, the last, the minimum and the maximum.
    """
    points = sorted(points)
    if len(points) <= max_points:
        return points
    n = len(points)
    keep = {0, n - 1}
    keep.add(min(range(n), key=lambda i: points[i][2]))
    keep.add(max(range(n), key=lambda i: points[i][2]))
    evenly = [round(j * (n - 1) / (max_points - 1)) for j in range(max_points)]
    for i in (*evenly, *range(n)):  # evenly spaced first; any gap left by duplicates after
        if len(keep) >= max_points:
            break
        keep.add(i)
    return [points[i] for i in sorted(keep)][:max_points]


def store_metric_histories(
    conn: Connection,
    source: Source,
    source_id: int,
    runs: list[Any],
    records: list[RunRecord],
) -> int:
    """Replace the kept histories of the changed training runs; returns the points written."""
    from carbonledger.ledger.rollup_models import RunMetricHistory
    from carbonledger.settings import get_settings

    settings = get_settings()
    training = {r.row["run_id"] for r in records if r.row.get("kind") == contract.KIND_TRAINING}
    wanted = {
        run.info.run_id: history_keys(list(run.data.metrics), settings.history_keys)
        for run in runs
        if run.info.run_id in training
    }
    # Only runs with an objective metric (the advice needs both) get their energy history
    # too, on every read path, so a store loaded through REST or SQL gives one ledger
    # (through the REST client each history is one request per key and run).
    wanted = {
        run_id: keys for run_id, keys in wanted.items() if keys and keys != [contract.M_ENERGY_KWH]
    }
    written = 0
    all_keys = sorted({k for keys in wanted.values() for k in keys})
    if not wanted:
        return 0
    for run_id, history in source.metric_histories(list(wanted), all_keys):
        rows = []
        for key in wanted[run_id]:
            points = [
                (int(m.step), int(m.timestamp), float(m.value))
                for m in history.get(key, [])
                if m.value == m.value  # NaN is no point
            ]
            by_step = {step: (step, ts, value) for step, ts, value in sorted(points)}
            for step, ts, value in downsample(list(by_step.values()), settings.history_max_points):
                rows.append(
                    {
                        "source_id": source_id,
                        "run_id": run_id,
                        "key": key,
                        "step": step,
                        "timestamp_ms": ts,
                        "value": value,
                    }
                )
        conn.execute(
            delete(RunMetricHistory).where(
                RunMetricHistory.source_id == source_id, RunMetricHistory.run_id == run_id
            )
        )
        for i in range(0, len(rows), 1000):
            conn.execute(insert(RunMetricHistory), rows[i : i + 1000])
        written += len(rows)
    return written
