"""A distributed run seen from one process: missing nodes are warned about, the election lock
file goes away with the run."""

from __future__ import annotations

import logging

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger.mlflow_plugin import election


def _node_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "reported energy" in r.getMessage()
    ]


def test_a_multi_node_job_where_no_other_node_reported_warns_once(
    mlflow_uri: str,
    plugin: FakeMeter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("SLURM_NNODES", "2")
    ids = []
    for _ in range(2):
        with mlflow.start_run() as run:
            pass
        ids.append(run.info.run_id)
    warnings = _node_warnings(caplog)
    assert len(warnings) == 1 and "WORLD_SIZE=4" in warnings[0] and "2 nodes" in warnings[0]
    for run_id in ids:
        assert read_run(mlflow_uri, run_id).data.tags["carbon.node_count"] == "1"


def test_a_single_node_job_does_not_warn(
    mlflow_uri: str,
    plugin: FakeMeter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun on one node
    with mlflow.start_run():
        pass
    assert _node_warnings(caplog) == []


def test_the_election_lock_file_is_removed_when_the_run_ends(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with mlflow.start_run() as run:
        lock = election.lock_dir() / f"{run.info.run_id}-{election.node_id()}.lock"
        assert lock.exists()
    assert not lock.exists()
