"""``carbonledger measure -- CMD ARGS...``: run a command and report its energy and CO2e.

Like ``time``, the report goes to stderr (or to ``--output FILE``) so that the command's own
stdout stays clean; the exit code is the command's (127 when it cannot be found, 128 + N when a
signal N ended it).
"""

from __future__ import annotations

import enum
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from carbonledger.cli import _whole
from carbonledger.cli._place_options import Country, Intensity, Provider, Pue, Region, Zone
from carbonledger.contract import G_PER_KG, TAG_CLOUD_PROVIDER, j_from_kwh
from carbonledger.errors import CarbonLedgerError

HELP = (
    "Run CMD (after --) and print its energy per component (GPU, CPU, RAM), the method of each, "
    "duration, average and peak power, grid intensity and its source, PUE and CO2e."
)


class AttributionMode(enum.StrEnum):
    """Choices of ``--attribution``."""

    device = "device"
    process = "process"


def register(app: typer.Typer) -> None:
    """Add ``measure`` to the ``carbonledger`` app."""
    app.command(
        "measure",
        help=HELP,
        context_settings={"allow_interspersed_args": False},
    )(measure)


def measure(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON document.")
    ] = False,
    attribution: Annotated[
        AttributionMode | None,
        typer.Option(
            help="device: whole devices (default: the attribution setting); "
            "process: the command's share of CPU and RAM.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report to this file instead of stderr."),
    ] = None,
    provider: Provider = None,
    region: Region = None,
    country: Country = None,
    zone: Zone = None,
    intensity: Intensity = None,
    pue: Pue = None,
) -> None:
    """Run a command under a ``Meter`` and report its footprint."""
    from carbonledger.footprint import footprint
    from carbonledger.intensity import command_line_place, resolve_place
    from carbonledger.measure import Meter
    from carbonledger.settings import get_settings
    from carbonledger.uncertainty import OperationalRecord, intensity_method_of

    if not command:
        raise typer.BadParameter("give the command after --, e.g. carbonledger measure -- make")
    try:
        settings = get_settings()
        if pue is not None:
            settings = settings.model_copy(update={"pue": pue})
        settings, location = command_line_place(
            settings, provider=provider, region=region, country=country, zone=zone
        )
        place = resolve_place(settings, location=location, explicit_g_per_kwh=intensity)
        grid, pue_factor = place.grid, place.pue
        meter = Meter(settings=settings, attribution=attribution.value if attribution else None)
        window = meter.open_window()
    except CarbonLedgerError as exc:
        typer.echo(f"carbonledger measure: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        exit_code = _run(command)
    finally:
        result = window.close()
        meter.close()
    fp = footprint(result.energy_kwh, grid, pue_factor)
    hardware_tags = meter.hardware().as_tags()
    report = _report(command, exit_code, result, fp, meter.notes, hardware_tags)
    report["co2e_range"] = _whole.co2e_range(
        OperationalRecord(
            energy_kwh={name: comp.energy_kwh for name, comp in result.components.items()},
            methods={name: comp.method for name, comp in result.components.items()},
            pue=fp.pue,
            intensity_g_per_kwh=fp.intensity_g_per_kwh,
            intensity_method=intensity_method_of(grid.resolved_by),
        )
    )
    reservation = dict(hardware_tags)
    if settings.cloud_provider:
        reservation[TAG_CLOUD_PROVIDER] = settings.cloud_provider
    report["embodied"] = _whole.embodied(reservation, result.duration_s, settings)
    _emit(report, as_json=as_json, output=output)
    raise typer.Exit(exit_code)


def _run(command: list[str]) -> int:
    """Run the command with the terminal's signals going to it; return its exit code."""
    try:
        proc = subprocess.Popen(command)
    except FileNotFoundError:
        typer.echo(f"carbonledger measure: command not found: {command[0]}", err=True)
        return 127
    except PermissionError:
        typer.echo(f"carbonledger measure: permission denied: {command[0]}", err=True)
        return 126
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    return 128 - code if code < 0 else code


def _report(
    command: list[str],
    exit_code: int,
    result: Any,
    fp: Any,
    notes: tuple[str, ...],
    hardware_tags: dict[str, str],
) -> dict[str, Any]:
    grid = fp.grid
    return {
        "command": command,
        "exit_code": exit_code,
        "start_s": result.start_s,
        "end_s": result.end_s,
        "duration_s": result.duration_s,
        "attribution": result.attribution,
        "components": {
            name: {
                "energy_kwh": c.energy_kwh,
                "energy_j": j_from_kwh(c.energy_kwh),
                "method": c.method,
                "measured": c.measured,
                "avg_power_w": c.avg_power_w,
                "peak_power_w": c.peak_power_w,
                "devices": list(c.devices),
                "share": c.share,
            }
            for name, c in sorted(result.components.items())
        },
        "methods": result.methods,
        "energy_kwh": fp.energy_kwh,
        "avg_power_w": result.avg_power_w,
        "peak_power_w": result.peak_power_w,
        "pue": fp.pue,
        "pue_source": fp.pue_factor.source,
        "facility_energy_kwh": fp.facility_energy_kwh,
        "intensity_g_per_kwh": fp.intensity_g_per_kwh,
        "intensity_source": grid.label,
        "intensity_resolved_by": grid.resolved_by,
        "co2e_kg": fp.co2e_kg,
        "hardware": hardware_tags,
        "notes": [*notes, *(n for n in (grid.note, fp.pue_factor.note) if n)],
    }


def _emit(report: dict[str, Any], *, as_json: bool, output: Path | None) -> None:
    from rich.console import Console

    if output is not None:
        stream: Any = output.open("w", encoding="utf-8")
    else:
        stream = sys.stderr
    try:
        if as_json:
            stream.write(json.dumps(report, indent=2) + "\n")
            stream.flush()
            return
        width = None if stream.isatty() else 120  # a file or pipe gets whole method names
        console = Console(file=stream, highlight=False, width=width)
        _print_table(console, report)
    finally:
        if output is not None:
            stream.close()


def _g(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def _print_table(console: Any, r: dict[str, Any]) -> None:
    from rich.table import Table

    from carbonledger.uncertainty import format_range_g

    process = r["attribution"] == "process"
    table = Table(title=f"carbonledger measure: {' '.join(r['command'])}", title_justify="left")
    for col in ("component", "energy (kWh)", "energy (J)", "avg W", "peak W", "method"):
        table.add_column(col, justify="left" if col in ("component", "method") else "right")
    if process:
        table.add_column("share", justify="right")
    for name, c in r["components"].items():
        method = c["method"] + ("" if c["measured"] else " (estimate)")
        row = [name, _g(c["energy_kwh"]), _g(c["energy_j"]), _g(c["avg_power_w"], 3)]
        row += [_g(c["peak_power_w"], 3), method]
        table.add_row(*row, *([f"{c['share']:.1%}"] if process else []))
    table.add_row(
        "total (IT)",
        _g(r["energy_kwh"]),
        _g(j_from_kwh(r["energy_kwh"])),
        _g(r["avg_power_w"], 3),
        _g(r["peak_power_w"], 3),
        "",
        *([""] if process else []),
        style="bold",
    )
    console.print(table)
    console.print(
        f"duration {r['duration_s']:.2f} s · attribution {r['attribution']} · "
        f"exit code {r['exit_code']}"
    )
    console.print(
        f"intensity {r['intensity_g_per_kwh']:.1f} gCO2e/kWh ({r['intensity_source']}, "
        f"by {r['intensity_resolved_by']}) · PUE {r['pue']:.2f} ({r['pue_source']})"
    )
    console.print(
        f"facility energy {_g(r['facility_energy_kwh'])} kWh · "
        f"CO2e {_g(r['co2e_kg'] * G_PER_KG)} g ({_g(r['co2e_kg'])} kg)",
        style="bold",
    )
    rng = r["co2e_range"]
    console.print(
        f"CO2e range {format_range_g(rng['co2e_kg'], rng['co2e_low_kg'], rng['co2e_high_kg'])} "
        f"(uncertainty {rng['relative_uncertainty']:.0%}; {rng['intensity_method']} intensity)"
    )
    console.print(f"embodied {_whole.embodied_line(r['embodied'])}")
    for note in r["notes"]:
        console.print(f"note: {note}", style="dim")
