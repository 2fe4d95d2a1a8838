"""A remote tracking server: runs are metered; down or slow servers never block training and
what could not be sent is journaled, then replayed."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import typer
from plugin_fakes import FakeMeter, TcpProxy
from plugin_support import read_run
from typer.testing import CliRunner

from carbonledger.mlflow_plugin import flusher, journal
from carbonledger.settings import get_settings

pytestmark = pytest.mark.server


@pytest.fixture
def proxy(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    p = TcpProxy(urllib.parse.urlparse(mlflow_server).port or 0)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", p.url)
    monkeypatch.setenv("CARBONLEDGER_FLUSH_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    mlflow.set_tracking_uri(p.url)
    yield p
    if mlflow.active_run() is not None:
        p.set_mode("up")
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    p.close()


def _cli() -> typer.Typer:
    from carbonledger.cli import plugin_cmd

    app = typer.Typer()
    app.command("noop")(lambda: None)
    plugin_cmd.register(app)
    return app


def test_run_on_a_remote_server_gets_its_totals(proxy: TcpProxy, plugin: FakeMeter) -> None:
    with mlflow.start_run() as run:
        time.sleep(0.05)
    stored = read_run(proxy.url, run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.metrics["carbon/energy_kwh"] > 0
    assert stored.data.tags["carbon.status"] == "complete"


def test_server_down_journals_then_next_flush_replays(proxy: TcpProxy, plugin: FakeMeter) -> None:
    run = mlflow.start_run()
    run_id = run.info.run_id
    f = flusher.current()
    assert f is not None
    proxy.set_mode("down")
    t0 = time.monotonic()
    f.periodic()
    assert time.monotonic() - t0 < 2.0, "a refused connection must fail fast, not retry"
    pending = [e for _, e in journal.entries() if e.run_id == run_id]
    assert len(pending) == 1 and any(r[0] == "carbon/energy_kwh" for r in pending[0].metrics)
    proxy.set_mode("up")
    f.periodic()  # success, then replay of the journal for this server
    assert list(journal.entries()) == []
    client = mlflow.MlflowClient(proxy.url)
    assert len(client.get_metric_history(run_id, "carbon/energy_kwh")) == 2
    mlflow.end_run()


def test_slow_server_costs_at_most_the_flush_timeout(proxy: TcpProxy, plugin: FakeMeter) -> None:
    run = mlflow.start_run()
    f = flusher.current()
    assert f is not None
    proxy.set_mode("hang")
    t0 = time.monotonic()
    f.periodic()
    elapsed = time.monotonic() - t0
    assert elapsed < 0.5 + 1.5, elapsed
    assert [e.run_id for _, e in journal.entries()] == [run.info.run_id]
    proxy.set_mode("up")
    mlflow.end_run()


def test_journal_flush_command_replays_and_show_lists(proxy: TcpProxy, plugin: FakeMeter) -> None:
    run = mlflow.start_run()
    f = flusher.current()
    assert f is not None
    proxy.set_mode("down")
    f.periodic()
    f.periodic()
    runner = CliRunner()
    shown = runner.invoke(_cli(), ["journal", "show"])
    assert shown.exit_code == 0 and f"{run.info.run_id}  2 batches" in shown.output
    failed = runner.invoke(_cli(), ["journal", "flush"])
    assert failed.exit_code == 1 and "2 left" in failed.output
    proxy.set_mode("up")
    done = runner.invoke(_cli(), ["journal", "flush"])
    assert done.exit_code == 0 and "sent 2 batch(es); 0 left" in done.output
    assert list(journal.entries()) == []
    mlflow.end_run()


def test_full_disk_drops_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("CARBONLEDGER_JOURNAL_PATH", str(blocker / "journal"))
    get_settings.cache_clear()
    entry = journal.Entry("http://127.0.0.1:9", "r1", [["carbon/energy_kwh", 1.0, 0, 1]])
    assert journal.append(entry) is False
    assert journal.append(entry) is False
    warnings = [r for r in caplog.records if "journal append" in r.getMessage()]
    assert len(warnings) == 1


def test_a_replayed_flush_carries_a_fresh_heartbeat_so_the_etl_sees_it(tmp_path: Path) -> None:
    old_ms = 1_700_000_000_000
    entry = journal.Entry(
        tracking_uri="http://127.0.0.1:1",
        run_id="r1",
        metrics=[
            ["carbon/energy_kwh", 1.5, old_ms, 0],
            ["carbon/heartbeat_ms", float(old_ms), old_ms, 0],
        ],
        created_ms=old_ms,
    )
    assert journal.append(entry, folder=tmp_path)
    sent: list[journal.Entry] = []
    before_ms = int(time.time() * 1000)

    assert journal.replay(sent.append, folder=tmp_path) == (1, 0)

    [replayed] = sent
    rows = {row[0]: row for row in replayed.metrics}
    assert rows["carbon/energy_kwh"] == ["carbon/energy_kwh", 1.5, old_ms, 0]
    assert rows["carbon/heartbeat_ms"][1] >= before_ms
    assert rows["carbon/heartbeat_ms"][2] >= before_ms


def test_a_backlog_replays_as_one_batch_per_run_keeping_the_history(tmp_path: Path) -> None:
    """After an outage every process replays at once: one request per run, not per flush."""

    def entry(run_id: str, i: int, status: str | None = None) -> journal.Entry:
        ms = 1_700_000_000_000 + i * 1000
        return journal.Entry(
            tracking_uri="http://127.0.0.1:1",
            run_id=run_id,
            metrics=[
                ["carbon/energy_kwh", 0.1 * i, ms, i],
                ["carbon/heartbeat_ms", float(ms), ms, i],
            ],
            tags={"carbon.status": "running", "carbon.flush": str(i)},
            created_ms=ms,
            status=status,
        )

    backlog = [entry("r1", i) for i in range(40)] + [entry("r2", 0), entry("r1", 40, "KILLED")]
    backlog.append(entry("r1", 41))  # after the status: a batch of its own
    for e in backlog:
        assert journal.append(e, folder=tmp_path)
    sent: list[journal.Entry] = []

    assert journal.replay(sent.append, folder=tmp_path) == (len(backlog), 0)

    assert [(e.run_id, e.status) for e in sent] == [("r1", "KILLED"), ("r2", None), ("r1", None)]
    first = sent[0]
    energy_steps = [row[3] for row in first.metrics if row[0] == "carbon/energy_kwh"]
    assert energy_steps == list(range(41))  # every flush's point, in order
    assert [row[0] for row in first.metrics].count("carbon/heartbeat_ms") == 1
    assert first.tags["carbon.flush"] == "40"
    # a late "running" must not overwrite the "complete" a final flush may have set meanwhile
    assert all("carbon.status" not in e.tags for e in sent)
    assert list(journal.entries(tmp_path)) == []


def test_coalescing_respects_mlflow_batch_limits() -> None:
    rows = [["carbon/energy_kwh", 1.0, 1, i] for i in range(600)]
    entries = [
        (str(i), journal.Entry(tracking_uri="u", run_id="r", metrics=list(rows))) for i in range(3)
    ]

    groups = journal.coalesce(entries)

    assert [len(raws) for raws, _ in groups] == [1, 1, 1]  # 1,200 rows would exceed 1,000
    assert all(len(e.metrics) + len(e.tags) <= journal.MAX_BATCH_ITEMS for _, e in groups)


def test_a_replayed_final_flush_keeps_its_complete_status(tmp_path: Path) -> None:
    final = journal.Entry("http://127.0.0.1:1", "r1", [], {"carbon.status": "complete"}, 1)
    assert journal.append(final, folder=tmp_path)
    sent: list[journal.Entry] = []

    assert journal.replay(sent.append, folder=tmp_path) == (1, 0)
    assert sent[0].tags == {"carbon.status": "complete"}


def test_a_status_only_entry_keeps_the_merged_heartbeat() -> None:
    beat = journal.Entry("u", "r", [["carbon/heartbeat_ms", 5.0, 5, 1]], {}, 5)
    killed = journal.Entry("u", "r", [], {}, 6, status="KILLED", end_time_ms=6)

    [(raws, merged)] = journal.coalesce([("a", beat), ("b", killed)])

    assert raws == ["a", "b"] and merged.status == "KILLED" and merged.end_time_ms == 6
    assert merged.metrics == [["carbon/heartbeat_ms", 5.0, 5, 1]]
