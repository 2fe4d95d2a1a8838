"""One truth: every surface gives the same team and model figures for one seeded ledger.

The ledger is loaded the real way (MLflow store -> ``carbonledger etl``) from runs that have
3-level nesting, a 20-child sweep, failed runs, two model versions with lineage (one from a
tagged run, one from an untagged run with a nested child), inference windows of both
versions, two teams in two zones and a contractual (market) factor. The expected figures are
computed here from the kWh written into MLflow and the test factors, independently of the
ledger; every surface (views, rollups, ``budgets check --json``, ``budgets lifecycle --json``,
the report's CSV, the app's query functions) must agree with them to a relative 1e-9.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from mlflow.entities import Metric, RunTag
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from carbonledger import contract as c
from carbonledger.budgets import make_spec, set_budget
from carbonledger.cli import app
from carbonledger.etl import run_etl
from carbonledger.ledger import add_emission_factor
from carbonledger.reporting import lifecycle, parse_period, queries, reporting_engine

NOW = datetime(2024, 6, 20, 12, tzinfo=UTC)
PERIOD = "2024-06"
LOCATION = {"DE": 380.0, "FR": 50.0}  # TEST_FACTORS, 2024
MARKET = {"DE": 30.0}  # the contractual factor seeded below
PUE = 1.25
REL = 1e-9


class Seed:
    """What was written into MLflow, and the figures expected from it."""

    def __init__(self) -> None:
        self.team_kg: dict[str, float] = defaultdict(float)
        self.team_market_kg: dict[str, float] = defaultdict(float)
        self.model_kg: dict[str, float] = defaultdict(float)
        self.org_kg = 0.0

    def charge(self, *, team: str, model: str | None, zone: str, it_kwh: float) -> None:
        """A top-level run's inclusive figure (or a window) charged to a team and model."""
        loc = it_kwh * PUE * LOCATION[zone] / 1000.0
        self.team_kg[team] += loc
        self.team_market_kg[team] += it_kwh * PUE * MARKET.get(zone, LOCATION[zone]) / 1000.0
        if model is not None:
            self.model_kg[model] += loc
        self.org_kg += loc


def _run(client: Any, exp: str, it_kwh: float, zone: str, **tags: str) -> str:
    status = tags.pop("status", "FINISHED")
    return make_run(
        client,
        exp,
        metrics=metered_metrics(
            gpu=it_kwh * 0.8, cpu=it_kwh * 0.15, ram=it_kwh * 0.05, pue=PUE, duration_s=3600.0
        ),
        tags=metered_tags(zone, **tags),
        status=status,
    )


