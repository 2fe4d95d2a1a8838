"""Per-call overhead of the inference wrapper on a trivial model (target: <= 5 us).

The model's predict returns its input (a few tens of ns), so the difference between a metered
and a direct call is the wrapper's whole cost: two perf_counter reads, len() of the input and
one counter update under a lock. Direct and metered loops are interleaved (--reps rounds of
--calls calls each) and the medians of the per-call times are compared. A second part runs
the same with 4 threads calling concurrently (lock contention), and a third part measures a
real scikit-learn pyfunc model for scale (its predict takes ~0.3 ms). The meter's thread is
not started (no window closes during the loops); closing a window is timed separately.

    .venv/bin/python bench/inference_overhead.py [--reps 15] [--calls 200000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from carbonledger.inference.meter import InferenceMeter
from carbonledger.inference.wrapper import MeteredModel
from carbonledger.testing import FakeClock, fake_meter


class Trivial:
    def predict(self, data):  # type: ignore[no-untyped-def]
        return data


def _loop(predict, data, calls: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(calls):
        predict(data)
    return (time.perf_counter() - t0) / calls


def _threads(predict, data, calls: int, n: int) -> float:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            predict(data)

    ts = [threading.Thread(target=work) for _ in range(n)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return (time.perf_counter() - t0) / (calls * n)


def _meter(tracking_uri: str = "sqlite:///:memory:") -> InferenceMeter:
    clock = FakeClock()
    return InferenceMeter(
        tracking_uri=tracking_uri,
        clock=clock,
        meter_factory=lambda: fake_meter({"cpu": 50.0}, clock=clock),
        send=lambda entry: None,
        elect=False,
        start_thread=False,
    )


def overhead(reps: int, calls: int, data: object, threads: int = 1) -> dict[str, float]:
    model = Trivial()
    metered = MeteredModel(model, model_name="bench", model_version=1, meter=_meter())
    direct_s, metered_s = [], []
    run = _loop if threads == 1 else (lambda p, d, c: _threads(p, d, c // threads, threads))
    for _ in range(reps):
        direct_s.append(run(model.predict, data, calls))
        metered_s.append(run(metered.predict, data, calls))
    d, m = statistics.median(direct_s), statistics.median(metered_s)
    return {
        "direct_us": d * 1e6,
        "metered_us": m * 1e6,
        "overhead_us": (m - d) * 1e6,
        "overhead_min_us": min(b - a for a, b in zip(direct_s, metered_s, strict=True)) * 1e6,
    }


def window_close_ms(versions: int, requests: int) -> dict[str, float]:
    """Meter-thread time of closing a window: the first (creates the runs) and the next."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        meter = _meter(f"sqlite:///{tmp}/mlflow.db")
        models = [
            MeteredModel(Trivial(), model_name=f"m{i}", model_version=1, meter=meter)
            for i in range(versions)
        ]
        out = {}
        for label in ("first_window_ms", "next_window_ms"):
            for m in models:
                for _ in range(requests // versions):
                    m.predict([1])
            meter._clock.advance(60)  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            meter.close_window()
            out[label] = (time.perf_counter() - t0) * 1000
        return out


def sklearn_overhead(reps: int, calls: int) -> dict[str, float]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame(np.random.default_rng(0).random((200, 4)), columns=list("abcd"))
    model = LogisticRegression().fit(x, (x.a > 0.5).astype(int))
    metered = MeteredModel(model, model_name="bench-sk", model_version=1, meter=_meter())
    row = x.head(1)
    direct_s, metered_s = [], []
    for _ in range(reps):
        direct_s.append(_loop(model.predict, row, calls))
        metered_s.append(_loop(metered.predict, row, calls))
    d, m = statistics.median(direct_s), statistics.median(metered_s)
    return {"direct_us": d * 1e6, "metered_us": m * 1e6, "overhead_us": (m - d) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    frame = np.zeros((8, 4))
    results = {
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "trivial_list_input": overhead(args.reps, args.calls, [1, 2, 3]),
        "trivial_ndarray_input": overhead(args.reps, args.calls, frame),
        "trivial_4_threads": overhead(max(3, args.reps // 3), args.calls, [1, 2, 3], threads=4),
        "sklearn_logreg_1_row": sklearn_overhead(max(3, args.reps // 3), 2_000),
        "window_close_20_versions_100k_requests": window_close_ms(20, 100_000),
    }
    for name, figures in results.items():
        print(f"{name}: {figures}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    target = results["trivial_list_input"]["overhead_us"]
    verdict = "ok" if target <= 5 else "MISSED"
    print(f"per-call overhead {target:.2f} us (target <= 5 us): {verdict}")


if __name__ == "__main__":
    main()
