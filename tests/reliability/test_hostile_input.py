"""Hostile and malformed input, property-based (hypothesis): MLflow tag/metric values through
the ETL, budgets YAML, team rules YAML, CodeCarbon and inference usage CSVs.

Values: NaN, ±inf, huge and negative numbers, unicode, control characters (NUL included),
over-long strings, SQL and YAML injection. Every input ends as a ledger row that PostgreSQL
and SQLite accept, a quarantine row with its reason, or a ``CarbonLedgerError`` that says
what to fix; no other exception escapes, and nothing is dropped silently (records in ==
loaded + quarantined).
"""

from __future__ import annotations

import csv
import math
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, String, func, select

from carbonledger.errors import CarbonLedgerError, ConfigError
from carbonledger.etl.transform import (
    ExperimentInfo,
    Rejected,
    RunRecord,
    TransformConfig,
    transform_run,
)
from carbonledger.ledger.models import Quarantine, Run

INJECTIONS = [
    "'; DROP TABLE runs; --",
    "x' OR '1'='1",
    "1; DELETE FROM budgets",
    "%_%",
    "\x00",
    "a\x00b",
    "\u202egnp.exe",
    "!!python/object/apply:os.system ['echo pwned']",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "\r\n\t\x1b[31m",
    "🔥" * 70,
    "x" * 600,
    "NaN",
    "inf",
    "-1e400",
    "1e30",
    "",
    " ",
]
TEXT = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),
    st.text(min_size=190, max_size=700),
)
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e30, 1e308, 5e-324, 2.0**63, 2.0**31]),
    st.floats(min_value=0, max_value=50),
)
NUMERIC_TEXT = st.one_of(NUMBER.map(repr), NUMBER.map(str), TEXT)
CARBON_METRICS = [
    "carbon/gpu_energy_kwh", "carbon/cpu_energy_kwh", "carbon/ram_energy_kwh",
    "carbon/energy_kwh", "carbon/pue", "carbon/facility_energy_kwh",
    "carbon/intensity_g_per_kwh", "carbon/co2e_kg", "carbon/duration_s", "carbon/avg_power_w",
    "carbon/peak_power_w", "carbon/heartbeat_ms",
]  # fmt: skip
CARBON_TAGS = [
    "carbon.team", "team", "carbon.model_name", "carbon.kind", "carbon.gpu_model",
    "carbon.gpu_count", "carbon.cpu_model", "carbon.cpu_count", "carbon.ram_gb",
    "carbon.node_count", "carbon.attribution", "carbon.methods", "carbon.country",
    "carbon.cloud_provider", "carbon.cloud_region", "carbon.grid_zone",
    "carbon.plugin_version", "carbon.intensity_source", "mlflow.parentRunId",
    "carbon.unmetered_reason",
]  # fmt: skip
EPOCH_MS = st.one_of(
    st.integers(min_value=0, max_value=4_102_444_800_000),
    st.sampled_from([-(10**15), 10**15, 2**63 - 1, -(2**63), 253_402_300_800_000]),
)
REASONS = {"non-finite", "negative", "impossible", "invalid-field", "missing-field", "unknown-zone"}
QUICK = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLOW = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def mlflow_runs(draw: Any) -> Any:
    """A real ``mlflow.entities.Run`` built in memory with hostile values."""
    from mlflow.entities import Metric, Run, RunData, RunInfo, RunTag

    metrics = draw(st.dictionaries(st.sampled_from(CARBON_METRICS), NUMBER, max_size=12))
    tags = draw(st.dictionaries(st.sampled_from(CARBON_TAGS), TEXT | NUMERIC_TEXT, max_size=10))
    start = draw(EPOCH_MS)
    end = draw(st.one_of(st.none(), EPOCH_MS))
    info = RunInfo(
        run_id=uuid.uuid4().hex, experiment_id="1", user_id=draw(TEXT), status="FINISHED",
        start_time=start, end_time=end, lifecycle_stage="active", run_name=draw(TEXT),
    )  # fmt: skip
    data = RunData(
        metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    return Run(info, data)


def _assert_loadable(row: dict[str, Any]) -> None:
    """What PostgreSQL would refuse: NUL, strings over the column length, non-finite floats,
    integers outside INTEGER, datetimes Python cannot hold."""
    columns = Run.__table__.c
    for name, value in row.items():
        if isinstance(value, str):
            assert "\x00" not in value, name
            length = getattr(columns[name].type, "length", None) if name in columns else None
            if isinstance(columns[name].type, String) and length:
                assert len(value) <= length, (name, len(value))
        elif isinstance(value, float):
            assert math.isfinite(value), (name, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            assert -(2**31) <= value < 2**31, (name, value)
        elif isinstance(value, datetime):
            assert 1 <= value.year <= 9999


@QUICK
@given(run=mlflow_runs(), exp_tags=st.dictionaries(st.sampled_from(["team", "carbon.team"]), TEXT))
def test_transform_never_crashes_and_never_emits_an_unloadable_row(run: Any, exp_tags: Any) -> None:
    """Injected: hostile carbon metrics (NaN, inf, 1e308, negative), tags (NUL, bidi, 700
    chars, SQL, YAML tags), epoch times outside any calendar. Checked: ``transform_run``
    returns a row every column of which PostgreSQL accepts, or a quarantine record with a
    known reason and a detail; it never raises."""
    config = TransformConfig(known_zones=frozenset({"DE", "FR", "WORLD"}), unmetered_power_w=300.0)
    out = transform_run(run, ExperimentInfo("1", "exp", exp_tags), config)
    if isinstance(out, Rejected):
        assert out.reason in REASONS and out.detail and out.record_id == run.info.run_id
    else:
        assert isinstance(out, RunRecord)
        _assert_loadable(out.row)
        for e in out.energy:
            assert math.isfinite(e["energy_kwh"]) and e["energy_kwh"] >= 0
            assert e["method"] is None or len(e["method"]) <= 64


@pytest.fixture
def store(mlflow_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri)


@pytest.mark.parametrize(
    "ledger_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
@SLOW
@given(runs=st.lists(mlflow_runs(), min_size=1, max_size=4))
def test_a_real_load_keeps_every_run_or_quarantines_it(
    runs: list[Any], store: Any, mlflow_uri: str, ledger: Engine
) -> None:
    """Injected: the same hostile runs, logged to a real SQLite MLflow store (values MLflow
    itself refuses are skipped), loaded by ``run_etl`` into SQLite and PostgreSQL. Checked:
    the load finishes, and every run MLflow kept is in ``runs`` or ``quarantine``."""
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    from carbonledger.etl import run_etl

    exp = store.create_experiment(f"hostile-{uuid.uuid4().hex[:8]}")
    kept = 0
    for run in runs:
        created = store.create_run(exp, start_time=run.info.start_time or 0)
        rid = created.info.run_id
        metrics = [m for m in run.data._metric_objs]
        tags = [RunTag(k, v) for k, v in run.data.tags.items()]
        try:
            store.log_batch(rid, metrics=metrics, tags=tags)
        except MlflowException:
            store.log_batch(rid, tags=[RunTag("carbon.team", "fallback")])
        try:
            store.set_terminated(rid, end_time=run.info.end_time)
        except (MlflowException, OverflowError, ValueError):
            pass
        kept += 1
    before = _ledger_counts(ledger)
    run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)
    after = _ledger_counts(ledger)
    assert after - before == kept


def _ledger_counts(engine: Engine) -> int:
    with engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(Run)).scalar_one()
        quarantined = conn.execute(select(func.count()).select_from(Quarantine)).scalar_one()
    return int(runs + quarantined)


BUDGET_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "model": TEXT,
        "team": TEXT,
        "period": st.one_of(TEXT, st.sampled_from(["month", "quarter", "year", "lifecycle"])),
        "limit_co2e_kg": st.one_of(NUMBER, TEXT, st.none(), st.lists(NUMBER, max_size=2)),
        "thresholds_pct": st.one_of(st.lists(NUMBER, max_size=4), TEXT, NUMBER),
        "basis": st.one_of(TEXT, st.sampled_from(["location", "market"])),
        "note": TEXT,
    },
)
YAML_DOC = st.one_of(
    st.builds(
        lambda e: yaml.safe_dump({"budgets": e}, allow_unicode=True),
        st.lists(BUDGET_ENTRY, max_size=4),
    ),
    st.builds(lambda e: yaml.safe_dump(e), st.one_of(st.none(), NUMBER, TEXT, st.lists(TEXT))),
    TEXT,
    st.sampled_from(
        [
            "budgets: !!python/object/apply:os.system ['true']",
            "budgets: [&a [*a]]",
            "\ufeffbudgets: []",
            "budgets:\n- {team: a, period: month, limit_co2e_kg: .nan}",
        ]
    ),
)


