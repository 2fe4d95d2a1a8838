"""Temporal matching: the energy each run and serving window used in each UTC hour.

A record's energy is spread over the hours between its start and end along a cumulative
curve: the plugin's ``carbon/energy_kwh`` history (cumulative kWh, time-stamped at every
flush; each increment spread evenly between its flush and the previous one, the first from
the start), else a straight line from start to end (even spread). The spreading is one
vectorised pass for all records of a load (``spread``): every record's curve is normalised to
0..1 and offset by its index, so a single ``numpy.interp`` evaluates every hour boundary of
every record. Written once per load into ``activity_energy_hours``; the ``activity_co2e`` view
matches each hour with its factor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, text

from carbonledger import contract
from carbonledger.intensity.hourly import profile_cells
from carbonledger.ledger.partitions import ensure_partitions

S_PER_HOUR = int(contract.S_PER_HOUR)
HOUR_COLUMNS = [
    "record_kind",
    "record_pk",
    "utc_hour",
    "zone",
    "profile_cell",
    "energy_kwh",
    "facility_energy_kwh",
]


def spread(
    start_s: np.ndarray,
    end_s: np.ndarray,
    history: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of each record's energy in each UTC hour.

    Args:
        start_s: epoch seconds of each record's start.
        end_s: epoch seconds of each record's end (``>= start_s``).
        history: record index -> (epoch seconds, cumulative kWh) of its flushes.

    Returns:
        ``(record index, utc_hour, share)`` arrays; the shares of a record sum to 1.
    """
    start = np.asarray(start_s, dtype=np.float64)
    end = np.maximum(np.asarray(end_s, dtype=np.float64), start)
    n = len(start)
    span = end - start
    # Knots of every record's cumulative curve: (index, time from start, share so far).
    k_idx, k_t, k_v = [np.arange(n), np.arange(n)], [np.zeros(n), span], [np.zeros(n), np.ones(n)]
    with_history = np.zeros(n, dtype=bool)
    for i, (times, cum) in (history or {}).items():
        times = np.asarray(times, dtype=np.float64)
        cum = np.maximum.accumulate(np.asarray(cum, dtype=np.float64))
        if not len(cum) or cum[-1] <= 0 or span[i] <= 0:
            continue
        with_history[i] = True
        rel = np.clip(times - start[i], 0.0, span[i])
        k_idx.append(np.full(len(rel), i))
        k_t.append(rel)
        k_v.append(cum / cum[-1])
    idx, t, v = np.concatenate(k_idx), np.concatenate(k_t), np.concatenate(k_v)
    # A record with a history ends at its last flush's share (1.0): its straight-line knot
    # (span, 1) still holds; its start knot (0, 0) too. Drop nothing, sort by (record, time).
    order = np.lexsort((v, t, idx))
    idx, t, v = idx[order], t[order], v[order]
    x = idx * (float(span.max(initial=0.0)) + 1.0) + t
    y = np.maximum.accumulate(v + idx)  # record i's curve lies in [i, i + 1]
    first = np.floor(start / S_PER_HOUR).astype(np.int64)
    last = np.maximum(np.ceil(end / S_PER_HOUR).astype(np.int64), first + 1)
    counts = last - first
    rec = np.repeat(np.arange(n), counts)
    offsets = np.arange(len(rec)) - np.repeat(np.cumsum(counts) - counts, counts)
    hour = first[rec] + offsets
    lo = np.maximum(hour * S_PER_HOUR, start[rec]) - start[rec]
    hi = np.minimum((hour + 1) * S_PER_HOUR, end[rec]) - start[rec]
    base = rec * (float(span.max(initial=0.0)) + 1.0)
    share = np.interp(base + hi, x, y) - np.interp(base + lo, x, y)
    share = np.where(span[rec] > 0, share, 1.0)  # an instant: all of it in its hour
    return rec, hour, np.clip(share, 0.0, None)


def hour_rows(
    kind: str, frame: pd.DataFrame, history: Mapping[int, tuple[np.ndarray, np.ndarray]]
) -> pd.DataFrame:
    """``activity_energy_hours`` rows of ``frame`` (record_pk, start_s, end_s, zone, energy)."""
    rec, hour, share = spread(frame["start_s"].to_numpy(), frame["end_s"].to_numpy(), history)
    energy = frame["energy_kwh"].to_numpy(dtype=np.float64)[rec]
    facility = frame["facility_energy_kwh"].to_numpy(dtype=np.float64)[rec]
    return pd.DataFrame(
        {
            "record_kind": kind,
            "record_pk": frame["record_pk"].to_numpy()[rec],
            "utc_hour": hour,
            "zone": frame["zone"].to_numpy()[rec],
            "profile_cell": profile_cells(hour),
            "energy_kwh": energy * share,
            "facility_energy_kwh": facility * share,
        }
    )


