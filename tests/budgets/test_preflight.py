"""The plugin's budget pre-flight: warn (default) or block a run whose model is over budget."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine

from carbonledger.errors import BudgetExceededError

EXCEEDED = {
    "carbon.budget_status": "exceeded",
    "carbon.budget_used_pct": "112.0",
    "carbon.budget_used_co2e_kg": "560",
    "carbon.budget_limit_co2e_kg": "500",
    "carbon.budget_origin": "cli",
}


def _reset() -> None:
    from carbonledger.mlflow_plugin import reset

    reset()  # flusher, trackers, signal handler, factors, cached budget statuses, reports


@pytest.fixture
def plugin_on(monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> Iterator[None]:
    """The plugin enabled (hooks installed) on fake devices."""
    from carbonledger.mlflow_plugin import accounting, hooks
    from carbonledger.settings import get_settings
    from carbonledger.testing import fake_meter

    monkeypatch.delenv("CARBONLEDGER_DISABLE", raising=False)
    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", "400")
    get_settings.cache_clear()
    assert hooks.try_install()
    monkeypatch.setattr(accounting, "meter_factory", lambda: fake_meter({"cpu": 50.0}))
    _reset()
    yield
    _reset()


def run_tags(run_id: str) -> dict[str, str]:
    from carbonledger.mlflow_plugin import flusher

    current = flusher.current()
    assert current is None or current.drain()
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    return {k: v for k, v in tags.items() if k.startswith("carbon.budget")}


def policy(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_BUDGET_POLICY", value)
    get_settings.cache_clear()


def test_warn_logs_and_tags_the_run_and_lets_it_run(
    plugin_on: None, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow.MlflowClient().create_registered_model("fraud", tags=EXCEEDED)

    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        with mlflow.start_run(tags={"carbon.model_name": "fraud"}) as run:
            pass

    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"
    [record] = [r for r in caplog.records if "carbon budget" in r.getMessage()]
    text = record.getMessage()
    assert "carbon budget of model 'fraud' is exceeded: 112.0% used (560 of 500 kg CO2e" in text
    assert "`carbonledger budgets set --model fraud --limit-kg N`" in text
    tags = run_tags(run.info.run_id)
    assert tags["carbon.budget_status"] == "exceeded"
    assert tags["carbon.budget_warning"].startswith("carbon budget of model 'fraud'")


def test_block_refuses_the_run_and_names_the_budget_and_how_to_raise_it(
    plugin_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "block")
    mlflow.MlflowClient().create_registered_model(
        "fraud", tags={**EXCEEDED, "carbon.budget_origin": "yaml"}
    )

    with pytest.raises(BudgetExceededError) as info:
        mlflow.start_run(tags={"carbon.model_name": "fraud"})

    message = str(info.value)
    assert "carbon budget of model 'fraud' is exceeded" in message
    assert "raise limit_co2e_kg of `model: fraud` in budgets.yaml" in message
    assert "CARBONLEDGER_BUDGET_POLICY=warn" in message
    assert mlflow.active_run() is None
    [run] = mlflow.search_runs(output_format="list")
    assert run.info.status == "FAILED"
    assert run_tags(run.info.run_id) == {
        "carbon.budget_status": "exceeded",
        "carbon.budget_blocked": "true",
    }
    from carbonledger.mlflow_plugin.registry import registry

    assert registry().trackers() == []  # no longer metered


def test_the_model_may_come_from_the_setting_and_ok_budgets_only_tag(
    plugin_on: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from carbonledger.settings import get_settings

    policy(monkeypatch, "block")
    monkeypatch.setenv("CARBONLEDGER_MODEL_NAME", "fraud")
    get_settings.cache_clear()
    mlflow.MlflowClient().create_registered_model(
        "fraud", tags={**EXCEEDED, "carbon.budget_status": "ok"}
    )

    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        with mlflow.start_run() as run:
            pass

    assert run_tags(run.info.run_id) == {"carbon.budget_status": "ok"}
    assert not [r for r in caplog.records if "carbon budget" in r.getMessage()]


def test_runs_without_a_model_or_a_budget_are_untouched(plugin_on: None) -> None:
    mlflow.MlflowClient().create_registered_model("plain")
    with mlflow.start_run() as a:
        pass
    with mlflow.start_run(tags={"carbon.model_name": "plain"}) as b:
        pass
    with mlflow.start_run(tags={"carbon.model_name": "unregistered"}) as c:
        pass
    assert [run_tags(r.info.run_id) for r in (a, b, c)] == [{}, {}, {}]


def test_the_status_is_read_once_per_model_and_cached(
    plugin_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.mlflow_plugin import preflight

    mlflow.MlflowClient().create_registered_model("fraud", tags=EXCEEDED)
    reads: list[str] = []
    real = preflight._fetch_tags
    monkeypatch.setattr(
        preflight, "_fetch_tags", lambda uri, name: reads.append(name) or real(uri, name)
    )

    for _ in range(3):
        with mlflow.start_run(tags={"carbon.model_name": "fraud"}):
            pass

    assert reads == ["fraud"]


def test_an_unreachable_registry_never_stops_a_run(
    plugin_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.mlflow_plugin import preflight

    policy(monkeypatch, "block")
    calls: list[str] = []

    def down(uri: str, name: str) -> Any:
        calls.append(name)
        raise ConnectionError("registry down")

    monkeypatch.setattr(preflight, "_fetch_tags", down)

    for _ in range(2):
        with mlflow.start_run(tags={"carbon.model_name": "fraud"}) as run:
            pass

    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"
    assert calls == ["fraud"]  # the failure is cached too: one timeout per TTL, not per run


def test_end_to_end_budget_check_then_a_blocked_run(
    plugin_on: None,
    monkeypatch: pytest.MonkeyPatch,
    ledger: Engine,
    client: Any,
    mlflow_uri: str,
) -> None:
    from carbonledger.budgets import check_budgets, make_spec, set_budget
    from carbonledger.etl import run_etl

    policy(monkeypatch, "block")
    monkeypatch.setenv("CARBONLEDGER_DISABLE", "1")  # fixture runs: not metered themselves
    from carbonledger.settings import get_settings

    get_settings.cache_clear()
    exp = client.create_experiment("fraud")
    metrics = metered_metrics(gpu=100.0, cpu=0, ram=0, pue=1.0)  # 38 kg in DE
    make_run(client, exp, metrics=metrics, tags=metered_tags(**{"carbon.model_name": "fraud"}))
    client.create_registered_model("fraud")
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.begin() as conn:
        set_budget(conn, spec=make_spec(model="fraud", limit_co2e_kg=30.0))
    assert check_budgets(ledger, notify=False).exit_code == 2
    monkeypatch.delenv("CARBONLEDGER_DISABLE")
    get_settings.cache_clear()

    with pytest.raises(BudgetExceededError, match=r"126\.7% used \(38 of 30 kg CO2e"):
        mlflow.start_run(experiment_id=exp, tags={"carbon.model_name": "fraud"})
