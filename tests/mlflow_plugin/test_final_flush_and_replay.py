"""The final flush is bounded and never replays; the journal is replayed only by the flusher
thread, a few entries per tick, from this process's file and dead writers' files, and a replay
never blocks nor loses an append."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import mlflow
import pytest
from plugin_fakes import FakeMeter, SlowHttpServer

from carbonledger.mlflow_plugin import flusher, journal, transport
from carbonledger.mlflow_plugin.journal import Entry
from carbonledger.mlflow_plugin.registry import registry
from carbonledger.settings import get_settings

LOG_BATCH = transport.LOG_BATCH_ENDPOINT


@pytest.fixture
def timeout_s(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("CARBONLEDGER_FLUSH_TIMEOUT_S", "0.6")
    get_settings.cache_clear()
    return 0.6


def _old_entry(uri: str, i: int, run_id: str = "old-run") -> Entry:
    return Entry(uri, run_id, [["carbon/energy_kwh", float(i), 1_000 + i, i]], {}, 1_000 + i)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write(folder: Path, pid: int, entries: list[Entry]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"journal-{socket.gethostname()}-{pid}.jsonl"
    path.write_text("".join(json.dumps(asdict(e)) + "\n" for e in entries))
    return path


def test_end_run_after_an_outage_sends_one_batch_and_replays_nothing(
    plugin: FakeMeter, timeout_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SlowHttpServer(delay_s=0.2) as server:
        for i in range(10):  # an earlier outage left batches of 10 runs for this server
            journal.append(_old_entry(server.url, i, run_id=f"old-run-{i}"))
        registry().begin("r1", server.url)
        t0 = time.monotonic()
        registry().end("r1")
        elapsed = time.monotonic() - t0
        assert elapsed < 1.0, f"end_run took {elapsed:.2f} s: it replayed the journal"
        assert server.paths == [LOG_BATCH]
        assert len(list(journal.entries())) == 10
        # the flusher thread replays, a few runs per tick
        monkeypatch.setattr(flusher, "REPLAY_PER_TICK", 4)
        f = flusher.current()
        assert f is not None
        f.periodic()
        assert len(list(journal.entries())) == 6
        assert server.paths.count(LOG_BATCH) == 1 + 4


def test_final_flush_against_a_hanging_server_costs_one_timeout_and_is_journaled(
    plugin: FakeMeter, timeout_s: float
) -> None:
    with SlowHttpServer(hang=True) as server:
        registry().begin("r1", server.url)
        t0 = time.monotonic()
        registry().end("r1")
        elapsed = time.monotonic() - t0
    assert elapsed < timeout_s + 0.5, elapsed
    pending = [e for _, e in journal.entries()]
    assert [e.run_id for e in pending] == ["r1"]
    assert pending[0].tags["carbon.status"] == "complete"


def test_the_flush_budget_bounds_every_send_together(timeout_s: float) -> None:
    with SlowHttpServer(delay_s=0.4) as server:
        t0 = time.monotonic()
        results = []
        with transport.deadline():
            for i in range(3):  # 3 x 0.4 s answers would take 1.2 s
                try:
                    transport.send(_old_entry(server.url, i))
                    results.append("sent")
                except Exception:  # noqa: BLE001
                    results.append("failed")
        elapsed = time.monotonic() - t0
    assert elapsed < timeout_s + 0.3, elapsed
    assert results[0] == "sent" and results[1:] == ["failed", "failed"]


def test_replay_skips_live_writers_and_takes_dead_ones(
    mlflow_uri: str, plugin: FakeMeter, tmp_path: Path
) -> None:
    folder = journal.journal_dir()
    run = mlflow.start_run()
    run_id = run.info.run_id
    live = _write(folder, 1, [_old_entry(mlflow_uri, 101, run_id)])  # pid 1 is always alive
    live_text = live.read_text()
    dead = _write(folder, _dead_pid(), [_old_entry(mlflow_uri, 102, run_id)])
    journal.append(_old_entry(mlflow_uri, 103, run_id))  # this process's own file
    f = flusher.current()
    assert f is not None
    f.periodic()  # a successful flush, then the replay of this server's replayable entries
    assert not dead.exists() and not dead.with_suffix(".lock").exists()
    assert not (folder / f"journal-{socket.gethostname()}-{os.getpid()}.jsonl").exists()
    assert live.read_text() == live_text, "another live process's journal was touched"
    mlflow.end_run()
    steps = {m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "carbon/energy_kwh")}
    assert {102, 103} <= steps and 101 not in steps


def test_an_append_during_a_replay_neither_waits_nor_is_lost(tmp_path: Path) -> None:
    folder = tmp_path / "j"
    journal.append(_old_entry("http://x", 1), folder)
    late = _old_entry("http://x", 2)
    appended: list[float] = []

    def send(entry: Entry) -> None:
        t0 = time.monotonic()
        t = threading.Thread(target=journal.append, args=(late, folder))
        t.start()
        t.join(2.0)
        assert not t.is_alive(), "the append waited for the replay's send"
        appended.append(time.monotonic() - t0)

    sent, left = journal.replay(send, folder=folder, tracking_uri="http://x")
    assert (sent, left) == (1, 0)
    assert appended and appended[0] < 1.0
    assert [e.metrics for _, e in journal.entries(folder)] == [late.metrics]


def test_the_final_flush_waits_for_a_stuck_periodic_flush_only_within_its_budget(
    plugin: FakeMeter,
) -> None:
    from carbonledger.mlflow_plugin.tracker import RunTracker

    tracker = RunTracker(run_id="r1", tracking_uri="http://127.0.0.1:9")
    sent: list[Entry] = []
    stuck = threading.Event()
    release = threading.Event()

    def periodic() -> None:  # a periodic flush holding the run's lock in a hung send
        with tracker.lock:
            stuck.set()
            release.wait(10)

    holder = threading.Thread(target=periodic)
    holder.start()
    stuck.wait(5)
    started = time.monotonic()
    with transport.deadline(0.5):
        tracker.flush(final=True, send=lambda e: bool(sent.append(e)))
    waited = time.monotonic() - started
    release.set()
    holder.join(5)

    assert 0.4 <= waited < 1.0
    assert tracker.final_sent and len(sent) == 1  # built and handed over, not lost
    assert "carbon/heartbeat_ms" in {row[0] for row in sent[0].metrics}


def test_running_leaves_once_and_a_failed_running_batch_gets_complete_journaled_after_it(
    plugin: FakeMeter,
) -> None:
    """A periodic batch the client gave up on may still be committed by the server later (an
    MLflow server on SQLite waits up to 20 s for its lock): its ``carbon.status=running`` must not
    be the last word. Only the first periodic batch carries ``running``; when that one failed and
    the final batch is delivered, ``complete`` is journaled once more for a later replay."""
    from carbonledger.mlflow_plugin.tracker import RunTracker

    def flush_all(tracker: RunTracker, results: list[bool]) -> list[Entry]:
        sent: list[Entry] = []
        for i, ok in enumerate(results):
            final = i == len(results) - 1
            tracker.flush(final=final, send=lambda e, ok=ok: bool(sent.append(e)) or ok)
        return sent

    failed_first = RunTracker(run_id="r1", tracking_uri="http://127.0.0.1:9")
    sent = flush_all(failed_first, [False, True, True, True])
    assert [e.tags.get("carbon.status") for e in sent] == ["running", None, None, "complete"]
    journaled = [e for _, e in journal.entries()]
    assert [(e.run_id, e.tags, e.metrics) for e in journaled] == [
        ("r1", {"carbon.status": "complete"}, [])
    ]
    # Replayed after the late ``running``, the journal's ``complete`` is what the run keeps.
    replayed: list[Entry] = []
    journal.replay(replayed.append)
    assert [e.tags for e in replayed] == [{"carbon.status": "complete"}]

    delivered_first = RunTracker(run_id="r2", tracking_uri="http://127.0.0.1:9")
    sent = flush_all(delivered_first, [True, True, True])
    assert [e.tags.get("carbon.status") for e in sent] == ["running", None, "complete"]
    assert list(journal.entries()) == []  # nothing could land after the final batch
