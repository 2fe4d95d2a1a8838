"""The plugin's process state is one object: reset() stops it all; a forked child starts clean."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import mlflow
import pytest
from plugin_fakes import FakeMeter

from carbonledger.inference.meter import InferenceMeter
from carbonledger.mlflow_plugin import elect, flusher, plugin_state, reset
from carbonledger.mlflow_plugin.registry import registry
from carbonledger.mlflow_plugin.signals import SignalChain
from carbonledger.testing import FakeClock, fake_meter


def _plugin_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("carbonledger")]


def test_reset_stops_the_thread_closes_the_window_and_restores_sigterm(
    mlflow_uri: str, plugin: FakeMeter
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    mlflow.start_run()
    state = plugin_state()
    assert registry().trackers() and "carbonledger-flusher" in _plugin_threads()
    assert isinstance(signal.getsignal(signal.SIGTERM), SignalChain)
    thread = state.flusher.thread if state.flusher else None

    reset()

    assert plugin_state() is not state
    assert thread is not None and not thread.is_alive()
    assert plugin.windows[-1].closed
    assert signal.getsignal(signal.SIGTERM) is before
    assert registry().trackers() == [] and flusher.current() is None
    mlflow.end_run()  # MLflow's own run ends as usual; the plugin no longer tracks it


def test_a_forked_child_starts_clean_and_leaves_the_parents_election_alone(
    mlflow_uri: str, plugin: FakeMeter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # a private election folder
    monkeypatch.setenv("WORLD_SIZE", "2")
    clock = FakeClock()
    sent: list[Any] = []
    meter = InferenceMeter(
        tracking_uri=mlflow_uri,
        meter_factory=lambda: fake_meter({"cpu": 10.0}, clock=clock),
        clock=clock,
        send=sent.append,
        elect=False,
        start_thread=False,
    )
    meter.register("m", 1)
    plugin_state().inference_meter = meter
    import carbonledger.measure.meter as measure_meter

    monkeypatch.setattr(measure_meter, "_shared", object())  # a parent's device meter
    with mlflow.start_run() as run:
        [tracker] = registry().trackers()
        lock = tracker.node.lock
        assert lock is not None and lock.fd is not None
        lock_fd = lock.fd
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what it sees, never return into pytest
            try:
                clock.advance(60)
                meter.close()  # its parent's meter: nothing sent from here
                try:
                    os.fstat(lock_fd)
                    inherited_fd_open = True
                except OSError:
                    inherited_fd_open = False
                seen: dict[str, Any] = {
                    "trackers": len(registry().trackers()),
                    "flusher": flusher.current() is not None,
                    "threads": _plugin_threads(),
                    "inference_meter": plugin_state().inference_meter is not None,
                    "signal_chains": sorted(plugin_state().signal_chains),
                    "node_locks": len(plugin_state().node_locks),
                    "inherited_fd_open": inherited_fd_open,
                    "sent": len(sent),
                    "shared_meter": measure_meter._shared is not None,
                }
            except Exception as exc:  # noqa: BLE001 - shown by the parent's assertion
                seen = {"error": repr(exc)}
            finally:
                try:
                    os.write(write_fd, json.dumps(seen).encode())
                finally:
                    os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            seen = json.loads(pipe.read())
        os.waitpid(pid, 0)
        assert seen == {
            "trackers": 0,
            "flusher": False,
            "threads": [],
            "inference_meter": False,
            "signal_chains": ["training"],  # the OS keeps the handler installed in the child
            "node_locks": 0,
            "inherited_fd_open": False,
            "sent": 0,
            "shared_meter": False,  # the child builds its own device meter
        }
        assert elect(f"{run.info.run_id}-{tracker.node.node_id}") is None  # still the parent's
        assert registry().trackers() == [tracker]
    assert not lock.path.exists()  # released by the parent when its run ended
    clock.advance(60)
    meter.close()
    assert sent  # in the parent, closing the meter sends its last window
