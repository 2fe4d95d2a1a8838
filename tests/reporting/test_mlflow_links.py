"""Links to the MLflow UI: a configured base URL per source, else the source's own http(s)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from carbonledger.reporting.runs import (
    mlflow_base_url,
    mlflow_model_url,
    mlflow_run_url,
    model_mlflow_url,
)
from carbonledger.settings import get_settings


def test_the_source_uri_is_the_default_without_credentials() -> None:
    assert mlflow_base_url("http://mlflow:5000/") == "http://mlflow:5000"
    assert mlflow_base_url("https://bob:secret@mlflow.example") == "https://mlflow.example"
    assert mlflow_base_url("sqlite:///mlflow.db") is None
    assert mlflow_run_url("http://m:5000", "3", "abc") == "http://m:5000/#/experiments/3/runs/abc"
    assert mlflow_model_url("http://m:5000", "bert qa", 2) == (
        "http://m:5000/#/models/bert%20qa/versions/2"
    )


def test_a_configured_ui_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CARBONLEDGER_MLFLOW_UI_URLS", '{"sqlite:///srv/mlflow.db": "https://mlflow.corp/"}'
    )
    get_settings.cache_clear()
    assert mlflow_run_url("sqlite:///srv/mlflow.db", "1", "r") == (
        "https://mlflow.corp/#/experiments/1/runs/r"
    )
    assert mlflow_base_url("sqlite:///other.db") is None


def test_a_models_link_comes_from_its_source(seeded: Engine) -> None:
    assert model_mlflow_url(seeded, model_name="bert-qa") == (
        "http://mlflow.example.internal:5000/#/models/bert-qa"
    )
    assert model_mlflow_url(seeded, model_name="nope") is None
