"""The load step's embodied part: what each loaded run reserved, into ``run_embodied``.

Every staged run gets one ``run_embodied`` row (its hardware as tagged, its duration, the
lifetime setting) through a staging table and one ``INSERT ... ON CONFLICT (run_pk) DO
UPDATE``; then :func:`carbonledger.ledger.embodied.refresh` resolves each distinct
reservation once and writes new factor versions and changed resolutions only. Runs of other
tools (no ``carbon.*`` host tags) fall back to the hardware columns their import filled.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Connection, MetaData, String, Table

from carbonledger import contract as c
from carbonledger.embodied import load_overrides
from carbonledger.ledger.embodied import (
    HARDWARE_COLUMNS,
    RefreshCounts,
    clean_hardware,
    refresh,
    sync_uncertainty,
)
from carbonledger.ledger.embodied_models import RunEmbodied

STAGE = "cl_stage_embodied"
STAGE_COLUMNS = ["run_id", "reservation_hash", *HARDWARE_COLUMNS, "duration_s", "lifetime_years"]
_ROW_HARDWARE = ("gpu_model", "gpu_count", "cpu_count", "ram_gb", "cloud_provider")


def stage_table(meta: MetaData) -> Table:
    """The temporary staging table of ``run_embodied`` rows (keyed by MLflow run id)."""
    cols = {col.name: col for col in RunEmbodied.__table__.columns}
    return Table(
        STAGE,
        meta,
        Column("run_id", String(64)),
        *[Column(n, cols[n].type) for n in STAGE_COLUMNS[1:]],
        prefixes=["TEMPORARY"],
    )


def duration_s(row: Mapping[str, Any]) -> float | None:
    """A run's duration: the plugin's ``carbon/duration_s``, else end minus start."""
    if row.get("duration_s") is not None:
        return float(row["duration_s"])
    start, end = row.get("start_time"), row.get("end_time")
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def staged_row(
    row: Mapping[str, Any], hardware: Mapping[str, Any], *, lifetime_years: float
) -> dict[str, Any]:
    """The staging row of one run: its hardware (tags, else its columns) and duration."""
    fields = hardware or {k: row.get(k) for k in _ROW_HARDWARE}
    return {
        "run_id": row["run_id"],
        **_clean(tuple(fields.get(n) for n in HARDWARE_COLUMNS)),
        "duration_s": duration_s(row),
        "lifetime_years": lifetime_years,
    }


@lru_cache(maxsize=4096)
def _clean_cached(values: tuple[Hashable, ...], _types: tuple[type, ...]) -> dict[str, Any]:
    return clean_hardware(dict(zip(HARDWARE_COLUMNS, values, strict=True)))


def _clean(values: tuple[Any, ...]) -> dict[str, Any]:
    """``clean_hardware`` of the hardware ``values``, once per distinct hardware of a store.

    Keyed by the values and their types (``1``, ``1.0`` and ``True`` are equal keys but not
    the same hash input). The cached dict is only ever copied out, never changed.
    """
    try:
        return _clean_cached(values, tuple(map(type, values)))
    except TypeError:  # an unhashable value: cleaned as it comes
        return clean_hardware(dict(zip(HARDWARE_COLUMNS, values, strict=True)))


def merge(conn: Connection, source_id: int) -> RefreshCounts:
    """Upsert the staged rows into ``run_embodied``, then resolve what is new or changed."""
    cols = STAGE_COLUMNS[1:]
    sets = ", ".join(f"{col} = excluded.{col}" for col in cols)
    conn.exec_driver_sql(
        f"INSERT INTO run_embodied (run_pk, {', '.join(cols)}) "
        f"SELECT r.id, {', '.join(f's.{col}' for col in cols)} FROM {STAGE} s "
        f"JOIN runs r ON r.source_id = {int(source_id)} AND r.run_id = s.run_id WHERE true "
        f"ON CONFLICT (run_pk) DO UPDATE SET {sets}"
    )
    return refresh_ledger(conn)


def refresh_ledger(conn: Connection) -> RefreshCounts:
    """Re-resolve the ledger's reservations with the current overrides file and tables.

    Every ETL pass calls it (and syncs the uncertainty tables), so a new figure in
    ``CARBONLEDGER_EMBODIED_PATH`` becomes a new factor version (and restates
    ``v_run_embodied``) without reloading any run.
    """
    from carbonledger.settings import get_settings

    sync_uncertainty(conn)
    return refresh(conn, overrides=load_overrides(get_settings().embodied_path))


def lifetime_years() -> float:
    """The amortisation lifetime setting (``CARBONLEDGER_EMBODIED_LIFETIME_YEARS``)."""
    from carbonledger.settings import get_settings

    value = get_settings().embodied_lifetime_years
    return float(value if value is not None else c.DEFAULT_EMBODIED_LIFETIME_YEARS)
