"""The vectorised spread of many records' histories gives each record's own curve."""

from __future__ import annotations

import numpy as np
import pytest

from carbonledger.etl import hours


def _records(seed: int) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    n = 40
    start = rng.integers(1_600_000_000, 1_700_000_000, n).astype(float) + rng.random(n)
    end = start + rng.choice([0.0, 1.0, 1800.0, 7200.5, 3 * 86400.0], n)
    history = {}
    for i in range(n):
        if i % 4 == 0:
            continue  # no history: spread evenly
        k = int(rng.choice([1, 2, 4, hours.WIDE_HISTORY + 6]))
        times = np.sort(start[i] - 100 + rng.random(k) * (end[i] - start[i] + 200))
        values = np.cumsum(rng.random(k) * rng.choice([1.0, -0.2]))  # some go down
        if i % 7 == 0:
            values[k // 2] = np.nan  # NaN carries on through the running maximum
        if i % 9 == 0:
            values[:] = 0.0  # no energy: spread evenly
        history[i] = (times, values)
    return start, end, history


@pytest.mark.parametrize("seed", range(5))
def test_running_maximum_is_each_records_own(seed: int) -> None:
    _, _, history = _records(seed)
    idx, _, values = hours.flat_histories(history)
    cum, last = hours._running_max(idx, values)
    for i, (_, own) in history.items():
        expected = np.maximum.accumulate(own)
        assert np.array_equal(cum[idx == i], expected, equal_nan=True)
        assert np.array_equal(last[idx == i], np.full(len(own), expected[-1]), equal_nan=True)


@pytest.mark.parametrize("seed", range(5))
def test_wide_and_one_by_one_histories_spread_alike(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end, history = _records(seed)
    wide = hours.spread(start, end, hours.flat_histories(history))
    monkeypatch.setattr(hours, "WIDE_HISTORY", 0)  # every history through the loop
    narrow = hours.spread(start, end, hours.flat_histories(history))
    for got, one in zip(wide, narrow, strict=True):
        assert np.array_equal(got, one, equal_nan=True)


def test_shares_of_a_record_with_a_history_follow_its_flushes() -> None:
    start, end = np.array([0.0, 0.0]), np.array([7200.0, 7200.0])
    history = {0: (np.array([3600.0, 7200.0]), np.array([3.0, 4.0]))}  # 3 of 4 kWh in hour 0
    rec, hour, share = hours.spread(start, end, hours.flat_histories(history))
    assert rec.tolist() == [0, 0, 1, 1]
    assert hour.tolist() == [0, 1, 0, 1]
    assert share.tolist() == pytest.approx([0.75, 0.25, 0.5, 0.5])


def test_run_histories_keep_runs_with_two_points_or_more() -> None:
    import pandas as pd

    frame = pd.DataFrame({"run_id": ["a", "b", "c"]})
    points = [("b", 1000, 1.0), ("a", 1000, 1.0), ("a", 2000, 2.0), ("z", 1, 1.0), ("z", 2, 2.0)]
    idx, times, values = hours.run_histories(frame, points)
    assert idx.tolist() == [0, 0]  # "b" has one point, "z" is not in the frame
    assert times.tolist() == [1.0, 2.0]
    assert values.tolist() == [1.0, 2.0]