def _windows(client: Any, exp: str, *, model: str, version: int, team: str, kwh: list[float]):
    run = client.create_run(exp, start_time=T0_MS)
    metrics = []
    for step, energy in enumerate(kwh, start=1):
        ts = T0_MS + 86_400_000 + step * 60_000
        metrics += [
            Metric(c.W_REQUESTS, 100.0 * step, ts, step),
            Metric(c.W_WINDOW_S, 60.0, ts, step),
            Metric(c.W_GPU_ENERGY_KWH, energy * 0.9, ts, step),
            Metric(c.W_CPU_ENERGY_KWH, energy * 0.1, ts, step),
            Metric(c.W_ACTIVE_ENERGY_KWH, energy * 0.5, ts, step),
            Metric(c.W_PUE, PUE, ts, step),
        ]
    metrics.append(Metric(c.W_WINDOWS_TOTAL, float(len(kwh)), T0_MS, 0))
    # the run's cumulative totals, as the inference meter logs them with every window
    totals = metered_metrics(gpu=sum(kwh) * 0.9, cpu=sum(kwh) * 0.1, ram=0.0, pue=PUE)
    metrics += [Metric(k, v, T0_MS, len(kwh)) for k, v in totals.items()]
    tags = metered_tags("DE", **{
        c.TAG_KIND: c.KIND_INFERENCE,
        c.TAG_MODEL_NAME: model,
        c.TAG_MODEL_VERSION: str(version),
        c.TAG_TEAM: team,
        c.TAG_METHODS: "cpu=rapl;gpu=nvml-energy-counter",
    })  # fmt: skip
    client.log_batch(run.info.run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
    client.set_terminated(run.info.run_id, end_time=T0_MS + 2 * 86_400_000)


def seed(client: Any, ledger: Engine) -> Seed:
    s = Seed()
    with ledger.begin() as conn:
        add_emission_factor(
            conn, zone="DE", year=2024, basis="market", intensity_g_per_kwh=30.0,
            source="ppa-2024", instrument="PPA",
        )  # fmt: skip
    nlp = client.create_experiment("nlp-research")
    vision = client.create_experiment("vision", tags={c.TAG_TEAM: "vision"})
    # nlp, qa-model: root 7 kWh > 2 children 3 kWh > 2 grandchildren 1 kWh each (inclusive)
    root = _run(client, nlp, 7.0, "DE", **{c.TAG_TEAM: "nlp", c.TAG_MODEL_NAME: "qa-model"})
    for _ in range(2):
        child = _run(client, nlp, 3.0, "DE", **{c.MLFLOW_PARENT_RUN_ID: root})
        for _ in range(2):
            _run(client, nlp, 1.0, "DE", **{c.MLFLOW_PARENT_RUN_ID: child})
    s.charge(team="nlp", model="qa-model", zone="DE", it_kwh=7.0)
    _run(client, nlp, 0.8, "DE", status="FAILED", **{c.TAG_MODEL_NAME: "qa-model"})
    s.charge(team="unassigned", model="qa-model", zone="DE", it_kwh=0.8)
    # an untagged fine-tune that produced version 2, with a nested evaluation run
    finetune = _run(client, nlp, 2.0, "DE", **{c.TAG_TEAM: "nlp"})
    _run(client, nlp, 0.5, "DE", **{c.MLFLOW_PARENT_RUN_ID: finetune})
    s.charge(team="nlp", model="qa-model", zone="DE", it_kwh=2.0)
    # vision: a 20-child sweep in FR, the experiment names the team
    sweep = _run(client, vision, 10.5, "FR", **{c.TAG_MODEL_NAME: "vision-model"})
    for _ in range(20):
        _run(client, vision, 0.5, "FR", **{c.MLFLOW_PARENT_RUN_ID: sweep})
    s.charge(team="vision", model="vision-model", zone="FR", it_kwh=10.5)
    _run(client, vision, 1.5, "FR", status="FAILED")
    s.charge(team="vision", model=None, zone="FR", it_kwh=1.5)
    # lineage: v1 from the tagged root (counted once), v2 from the untagged fine-tune
    client.create_registered_model("qa-model")
    client.create_model_version("qa-model", f"runs:/{root}/model", run_id=root)
    client.create_model_version("qa-model", f"runs:/{finetune}/model", run_id=finetune)
    # serving both versions
    serving = client.create_experiment("carbonledger-inference")
    for version, kwh in ((1, [0.2, 0.1, 0.3]), (2, [0.05, 0.4])):
        _windows(client, serving, model="qa-model", version=version, team="nlp", kwh=kwh)
        for e in kwh:
            s.charge(team="nlp", model="qa-model", zone="DE", it_kwh=e)
    with ledger.begin() as conn:
        for spec in (
            make_spec(model="qa-model", limit_co2e_kg=5.0),
            make_spec(model="vision-model", limit_co2e_kg=1.0, basis="market"),
            make_spec(team="nlp", period="year", limit_co2e_kg=10.0),
            make_spec(team="vision", period="month", limit_co2e_kg=2.0, basis="market"),
            make_spec(team="unassigned", period="quarter", limit_co2e_kg=1.0),
        ):
            set_budget(conn, spec=spec, now=NOW)
    return s


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1, 2), result.output
    return result


def _csv_section(text_: str, title: str) -> list[dict[str, str]]:
    block = text_.split(f"# {title}\n", 1)[1].split("\n# ", 1)[0]
    return list(csv.DictReader(io.StringIO(block)))


def _same(got: float, want: float) -> bool:
    return got == pytest.approx(want, rel=REL, abs=1e-12)


