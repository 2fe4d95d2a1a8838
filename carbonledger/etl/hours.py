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


Histories = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Flushes of several records: ``(record index, epoch seconds, cumulative kWh)`` arrays, each
record's points side by side in their logged order."""

WIDE_HISTORY = 64
"""Histories up to this many points are accumulated as rows of one padded 2-D array."""


def flat_histories(history: Mapping[int, tuple[np.ndarray, np.ndarray]] | None) -> Histories:
    """``record index -> (epoch seconds, cumulative kWh)`` as :data:`Histories`."""
    items = list((history or {}).items())
    if not items:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    return (
        np.concatenate([np.full(len(t), i, dtype=np.int64) for i, (t, _) in items]),
        np.concatenate([np.asarray(t, dtype=np.float64) for _, (t, _) in items]),
        np.concatenate([np.asarray(v, dtype=np.float64) for _, (_, v) in items]),
    )


def _running_max(idx: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.maximum.accumulate`` of each record's values (NaN carries on, as it does there).

    Returns the accumulated values and, per point, the last accumulated value of its record.
    Records of up to ``WIDE_HISTORY`` points go through one padded 2-D array (the padding
    after a record's points cannot change them); longer ones one by one.
    """
    out = np.empty_like(values)
    last = np.empty_like(values)
    if not len(values):
        return out, last
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    lengths = np.diff(np.r_[starts, len(values)])
    wide = lengths <= WIDE_HISTORY
    if wide.any():
        rows, width = np.flatnonzero(wide), int(lengths[wide].max())
        sizes = lengths[rows]
        row_of = np.repeat(np.arange(len(rows)), sizes)
        col = np.arange(len(row_of)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        at = np.repeat(starts[rows], sizes) + col
        grid = np.full((len(rows), width), -np.inf)
        grid[row_of, col] = values[at]
        grid = np.maximum.accumulate(grid, axis=1)
        out[at] = grid[row_of, col]
        last[at] = grid[row_of, np.repeat(sizes - 1, sizes)]
    for start, length in zip(starts[~wide], lengths[~wide], strict=True):
        part = np.maximum.accumulate(values[start : start + length])
        out[start : start + length] = part
        last[start : start + length] = part[-1]
    return out, last


def spread(
    start_s: np.ndarray, end_s: np.ndarray, history: Histories | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of each record's energy in each UTC hour.

    Args:
        start_s: epoch seconds of each record's start.
        end_s: epoch seconds of each record's end (``>= start_s``).
        history: the records' flushes (:data:`Histories`; :func:`flat_histories` makes them
            from a mapping).

    Returns:
        ``(record index, utc_hour, share)`` arrays; the shares of a record sum to 1.
    """
    start = np.asarray(start_s, dtype=np.float64)
    end = np.maximum(np.asarray(end_s, dtype=np.float64), start)
    n = len(start)
    span = end - start
    # Knots of every record's cumulative curve: (index, time from start, share so far).
    k_idx, k_t, k_v = [np.arange(n), np.arange(n)], [np.zeros(n), span], [np.zeros(n), np.ones(n)]
    h_idx, h_t, h_v = history if history is not None else flat_histories(None)
    if len(h_idx):
        h_idx = np.asarray(h_idx, dtype=np.int64)
        cum, last = _running_max(h_idx, np.asarray(h_v, dtype=np.float64))
        keep = ~(last <= 0) & (span[h_idx] > 0)  # a record without energy or time: even
        h_idx, cum, last = h_idx[keep], cum[keep], last[keep]
        t = np.asarray(h_t, dtype=np.float64)[keep]
        k_idx.append(h_idx)
        k_t.append(np.clip(t - start[h_idx], 0.0, span[h_idx]))
        k_v.append(cum / last)
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


def hour_rows(kind: str, frame: pd.DataFrame, history: Histories | None) -> pd.DataFrame:
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


def write_hours(
    conn: Connection, kind: str, frame: pd.DataFrame, history: Histories | None = None
) -> int:
    """Replace the hours of ``frame``'s records with freshly spread ones."""
    if frame.empty:
        return 0
    pks = frame["record_pk"].to_numpy(dtype=np.int64).tolist()
    for i in range(0, len(pks), 500):
        conn.execute(
            text(
                "DELETE FROM activity_energy_hours WHERE record_kind = :k AND record_pk IN :pks"
            ).bindparams(bindparam("pks", expanding=True)),
            {"k": kind, "pks": pks[i : i + 500]},
        )
    rows = hour_rows(kind, frame.reset_index(drop=True), history)
    values = list(  # columns to Python values at C speed (tolist: int and float, exactly)
        zip(
            [kind] * len(rows),
            rows["record_pk"].to_numpy(dtype=np.int64).tolist(),
            rows["utc_hour"].to_numpy(dtype=np.int64).tolist(),
            rows["zone"].tolist(),
            rows["profile_cell"].to_numpy(dtype=np.int64).tolist(),
            rows["energy_kwh"].to_numpy(dtype=np.float64).tolist(),
            rows["facility_energy_kwh"].to_numpy(dtype=np.float64).tolist(),
            strict=True,
        )
    )
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


def run_histories(frame: pd.DataFrame, points: Sequence[tuple[str, int, float]]) -> Histories:
    """:data:`Histories` of ``frame``'s runs from their ``carbon/energy_kwh`` points.

    ``points``: ``(run_id, timestamp_ms, value)``, each run's side by side in MLflow's order
    (``Source.metric_points``). A run with fewer than two points is left out: one point says
    nothing about the shape, its energy is spread evenly.
    """
    index = {run_id: i for i, run_id in enumerate(frame["run_id"].tolist())}
    at = [index.get(p[0], -1) for p in points]
    idx = np.asarray(at, dtype=np.int64)
    times = np.asarray([p[1] for p in points], dtype=np.float64) / contract.MS_PER_S
    values = np.asarray([p[2] for p in points], dtype=np.float64)
    if not len(idx):
        return idx, times, values
    starts = np.r_[True, idx[1:] != idx[:-1]]
    run_of = np.cumsum(starts) - 1
    counts = np.bincount(run_of)
    keep = (idx >= 0) & (counts[run_of] >= 2)
    return idx[keep], times[keep], values[keep]


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
        history = None
        if use_history:
            points = source.metric_points(runs["run_id"].tolist(), contract.M_ENERGY_KWH)
            history = run_histories(runs, points)
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
