"""Overhead of metering a CPU-bound workload: none vs carbonledger Meter vs CodeCarbon.

Each repetition runs the same pure-Python workload (fixed iteration count, calibrated to
``--seconds``) in a fresh process under each mode, in rotating order (interleaved), and the
medians are reported:

- wall time of the workload (from after the meter started to before it stopped);
- start latency: constructing and starting the meter (``Meter()`` + ``open_window()``, or
  ``OfflineEmissionsTracker(...)`` + ``start()``), wall time, in a process where the library
  is already imported;
- meter CPU: CPU time of every thread but the workload's during the workload (the sampler
  thread for carbonledger, the scheduler threads for CodeCarbon), plus the main-thread CPU of
  start and stop, as a share of the workload's own CPU time.

Usage:
    .venv/bin/python bench/overhead.py                 # 5 x 3 runs of ~30 s (~8 min)
    .venv/bin/python bench/overhead.py --quick         # smoke: 1 x 3 runs of 2 s
    .venv/bin/python bench/overhead.py --reps 5 --seconds 30 --out overhead.json
    .venv/bin/python bench/overhead.py --iterations 368462731   # fixed size, no calibration
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

MODES = ("none", "carbonledger", "codecarbon")


def work(iterations: int) -> int:
    """The CPU-bound workload: an LCG in pure Python (no allocation, no I/O)."""
    x = 1
    for _ in range(iterations):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def calibrate(seconds: float) -> int:
    """Iterations that take about ``seconds`` on this machine now."""
    n = 200_000
    while True:
        t = time.perf_counter()
        work(n)
        dt = time.perf_counter() - t
        if dt > 0.5:
            return int(n * seconds / dt)
        n *= 2


def child(mode: str, iterations: int) -> dict[str, Any]:
    """Run one measured repetition in this (fresh) process."""
    start_cpu = stop_cpu = 0.0
    stopper: Any = None
    extra: dict[str, Any] = {}
    if mode == "carbonledger":
        import carbonledger.measure as cm  # import cost is not part of start latency

        t0, c0 = time.perf_counter(), time.thread_time()
        meter = cm.Meter()
        window = meter.open_window()
        start_s, start_cpu = time.perf_counter() - t0, time.thread_time() - c0

        def stopper() -> None:
            result = window.close()
            meter.close()
            extra["energy_kwh"] = result.energy_kwh
            extra["methods"] = result.methods
            extra["sampler_cpu_s"] = meter.sampler_cpu_time_s

    elif mode == "codecarbon":
        import logging

        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        t0, c0 = time.perf_counter(), time.thread_time()
        tracker = OfflineEmissionsTracker(
            country_iso_code="DEU", save_to_file=False, log_level="error"
        )
        tracker.start()
        start_s, start_cpu = time.perf_counter() - t0, time.thread_time() - c0

        def stopper() -> None:
            tracker.stop()
            data = tracker.final_emissions_data
            extra["energy_kwh"] = float(data.energy_consumed) if data else None

    else:
        start_s = 0.0
    proc0, main0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
    work(iterations)
    wall_s = time.perf_counter() - w0
    workload_cpu_s = time.thread_time() - main0
    other_threads_cpu_s = (time.process_time() - proc0) - workload_cpu_s
    if stopper is not None:
        c0 = time.thread_time()
        stopper()
        stop_cpu = time.thread_time() - c0
    return {
        "mode": mode,
        "wall_s": wall_s,
        "workload_cpu_s": workload_cpu_s,
        "start_latency_s": start_s,
        "meter_cpu_s": max(0.0, other_threads_cpu_s) + start_cpu + stop_cpu,
        "meter_thread_cpu_s": max(0.0, other_threads_cpu_s),
        **extra,
    }


def run_child(mode: str, iterations: int) -> dict[str, Any]:
    env = {**os.environ, "CODECARBON_LOG_LEVEL": "error", "DO_NOT_TRACK": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--iterations", str(iterations)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for mode in MODES:
        rows = [r for r in runs if r["mode"] == mode]
        if not rows:
            continue
        keys = ("wall_s", "workload_cpu_s", "start_latency_s")
        med = {k: statistics.median(r[k] for r in rows) for k in keys}
        med["meter_cpu_s"] = statistics.median(r["meter_cpu_s"] for r in rows)
        med["meter_cpu_pct"] = statistics.median(
            100.0 * r["meter_cpu_s"] / r["workload_cpu_s"] for r in rows
        )
        med["meter_thread_cpu_s"] = statistics.median(r["meter_thread_cpu_s"] for r in rows)
        med["meter_thread_cpu_pct"] = statistics.median(
            100.0 * r["meter_thread_cpu_s"] / r["workload_cpu_s"] for r in rows
        )
        med["runs"] = len(rows)
        table[mode] = med
    base = table.get("none", {}).get("wall_s")
    for med in table.values():
        med["wall_vs_none_pct"] = 100.0 * (med["wall_s"] / base - 1.0) if base else float("nan")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="1 repetition of 2 s per mode")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out", help="write every run and the medians as JSON here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--iterations", type=int, help="fixed workload size (LCG steps) instead of calibrating"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.iterations)))
        return
    if args.quick:
        args.reps, args.seconds = 1, 2.0
    modes = [m for m in args.modes.split(",") if m]
    iterations = args.iterations or calibrate(args.seconds)
    print(f"workload: {iterations:,} LCG steps (~{args.seconds:g} s); {args.reps} reps x {modes}")
    runs = []
    for rep in range(args.reps):
        order = modes[rep % len(modes) :] + modes[: rep % len(modes)]  # rotate: interleaved
        for mode in order:
            r = run_child(mode, iterations)
            runs.append(r)
            print(
                f"rep {rep + 1} {mode:<12} wall {r['wall_s']:7.2f} s  start "
                f"{r['start_latency_s'] * 1000:7.1f} ms  "
                f"meter cpu {r['meter_cpu_s'] * 1000:8.2f} ms"
            )
    table = summarise(runs)
    if args.out:  # written first: the figures survive a failing print
        with open(args.out, "w") as f:
            json.dump({"runs": runs, "medians": table, "iterations": iterations}, f, indent=2)
    print("\nmedians:")
    print(f"{'mode':<13}{'wall s':>9}{'vs none':>9}{'work CPU s':>11}{'start ms':>10}", end="")
    print(f"{'meter CPU ms':>14}{'% of work':>11}{'thread CPU ms':>15}{'% of work':>11}")
    for mode, m in table.items():
        print(
            f"{mode:<13}{m['wall_s']:9.2f}{m['wall_vs_none_pct']:8.1f}%{m['workload_cpu_s']:11.2f}"
            f"{m['start_latency_s'] * 1000:10.1f}{m['meter_cpu_s'] * 1000:14.2f}"
            f"{m['meter_cpu_pct']:10.3f}%{m['meter_thread_cpu_s'] * 1000:15.2f}"
            f"{m['meter_thread_cpu_pct']:10.3f}%"
        )


if __name__ == "__main__":
    main()