def test_every_surface_gives_the_same_team_and_model_figures(
    ledger: Engine, ledger_url: str, client: Any, mlflow_uri: str
) -> None:
    s = seed(client, ledger)
    summary = run_etl(ledger, mlflow_uris=[mlflow_uri], now=NOW)[0]
    assert sum(summary.quarantined.values()) == 0 and summary.windows == 5

    surfaces: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)  # surface -> key -> kg
    with ledger.connect() as conn:
        surfaces["v_team_monthly"]["team"] = dict(
            conn.execute(
                text("SELECT team, SUM(co2e_location_kg) FROM v_team_monthly GROUP BY team")
            ).all()
        )
        surfaces["rollup_team_month"]["team"] = dict(
            conn.execute(
                text("SELECT team, SUM(co2e_location_kg) FROM rollup_team_month GROUP BY team")
            ).all()
        )
        surfaces["v_model_lifecycle"]["model"] = dict(
            conn.execute(
                text("SELECT model_name, lifecycle_co2e_location_kg FROM v_model_lifecycle")
            ).all()
        )
        rollup_models: dict[str, float] = defaultdict(float)
        for table in ("rollup_model_month", "rollup_inference_daily"):
            for name, kg in conn.execute(
                text(f"SELECT model_name, SUM(co2e_location_kg) FROM {table} GROUP BY model_name")
            ):
                rollup_models[name] += kg
        surfaces["model rollups"]["model"] = dict(rollup_models)
        org_view = conn.execute(text("SELECT SUM(co2e_location_kg) FROM v_team_monthly")).scalar()
        top_level = conn.execute(
            text(
                "SELECT SUM(inclusive_co2e_location_kg) FROM v_run_emissions "
                "WHERE parent_run_id IS NULL AND kind <> 'inference'"
            )
        ).scalar()
        inference = conn.execute(text("SELECT SUM(co2e_location_kg) FROM inference_co2e")).scalar()

    engine = reporting_engine(ledger_url)
    try:
        period = parse_period(PERIOD)
        teams = queries.by_team(engine, period=period)
        surfaces["app by_team"]["team"] = dict(zip(teams.team, teams.co2e_location_kg, strict=True))
        surfaces["app totals(team)"]["team"] = {
            t: queries.totals(engine, period=period, team=t).co2e_location_kg for t in s.team_kg
        }
        models = queries.by_model(engine, period=period)
        surfaces["app by_model"]["model"] = dict(
            zip(models.model_name, models.co2e_location_kg, strict=True)
        )
        surfaces["app lifecycle"]["model"] = {
            m: lifecycle.lifecycle(engine, model_name=m).co2e_kg for m in s.model_kg
        }
        surfaces["app lifecycle_by_month"]["model"] = {
            m: float(
                lifecycle.lifecycle_by_month(engine, model_name=m).cumulative_co2e_location_kg.iloc[
                    -1
                ]
            )
            for m in s.model_kg
        }
        app_budgets = lifecycle.budgets(engine, now=NOW)
        org_app = queries.totals(engine, period=period).co2e_location_kg
    finally:
        engine.dispose()

    report = _cli("report", "--period", PERIOD, "--format", "csv", "--ledger-url", ledger_url)
    surfaces["report csv"]["team"] = {
        r["team"]: float(r["co2e_location_kg"]) for r in _csv_section(report.output, "By team")
    }
    surfaces["report csv"]["model"] = {
        r["model_name"]: float(r["co2e_location_kg"])
        for r in _csv_section(report.output, "By model")
    }
    checked = json.loads(
        _cli(
            "budgets", "check", "--json", "--no-notify", "--no-tags", "--at", NOW.isoformat(),
            "--ledger-url", ledger_url,
        ).output
    )  # fmt: skip
    location_budgets = [b for b in checked if b["basis"] == "location"]
    surfaces["budgets check --json"]["team"] = {
        b["name"]: b["used_co2e_kg"] for b in location_budgets if b["scope"] == "team"
    }
    surfaces["budgets check --json"]["model"] = {
        b["name"]: b["used_co2e_kg"] for b in location_budgets if b["scope"] == "model"
    }
    surfaces["budgets lifecycle --json"]["model"] = {
        m: json.loads(_cli("budgets", "lifecycle", m, "--json", "--ledger-url", ledger_url).output)[
            "co2e_kg"
        ]
        for m in s.model_kg
    }

    # every surface, every team and model it shows, equals the independent figure
    want = {"team": dict(s.team_kg), "model": dict(s.model_kg)}
    for surface, by_key in surfaces.items():
        for key, figures in by_key.items():
            for name, kg in figures.items():
                assert _same(float(kg), want[key][name]), (surface, key, name, kg, want[key][name])
            if surface not in ("budgets check --json",):  # budgets cover a subset of scopes
                assert set(figures) == set(want[key]), (surface, key, set(figures))
    assert len(surfaces) == 12

    # market-based budgets and the app's budget table agree with the gate too
    market = {b["name"]: b["used_co2e_kg"] for b in checked if b["basis"] == "market"}
    assert _same(market["vision"], s.team_market_kg["vision"])  # FR: location fallback
    by_id = {b["id"]: b for b in checked}
    for row in app_budgets.itertuples():
        gate = by_id[row.budget_id]
        assert _same(row.used_co2e_kg, gate["used_co2e_kg"])
        assert (
            row.status == gate["status"]
            and row.projected_exhaustion == gate["projected_exhaustion"]
        )

    # the organisation's total is the top-level runs' (inclusive) figures plus inference
    assert _same(org_view, s.org_kg) and _same(org_app, s.org_kg)
    assert _same(top_level + inference, s.org_kg)
