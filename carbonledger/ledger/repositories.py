"""Keyword-only functions that read and write the ledger (Core statements on a Connection).

Emission factors are versioned: seeding or adding a factor whose value differs from the
current version of its ``(zone, year, basis)`` writes version + 1, which restates every total
computed by the ``run_co2e`` view; the old version stays for the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from carbonledger.errors import LedgerError
from carbonledger.ledger.models import EmissionFactor, TrackingSource

WORLD_ZONE = "WORLD"


@dataclass(frozen=True, slots=True)
class SeedResult:
    """Counts of a factor seeding: new keys, restated keys (new version), unchanged keys."""

    added: int
    restated: int
    unchanged: int


def get_or_create_source(conn: Connection, *, uri: str, kind: str = "mlflow") -> int:
    """The id of the tracking source ``uri``, created on first use."""
    found = conn.execute(select(TrackingSource.id).where(TrackingSource.uri == uri)).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            insert(TrackingSource).values(uri=uri, kind=kind).returning(TrackingSource.id)
        ).scalar_one()
    )


def add_emission_factor(
    conn: Connection,
    *,
    zone: str,
    year: int,
    intensity_g_per_kwh: float,
    source: str,
    basis: str = "location",
    licence: str | None = None,
    instrument: str | None = None,
    country: str | None = None,
    note: str | None = None,
) -> int | None:
    """Add a factor as the next version of its key; ``None`` if it equals the current one.

    Raises:
        LedgerError: the basis or value is invalid.
    """
    if basis not in ("location", "market"):
        raise LedgerError(f"basis {basis!r} is invalid: use location or market")
    if not intensity_g_per_kwh >= 0:
        raise LedgerError("an emission factor must be a non-negative number of gCO2e/kWh")
    current = conn.execute(
        select(EmissionFactor.version, EmissionFactor.intensity_g_per_kwh, EmissionFactor.source)
        .where(
            EmissionFactor.zone == zone,
            EmissionFactor.year == year,
            EmissionFactor.basis == basis,
        )
        .order_by(EmissionFactor.version.desc())
        .limit(1)
    ).first()
    if current is not None and (current[1], current[2]) == (intensity_g_per_kwh, source):
        return None
    version = 1 if current is None else current[0] + 1
    conn.execute(
        insert(EmissionFactor).values(
            zone=zone,
            country=country,
            year=year,
            basis=basis,
            intensity_g_per_kwh=intensity_g_per_kwh,
            source=source,
            licence=licence,
            instrument=instrument,
            version=version,
            note=note,
        )
    )
    return version


def seed_emission_factors(conn: Connection, *, factors: Iterable[Any]) -> SeedResult:
    """Load ``GridFactor``s (``carbonledger.intensity.yearly_factors()``) as versioned factors.

    A factor keyed by zone wins over a country-level one for the same code and year; rows
    with neither zone nor country (regional aggregates) are skipped.
    """
    chosen: dict[tuple[str, int, str], Any] = {}
    for factor in factors:
        code = factor.zone or factor.country
        if not code or factor.year is None:
            continue
        key = (code, int(factor.year), factor.basis)
        if key not in chosen or (factor.zone and not chosen[key].zone):
            chosen[key] = factor
    current = {
        (z, y, b): (v, s)
        for z, y, b, v, s in conn.execute(
            select(
                EmissionFactor.zone,
                EmissionFactor.year,
                EmissionFactor.basis,
                EmissionFactor.intensity_g_per_kwh,
                EmissionFactor.source,
            ).where(EmissionFactor.id.in_(_current_ids()))
        )
    }
    versions = {
        (z, y, b): v
        for z, y, b, v in conn.execute(
            select(
                EmissionFactor.zone,
                EmissionFactor.year,
                EmissionFactor.basis,
                func.max(EmissionFactor.version),
            ).group_by(EmissionFactor.zone, EmissionFactor.year, EmissionFactor.basis)
        )
    }
    rows, added, restated = [], 0, 0
    for (zone, year, basis), f in sorted(chosen.items()):
        old = current.get((zone, year, basis))
        if old == (f.intensity_g_per_kwh, f.source):
            continue
        version = 1 if old is None else versions[(zone, year, basis)] + 1
        added += old is None
        restated += old is not None
        rows.append(
            {
                "zone": zone,
                "country": f.country,
                "year": year,
                "basis": basis,
                "intensity_g_per_kwh": f.intensity_g_per_kwh,
                "source": f.source,
                "licence": f.licence,
                "instrument": None,
                "version": version,
                "note": getattr(f, "note", None),
            }
        )
    if rows:
        conn.execute(insert(EmissionFactor), rows)
    return SeedResult(added, restated, len(chosen) - added - restated)


def world_factor() -> Any:
    """The world-average factor used when a run's zone is unknown (IEA 2019, 475 g/kWh)."""
    from carbonledger.intensity.factors import WORLD_AVERAGE_G_PER_KWH, GridFactor

    return GridFactor(
        WORLD_AVERAGE_G_PER_KWH,
        "iea-2019-world",
        year=2019,
        zone=WORLD_ZONE,
        licence="IEA (figure as quoted by CodeCarbon and Green Algorithms)",
        note="world average, used when a run's zone is unknown",
    )


def shipped_factors() -> Iterable[Any]:
    """The world default and every factor shipped by ``carbonledger.intensity``."""
    from carbonledger.intensity import yearly_factors

    yield world_factor()
    yield from yearly_factors()


def _current_ids() -> Any:
    latest = (
        select(func.max(EmissionFactor.id))
        .group_by(EmissionFactor.zone, EmissionFactor.year, EmissionFactor.basis)
        .scalar_subquery()
    )
    return latest


def known_zones(conn: Connection) -> frozenset[str]:
    """Every zone with a location-based factor."""
    rows = conn.execute(
        select(EmissionFactor.zone).where(EmissionFactor.basis == "location").distinct()
    )
    return frozenset(r[0] for r in rows)


def lifecycle_runs(conn: Connection, *, model_name: str) -> list[str]:
    """Run ids of a registered model's lifecycle (``v_lifecycle_runs``), oldest first."""
    rows = conn.execute(
        text(
            "SELECT r.run_id FROM v_lifecycle_runs lr JOIN runs r ON r.id = lr.run_pk "
            "WHERE lr.model_name = :model ORDER BY r.start_time, r.run_id"
        ),
        {"model": model_name},
    )
    return [r[0] for r in rows]
