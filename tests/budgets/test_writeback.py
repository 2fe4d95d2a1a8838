"""Budget status written back as tags on the MLflow registered models, by the check and the ETL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.budgets import check_budgets, make_spec, set_budget
from carbonledger.etl import run_etl


def model_tags(client: Any, name: str) -> dict[str, str]:
    tags = client.get_registered_model(name).tags
    return {k: v for k, v in tags.items() if k.startswith("carbon.budget")}


def registered_fraud(client: Any, *, kwh: float = 1.0) -> str:
    exp = client.create_experiment("fraud")
    metrics = metered_metrics(gpu=kwh, cpu=0, ram=0, pue=1.0)
    run_id = make_run(client, exp, metrics=metrics, tags=metered_tags("DE"))
    client.create_registered_model("fraud")
    client.create_model_version("fraud", f"runs:/{run_id}/model", run_id=run_id)
    return run_id


def test_check_writes_the_status_tags_on_the_registered_model(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    registered_fraud(client, kwh=100.0)  # 38 kg CO2e (DE 2024)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.begin() as conn:
        set_budget(conn, spec=make_spec(model="fraud", limit_co2e_kg=40.0))

    report = check_budgets(ledger, notify=False)

    assert report.tags is not None and report.tags.written == 6 and not report.warnings
    assert model_tags(client, "fraud") == {
        "carbon.budget_status": "warning",
        "carbon.budget_used_pct": "95.0",
        "carbon.budget_used_co2e_kg": "38",
        "carbon.budget_limit_co2e_kg": "40",
        "carbon.budget_projection": "not at this rate",
        "carbon.budget_origin": "cli",
    }
    assert check_budgets(ledger, notify=False).tags.written == 0  # type: ignore[union-attr]


def test_a_removed_budget_clears_the_tags(ledger: Engine, client: Any, mlflow_uri: str) -> None:
    registered_fraud(client)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.begin() as conn:
        set_budget(conn, spec=make_spec(model="fraud", limit_co2e_kg=40.0))
    check_budgets(ledger, notify=False)
    run_etl(ledger, mlflow_uris=[mlflow_uri])  # the ledger learns the tags
    with ledger.begin() as conn:
        conn.execute(text("DELETE FROM budgets"))

    report = check_budgets(ledger, notify=False)

    assert report.tags is not None and report.tags.removed == 6
    assert model_tags(client, "fraud") == {}


def test_a_tracking_server_that_fails_is_reported_not_raised(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    registered_fraud(client)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.begin() as conn:
        set_budget(conn, spec=make_spec(model="fraud", limit_co2e_kg=40.0))

    def broken(uri: str) -> Any:
        raise ConnectionError("server down")

    report = check_budgets(ledger, notify=False, client_factory=broken)

    assert report.tags is not None and report.tags.written == 0
    assert report.warnings and "cannot write budget tags" in report.warnings[0]


def test_the_etl_syncs_budgets_yaml_records_alerts_and_writes_the_tags(
    ledger: Engine,
    client: Any,
    mlflow_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carbonledger.settings import get_settings

    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - model: fraud\n    limit_co2e_kg: 30\n")
    monkeypatch.setenv("CARBONLEDGER_BUDGETS_PATH", str(path))
    get_settings.cache_clear()
    registered_fraud(client, kwh=100.0)

    run_etl(ledger, mlflow_uris=[mlflow_uri])

    with ledger.connect() as conn:
        budgets = list(conn.execute(text("SELECT scope_name, origin FROM budgets")))
        fired = [r[0] for r in conn.execute(text("SELECT threshold_pct FROM budget_alerts"))]
    assert budgets == [("fraud", "yaml")]
    assert sorted(fired) == [50.0, 75.0, 90.0, 100.0]
    assert model_tags(client, "fraud")["carbon.budget_status"] == "exceeded"
    assert model_tags(client, "fraud")["carbon.budget_origin"] == "yaml"


def test_a_malformed_budgets_yaml_stops_the_etl_before_loading(
    ledger: Engine,
    client: Any,
    mlflow_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carbonledger.errors import ConfigError
    from carbonledger.settings import get_settings

    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - model: fraud\n")
    monkeypatch.setenv("CARBONLEDGER_BUDGETS_PATH", str(path))
    get_settings.cache_clear()
    make_run(client, client.create_experiment("e"), metrics=metered_metrics(), tags=metered_tags())

    with pytest.raises(ConfigError, match="budget 1: limit_co2e_kg is missing"):
        run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
