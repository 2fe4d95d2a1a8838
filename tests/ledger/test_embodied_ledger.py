"""Embodied emissions in the ledger: MLflow runs -> ``carbonledger etl`` -> the views.

Expected figures are computed here from the shipped CSV (Cloud Carbon Footprint's per-instance
totals) and the SCI formula, independently of ``carbonledger.embodied``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from mlflow.entities import Metric, RunTag
from sqlalchemy import Engine, text

from carbonledger import contract as c
from carbonledger.etl import run_etl
from carbonledger.settings import get_settings

CSV = Path(c.__file__).resolve().parent / "embodied" / "data" / "ccf_instances.csv"
YEAR_S = 365 * 24 * 3600
TEN_HOURS_S = 10 * 3600.0


def ccf_total_kg(provider: str, instance_type: str) -> float:
    """CCF's total for an instance type, read straight from the shipped CSV (largest row)."""
    with CSV.open(newline="") as handle:
        rows = [
            float(r["total_kg"])
            for r in csv.DictReader(handle)
            if r["provider"] == provider and r["instance_type"] == instance_type
        ]
    assert rows, f"{provider} {instance_type} is not in {CSV}"
    return max(rows)


def p4d_tags(**extra: str) -> dict[str, str]:
    """A run on 2 of the 8 GPUs of an AWS p4d.24xlarge."""
    return metered_tags(
        "DE",
        **{
            c.TAG_INSTANCE_TYPE: "p4d.24xlarge",
            c.TAG_CLOUD_PROVIDER: "aws",
            c.TAG_GPU_MODEL: "NVIDIA A100-SXM4-40GB",
            c.TAG_GPU_COUNT: "2",
            c.TAG_GPU_COUNT_HOST: "8",
            **extra,
        },
    )


def _etl(ledger: Engine, mlflow_uri: str) -> Any:
    return run_etl(ledger, mlflow_uris=[mlflow_uri])[0]


def _row(ledger: Engine, view: str, run_id: str) -> dict[str, Any]:
    with ledger.connect() as conn:
        return dict(
            conn.execute(text(f"SELECT * FROM {view} WHERE run_id = :r"), {"r": run_id})
            .mappings()
            .one()
        )