@QUICK
@given(doc=YAML_DOC)
def test_budgets_yaml_is_parsed_or_refused_with_a_config_error(doc: str, tmp_path: Path) -> None:
    """Injected: budgets.yaml documents with hostile names, limits (NaN, inf, negative,
    strings, lists), thresholds and periods, YAML tags and broken YAML. Checked: either every
    budget has a finite positive limit and thresholds, or a ``ConfigError`` names the file."""
    from carbonledger.budgets.definitions import load_budget_file

    path = tmp_path / f"budgets-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(doc, encoding="utf-8", errors="surrogatepass")
    try:
        specs = load_budget_file(path)
    except ConfigError as exc:
        assert str(path) in str(exc) or "budget" in str(exc)
        return
    for spec in specs:
        assert math.isfinite(spec.limit_co2e_kg) and spec.limit_co2e_kg > 0
        assert all(math.isfinite(t) and t > 0 for t in spec.thresholds_pct)
        assert spec.scope_name.strip() and "\x00" not in spec.scope_name
        assert len(spec.scope_name) <= 500


RULE = st.fixed_dictionaries(
    {},
    optional={
        "team": st.one_of(TEXT, NUMBER, st.none()),
        "experiment": st.one_of(TEXT, st.lists(TEXT, max_size=2)),
        "experiment_regex": st.one_of(TEXT, st.sampled_from(["(a", "a{2,1}", "(?P<x>", "*"])),
        "user": TEXT,
    },
)


