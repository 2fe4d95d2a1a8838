"""SQL injection through every reporting parameter (app filters, report options) on both engines.

Each reporting function the app and ``carbonledger report`` use gets hostile strings in each of
its text parameters; the ledger must be intact afterwards and the answers empty (nothing
matches such a name) or unchanged (the parameter does not filter that way).
"""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.errors import ReportingError
from carbonledger.etl.pipeline import run_etl
from carbonledger.reporting import lifecycle, methodology, queries, runs
from carbonledger.reporting.periods import parse_period

INJECTIONS = [
    "x' OR '1'='1",
    "team-0' OR 1=1 --",
    "'; DROP TABLE runs; --",
    '"; DELETE FROM runs; --',
    "team-0'); UPDATE runs SET team='pwned'; --",
    "%' UNION SELECT run_id, run_id FROM runs --",
    "%",
    "_",
    "\\",
    "') OR ('a'='a",
    "1; SELECT pg_sleep(5)",
    "ẞ’\u202eteam\x00",
]
PERIOD = parse_period("2024")


@pytest.fixture(autouse=True)
def _plugin_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_DISABLE", "1")


@pytest.fixture
def loaded(ledger: Engine, client: Any, mlflow_uri: str) -> Engine:
    exp = client.create_experiment("inj")
    for i in range(6):
        tags = metered_tags(**{"carbon.team": f"team-{i % 2}", "carbon.model_name": "m1"})
        make_run(client, exp, metrics=metered_metrics(), tags=tags, start_ms=T0_MS + i * 1000)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    return ledger


def _fingerprint(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(sql)).all()
            for sql in (
                "SELECT run_id, team, facility_energy_kwh FROM runs ORDER BY run_id",
                "SELECT count(*) FROM run_energy",
                "SELECT count(*) FROM budgets",
                "SELECT count(*) FROM emission_factors",
            )
        )


def _frames(engine: Engine, s: str) -> dict[str, Any]:
    """Every reporting call with ``s`` in one text parameter; values that must be empty."""
    return {
        "totals(team)": queries.totals(engine, period=PERIOD, team=s).training_runs,
        "monthly_trend(team)": len(queries.monthly_trend(engine, period=PERIOD, team=s)),
        "by_model(team)": len(queries.by_model(engine, period=PERIOD, team=s)),
        "scope2(team)": len(queries.scope2(engine, period=PERIOD, team=s)),
        "top_runs(team)": len(queries.top_runs(engine, period=PERIOD, team=s)),
        "runs_table(team)": len(runs.runs_table(engine, period=PERIOD, team=s)),
        "runs_table(model)": len(runs.runs_table(engine, period=PERIOD, model_name=s)),
        "runs_table(status)": len(runs.runs_table(engine, period=PERIOD, status=s)),
        "runs_table(search)": len(runs.runs_table(engine, period=PERIOD, search=s)),
        "run_detail(run_id)": runs.run_detail(engine, run_id=s),
        "metric_keys(team)": len(runs.metric_keys(engine, period=PERIOD, team=s)),
        "lifecycle_by_month(model)": len(lifecycle.lifecycle_by_month(engine, model_name=s)),
        "per_1000_requests(model)": len(lifecycle.per_1000_requests(engine, model_name=s)),
        "versions(model)": len(lifecycle.versions(engine, model_name=s)),
        "budgets(team)": len(lifecycle.budgets(engine, team=s)),
        "budgets(model)": len(lifecycle.budgets(engine, model_name=s)),
        "factors_in_use(team)": len(methodology.factors_in_use(engine, period=PERIOD, team=s)),
        "estimate_counts(team)": methodology.estimate_counts(engine, period=PERIOD, team=s).runs,
        "efficiency(metric,team)": len(runs.efficiency(engine, metric=s, period=PERIOD, team=s)),
        "efficiency(model)": len(
            runs.efficiency(engine, metric="acc", period=PERIOD, model_name=s)
        ),
    }


def test_injection_through_every_reporting_parameter_changes_nothing_and_matches_nothing(
    loaded: Engine,
) -> None:
    """Injected: 12 hostile strings (quote breaking, stacked statements, UNION, LIKE wildcards,
    NUL and bidi characters) through each text parameter of the reporting functions, on SQLite
    and PostgreSQL. Checked: no exception other than a ReportingError, the ledger's rows are
    identical afterwards, and every filtered answer is empty except LIKE wildcards in the
    free-text search, which match as text."""
    before = _fingerprint(loaded)
    assert (
        queries.totals(loaded, period=PERIOD, team="team-0").training_runs == 3
    )  # the filters work
    for s in INJECTIONS:
        try:
            answers = _frames(loaded, s)
        except ReportingError:
            continue
        for name, value in answers.items():
            if name == "runs_table(search)" and s in ("%", "_", "\\"):
                continue  # searched as text: '%' may match every run name, nothing more
            assert not value, f"{name} with {s!r} returned {value!r}"
    assert _fingerprint(loaded) == before


@pytest.mark.parametrize("bad", ["2024' OR 1=1 --", "2024; DROP TABLE runs", "2024-13", "'"])
def test_period_text_is_parsed_never_interpolated(bad: str) -> None:
    """Injected: hostile period strings (the report's and the app's period parameter).
    Checked: a ReportingError whose message shows the accepted forms."""
    with pytest.raises(ReportingError, match="YYYY-Qn"):
        parse_period(bad)


def test_a_nul_character_in_a_filter_is_a_reporting_error_not_a_driver_crash(
    loaded: Engine,
) -> None:
    """Injected: a team filter with a NUL byte (PostgreSQL's driver refuses it with DataError).
    Checked: a ReportingError that names the filter and the fix, on both engines."""
    with pytest.raises(ReportingError, match="NUL character"):
        queries.totals(loaded, period=PERIOD, team="team-0\x00")