def _epoch_s(values: Iterable[Any]) -> np.ndarray:
    stamps = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True)
    if not len(stamps):
        return np.zeros(0)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def _records(conn: Connection, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    stmt = text(sql)
    if "runs" in params:
        stmt = stmt.bindparams(bindparam("runs", expanding=True))
    rows = [tuple(r) for r in conn.execute(stmt, params).all()]
    frame = pd.DataFrame(
        rows,
        columns=["record_pk", "run_id", "start", "end", "zone", "energy_kwh", "facility"],
    )
    frame = frame.rename(columns={"facility": "facility_energy_kwh"})
    frame["start_s"] = _epoch_s(frame["start"])
    frame["end_s"] = _epoch_s(frame["end"])
    frame["energy_kwh"] = frame["energy_kwh"].fillna(0.0)
    frame["facility_energy_kwh"] = frame["facility_energy_kwh"].fillna(0.0)
    return frame


def write_hours(conn: Connection, kind: str, frame: pd.DataFrame, history: Any = None) -> int:
    """Replace the hours of ``frame``'s records with freshly spread ones."""
    if frame.empty:
        return 0
    pks = [int(p) for p in frame["record_pk"]]
    for i in range(0, len(pks), 500):
        conn.execute(
            text(
                "DELETE FROM activity_energy_hours WHERE record_kind = :k AND record_pk IN :pks"
            ).bindparams(bindparam("pks", expanding=True)),
            {"k": kind, "pks": pks[i : i + 500]},
        )
    rows = hour_rows(kind, frame.reset_index(drop=True), history or {})
    values = [
        (k, int(p), int(h), z, int(c), float(e), float(f))
        for k, p, h, z, c, e, f in rows.itertuples(index=False, name=None)
    ]
    if values:
        hours = rows["utc_hour"]
        first, last = (
            datetime.fromtimestamp(int(h) * S_PER_HOUR, UTC) for h in (hours.min(), hours.max())
        )
        ensure_partitions(conn, first, last)
    if conn.dialect.name == "postgresql":
        from carbonledger.etl.load import copy_values

        copy_values(conn, "activity_energy_hours", HOUR_COLUMNS, values)
    else:
        conn.exec_driver_sql(
            f"INSERT INTO activity_energy_hours ({', '.join(HOUR_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    return len(values)


RUN_CHUNK = 20_000
"""Runs spread and written per step of ``write_run_hours`` (memory is flat in the load)."""
_TODO = "cl_hours_todo"  # ids of the runs whose hours a load writes, walked in chunks

_RUNS = (
    "SELECT r.id, r.run_id, r.start_time, r.end_time, COALESCE(r.grid_zone, 'WORLD'), "
    f"r.energy_kwh, r.facility_energy_kwh FROM {_TODO} t JOIN runs r ON r.id = t.id "
    "WHERE t.id > :after ORDER BY t.id LIMIT :n"
)

_WINDOWS = (
    "SELECT w.id, w.run_id, w.window_start, w.window_end, COALESCE(w.grid_zone, 'WORLD'), "
    "w.energy_kwh, w.facility_energy_kwh FROM inference_windows w "
    "WHERE w.source_id = :source AND w.window_end IS NOT NULL AND w.run_id IN :runs "
    "AND NOT EXISTS "
    "(SELECT 1 FROM activity_energy_hours h WHERE h.record_kind = 'window' "
    "AND h.record_pk = w.id)"
)


def run_histories(
    frame: pd.DataFrame, histories: Iterable[tuple[str, dict[str, list[Any]]]]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Record index -> (epoch s, cumulative kWh) from MLflow metric histories."""
    index = {run_id: i for i, run_id in enumerate(frame["run_id"])}
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for run_id, history in histories:
        points = history.get(contract.M_ENERGY_KWH) or []
        if len(points) < 2 or run_id not in index:
            continue  # one point says nothing about the shape: spread evenly
        times = np.array([p.timestamp for p in points], dtype=np.float64) / contract.MS_PER_S
        values = np.array([p.value for p in points], dtype=np.float64)
        out[index[run_id]] = (times, values)
    return out


def write_run_hours(
    conn: Connection, source: Any, source_id: int, touched_sql: str, *, use_history: bool
) -> int:
    """Hours of the runs a load inserted or changed (``touched_sql``: a run_id subquery).

    The runs are walked in chunks of ``RUN_CHUNK`` by primary key, each chunk with its own
    histories: a record's hours depend on that record only, so the rows are those of one
    spread over all of them, and memory does not grow with the load.
    """
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_TODO}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {_TODO} (id BIGINT PRIMARY KEY)")
    conn.exec_driver_sql(
        f"INSERT INTO {_TODO} (id) SELECT DISTINCT r.id FROM runs r "
        f"WHERE r.source_id = {int(source_id)} AND r.start_time IS NOT NULL "
        "AND r.end_time IS NOT NULL "
        f"AND r.run_id IN (SELECT t.run_id FROM {touched_sql} t)"
    )
    written, after = 0, 0
    while True:
        runs = _records(conn, _RUNS, {"after": after, "n": RUN_CHUNK})
        if runs.empty:
            break
        history: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if use_history:
            keys: Sequence[str] = (contract.M_ENERGY_KWH,)
            history = run_histories(runs, source.metric_histories(list(runs["run_id"]), keys))
        written += write_hours(conn, "run", runs, history)
        if len(runs) < RUN_CHUNK:
            break
        after = int(runs["record_pk"].iloc[-1])
    conn.exec_driver_sql(f"DROP TABLE {_TODO}")
    return written


def write_window_hours(conn: Connection, source_id: int, run_ids: Sequence[str]) -> int:
    """Hours of the windows of the inference runs ``run_ids`` that have none (even spread)."""
    written = 0
    ids = list(run_ids)
    for i in range(0, len(ids), 500):
        params = {"source": source_id, "runs": ids[i : i + 500]}
        written += write_hours(conn, "window", _records(conn, _WINDOWS, params))
    return written