@QUICK
@given(
    doc=st.one_of(
        st.builds(
            lambda r: yaml.safe_dump({"rules": r}, allow_unicode=True), st.lists(RULE, max_size=4)
        ),
        st.builds(lambda r: yaml.safe_dump(r), st.one_of(st.none(), TEXT, st.lists(RULE))),
        TEXT,
    ),
    experiment=TEXT,
    user=TEXT,
    tag=st.one_of(st.none(), TEXT),
)
def test_team_rules_load_or_say_what_to_fix_and_resolve_any_run(
    doc: str, experiment: str, user: str, tag: str | None, tmp_path: Path
) -> None:
    """Injected: rules files with hostile teams, patterns (broken regexes), types and YAML.
    Checked: ``TeamRules.load`` returns rules or raises ``ConfigError``; loaded rules resolve
    any hostile experiment name, user and team tag to a string team without raising."""
    from carbonledger.etl.teams import TeamRules

    path = tmp_path / f"teams-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(doc, encoding="utf-8", errors="surrogatepass")
    try:
        rules = TeamRules.load(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    team, _rule = rules.resolve(
        run_tags={} if tag is None else {"carbon.team": tag},
        experiment_tags={},
        experiment_name=experiment,
        user=user,
    )
    assert isinstance(team, str) and team


CC_COLUMNS = [
    "run_id", "timestamp", "project_name", "duration", "emissions", "energy_consumed",
    "cpu_energy", "gpu_energy", "ram_energy", "country_iso_code", "cpu_model", "gpu_model",
    "cpu_count", "gpu_count", "ram_total_size", "tracking_mode", "pue", "cloud_provider",
    "cloud_region", "codecarbon_version",
]  # fmt: skip
CC_ROW = st.fixed_dictionaries(
    {
        "run_id": st.one_of(st.uuids().map(str), TEXT),
        "timestamp": st.one_of(
            st.sampled_from(
                [
                    "2024-06-01T10:00:00",
                    "2024-06-01T10:00:00+02:00",
                    "9999-12-31T23:59:59",
                    "0001-01-01T00:00:00",
                ]
            ),
            TEXT,
        ),
        "duration": NUMERIC_TEXT,
        "energy_consumed": NUMERIC_TEXT,
    },
    optional={c: NUMERIC_TEXT for c in CC_COLUMNS[4:] if c != "energy_consumed"}
    | {"country_iso_code": st.sampled_from(["DEU", "FRA", "XXX", "", "de"]) | TEXT},
)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(CC_ROW, min_size=1, max_size=6))
def test_codecarbon_import_loads_or_quarantines_every_row(
    rows: list[dict[str, str]], ledger: Engine, tmp_path: Path
) -> None:
    """Injected: emissions.csv rows with hostile numbers, timestamps (year 1, 9999, text),
    countries, names and control characters. Checked: ``import_codecarbon`` (what
    ``carbonledger import codecarbon`` runs) loads or quarantines every distinct run_id, or
    raises a ``CarbonLedgerError``."""
    from carbonledger.etl.codecarbon import import_codecarbon

    path = tmp_path / f"emissions-{uuid.uuid4().hex[:6]}.csv"
    _write_csv(path, CC_COLUMNS, rows)
    with path.open(newline="", encoding="utf-8") as handle:
        records = len(
            {
                r["run_id"].strip() or f"line {n}"
                for n, r in enumerate(csv.DictReader(handle), start=2)
            }
        )
    try:
        s = import_codecarbon(ledger, path, source=f"cc-{uuid.uuid4().hex[:6]}")
    except CarbonLedgerError as exc:
        assert str(exc)
        return
    assert s.loaded + s.updated + s.unchanged + sum(s.quarantined.values()) == records


