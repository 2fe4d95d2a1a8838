"""``carbonledger when``: the cleanest start hour for a job, from the hourly grid data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from carbonledger.errors import CarbonLedgerError


def register(app: typer.Typer) -> None:
    """Add ``when`` to the ``carbonledger`` app."""
    app.command("when")(when)


def when(
    zone: Annotated[str, typer.Option(help="Zone with hourly data, e.g. DE, GB, US-CAL-CISO.")],
    hours: Annotated[int, typer.Option(min=1, help="Length of the job (hours).")],
    month: Annotated[
        int | None, typer.Option(min=1, max=12, help="Month (1-12); default: the whole year.")
    ] = None,
    flex_h: Annotated[
        int | None, typer.Option("--flex-h", min=0, help="Best start within N hours of now.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Best, median and worst start hour of day for a job, and the saving of the best."""
    from carbonledger.intensity import tables
    from carbonledger.intensity import when as w

    try:
        result = w.start_hours(zone, hours=hours, month=month)
        record = tables.zones().get(zone)
        years = record.intensity_g_per_kwh_by_year if record else {}
        yearly = years[max(years)] if years else None
        flex = (
            w.flexible_start(
                zone, hours=hours, flex_h=flex_h, now=datetime.now(UTC), yearly_g_per_kwh=yearly
            )
            if flex_h is not None
            else None
        )
    except CarbonLedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    best = result.best_hour_utc
    out: dict[str, Any] = {
        "zone": zone,
        "hours": hours,
        "month": month,
        "data_year": result.year,
        "best_start_hour_utc": best,
        "best_start_local": w.local_hour(zone, best, year=result.year, month=month),
        "best_intensity_g_per_kwh": round(result.best_g_per_kwh, 3),
        "median_intensity_g_per_kwh": round(result.median_g_per_kwh, 3),
        "worst_intensity_g_per_kwh": round(result.worst_g_per_kwh, 3),
        "saving_vs_median_pct": round(result.saving_pct, 2),
        "source": "electricity-maps-hourly (ODbL 1.0), LCA",
    }
    if flex is not None:
        out["flex"] = {
            "flex_h": flex_h,
            "now_utc": flex.now.isoformat(timespec="minutes"),
            "best_start_utc": flex.best_start.isoformat(timespec="minutes"),
            "now_intensity_g_per_kwh": round(flex.now_g_per_kwh, 3),
            "best_intensity_g_per_kwh": round(flex.best_g_per_kwh, 3),
            "saving_vs_now_pct": round(flex.saving_pct, 2),
            "intensity_method": flex.intensity_method,
        }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    period = f"month {month}" if month else "the whole year"
    typer.echo(f"{zone}, a {hours} h job, {period} of {result.year} (Electricity Maps, LCA):")
    typer.echo(
        f"  best start    {best:02d}:00 UTC ({out['best_start_local']})  "
        f"{result.best_g_per_kwh:.1f} gCO2e/kWh"
    )
    typer.echo(f"  median start  {result.median_g_per_kwh:.1f} gCO2e/kWh")
    typer.echo(f"  worst start   {result.worst_g_per_kwh:.1f} gCO2e/kWh")
    typer.echo(f"  saving        {result.saving_pct:.1f}% (best against median)")
    if flex is not None:
        typer.echo(
            f"  within {flex_h} h of now: start {flex.best_start:%Y-%m-%d %H:00} UTC, "
            f"{flex.best_g_per_kwh:.1f} gCO2e/kWh against {flex.now_g_per_kwh:.1f} now "
            f"({flex.saving_pct:.1f}% less; {flex.intensity_method})"
        )
