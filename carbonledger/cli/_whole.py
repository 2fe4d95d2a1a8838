"""The whole footprint as ``measure`` and ``estimate`` print it: a range and the embodied share.

Both commands call these two functions, so the range and the embodied line read the same in
both. The embodied share never fails the command: an invalid overrides file or unknown
hardware gives the reason instead of a figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carbonledger.errors import CarbonLedgerError
from carbonledger.uncertainty import OperationalRecord


def co2e_range(record: OperationalRecord) -> dict[str, Any]:
    """The operational CO2e's range as JSON fields (value, low, high, text, methods)."""
    r = record.range()
    return {
        "co2e_kg": r.value_kg,
        "co2e_low_kg": r.low_kg,
        "co2e_high_kg": r.high_kg,
        "relative_uncertainty": r.relative_uncertainty,
        "intensity_method": record.intensity_method,
        "text": r.formatted,
    }


def embodied(tags: Mapping[str, str], duration_s: float, settings: Any) -> dict[str, Any]:
    """The embodied share of the reservation in ``tags`` as JSON fields, or why there is none."""
    from carbonledger.embodied import Unavailable, embodied_for_tags

    try:
        share = embodied_for_tags(tags, duration_s, settings=settings)
    except CarbonLedgerError as exc:
        share = Unavailable("invalid-overrides", str(exc))
    if isinstance(share, Unavailable):
        return {
            "embodied_co2e_kg": None,
            "lifetime_years": settings.embodied_lifetime_years,
            "code": share.code,
            "reason": share.reason,
        }
    out = share.as_dict()
    out["text"] = share.range.formatted
    return out


def embodied_line(data: Mapping[str, Any]) -> str:
    """One line for a person: the figure, the lifetime and the share, or the reason."""
    if data.get("embodied_co2e_kg") is None:
        return f"none ({data['reason']})"
    from carbonledger.uncertainty import format_range_auto

    reserved, host, what = data["resources_reserved"], data["resources_host"], data["resource"]
    kg, low, high = (data[f"embodied_co2e{k}kg"] for k in ("_", "_low_", "_high_"))
    unit = {"gpu": "GPU", "vcpu": "vCPU"}.get(what, what)
    return (
        f"{format_range_auto(kg, low, high)} over a {data['lifetime_years']:g}-year lifetime: "
        f"{reserved:g} of {host:g} {unit}s of {data['host_key']} ({data['method']}, "
        f"{data['licence']}); Scope 3, not included in CO2e"
    )
