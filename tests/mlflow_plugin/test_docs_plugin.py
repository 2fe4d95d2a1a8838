"""docs/plugin.md documents every metric and tag the plugin writes (this test fails otherwise)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger import contract
from carbonledger.mlflow_plugin import election, flusher
from carbonledger.mlflow_plugin.registry import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"
NODE_KEY = re.compile(r"^carbon/node/[^/]+/(.+)$")


def _documented() -> set[str]:
    return set(re.findall(r"`(carbon[./][^`]+)`", DOC.read_text()))


def _written_names(mlflow_uri: str, monkeypatch) -> set[str]:  # type: ignore[no-untyped-def]
    names: set[str] = set()
    with mlflow.start_run() as run:
        time.sleep(0.01)
    stored = read_run(mlflow_uri, run.info.run_id)
    names |= set(stored.data.metrics) | set(stored.data.tags)
    # a distributed run on one node, and an unmetered run
    monkeypatch.setenv("WORLD_SIZE", "2")
    with mlflow.start_run() as dist_run:
        pass
    stored = read_run(mlflow_uri, dist_run.info.run_id)
    names |= set(stored.data.metrics) | set(stored.data.tags)
    client = mlflow.MlflowClient()
    old = client.create_run("0", start_time=int(time.time() * 1000) - 60_000)
    f = flusher.current()
    assert f is not None and f.drain()
    names |= set(read_run(mlflow_uri, old.info.run_id).data.tags)
    assert registry().trackers() == []
    return {
        NODE_KEY.sub(r"carbon/node/<node_id>/\1", n)
        for n in names
        if n.startswith(("carbon/", "carbon."))
    }


def test_every_written_metric_and_tag_is_documented(mlflow_uri, plugin: FakeMeter, monkeypatch):  # type: ignore[no-untyped-def]
    written = _written_names(mlflow_uri, monkeypatch)
    assert "carbon/node/<node_id>/energy_kwh" in written and "carbon.metered" in written
    missing = sorted(written - _documented())
    assert not missing, f"add these to docs/plugin.md: {missing}"


def test_every_declared_metric_name_is_documented() -> None:
    declared = set(contract.TOTAL_METRICS) | {contract.M_HEARTBEAT_MS}
    declared |= {contract.node_metric("<node_id>", f) for f in contract.NODE_FIELDS}
    missing = sorted(declared - _documented())
    assert not missing, missing
    assert election.node_id()  # the node id used in those names is never empty


def test_every_real_hardware_tag_is_documented(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.measure import hardware, nvml

    def no_nvml() -> bool:
        return False

    monkeypatch.setattr(nvml, "nvml_init", no_nvml)  # the real code path, without a GPU
    real = hardware.describe_hardware()
    monkeypatch.setattr(plugin, "hardware", lambda: real)
    with mlflow.start_run() as run:
        pass
    tags = read_run(mlflow_uri, run.info.run_id).data.tags
    keys = set(real.as_tags())
    assert keys and keys <= set(tags), "the plugin did not write the real hardware tags"
    assert tags["carbon.gpu_model"] == "none"
    missing = sorted(keys - _documented())
    assert not missing, f"add these to docs/plugin.md: {missing}"
