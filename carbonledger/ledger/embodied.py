"""Embodied factors and per-run reservations in the ledger: resolve, version, re-resolve.

``resolve`` turns a run's recorded hardware into the ledger's factor key, resource share and
host figure (or the reason there is none) with :mod:`carbonledger.embodied`. ``refresh`` does
that once per distinct reservation held in ``run_embodied`` and writes what changed: a host
figure whose content hash differs from its key's current version becomes a new version of
``embodied_factors``, and the rows of a reservation whose resolution changed are updated.
A pass with nothing new writes nothing. ``sync_uncertainty`` fills the uncertainty tables
from :mod:`carbonledger.uncertainty`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text

from carbonledger.embodied import (
    HostEmbodied,
    Overrides,
    Unavailable,
    reservation_from_hardware,
    resolve_host,
    resource_share,
)
from carbonledger.embodied.reservation import MAX_COUNT
from carbonledger.ledger.embodied_models import (
    EmbodiedFactor,
    EnergyMethodUncertainty,
    IntensityMethodUncertainty,
    RunEmbodied,
)
from carbonledger.uncertainty import (
    ENERGY_UNCERTAINTY,
    INTENSITY_UNCERTAINTY,
    UNKNOWN_METHOD_UNCERTAINTY,
)

UNKNOWN_METHOD = "(unknown)"
"""``energy_method_uncertainty`` row of a method the table does not know."""
HARDWARE_COLUMNS = (
    "instance_type",
    "cloud_provider",
    "host_model",
    "gpu_model",
    "gpu_count",
    "gpu_count_host",
    "cpu_count",
    "cpu_count_used",
    "ram_gb",
)
_LIMITS = {c.name: getattr(c.type, "length", None) for c in RunEmbodied.__table__.columns}


def _digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:32]


def clean_hardware(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The hardware columns of a ``run_embodied`` row, texts cut to fit and its hash."""
    out: dict[str, Any] = {}
    for name in HARDWARE_COLUMNS:
        value = fields.get(name)
        if isinstance(value, str):
            value = value.replace("\x00", "")[: _LIMITS[name] or None] or None
        elif isinstance(value, int) and not 0 <= value <= MAX_COUNT:
            value = None  # a run column's garbled count (tags are parsed by _count)
        out[name] = value
    out["reservation_hash"] = _digest(out)
    return out


def factor_key(host: HostEmbodied, cloud_provider: str | None) -> str:
    """The ledger's key of a host figure: what a run resolves to, whichever source wins.

    An instance type is ``instance:<provider>:<type>`` for CCF's figure and an organisation's
    override alike (so an override is a new version of the same key), a machine model
    ``host:<model>``, a host built from parts ``components:...``.
    """
    source, _, rest = host.key.partition(":")
    if source == "ccf":
        return f"instance:{rest}"
    if source == "override":
        kind, _, name = rest.partition(":")
        if kind == "instance":
            provider, _, type_ = name.partition(":")
            return f"instance:{cloud_provider or provider}:{type_}"
        return rest
    return host.key


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one reservation resolves to: the ``run_embodied`` fields and the host figure."""

    fields: dict[str, Any]
    host: HostEmbodied | None


def resolve(hardware: Mapping[str, Any], overrides: Overrides) -> Resolution:
    """A reservation's factor key, resource share and host figure, or why there is none."""
    reservation = reservation_from_hardware(**{k: hardware.get(k) for k in HARDWARE_COLUMNS})
    empty: dict[str, Any] = {"factor_key": None, "resource": None, "resources_reserved": None}
    result: Any = reservation
    host = None
    if not isinstance(reservation, Unavailable):
        host = resolve_host(reservation, overrides=overrides)
        result = host if isinstance(host, Unavailable) else resource_share(reservation, host)
    if isinstance(result, Unavailable):
        why = {"reason_code": result.code, "reason": result.reason, "notes": None}
        return Resolution({**empty, "resources_host": None, **why}, None)
    assert isinstance(host, HostEmbodied) and not isinstance(reservation, Unavailable)
    resource, reserved, total, notes = result
    fields = {
        "factor_key": factor_key(host, reservation.cloud_provider),
        "resource": resource,
        "resources_reserved": reserved,
        "resources_host": total,
        "reason_code": None,
        "reason": None,
        "notes": "; ".join((*host.notes, *notes)) or None,
    }
    return Resolution(fields, host)


