"""``carbonledger doctor`` and ``carbonledger journal flush|show``: the MLflow plugin's CLI."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Annotated, Any

import typer

journal_app = typer.Typer(
    name="journal", help="The plugin's local journal of metrics MLflow did not take."
)


def register(app: typer.Typer) -> None:
    """Add ``doctor`` and the ``journal`` group to the ``carbonledger`` app."""
    app.command("doctor", help="Show what the MLflow plugin would detect here, and why.")(doctor)
    app.add_typer(journal_app)


def _entry_point_declared() -> bool:
    from importlib.metadata import entry_points

    return any(
        ep.value == "carbonledger.mlflow_plugin.entrypoint:CarbonRunContextProvider"
        for ep in entry_points(group="mlflow.run_context_provider")
    )


def _measure(sample_s: float) -> dict[str, Any]:
    from carbonledger.measure import shared_meter

    meter = shared_meter()
    window = meter.open_window()
    time.sleep(sample_s)
    result = window.close()
    hw = meter.hardware().as_tags()
    return {
        "hardware": hw,
        "methods": result.methods,
        "attribution": result.attribution,
        "components": {
            c: {
                "method": e.method,
                "measured": e.measured,
                "avg_power_w": round(e.avg_power_w, 2),
                "devices": list(e.devices),
            }
            for c, e in sorted(result.components.items())
        },
        "notes": list(getattr(meter, "notes", ())),
    }


def _diagnose(sample_s: float) -> dict[str, Any]:
    from carbonledger.mlflow_plugin import election, journal
    from carbonledger.settings import get_settings

    settings = get_settings()
    report: dict[str, Any] = {
        "plugin": {
            "entry_point_declared": _entry_point_declared(),
            "disabled": settings.disable,
            "flush_s": settings.flush_s,
            "flush_timeout_s": settings.flush_timeout_s,
            "attribution": settings.attribution,
        }
    }
    try:
        report["measurement"] = _measure(sample_s)
    except Exception as exc:  # noqa: BLE001 - doctor reports, it does not fail
        report["measurement"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        from carbonledger.intensity import resolve_place

        place = resolve_place(settings)
        loc, grid, pue = place.location, place.grid, place.pue
        report["intensity"] = {
            "intensity_g_per_kwh": grid.intensity_g_per_kwh,
            "source": grid.label,
            "resolved_by": grid.resolved_by,
            "basis": grid.basis,
            "why": grid.note,
            "location": {
                "cloud_provider": loc.cloud_provider,
                "cloud_region": loc.cloud_region,
                "country": loc.country,
                "grid_zone": loc.grid_zone,
            },
        }
        report["pue"] = {"value": pue.value, "source": pue.source, "why": pue.note}
    except Exception as exc:  # noqa: BLE001
        report["intensity"] = {"error": f"{type(exc).__name__}: {exc}"}
    import mlflow

    from carbonledger.ledger.engine import redact_uri
    from carbonledger.mlflow_plugin import hooks

    pending = list(journal.entries())
    report["mlflow"] = {
        "tracking_uri": redact_uri(mlflow.get_tracking_uri()),
        "mlflow_version": mlflow.__version__,
        "hooks_installed": hooks.installed(),
    }
    report["journal"] = {"path": str(journal.journal_dir()), "pending_batches": len(pending)}
    report["distributed"] = {
        "node_id": election.node_id(),
        "world_size": os.environ.get("WORLD_SIZE", "1"),
        "rank": os.environ.get("RANK", "0"),
        "local_rank": os.environ.get("LOCAL_RANK", "0"),
    }
    return report


def doctor(
    sample_s: Annotated[
        float, typer.Option("--sample-s", min=0.0, help="Seconds to meter for the power reading.")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print devices, methods, intensity, PUE, tracking URI and journal state."""
    report = _diagnose(sample_s)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    for section, values in report.items():
        typer.echo(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, list):
                value = "; ".join(map(str, value)) or "-"
            typer.echo(f"  {key}: {value}")


@journal_app.command("flush")
def journal_flush(
    tracking_uri: Annotated[
        str | None, typer.Option(help="Replay only the batches for this tracking URI.")
    ] = None,
) -> None:
    """Send the journaled batches to their tracking servers; exit 1 if some remain."""
    from carbonledger.mlflow_plugin import journal, transport

    sent, left = journal.replay(transport.send, tracking_uri=tracking_uri)
    typer.echo(f"sent {sent} batch(es); {left} left in {journal.journal_dir()}")
    if left:
        raise typer.Exit(1)


@journal_app.command("show")
def journal_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the journaled batches per tracking URI and run."""
    from carbonledger.mlflow_plugin import journal

    counts: Counter[tuple[str, str]] = Counter()
    metrics: Counter[tuple[str, str]] = Counter()
    for _, entry in journal.entries():
        counts[(entry.tracking_uri, entry.run_id)] += 1
        metrics[(entry.tracking_uri, entry.run_id)] += len(entry.metrics)
    rows = [
        {"tracking_uri": uri, "run_id": run, "batches": n, "metrics": metrics[(uri, run)]}
        for (uri, run), n in sorted(counts.items())
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"journal: {journal.journal_dir()}")
    if not rows:
        typer.echo("empty")
    for r in rows:
        typer.echo(
            f"{r['tracking_uri']}  {r['run_id']}  {r['batches']} batches, {r['metrics']} metrics"
        )
