"""The plugin's public interface (carbonledger.mlflow_plugin.api), which the inference meter uses.

Tracking client (no retries), window reader, SIGTERM chaining, node election: one of each,
shared by the training plugin and the inference meter.
"""

from __future__ import annotations

import ast
import fcntl
import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from plugin_fakes import FakeMeter

from carbonledger.contract import J_PER_KWH, M_ENERGY_KWH
from carbonledger.mlflow_plugin import (
    TrackingClient,
    WindowReader,
    api,
    chain_signal,
    elect,
    plugin_state,
    reset,
)
from carbonledger.mlflow_plugin import election as election_module
from carbonledger.testing import FakeClock, fake_meter

INFERENCE = Path(__file__).resolve().parents[2] / "carbonledger" / "inference"


def test_the_inference_meter_uses_only_the_plugins_public_interface() -> None:
    used = set()
    for path in INFERENCE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and "mlflow_plugin" in (node.module or ""):
                used.add((node.module, *(a.name for a in node.names)))
    modules = {u[0] for u in used}
    assert modules <= {"carbonledger.mlflow_plugin", "carbonledger.mlflow_plugin.api"}, used


def test_the_package_re_exports_the_whole_interface() -> None:
    import carbonledger.mlflow_plugin as package

    interface = {n for n, v in vars(api).items() if not n.startswith("_") and n != "annotations"}
    assert set(package.__all__) == {*interface, "Attachment", "attach"}
    assert all(getattr(package, name) is getattr(api, name) for name in interface)


def test_tracking_client_on_a_local_store(mlflow_uri: str) -> None:
    client = TrackingClient(mlflow_uri)
    exp = client.experiment_id("served")
    assert client.experiment_id("served") == exp  # created once, then found
    run_id = client.create_run(
        experiment_id=exp, user_id="me", start_ms=1_000, run_name="r", tags={"a": "b"}
    )
    client.log_batch(run_id, [[M_ENERGY_KWH, 0.5, 2_000, 1]], {"c": "d"})
    client.terminate(run_id, "FINISHED", 3_000)

    assert client.latest_metrics(run_id) == {M_ENERGY_KWH: 0.5}
    run = client.store.get_run(run_id)
    assert (run.info.status, run.info.end_time) == ("FINISHED", 3_000)
    assert {"a": "b", "c": "d"}.items() <= run.data.tags.items()
    assert client.registered_model_tags("no-such-model") is None


@pytest.mark.server
def test_tracking_client_over_rest(mlflow_server: str) -> None:
    client = TrackingClient(mlflow_server)
    assert client.creds is not None
    exp = client.experiment_id("served-over-rest")  # a 404 first: created
    assert client.experiment_id("served-over-rest") == exp
    run_id = client.create_run(
        experiment_id=exp, user_id="me", start_ms=1_000, run_name="r", tags={"a": "b"}
    )
    client.log_batch(run_id, [[M_ENERGY_KWH, 0.25, 2_000, 1]], {"c": "d"})
    client.terminate(run_id, "KILLED", 3_000)

    assert client.latest_metrics(run_id) == {M_ENERGY_KWH: 0.25}
    assert client.registered_model_tags("no-such-model") is None


def test_window_reader_gives_energy_deltas_per_component_with_methods() -> None:
    clock = FakeClock()
    reader = WindowReader(fake_meter({"gpu": 300.0, "cpu": 60.0}, clock=clock, method="m"))
    clock.advance(10)
    first = reader.read()
    clock.advance(20)
    last = reader.read(final=True)

    assert first.energy_kwh == pytest.approx({"gpu": 3000 / J_PER_KWH, "cpu": 600 / J_PER_KWH})
    assert last.energy_kwh == pytest.approx({"gpu": 6000 / J_PER_KWH, "cpu": 1200 / J_PER_KWH})
    assert (first.interval_s, last.interval_s) == (10.0, 20.0)
    assert reader.methods == {"gpu": ("m", False), "cpu": ("m", False)}
    assert reader.hardware_tags  # the meter's carbon.* hardware tags
    reader.close()  # already closed by the final read: idempotent


def test_sigterm_chains_each_owner_once_then_the_previous_handler(
    plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append("previous")

    signal.signal(signal.SIGTERM, previous)
    try:
        assert chain_signal("inference", lambda: calls.append("inference"), where="w")
        assert chain_signal("training", lambda: calls.append("training"), where="w")
        assert chain_signal("inference", lambda: calls.append("again"), where="w")  # no-op
        signal.raise_signal(signal.SIGTERM)
        assert calls == ["training", "inference", "previous"]

        reset()  # puts back what was there before the plugin's handlers
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_a_failing_action_still_runs_the_previous_handler(
    plugin: FakeMeter, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def boom() -> None:
        raise RuntimeError("flush failed")

    signal.signal(signal.SIGTERM, lambda signum, frame: calls.append("previous"))
    try:
        assert chain_signal("inference", boom, where="inference SIGTERM close")
        with caplog.at_level(logging.WARNING):
            signal.raise_signal(signal.SIGTERM)
        assert calls == ["previous"]
        assert "inference SIGTERM close failed" in caplog.text
    finally:
        reset()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_an_ignored_sigterm_is_left_alone_with_one_warning(
    plugin: FakeMeter, caplog: pytest.LogCaptureFixture
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with caplog.at_level(logging.WARNING):
            assert not chain_signal("training", lambda: None, where="w")
            assert not chain_signal("inference", lambda: None, where="w")
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert caplog.text.count("SIGTERM handler not chained") == 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def election_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    return tmp_path / "carbonledger-election"


def test_one_leader_per_name_until_it_releases(plugin: FakeMeter, election_dir: Path) -> None:
    leader = elect("inference-node-0,1")
    assert leader is not None and leader.path == election_dir / "inference-node-0_1.lock"
    assert elect("inference-node-0,1") is None  # another descriptor: refused
    assert elect("inference-node-2") is not None  # another set of devices: its own leader
    assert plugin_state().node_locks >= {leader}

    leader.release()

    assert not leader.path.exists() and leader not in plugin_state().node_locks
    assert elect("inference-node-0,1") is not None


def test_a_lock_file_removed_under_a_new_leader_is_taken_again(
    plugin: FakeMeter, election_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that opened the file before the old leader removed it re-checks the inode."""
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock_after_the_leader_left(fd: int, op: int) -> Any:
        calls.append(fd)
        if len(calls) == 1:  # the old leader unlinks the file between our open and our lock
            (election_dir / "x.lock").unlink()
        return real_flock(fd, op)

    monkeypatch.setattr(election_module.fcntl, "flock", flock_after_the_leader_left)
    lock = elect("x")

    assert lock is not None and lock.fd is not None and len(calls) == 2
    assert os.fstat(lock.fd).st_ino == os.stat(lock.path).st_ino  # the file others will open
