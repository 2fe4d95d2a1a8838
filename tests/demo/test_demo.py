"""``carbonledger demo`` end to end: real training, the plugin, the ETL, the ledger, the app."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carbonledger.demo import DemoPaths, run_demo
from carbonledger.demo.runner import DemoResult, free_port
from carbonledger.settings import get_settings

pytestmark = pytest.mark.slow


@dataclass
class DemoRuns:
    paths: DemoPaths
    first: DemoResult
    second: DemoResult


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRuns]:
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        # The demo meters its runs with the installed plugin, like a user's job would; no
        # hardware is read (empty powercap tree, no NVML here), so CPU/RAM are estimates.
        mp.delenv("CARBONLEDGER_DISABLE", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        (root / "powercap").mkdir()
        mp.setenv("CARBONLEDGER_RAPL_ROOT", str(root / "powercap"))
        mp.setenv("CARBONLEDGER_JOURNAL_PATH", str(root / "journal"))
        get_settings.cache_clear()
        paths = DemoPaths(root / "work")
        first = run_demo(paths, say=lambda _m: None)
        second = run_demo(paths, say=lambda _m: None)
        get_settings.cache_clear()
        yield DemoRuns(paths, first, second)
    import mlflow

    mlflow.set_tracking_uri(None)


def _mlflow_totals(uri: str) -> tuple[float, int, dict[str, int]]:
    """Facility kWh and count of every run in the demo's store, and runs per kind."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, max_results=50_000)
    kinds: dict[str, int] = {}
    for run in runs:
        assert run.info.status in ("FINISHED", "FAILED")
        kind = run.data.tags.get("carbon.kind", "training")
        kinds[kind] = kinds.get(kind, 0) + 1
    total = sum(r.data.metrics["carbon/facility_energy_kwh"] for r in runs)
    return total, len(runs), kinds


def test_the_ledger_totals_match_the_runs_the_demo_made(demo: DemoRuns) -> None:
    from mlflow.tracking import MlflowClient

    first = demo.first
    client = MlflowClient(demo.paths.mlflow_uri)
    for run_id in first.trained_run_ids:  # metered by the plugin, not by demo code
        run = client.get_run(run_id)
        assert run.data.metrics["carbon/energy_kwh"] > 0
        assert run.data.tags["carbon.metered"] == "true"
    assert first.synthetic_run_ids
    energy_kwh, runs, kinds = _mlflow_totals(demo.paths.mlflow_uri)
    assert kinds["inference"] > len(first.synthetic_run_ids) - 200  # real serving runs too
    assert first.totals["runs"] == runs
    assert first.totals["energy_kwh"] == pytest.approx(energy_kwh, rel=1e-9)
    teams = {t["team"] for t in first.totals["teams"]}
    assert {"vision", "risk", "forecasting", "nlp"} <= teams
    assert "unassigned" not in teams
    assert first.etl[0]["loaded"] == runs
    assert sum(first.etl[0]["quarantined"].values()) == 0


def test_real_traffic_was_metered_into_inference_windows(demo: DemoRuns) -> None:
    from sqlalchemy import create_engine, text

    served = demo.first.requests_served
    assert served and all(n > 0 for n in served.values())
    engine = create_engine(demo.paths.ledger_url)
    with engine.connect() as conn:
        for model, requests in served.items():
            ledger_requests = conn.execute(
                text(
                    "SELECT SUM(w.requests) FROM inference_windows w JOIN runs r "
                    "ON r.source_id = w.source_id AND r.run_id = w.run_id "
                    "WHERE w.model_name = :m AND r.run_name NOT LIKE 'synthetic%'"
                ),
                {"m": model},
            ).scalar()
            assert ledger_requests == requests
    engine.dispose()


def test_the_example_budgets_include_one_exceeded_and_alerts(demo: DemoRuns) -> None:
    statuses = {b.budget.scope_name: b.status for b in demo.first.budgets}
    assert statuses["support-assistant"] == "exceeded"
    assert "ok" in statuses.values() or "warning" in statuses.values()


def test_the_demo_keeps_its_files_and_leaves_the_callers_mlflow_as_it_was(
    demo: DemoRuns,
) -> None:
    import mlflow
    from mlflow.tracking import fluent

    assert any(demo.paths.artifacts.rglob("MLmodel"))  # registered models' artifacts
    assert fluent._active_experiment_id is None
    assert mlflow.get_tracking_uri() != demo.paths.mlflow_uri


def test_a_second_demo_reuses_what_is_there(demo: DemoRuns) -> None:
    assert not demo.first.reused and demo.second.reused
    assert demo.second.trained_run_ids == demo.first.trained_run_ids
    assert demo.second.etl[0]["loaded"] == 0
    assert demo.second.totals["energy_kwh"] == pytest.approx(demo.first.totals["energy_kwh"])


def test_the_cli_prints_the_totals_and_stops_before_the_app_when_told(
    demo: DemoRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.cli import app

    monkeypatch.setenv("CARBONLEDGER_DEMO_NO_APP", "1")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["demo", "--dir", str(demo.paths.root)])
    assert result.exit_code == 0, result.output
    assert "By team" in result.output and "nlp" in result.output
    assert f"{demo.first.totals['co2e_kg']:.3f} kg CO2e" in result.output.replace("\n", " ")
    assert "Budgets" in result.output and "exceeded" in result.output
    assert "app not started" in result.output


def test_the_app_on_the_demo_ledger_answers_its_health_endpoint(demo: DemoRuns) -> None:
    from carbonledger.reporting.serve import start_app, wait_healthy

    port = free_port(8650)
    process = start_app(ledger_url=demo.paths.ledger_url, port=port)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}", process=process, timeout_s=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_free_port_skips_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port(taken) != taken
