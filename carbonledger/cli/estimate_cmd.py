"""``carbonledger estimate``: an ML-CO2-Impact-style estimate from rated power, hours and place."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer

from carbonledger.cli import _whole
from carbonledger.cli._place_options import Country, Intensity, Provider, Pue, Region, Zone
from carbonledger.contract import (
    INTENSITY_HOURLY,
    INTENSITY_YEARLY,
    MACHINE,
    METHOD_RATED_POWER,
    S_PER_HOUR,
    TAG_CLOUD_PROVIDER,
    TAG_CPU_COUNT,
    TAG_GPU_COUNT,
    TAG_GPU_MODEL,
    TAG_INSTANCE_TYPE,
)
from carbonledger.errors import CarbonLedgerError

HELP = (
    "Estimate energy and CO2e from a GPU/CPU model (or --power-w), a count, hours and a place "
    "(--region/--provider, --country, --zone or --intensity), like the ML CO2 Impact calculator; "
    "with its range, and the embodied share of the hardware (--instance-type, --gpu)."
)


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to the ``carbonledger`` app."""
    app.command("estimate", help=HELP)(estimate)


def estimate(
    gpu: Annotated[str | None, typer.Option(help="GPU/TPU model, e.g. A100, H100, T4.")] = None,
    cpu: Annotated[
        str | None, typer.Option(help="CPU model, e.g. 'AMD EPYC 7763' (rated power = TDP).")
    ] = None,
    power_w: Annotated[
        float | None, typer.Option("--power-w", min=0, help="Power of one device (W).")
    ] = None,
    count: Annotated[int, typer.Option(min=1, help="Number of devices.")] = 1,
    hours: Annotated[float | None, typer.Option(min=0, help="Hours of use.")] = None,
    provider: Provider = None,
    region: Region = None,
    country: Country = None,
    zone: Zone = None,
    intensity: Intensity = None,
    pue: Pue = None,
    datacentre: Annotated[
        bool, typer.Option("--datacentre", help="Unknown data centre: PUE 1.56, not 1.0.")
    ] = False,
    year: Annotated[int | None, typer.Option(help="Data year of the yearly tables.")] = None,
    start: Annotated[
        str | None,
        typer.Option(help="Start (ISO 8601 UTC, e.g. 2023-06-15T10:00Z): the hours' factors."),
    ] = None,
    instance_type: Annotated[
        str | None,
        typer.Option(help="Cloud instance type for the embodied share, e.g. p4d.24xlarge."),
    ] = None,
    vcpus: Annotated[
        int | None, typer.Option(min=1, help="vCPUs reserved (the embodied share of CPU work).")
    ] = None,
    lifetime_years: Annotated[
        float | None,
        typer.Option(min=0.1, help="Hardware lifetime for the embodied share (default: setting)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    list_zones: Annotated[bool, typer.Option("--list-zones", help="List grid zones.")] = False,
    list_regions: Annotated[
        bool, typer.Option("--list-regions", help="List cloud regions.")
    ] = False,
    list_countries: Annotated[
        bool, typer.Option("--list-countries", help="List countries.")
    ] = False,
    list_hardware: Annotated[
        bool, typer.Option("--list-hardware", help="List GPUs/CPUs with rated power.")
    ] = False,
) -> None:
    """Estimate energy and CO2e from rated power, hours and location."""
    try:
        if list_zones or list_regions or list_countries or list_hardware:
            _print_lists(list_zones, list_regions, list_countries, list_hardware, as_json)
            return
        result = _estimate(
            gpu=gpu,
            cpu=cpu,
            power_w=power_w,
            count=count,
            hours=hours,
            provider=provider,
            region=region,
            country=country,
            zone=zone,
            intensity=intensity,
            pue=pue,
            datacentre=datacentre,
            year=year,
            instance_type=instance_type,
            vcpus=vcpus,
            lifetime_years=lifetime_years,
            start=start,
        )
    except CarbonLedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_human(result)


def _estimate(
    *,
    gpu: str | None,
    cpu: str | None,
    power_w: float | None,
    count: int,
    hours: float | None,
    provider: str | None,
    region: str | None,
    country: str | None,
    zone: str | None,
    intensity: float | None,
    pue: float | None,
    datacentre: bool,
    year: int | None,
    instance_type: str | None = None,
    vcpus: int | None = None,
    lifetime_years: float | None = None,
    start: str | None = None,
) -> dict[str, Any]:
    from carbonledger.embodied.reservation import HOST_RESOURCES_UNKNOWN, NO_HARDWARE
    from carbonledger.intensity import command_line_place, resolve_place
    from carbonledger.intensity.estimate import estimate_emissions, lookup_hardware
    from carbonledger.intensity.factors import PUE_EXPLICIT, PueFactor
    from carbonledger.settings import get_settings
    from carbonledger.uncertainty import OperationalRecord, intensity_method_of

    given = [name for name, v in (("--gpu", gpu), ("--cpu", cpu), ("--power-w", power_w)) if v]
    if power_w == 0:
        given.append("--power-w")
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --gpu, --cpu or --power-w")
    if hours is None:
        raise typer.BadParameter("give the hours of use with --hours")
    hardware = source = None
    if gpu or cpu:
        found = lookup_hardware(gpu or cpu or "", "gpu" if gpu else "cpu")
        power_w, hardware, source = found.power_w, found.name, found.source
    # A yearly-average estimate: the live provider (hourly figures) is not asked.
    settings, location = command_line_place(
        get_settings().model_copy(update={"live_intensity": False}),
        provider=provider,
        region=region,
        country=country,
        zone=zone,
    )
    moment = _start(start)
    place = resolve_place(
        settings,
        location=location,
        explicit_g_per_kwh=intensity,
        year=year or (moment.year if moment else None),
        unknown_datacentre=datacentre,
    )
    grid = place.grid
    intensity_method = intensity_method_of(grid.resolved_by)
    if moment is not None and intensity is None and grid.zone:
        grid, intensity_method = _hourly_grid(grid, moment, hours * S_PER_HOUR)
    pue_factor = PueFactor(pue, PUE_EXPLICIT, note="--pue") if pue is not None else place.pue
    est = estimate_emissions(
        power_w=float(power_w or 0.0),
        count=count,
        duration_h=hours,
        grid=grid,
        pue=pue_factor,
        hardware=hardware,
        power_source=source or "--power-w",
    )
    out = _as_dict(est)
    component = "gpu" if gpu else "cpu" if cpu else MACHINE
    out["range"] = _whole.co2e_range(
        OperationalRecord(
            energy_kwh={component: est.energy_kwh},
            methods={component: METHOD_RATED_POWER},
            pue=est.pue.value,
            intensity_g_per_kwh=est.grid.intensity_g_per_kwh,
            intensity_method=intensity_method,
        )
    )
    out["intensity_method"] = intensity_method
    if moment is not None:
        out["start_utc"] = moment.isoformat(timespec="minutes")
    reservation = {
        TAG_INSTANCE_TYPE: instance_type or "",
        TAG_CLOUD_PROVIDER: settings.cloud_provider or "",
        TAG_GPU_MODEL: (hardware if gpu else None) or "none",
        TAG_GPU_COUNT: str(count if gpu else 0),
        TAG_CPU_COUNT: str(vcpus or ""),
    }
    if lifetime_years is not None:
        settings = settings.model_copy(update={"embodied_lifetime_years": lifetime_years})
    if instance_type or gpu:
        out["embodied"] = _whole.embodied(reservation, hours * S_PER_HOUR, settings)
        if out["embodied"].get("code") == HOST_RESOURCES_UNKNOWN and not vcpus:
            out["embodied"]["reason"] += "; or give the vCPUs reserved with --vcpus"
    else:
        out["embodied"] = {
            "embodied_co2e_kg": None,
            "lifetime_years": settings.embodied_lifetime_years,
            "code": NO_HARDWARE,
            "reason": "give --instance-type (with --provider) or --gpu for the embodied share",
        }
    return out


def _start(text: str | None) -> Any:
    from carbonledger.intensity.when import parse_start

    return parse_start(text) if text else None


def _hourly_grid(grid: Any, moment: Any, duration_s: float) -> tuple[Any, str]:
    """The factor of the hours from ``moment``: hourly data, else the profile estimate."""
    from dataclasses import replace

    from carbonledger.intensity.hourly import SOURCE_ELECTRICITY_MAPS_HOURLY
    from carbonledger.intensity.when import job_intensity
    from carbonledger.uncertainty import intensity_method_of

    value, method = job_intensity(
        grid.zone, start=moment, duration_s=duration_s, yearly_g_per_kwh=grid.intensity_g_per_kwh
    )
    if method == INTENSITY_YEARLY:
        return grid, intensity_method_of(grid.resolved_by)
    source = (
        SOURCE_ELECTRICITY_MAPS_HOURLY if method == INTENSITY_HOURLY else f"{method}+{grid.source}"
    )
    note = f"the hours from {moment:%Y-%m-%d %H:%M} UTC ({method})"
    return replace(grid, intensity_g_per_kwh=value, source=source, note=note), method


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def _print_human(est: dict[str, Any]) -> None:
    what = est["hardware"] or "device"
    pue, grid, rng = est["pue"], est["intensity"], est["range"]
    rows = [
        (
            "hardware",
            f"{est['count']} x {what} at {_fmt(est['power_w'])} W ({est['power_source']})",
        ),
        ("duration", f"{_fmt(est['duration_h'])} h"),
        ("energy", f"{_fmt(est['energy_kwh'])} kWh"),
        ("PUE", f"{_fmt(pue['value'])} ({pue['source']}{_note(pue['note'])})"),
        ("facility energy", f"{_fmt(est['facility_energy_kwh'])} kWh"),
        (
            "intensity",
            f"{_fmt(grid['intensity_g_per_kwh'])} gCO2e/kWh ({grid['label']}, "
            f"{grid['resolved_by']}{_note(grid['note'])})",
        ),
        ("CO2e", f"{_fmt(est['co2e_kg'])} kg"),
        (
            "CO2e range",
            f"{rng['text']} (uncertainty {rng['relative_uncertainty']:.0%}: "
            f"{METHOD_RATED_POWER}, {rng['intensity_method']} intensity)",
        ),
        ("embodied", _whole.embodied_line(est["embodied"])),
    ]
    for label, value in rows:
        typer.echo(f"{label:<16} {value}")
    if grid["licence"]:
        typer.echo(f"{'data licence':<16} {grid['licence']}")


def _note(note: str | None) -> str:
    return f"; {note}" if note else ""


def _as_dict(est: Any) -> dict[str, Any]:
    grid = asdict(est.grid)
    grid["label"] = est.grid.label
    return {
        "hardware": est.hardware,
        "power_w": est.power_w,
        "power_source": est.power_source,
        "count": est.count,
        "duration_h": est.duration_h,
        "energy_kwh": est.energy_kwh,
        "pue": asdict(est.pue),
        "facility_energy_kwh": est.facility_energy_kwh,
        "intensity": grid,
        "co2e_kg": est.co2e_kg,
    }


def _print_lists(
    zones: bool, regions: bool, countries: bool, hardware: bool, as_json: bool
) -> None:
    from carbonledger.intensity import known_countries, known_regions, tables
    from carbonledger.intensity.estimate import known_hardware

    out: dict[str, list[dict[str, Any]]] = {}
    if zones:
        out["zones"] = [
            {
                "zone": z.zone,
                "name": z.name,
                "year": max(z.intensity_g_per_kwh_by_year),
                "intensity_g_per_kwh": z.intensity_g_per_kwh_by_year[
                    max(z.intensity_g_per_kwh_by_year)
                ],
            }
            for z in sorted(tables.zones().values(), key=lambda z: z.zone)
        ]
    if regions:
        records = tables.cloud_regions()
        out["regions"] = [
            {
                "provider": p,
                "region": r,
                "aliases": list(records[(p, r)].aliases),
                "zone": records[(p, r)].zone,
                "country": records[(p, r)].country,
                "pue": records[(p, r)].pue,
            }
            for p, r in known_regions()
        ]
    if countries:
        out["countries"] = [
            {"alpha2": a2, "alpha3": a3, "name": name} for a2, a3, name in known_countries()
        ]
    if hardware:
        out["hardware"] = [asdict(h) for h in known_hardware()]
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    lines: list[str] = []
    for z in out.get("zones", []):
        lines.append(f"{z['zone']:<14} {z['intensity_g_per_kwh']:>6g} ({z['year']})  {z['name']}")
    for r in out.get("regions", []):
        alias = f" (also {', '.join(r['aliases'])})" if r["aliases"] else ""
        place = r["zone"] or r["country"] or "?"
        lines.append(f"{r['provider']:<6} {r['region']:<26} {place:<14} PUE {r['pue']:g}{alias}")
    for c in out.get("countries", []):
        lines.append(f"{c['alpha2']}  {c['alpha3']}  {c['name']}")
    for h in out.get("hardware", []):
        lines.append(f"{h['kind']:<4} {h['name']:<28} {h['power_w']:>6g} W  {h['source']}")
    sys.stdout.write("\n".join(lines) + "\n")