def _factor_row(key: str, host: HostEmbodied) -> dict[str, Any]:
    main = max(host.parts, key=lambda p: p.co2e_kg)
    return {
        "factor_key": key,
        "embodied_co2e_kg": host.embodied_co2e_kg,
        "host_gpu_count": host.host_gpu_count,
        "host_vcpus": host.host_vcpus,
        "method": host.method,
        "source": host.source[:500],
        "licence": host.licence[:200],
        "relative_uncertainty": host.relative_uncertainty,
        "uncertainty_key": main.uncertainty_key[:300],
        "content_hash": host.content_hash,
    }


def write_factors(conn: Connection, hosts: Mapping[str, HostEmbodied]) -> int:
    """Add a version for each key whose figure differs from its current one; returns the count."""
    if not hosts:
        return 0
    current: dict[str, tuple[int, str]] = {}
    for key, version, digest in conn.execute(
        select(EmbodiedFactor.factor_key, EmbodiedFactor.version, EmbodiedFactor.content_hash)
    ):
        if key in hosts and version > current.get(key, (0, ""))[0]:
            current[key] = (version, digest)
    rows = [
        {**_factor_row(key, host), "version": current.get(key, (0, ""))[0] + 1}
        for key, host in hosts.items()
        if current.get(key, (0, ""))[1] != host.content_hash
    ]
    if rows:
        conn.execute(insert(EmbodiedFactor), rows)
    return len(rows)


@dataclass(slots=True)
class RefreshCounts:
    """What a refresh wrote: new factor versions, reservations re-resolved."""

    factor_versions: int = 0
    reservations: int = 0


def refresh(conn: Connection, *, overrides: Overrides) -> RefreshCounts:
    """Re-resolve every distinct reservation of ``run_embodied``; write only what changed.

    New factor versions restate ``v_run_embodied`` at once (it reads the current version);
    rows whose key, share or reason changed are updated, so recomputation needs no reload.
    """
    picks = (
        select(RunEmbodied.reservation_hash, func.min(RunEmbodied.run_pk).label("pk"))
        .group_by(RunEmbodied.reservation_hash)
        .subquery()
    )
    cols = [getattr(RunEmbodied, n) for n in HARDWARE_COLUMNS]
    found = conn.execute(
        select(RunEmbodied.reservation_hash, *cols).join(picks, picks.c.pk == RunEmbodied.run_pk)
    ).all()
    hosts: dict[str, HostEmbodied] = {}
    updates = []
    for row in found:
        hardware = dict(zip(HARDWARE_COLUMNS, row[1:], strict=True))
        res = resolve(hardware, overrides)
        if res.host is not None:
            hosts[res.fields["factor_key"]] = res.host
        updates.append({**res.fields, "h": row[0], "resolution_hash": _digest(res.fields)})
    counts = RefreshCounts(factor_versions=write_factors(conn, hosts))
    if updates:
        sets = ", ".join(f"{k} = :{k}" for k in updates[0] if k != "h")
        result = conn.execute(
            text(
                f"UPDATE run_embodied SET {sets} WHERE reservation_hash = :h "
                "AND (resolution_hash IS NULL OR resolution_hash <> :resolution_hash)"
            ),
            updates,
        )
        counts.reservations = max(result.rowcount, 0)
    return counts


def sync_uncertainty(conn: Connection) -> None:
    """Fill ``energy_method_uncertainty``/``intensity_method_uncertainty`` from the constants.

    Every ETL pass calls it; a table is rewritten only when it differs from the constants.
    """
    energy = {**ENERGY_UNCERTAINTY, UNKNOWN_METHOD: UNKNOWN_METHOD_UNCERTAINTY}
    for table, key, figures in (
        (EnergyMethodUncertainty, "method", energy),
        (IntensityMethodUncertainty, "intensity_method", INTENSITY_UNCERTAINTY),
    ):
        rows = conn.execute(select(getattr(table, key), table.relative_uncertainty)).all()
        held: dict[str, float] = {str(k): float(u) for k, u in rows}
        if held != figures:
            conn.execute(delete(table))
            conn.execute(
                insert(table),
                [{key: k, "relative_uncertainty": u} for k, u in figures.items()],
            )
