"""Inference commands: ``inference-bench``, ``inference wrap`` and ``import inference``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from carbonledger.cli._ledger_common import (
    LEDGER_URL_HELP,
    fail,
    ledger_errors,
    resolve_ledger_url,
)
from carbonledger.cli.import_cmd import import_app
from carbonledger.contract import TAG_TEAM

inference_app = typer.Typer(help="Meter served models: wrap a model for `mlflow models serve`.")


def register(app: typer.Typer) -> None:
    """Add ``inference-bench``, the ``inference`` group and ``import inference``."""
    app.command("inference-bench")(inference_bench_cmd)
    app.add_typer(inference_app, name="inference")
    import_app.command("inference")(import_inference_cmd)


def inference_bench_cmd(
    model_uri: Annotated[str, typer.Argument(help="Model to load with mlflow.pyfunc.")],
    input: Annotated[
        Path, typer.Option("--input", help="One request's body as JSON (serving formats).")
    ],
    duration: Annotated[float, typer.Option(help="Seconds of back-to-back requests.")] = 10.0,
    requests: Annotated[
        int | None, typer.Option(help="Number of requests instead of --duration.")
    ] = None,
    idle: Annotated[float, typer.Option(help="Seconds metered idle first (0: skip).")] = 3.0,
    warmup: Annotated[int, typer.Option(help="Unmetered calls before measuring.")] = 3,
    output: Annotated[
        Path | None, typer.Option(help="Write the result as JSON (for import inference --bench).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Measure the energy per request of a model on this machine (Wh, active and loaded)."""
    from carbonledger.errors import CarbonLedgerError
    from carbonledger.inference.bench import load_input, run_bench

    if requests is not None and requests <= 0:
        raise fail("--requests must be positive")
    try:
        data = load_input(input)
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(model_uri)
        result = run_bench(
            model,
            data,
            model_uri=model_uri,
            duration_s=duration,
            requests=requests,
            idle_s=idle,
            warmup=warmup,
        )
    except CarbonLedgerError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - loading or predicting failed: say what
        raise fail(f"cannot benchmark {model_uri}: {type(exc).__name__}: {exc}") from None
    if output is not None:
        output.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    active = (
        f"{result.active_wh_per_request:.4g} Wh"
        if result.active_wh_per_request is not None
        else "n/a (--idle 0)"
    )
    lines = [
        ("model", model_uri),
        (
            "requests",
            f"{result.requests} in {result.duration_s:.1f} s "
            f"({result.requests_per_s:.1f}/s, {result.rows_per_request} rows each)",
        ),
        (
            "energy",
            f"{result.energy_kwh:.4g} kWh ({result.methods}"
            + (")" if result.measured else "; estimate)"),
        ),
        (
            "idle power",
            f"{result.idle_power_w:.1f} W" if result.idle_power_w is not None else "not measured",
        ),
        ("per request", f"{result.wh_per_request:.4g} Wh at full load, active {active}"),
        (
            "CO2e/request",
            f"{result.co2e_g_per_request:.4g} g (PUE {result.pue:g}, "
            f"{result.intensity_g_per_kwh:g} g/kWh)",
        ),
        (
            "latency",
            f"p50 {result.latency_p50_ms:.2f} ms, p95 {result.latency_p95_ms:.2f} ms, "
            f"p99 {result.latency_p99_ms:.2f} ms",
        ),
    ]
    for label, value in lines:
        typer.echo(f"{label:<13} {value}")
    if output is not None:
        typer.echo(f"wrote {output}: `carbonledger import inference usage.csv --bench {output}`")


@inference_app.command("wrap")
def wrap_cmd(
    model_uri: Annotated[str, typer.Argument(help="Model to serve (models:/NAME/VERSION...).")],
    output: Annotated[Path, typer.Option(help="Folder to write the metered model to.")],
    model: Annotated[
        str | None, typer.Option(help="Registered model charged (default: from the URI).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Version charged (default: from the URI).")
    ] = None,
    window_s: Annotated[float, typer.Option(help="Window length in seconds.")] = 60.0,
    experiment: Annotated[
        str, typer.Option(help="Experiment of the inference runs.")
    ] = "carbonledger-inference",
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="Where inference runs go (default: the server's MLFLOW_TRACKING_URI)."),
    ] = None,
    team: Annotated[str | None, typer.Option(help=f"{TAG_TEAM} of the inference runs.")] = None,
) -> None:
    """Write a pyfunc model that serves MODEL_URI metered, for `mlflow models serve -m`."""
    from carbonledger.errors import CarbonLedgerError
    from carbonledger.inference.serving import save_metered_model

    if output.exists():
        raise fail(f"{output} exists: choose a new folder for the metered model")
    if window_s <= 0:
        raise fail("--window-s must be positive")
    try:
        path = save_metered_model(
            output,
            model_uri,
            model_name=model,
            model_version=version,
            window_s=window_s,
            experiment=experiment,
            tracking_uri=tracking_uri,
            team=team,
        )
    except CarbonLedgerError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - MLflow failed to load or save: say what
        raise fail(f"cannot wrap {model_uri}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"wrote {path}; serve it with: mlflow models serve -m {path} --env-manager local")


def import_inference_cmd(
    file: Annotated[Path, typer.Argument(help="Usage CSV: time, model, version, requests[, ...].")],
    wh_per_request: Annotated[
        float | None,
        typer.Option(help="Wh per request for rows without energy_kwh (an estimate)."),
    ] = None,
    bench: Annotated[
        Path | None, typer.Option(help="inference-bench --output JSON giving the Wh per request.")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Team for rows without a team.")] = None,
    zone: Annotated[
        str | None, typer.Option(help="Grid zone for rows without one (default: settings).")
    ] = None,
    pue: Annotated[
        float | None, typer.Option(help="PUE for rows without one (default: settings, else 1.0).")
    ] = None,
    period_s: Annotated[
        float, typer.Option(help="Window length of rows without duration_s or end_time.")
    ] = 86_400.0,
    source: Annotated[str, typer.Option(help="Source name in the ledger.")] = "inference-import",
    ledger_url: Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)] = None,
) -> None:
    """Load request counts of models served outside Python as inference windows."""
    from carbonledger.etl.inference import bench_wh_per_request, import_usage
    from carbonledger.intensity.place import configured_zone
    from carbonledger.ledger import create_ledger_engine
    from carbonledger.settings import get_settings

    if wh_per_request is not None and bench is not None:
        raise fail("give --wh-per-request or --bench, not both")
    if wh_per_request is not None and wh_per_request <= 0:
        raise fail("--wh-per-request must be positive")
    settings = get_settings()
    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        if bench is not None:
            wh_per_request = bench_wh_per_request(bench)
        s = import_usage(
            create_ledger_engine(url),
            file,
            source=source,
            wh_per_request=wh_per_request,
            team=team,
            zone=zone or configured_zone(settings),
            pue=pue or settings.pue or 1.0,
            period_s=period_s,
        )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.quarantined.items()))
    typer.echo(
        f"{file}: loaded {s.loaded}, updated {s.updated} windows ({s.estimated} estimated from "
        f"Wh per request), quarantined {sum(s.quarantined.values())}"
        + (f" ({reasons})" if reasons else "")
    )
