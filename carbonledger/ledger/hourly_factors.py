"""Hourly emission factors in the ledger: load (versioned, all-or-nothing), seed, profiles.

``load_hourly_factors`` takes a frame of hourly values (``zone``, ``utc_hour``, ``basis``,
``intensity_g_per_kwh``, ``direct_intensity_g_per_kwh``, ``is_estimated``): a new hour is
version 1, a changed value (or source) becomes the next version and the older one stops being
current, an identical one is left alone, so loading the same data twice changes nothing. The
write is one bulk insert (COPY on PostgreSQL) in the caller's transaction. Afterwards the
profiles of the zones it touched are rebuilt from their current hourly factors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, insert, text

from carbonledger.intensity import hourly
from carbonledger.ledger.hourly_models import HourlyEmissionFactor, HourlyProfile
from carbonledger.ledger.repositories import SeedResult

FACTOR_COLUMNS = [
    "zone",
    "utc_hour",
    "basis",
    "intensity_g_per_kwh",
    "direct_intensity_g_per_kwh",
    "is_estimated",
    "source",
    "licence",
    "version",
    "is_current",
]


def shipped_hourly_frame(zones: Iterable[str] | None = None) -> pd.DataFrame:
    """The shipped hourly LCA factors (Electricity Maps 2021-2023) as a load frame."""
    frames = []
    for zone in hourly.hourly_zones() if zones is None else zones:
        table = hourly.hourly_table(zone)
        assert table is not None
        frames.append(
            pd.DataFrame(
                {
                    "zone": zone,
                    "utc_hour": table.utc_hour,
                    "basis": "location",
                    "intensity_g_per_kwh": table.lca_g_per_kwh,
                    "direct_intensity_g_per_kwh": table.direct_g_per_kwh,
                    "is_estimated": table.estimated,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def seed_hourly_factors(conn: Connection, *, zones: Iterable[str] | None = None) -> SeedResult:
    """Load the shipped hourly factors (``db upgrade`` / ``db seed-factors``), or ``zones``'."""
    return load_hourly_factors(
        conn,
        frame=shipped_hourly_frame(zones),
        source=hourly.SOURCE_ELECTRICITY_MAPS_HOURLY,
        licence=hourly.LICENCE_ELECTRICITY_MAPS,
    )


def load_hourly_factors(
    conn: Connection, *, frame: pd.DataFrame, source: str, licence: str | None
) -> SeedResult:
    """Write ``frame``'s hours as versioned factors; counts of new, restated, unchanged hours."""
    if frame.empty:
        return SeedResult(0, 0, 0)
    new = frame.assign(source=source, licence=licence)
    zones = sorted(new["zone"].unique())
    current = pd.DataFrame(
        _tuples(
            conn,
            text(
                "SELECT id, zone, basis, utc_hour, intensity_g_per_kwh AS old_value, "
                "source AS old_source, version AS old_version FROM hourly_emission_factors "
                "WHERE is_current AND zone IN :zones"
            ).bindparams(bindparam("zones", expanding=True)),
            {"zones": zones},
        ),
        columns=["id", "zone", "basis", "utc_hour", "old_value", "old_source", "old_version"],
    )
    merged = new.merge(current, on=["zone", "basis", "utc_hour"], how="left")
    known = merged["id"].notna().to_numpy()
    same = known & (merged["old_value"].to_numpy() == merged["intensity_g_per_kwh"].to_numpy())
    same &= (merged["old_source"] == merged["source"]).to_numpy()
    changed = known & ~same
    if changed.any():
        stale = [int(i) for i in merged.loc[changed, "id"]]
        for i in range(0, len(stale), 500):
            conn.execute(
                text(
                    "UPDATE hourly_emission_factors SET is_current = false WHERE id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": stale[i : i + 500]},
            )
    write = merged.loc[~same].copy()
    write["version"] = np.where(
        write["id"].notna(), write["old_version"].fillna(0).astype(np.int64) + 1, 1
    )
    write["is_current"] = True
    _bulk_insert(conn, write[FACTOR_COLUMNS])
    refresh_profiles(conn, zones=zones)
    added = int((~known).sum())
    return SeedResult(added, int(changed.sum()), int(same.sum()))


def _tuples(conn: Connection, stmt: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(stmt, params).all()]


def _bulk_insert(conn: Connection, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    rows = _python_rows(frame)
    if conn.dialect.name == "postgresql":
        from carbonledger.etl.load import copy_values  # the one binary COPY helper

        copy_values(conn, HourlyEmissionFactor.__tablename__, list(frame.columns), rows)
        return
    marks = ", ".join("?" for _ in frame.columns)
    conn.exec_driver_sql(
        f"INSERT INTO {HourlyEmissionFactor.__tablename__} ({', '.join(frame.columns)}) "
        f"VALUES ({marks})",
        [tuple(r) for r in rows],
    )


def _python_rows(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows of plain Python values (no numpy scalars; NaN -> None)."""
    cols: list[Iterable[Any]] = []
    for name in frame.columns:
        series = frame[name]
        values = series.astype(object).where(series.notna(), None).tolist()
        cols.append(values)
    return [list(r) for r in zip(*cols, strict=True)]


def refresh_profiles(conn: Connection, *, zones: Iterable[str]) -> int:
    """Rebuild the profiles of ``zones`` from their current location-based hourly factors."""
    written = 0
    for zone in zones:
        conn.execute(
            text("DELETE FROM hourly_profiles WHERE zone = :z AND basis = 'location'"),
            {"z": zone},
        )
        rows = conn.execute(
            text(
                "SELECT utc_hour, intensity_g_per_kwh FROM hourly_emission_factors "
                "WHERE zone = :z AND basis = 'location' AND is_current"
            ),
            {"z": zone},
        ).all()
        if not rows:
            continue
        arr = np.array([tuple(r) for r in rows], dtype=np.float64)
        hours = arr[:, 0].astype(np.int64)
        year = hourly.latest_full_year(hours)
        if year is None:
            continue
        years, *_ = hourly.calendar(hours)
        mask = years == year
        ratios = hourly.profile_ratios(hours[mask], arr[mask, 1])
        cells = [
            {
                "zone": zone,
                "basis": "location",
                "profile_cell": int(cell),
                "ratio": float(ratio),
                "source_year": year,
            }
            for cell, ratio in enumerate(ratios)
            if np.isfinite(ratio)
        ]
        if cells:
            conn.execute(insert(HourlyProfile), cells)
            written += len(cells)
    return written
