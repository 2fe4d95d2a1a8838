"""Place: a team's cloud training moved to the cleanest region of the same provider.

For each team and cloud provider, the training runs with a known region: their ledger CO2e
against the same IT energy in each region of that provider whose grid zone has a
location-based factor in the ledger, at the region's PUE (``carbonledger.footprint.co2e_kg``
with the zone's latest factor). The cleanest region gives the saving. It assumes the same
hardware is offered there and that data can move (residency, latency, egress).
"""

from __future__ import annotations

from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, day, run_filter
from carbonledger.footprint import co2e_kg
from carbonledger.intensity import tables
from carbonledger.reporting.db import frame, frame_in


def latest_location_factors(engine: Engine) -> dict[str, float]:
    """Each zone's current location-based intensity of its latest year (gCO2e/kWh)."""
    df = frame(
        engine,
        "SELECT f.zone, f.intensity_g_per_kwh FROM current_emission_factors f "
        "WHERE f.basis = 'location' AND f.year = (SELECT MAX(g.year) FROM "
        "current_emission_factors g WHERE g.zone = f.zone AND g.basis = 'location')",
    )
    return {str(z): float(i) for z, i in zip(df.zone, df.intensity_g_per_kwh, strict=True)}


def place(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per team and provider with a cleaner region than the one used."""
    cloud = frame(  # the runs table first: priced on the view only when some ran in a cloud
        engine,
        "SELECT r.id FROM runs r WHERE r.kind <> 'inference' AND r.cloud_provider IS NOT NULL "
        f"AND r.cloud_region IS NOT NULL AND {run_filter('r')}",
        **scope.bind(engine),
    )
    if cloud.empty:
        return []
    runs = frame_in(
        engine,
        "SELECT e.run_id, e.team, e.model_name, e.start_time, e.energy_kwh, "
        "e.facility_energy_kwh, e.co2e_location_kg, r.cloud_provider, r.cloud_region "
        "FROM v_run_emissions e JOIN runs r ON r.id = e.run_pk "
        "WHERE e.kind <> 'inference' AND r.cloud_provider IS NOT NULL "
        "AND r.cloud_region IS NOT NULL AND e.co2e_location_kg IS NOT NULL "
        f"AND {run_filter('e')} AND e.run_pk IN :pks",
        "pks",
        [int(v) for v in cloud.id],
        **scope.bind(engine),
    )
    if runs.empty:
        return []
    factors = latest_location_factors(engine)
    regions = tables.cloud_regions()
    out = []
    for (team, provider), g in runs.groupby(["team", "cloud_provider"]):
        candidates = [r for (p, _), r in regions.items() if p == provider and r.zone in factors]
        if not candidates:
            continue
        energy = float(g.energy_kwh.sum())
        best = min(
            candidates, key=lambda r: (co2e_kg(energy, r.pue, factors[str(r.zone)]), r.region)
        )
        there = co2e_kg(energy, best.pue, factors[str(best.zone)])
        here = float(g.co2e_location_kg.sum())
        if here - there <= 1e-9 * max(here, 1.0):  # already the cleanest (rounding aside)
            continue
        used = ", ".join(sorted(set(g.cloud_region)))
        models = sorted({str(m) for m in g.model_name if m is not None and m == m})
        out.append(
            Recommendation(
                kind=contract.ADVICE_PLACE,
                team=str(team),
                model_name=models[0] if len(models) == 1 else None,
                title=f"Train in {provider} {best.region} instead of {used}",
                evidence=(
                    f"{len(g)} runs in {used} ({day(g.start_time.min())} to "
                    f"{day(g.start_time.max())}): {here:,.1f} kg CO2e for {energy:,.1f} kWh; "
                    f"{best.region} (zone {best.zone}, {factors[str(best.zone)]:g} g/kWh, "
                    f"PUE {best.pue:g}) would emit {there:,.1f} kg"
                ),
                saving_co2e_kg_per_year=scope.per_year(here - there),
                saving_energy_kwh_per_year=scope.per_year(
                    round(float(g.facility_energy_kwh.sum()) - energy * best.pue, 9) + 0.0
                ),
                method=(
                    "ledger CO2e of the runs minus their IT energy x the region's PUE x its "
                    "zone's latest factor, scaled to a year"
                ),
                confidence=contract.CONFIDENCE_ESTIMATE,
                run_ids=tuple(g.run_id),
            )
        )
    return out
