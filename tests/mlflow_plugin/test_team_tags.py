"""``CARBONLEDGER_TEAM`` / ``CARBONLEDGER_MODEL_NAME`` fill in missing tags; a user's tag wins."""

from __future__ import annotations

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger.mlflow_plugin import flusher
from carbonledger.settings import get_settings


@pytest.fixture
def team_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_TEAM", "platform")
    monkeypatch.setenv("CARBONLEDGER_MODEL_NAME", "ranker")
    get_settings.cache_clear()


def _drain() -> None:
    f = flusher.current()
    assert f is not None and f.drain()


def test_user_tags_at_start_win_over_the_settings(
    mlflow_uri: str, plugin: FakeMeter, team_env: None
) -> None:
    with mlflow.start_run(tags={"carbon.team": "search", "carbon.model_name": "fraud"}) as run:
        pass
    tags = read_run(mlflow_uri, run.info.run_id).data.tags
    assert tags["carbon.team"] == "search"
    assert tags["carbon.model_name"] == "fraud"
    assert tags["carbon.status"] == "complete"


def test_client_run_with_user_tag_keeps_it(
    mlflow_uri: str, plugin: FakeMeter, team_env: None
) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run("0", tags={"carbon.team": "search"})
    client.set_terminated(run.info.run_id)
    _drain()
    tags = read_run(mlflow_uri, run.info.run_id).data.tags
    assert tags["carbon.team"] == "search"
    assert tags["carbon.model_name"] == "ranker"  # absent on the run: the setting fills it


def test_tag_set_during_the_run_survives_the_final_flush(
    mlflow_uri: str, plugin: FakeMeter, team_env: None
) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    _drain()  # the plugin's run-start tags are written
    assert read_run(mlflow_uri, run.info.run_id).data.tags["carbon.team"] == "platform"
    client.set_tag(run.info.run_id, "carbon.team", "search")
    f = flusher.current()
    assert f is not None
    f.periodic()
    client.set_terminated(run.info.run_id)
    tags = read_run(mlflow_uri, run.info.run_id).data.tags
    assert tags["carbon.team"] == "search"
    assert tags["carbon.status"] == "complete"