USAGE_COLUMNS = [
    "time",
    "model",
    "version",
    "requests",
    "energy_kwh",
    "duration_s",
    "end_time",
    "team",
    "zone",
    "pue",
]
USAGE_ROW = st.fixed_dictionaries(
    {
        "time": st.one_of(
            st.sampled_from(
                [
                    "2024-06-01T00:00:00Z",
                    "2024-06-01T00:00:00",
                    "0001-01-01T00:00:00",
                    "9999-12-31T23:59:59Z",
                ]
            ),
            TEXT,
        ),
        "model": st.one_of(st.just("m"), TEXT),
        "version": NUMERIC_TEXT | st.sampled_from(["1", "2"]),
        "requests": NUMERIC_TEXT | st.sampled_from(["10", "0"]),
    },
    optional={
        "energy_kwh": NUMERIC_TEXT,
        "duration_s": NUMERIC_TEXT,
        "end_time": TEXT,
        "team": TEXT,
        "zone": st.sampled_from(["DE", "FR", "XX"]) | TEXT,
        "pue": NUMERIC_TEXT,
    },
)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(USAGE_ROW, min_size=1, max_size=6))
@example(rows=[{"time": "9999-12-31T23:59:59Z", "model": "m", "version": "0", "requests": "0"}])
@example(rows=[{"time": "0001-01-01T00:00+05:00", "model": "m", "version": "0", "requests": "0"}])
def test_inference_usage_import_loads_or_quarantines_every_row(
    rows: list[dict[str, str]], ledger: Engine, tmp_path: Path
) -> None:
    """Injected: usage CSV rows (``carbonledger import inference``) with hostile times,
    versions, request counts, energies, PUEs, zones and teams. Checked: every distinct record
    is loaded, updated or quarantined, or a ``CarbonLedgerError`` says what to fix."""
    from carbonledger.etl.inference import import_usage

    path = tmp_path / f"usage-{uuid.uuid4().hex[:6]}.csv"
    _write_csv(path, USAGE_COLUMNS, rows)
    try:
        s = import_usage(ledger, path, source=f"usage-{uuid.uuid4().hex[:6]}", wh_per_request=0.5)
    except CarbonLedgerError as exc:
        assert str(exc)
        return
    with path.open(newline="", encoding="utf-8") as handle:
        parsed = list(csv.DictReader(handle))
    assert s.loaded + s.updated + sum(s.quarantined.values()) >= 1
    assert s.loaded + s.updated + sum(s.quarantined.values()) <= len(parsed)
