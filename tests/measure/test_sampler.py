"""The background sampler: one daemon thread, per-task periods, survives a failing task."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from carbonledger.measure.sampler import Sampler


def test_runs_each_task_at_its_own_period() -> None:
    fast, slow = [], []
    sampler = Sampler()
    sampler.add(0.02, lambda: fast.append(time.monotonic()))
    sampler.add(0.2, lambda: slow.append(time.monotonic()))
    sampler.start()
    time.sleep(0.5)
    sampler.stop()
    assert 8 <= len(fast) <= 26  # ~25 at 50 Hz; fewer on a loaded machine
    assert 1 <= len(slow) <= 3
    assert sampler.ticks == len(fast) + len(slow)
    assert sampler.cpu_time_s >= 0.0


def test_no_task_no_thread_and_stop_is_idempotent() -> None:
    sampler = Sampler()
    sampler.start()
    assert not sampler.running
    sampler.stop()
    sampler.stop()


def test_a_failing_task_is_logged_and_the_others_keep_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok = threading.Event()

    def boom() -> None:
        raise RuntimeError("sensor gone")

    sampler = Sampler()
    sampler.add(0.01, boom)
    sampler.add(0.01, ok.set)
    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        sampler.start()
        assert ok.wait(2.0)
        sampler.stop()
    assert any("sampling task failed" in r.getMessage() for r in caplog.records)


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Sampler().add(0, lambda: None)
