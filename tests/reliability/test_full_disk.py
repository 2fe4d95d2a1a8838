"""A full disk under the journal: the plugin drops its data with one warning; training goes on."""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from conftest_plugin_state import reset_plugin
from plugin_fakes import FakeMeter, TcpProxy
from reliability_support import MlflowServer

from carbonledger.mlflow_plugin import accounting, hooks, journal
from carbonledger.settings import get_settings

pytestmark = pytest.mark.server


@pytest.fixture
def proxy(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    p = TcpProxy(urllib.parse.urlparse(mlflow_server.url).port or 0)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", p.url)
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "0.1")
    monkeypatch.setenv("CARBONLEDGER_FLUSH_TIMEOUT_S", "0.5")
    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", "400")
    monkeypatch.setenv("CARBONLEDGER_PUE", "1.0")
    get_settings.cache_clear()
    assert hooks.try_install()
    monkeypatch.setattr(accounting, "meter_factory", lambda: FakeMeter())
    reset_plugin()
    mlflow.set_tracking_uri(p.url)
    yield p
    if mlflow.active_run() is not None:
        p.set_mode("up")
        mlflow.end_run()
    reset_plugin()
    mlflow.set_tracking_uri(None)
    p.close()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_journal_disk_drops_the_plugins_data_with_one_warning_and_training_goes_on(
    proxy: TcpProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Injected: the tracking server vanishes mid-run (every flush must go to the journal) and
    the journal file is ``/dev/full``, so each write fails with ENOSPC from the kernel, as on a
    full disk. Checked: training steps go on unslowed (no step over the flush timeout),
    ``end_run`` returns, exactly one warning names the dropped journal data, and nothing
    else is raised into the training code."""
    folder = tmp_path / "journal"
    folder.mkdir()
    monkeypatch.setenv("CARBONLEDGER_JOURNAL_PATH", str(folder))
    get_settings.cache_clear()
    journal._own_file(folder).symlink_to("/dev/full")
    caplog.set_level(logging.WARNING, logger="carbonledger")

    run = mlflow.start_run()
    proxy.set_mode("down")
    longest_s = 0.0
    for _ in range(40):  # ~1 s of training, ~10 failed flushes
        t0 = time.monotonic()
        time.sleep(0.025)
        longest_s = max(longest_s, time.monotonic() - t0 - 0.025)
    from carbonledger.mlflow_plugin.registry import registry

    registry().end(run.info.run_id)  # the final flush, server still down: to the full disk
    proxy.set_mode("up")
    mlflow.end_run()  # MLflow's own status update (the plugin has nothing left to send)

    assert longest_s < 0.5
    dropped = [r for r in caplog.records if "journal append" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in caplog.records]
    assert "No space left on device" in dropped[0].getMessage()
    assert mlflow.MlflowClient(proxy.url).get_run(run.info.run_id).info.status == "FINISHED"
