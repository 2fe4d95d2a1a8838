"""Overhead of the MLflow plugin on a ~30 s sklearn training with autolog.

Three modes, interleaved, each trial in a fresh process:
  off        CARBONLEDGER_DISABLE=1 (the plugin does nothing)
  plugin     carbonledger as installed (default settings, flush every 30 s)
  codecarbon CARBONLEDGER_DISABLE=1 and CodeCarbon's OfflineEmissionsTracker around the same code

Per trial: wall time of the training section, the process's CPU time in it, and the CPU time
of the metering itself: for the plugin, its threads (carbonledger-*: flusher, the meter's
sampler) read from their per-thread CPU clocks, plus the CPU its hooks spent on the training
thread (create_run / set_terminated with the final flush); for CodeCarbon, the CPU of the
threads it started plus its start() and stop() on the training thread.
Then `import mlflow` in fresh processes with and without the plugin (medians), and the
plugin's own share of that import from `python -X importtime`.

    .venv/bin/python bench/plugin_overhead.py [--reps 3] [--trees 230] [--import-reps 7]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _thread_cpu_s(threads: list[threading.Thread]) -> float:
    total = 0.0
    for t in threads:
        if t.ident is None or not t.is_alive():
            continue
        try:
            total += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
        except (OSError, ProcessLookupError):
            pass
    return total


def _preimport(mode: str) -> float:
    """Import what the metering imports on first use; return its (one-time) CPU seconds."""
    t0 = time.thread_time()
    if mode == "plugin":
        import carbonledger.footprint  # noqa: F401
        import carbonledger.intensity  # noqa: F401
        import carbonledger.measure  # noqa: F401
        import carbonledger.mlflow_plugin.registry  # noqa: F401
        from carbonledger.settings import get_settings

        get_settings()
    elif mode == "codecarbon":
        import codecarbon  # noqa: F401
    return time.thread_time() - t0


def trial(mode: str, trees: int, uri: str) -> dict[str, float]:
    """One training in this process (called in a fresh child)."""
    import mlflow
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    mlflow.sklearn.autolog(log_models=False, silent=True)
    X, y = make_classification(n_samples=20000, n_features=40, random_state=0)
    import_cpu = _preimport(mode)
    before = set(threading.enumerate())
    t0, c0 = time.perf_counter(), time.process_time()
    threads_cpu = inline_cpu = 0.0
    tracker = None
    if mode == "codecarbon":
        from codecarbon import OfflineEmissionsTracker

        s0 = time.thread_time()
        tracker = OfflineEmissionsTracker(
            country_iso_code="USA", save_to_file=False, log_level="error"
        )
        tracker.start()
        inline_cpu += time.thread_time() - s0
    with mlflow.start_run():
        RandomForestClassifier(n_estimators=trees, random_state=0).fit(X, y)
        if mode == "plugin":
            ours = [t for t in threading.enumerate() if t.name.startswith("carbonledger")]
    if mode == "plugin":
        from carbonledger.mlflow_plugin import plugin_state

        threads_cpu = _thread_cpu_s(ours)
        inline_cpu = plugin_state().hook_stats["hook_cpu_s"]
    if tracker is not None:
        threads_cpu = _thread_cpu_s([t for t in threading.enumerate() if t not in before])
        s0 = time.thread_time()
        tracker.stop()
        inline_cpu += time.thread_time() - s0
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "meter_cpu_s": threads_cpu + inline_cpu,
        "threads_cpu_s": threads_cpu,
        "inline_cpu_s": inline_cpu,
        "import_cpu_s": import_cpu,
    }


def _env(mode: str) -> dict[str, str]:
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("CARBONLEDGER_DISABLE", None)
    if mode != "plugin":
        env["CARBONLEDGER_DISABLE"] = "1"
    return env


def run_trial(mode: str, trees: int, folder: Path) -> dict[str, float]:
    uri = f"sqlite:///{folder / f'{mode}.db'}"
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--trees", str(trees), "--uri", uri],
        env=_env(mode),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time_s(mode: str) -> float:
    code = "import time; t=time.perf_counter(); import mlflow; print(time.perf_counter()-t)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(mode), capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def plugin_import_share_ms() -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mlflow"],
        env=_env("plugin"),
        capture_output=True,
        text=True,
        check=True,
    )
    own = re.findall(r"import time:\s+(\d+) \|\s+\d+ \|\s+carbonledger", out.stderr)
    return sum(int(us) for us in own) / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--trees", type=int, default=230)
    parser.add_argument("--import-reps", type=int, default=7)
    parser.add_argument("--child")
    parser.add_argument("--uri")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(trial(args.child, args.trees, args.uri)))
        return
    modes = ("off", "plugin", "codecarbon")
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for mode in modes:
                r = run_trial(mode, args.trees, Path(tmp))
                results[mode].append(r)
                print(f"rep {rep} {mode:10s} {json.dumps(r)}", flush=True)
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in results.items()}
    print("\nmedians (metering cpu = its threads + its work on the training thread):")
    for m in modes:
        x = med[m]
        share = 100.0 * x["meter_cpu_s"] / x["cpu_s"]
        ratio = x["wall_s"] / med["off"]["wall_s"]
        print(
            f"  {m:10s} wall {x['wall_s']:.2f} s (x{ratio:.3f} of off)  cpu {x['cpu_s']:.2f} s  "
            f"metering cpu {x['meter_cpu_s'] * 1000:.1f} ms ({share:.3f}% of the run's cpu; "
            f"threads {x['threads_cpu_s'] * 1000:.1f} ms, inline {x['inline_cpu_s'] * 1000:.1f} ms)"
            f"  one-time imports {x['import_cpu_s'] * 1000:.0f} ms"
        )
    imports: dict[str, list[float]] = {"off": [], "plugin": []}
    for _ in range(args.import_reps):
        for mode in imports:
            imports[mode].append(import_time_s(mode))
    print(f"\nimport mlflow (median of {args.import_reps}, interleaved):")
    for mode, values in imports.items():
        print(f"  {mode:7s} {statistics.median(values) * 1000:.0f} ms")
    shares = [plugin_import_share_ms() for _ in range(args.import_reps)]
    own_ms = statistics.median(shares)
    print(f"  carbonledger modules' own import time (-X importtime): {own_ms:.1f} ms")


if __name__ == "__main__":
    main()