def test_two_of_eight_gpus_for_ten_hours_get_their_share_of_the_host(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("llm")
    run_id = make_run(
        client,
        exp,
        metrics=metered_metrics(duration_s=TEN_HOURS_S),
        tags=p4d_tags(),
        end_ms=T0_MS + int(TEN_HOURS_S * 1000),
    )
    _etl(ledger, mlflow_uri)

    te_kg = ccf_total_kg("aws", "p4d.24xlarge")
    expected = te_kg * TEN_HOURS_S / (4 * YEAR_S) * 2 / 8
    row = _row(ledger, "v_run_embodied", run_id)
    assert row["embodied_co2e_kg"] == pytest.approx(expected, rel=1e-9)
    assert row["host_embodied_co2e_kg"] == pytest.approx(te_kg, rel=1e-12)
    assert (row["resource"], row["resources_reserved"], row["resources_host"]) == ("gpu", 2, 8)
    assert row["lifetime_years"] == 4.0
    assert row["factor_key"] == "instance:aws:p4d.24xlarge"
    assert row["method"] == c.EMBODIED_CCF_INSTANCE
    assert row["source"].startswith("ccf-") and row["reason"] is None
    emissions = _row(ledger, "v_run_emissions", run_id)
    assert emissions["embodied_co2e_kg"] == pytest.approx(expected, rel=1e-9)
    assert emissions["embodied_lifetime_years"] == 4.0
    # Scope 3 stays out of the operational figure: 1.25 kWh x 1.2 x 380 g/kWh
    assert emissions["co2e_location_kg"] == pytest.approx(1.25 * 1.2 * 0.380, rel=1e-12)


def test_an_organisation_figure_is_a_new_version_and_restates_without_a_reload(
    ledger: Engine, client: Any, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = client.create_experiment("llm")
    run_id = make_run(client, exp, metrics=metered_metrics(duration_s=TEN_HOURS_S), tags=p4d_tags())
    _etl(ledger, mlflow_uri)
    before = _row(ledger, "v_run_embodied", run_id)

    overrides = tmp_path / "embodied.yaml"
    overrides.write_text(
        "version: 1\nembodied:\n  - instance_type: p4d.24xlarge\n    provider: aws\n"
        "    embodied_co2e_kg: 5200\n    host_gpu_count: 8\n    host_vcpus: 96\n"
        '    source: "Vendor PCF 2025"\n'
    )
    monkeypatch.setenv("CARBONLEDGER_EMBODIED_PATH", str(overrides))
    get_settings.cache_clear()
    summary = _etl(ledger, mlflow_uri)
    assert (summary.loaded, summary.updated) == (0, 0)  # no run was reloaded

    after = _row(ledger, "v_run_embodied", run_id)
    assert after["factor_key"] == before["factor_key"]
    assert (before["factor_version"], after["factor_version"]) == (1, 2)
    assert after["method"] == c.EMBODIED_OVERRIDE
    assert after["embodied_co2e_kg"] == pytest.approx(5200 * TEN_HOURS_S / (4 * YEAR_S) * 2 / 8)
    # the rollups restate too (a new embodied factor version rebuilds them), Scope 3 apart
    with ledger.connect() as conn:
        team_kg, model_kg, scope2_kg = conn.execute(
            text(
                "SELECT (SELECT SUM(embodied_co2e_kg) FROM rollup_team_month "
                "WHERE activity = 'training'), (SELECT SUM(embodied_co2e_kg) "
                "FROM rollup_model_month), (SELECT SUM(co2e_location_kg) FROM rollup_team_month)"
            )
        ).one()
    assert team_kg == pytest.approx(after["embodied_co2e_kg"], rel=1e-9)
    assert scope2_kg == pytest.approx(_row(ledger, "v_run_emissions", run_id)["co2e_location_kg"])
    assert model_kg in (None, 0.0) or model_kg == pytest.approx(team_kg)
    with ledger.connect() as conn:
        versions = conn.execute(
            text("SELECT version, embodied_co2e_kg FROM embodied_factors ORDER BY version")
        ).all()
    assert [v for v, _ in versions] == [1, 2]
    assert versions[0][1] == pytest.approx(ccf_total_kg("aws", "p4d.24xlarge"))
    # a further pass with nothing new writes nothing
    _etl(ledger, mlflow_uri)
    with ledger.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM embodied_factors")).scalar_one() == 2


def test_a_run_without_hardware_gets_no_figure_and_says_why(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("legacy")
    tags = {
        c.TAG_GRID_ZONE: "DE",
        c.TAG_COUNTRY: "DE",
        c.TAG_METHODS: "cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate",
    }
    run_id = make_run(client, exp, metrics=metered_metrics(), tags=tags)
    _etl(ledger, mlflow_uri)

    row = _row(ledger, "v_run_embodied", run_id)
    assert row["embodied_co2e_kg"] is None and row["factor_key"] is None
    assert row["reason_code"] == "no-hardware"
    assert "no embodied figure is made up" in row["reason"]
    assert _row(ledger, "v_run_emissions", run_id)["embodied_co2e_kg"] is None


def test_serving_windows_are_charged_by_their_own_length_with_the_serving_runs_share(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("serving")
    run = client.create_run(exp, start_time=T0_MS)
    metrics = []
    for step in (1, 2, 3):
        ts = T0_MS + step * 60_000
        metrics += [
            Metric(c.W_REQUESTS, 100.0 * step, ts, step),
            Metric(c.W_WINDOW_S, 60.0, ts, step),
            Metric(c.W_GPU_ENERGY_KWH, 0.01 * step, ts, step),
            Metric(c.W_CPU_ENERGY_KWH, 0.001, ts, step),
            Metric(c.W_PUE, 1.2, ts, step),
        ]
    metrics.append(Metric(c.W_WINDOWS_TOTAL, 3.0, T0_MS, 0))
    totals = metered_metrics(gpu=0.06, cpu=0.003, ram=0.0, pue=1.2, duration_s=180.0)
    metrics += [Metric(k, v, T0_MS, 3) for k, v in totals.items()]
    tags = p4d_tags(
        **{c.TAG_KIND: c.KIND_INFERENCE, c.TAG_MODEL_NAME: "chat", c.TAG_MODEL_VERSION: "3"}
    )
    client.log_batch(run.info.run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
    client.set_terminated(run.info.run_id, end_time=T0_MS + 240_000)
    _etl(ledger, mlflow_uri)

    with ledger.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT duration_s, embodied_co2e_kg, requests, reason FROM v_window_embodied "
                "WHERE run_id = :r ORDER BY window_start"
            ),
            {"r": run.info.run_id},
        ).all()
        sci = (
            conn.execute(
                text(
                    "SELECT * FROM v_sci WHERE functional_unit = 'request' AND model_name = 'chat'"
                )
            )
            .mappings()
            .one()
        )
        operational = conn.execute(
            text("SELECT SUM(co2e_location_kg) FROM inference_co2e WHERE run_id = :r"),
            {"r": run.info.run_id},
        ).scalar_one()
    per_window = ccf_total_kg("aws", "p4d.24xlarge") * 60.0 / (4 * YEAR_S) * 2 / 8
    assert len(rows) == 3
    for duration_s, kg, _, reason in rows:
        assert duration_s == pytest.approx(60.0, rel=1e-9)
        assert kg == pytest.approx(per_window, rel=1e-9)
        assert reason is None
    assert sci["model_version"] == 3 and sci["functional_units"] == 600
    with ledger.connect() as conn:
        rolled = conn.execute(
            text("SELECT SUM(embodied_co2e_kg) FROM rollup_team_month WHERE activity = 'inference'")
        ).scalar_one()
    assert rolled == pytest.approx(3 * per_window, rel=1e-9)
    assert sci["embodied_co2e_kg"] == pytest.approx(3 * per_window, rel=1e-9)
    assert sci["sci_co2e_kg_per_unit"] == pytest.approx(
        (operational + 3 * per_window) / 600, rel=1e-9
    )
    assert sci["sci_co2e_g_per_unit"] == pytest.approx(
        (operational + 3 * per_window) * 1000 / 600, rel=1e-9
    )


def test_the_upgrade_clears_mlflow_cursors_and_a_run_not_yet_recorded_says_so(
    ledger_url: str, client: Any, mlflow_uri: str
) -> None:
    from cl_ledger_fixtures import TEST_FACTORS

    from carbonledger.ledger import create_ledger_engine, migrate, seed_emission_factors

    engine = create_ledger_engine(ledger_url)
    migrate.upgrade(engine, "3f9c1d2e7a64")
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=TEST_FACTORS)
    exp = client.create_experiment("llm")
    run_id = make_run(client, exp, metrics=metered_metrics(duration_s=TEN_HOURS_S), tags=p4d_tags())
    with engine.begin() as conn:  # what a pass of the previous version left: a cursor
        conn.exec_driver_sql(
            "INSERT INTO tracking_sources (uri, kind) VALUES ('file:///old', 'mlflow')"
        )
        conn.exec_driver_sql(
            "INSERT INTO etl_state (source_id, end_time_boundary_ids, heartbeat_boundary_ids, "
            "last_summary) SELECT id, '[]', '[]', '{}' FROM tracking_sources"
        )
    migrate.upgrade(engine, "head")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM etl_state").scalar_one() == 0
    _etl(engine, mlflow_uri)
    assert _row(engine, "v_run_embodied", run_id)["embodied_co2e_kg"] > 0
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM run_embodied")
    row = _row(engine, "v_run_embodied", run_id)
    assert row["embodied_co2e_kg"] is None and row["reason_code"] == "not-resolved"
    engine.dispose()


def test_the_uncertainty_tables_are_rewritten_only_when_they_differ(ledger: Engine) -> None:
    """Every pass syncs them from ``carbonledger.uncertainty``: a row changed by hand is
    mended, and a pass that finds them as they should be writes nothing."""
    from sqlalchemy import event

    from carbonledger.ledger.embodied import sync_uncertainty
    from carbonledger.uncertainty import ENERGY_UNCERTAINTY

    method, figure = next(iter(ENERGY_UNCERTAINTY.items()))
    writes: list[str] = []

    def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("DELETE", "INSERT", "UPDATE")):
            writes.append(statement)

    with ledger.begin() as conn:
        sync_uncertainty(conn)
        conn.execute(
            text("UPDATE energy_method_uncertainty SET relative_uncertainty = 9 WHERE method = :m"),
            {"m": method},
        )
    event.listen(ledger, "before_cursor_execute", _record)
    try:
        with ledger.begin() as conn:
            sync_uncertainty(conn)
        assert len(writes) == 2 and all("energy_method_uncertainty" in w for w in writes)
        writes.clear()
        with ledger.begin() as conn:
            sync_uncertainty(conn)
        assert writes == []
    finally:
        event.remove(ledger, "before_cursor_execute", _record)
    with ledger.connect() as conn:
        held = conn.execute(
            text("SELECT relative_uncertainty FROM energy_method_uncertainty WHERE method = :m"),
            {"m": method},
        ).scalar()
    assert held == figure
