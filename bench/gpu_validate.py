"""Validate carbonledger's GPU energy on a real NVIDIA GPU (issue 17, item 6) in ~6-10 minutes.

One prepared run on one GPU (``--device``), each check on the same device:

(a) **meter vs counter**: ``--steady-s`` (60) s of fp16 matrix multiplications; the ``Meter``
    (what the plugin uses) against a direct ``nvmlDeviceGetTotalEnergyConsumption`` read
    before and after. Target: within 1 %.
(b) **power integration vs counter**: 10 Hz and 100 Hz trapezoid integration of
    ``nvmlDeviceGetPowerUsage`` on their own threads, on the steady load of (a) and on a
    bursty load (1 s on / 1 s off, ``--bursty-s`` s).
(c) **counter update period**: the counter polled every ~0.5 ms under load for ``--period-s``
    s (intervals between changes: median, p5, p95) and what carbonledger's start-up probe
    measures; plus a 20 ms window metered through the short-window path.
(d) **idle power**: ``--idle-s`` s with nothing running (after 10 s to settle): counter power
    and mean sampled power.
(e) **two processes sharing the GPU**: two worker processes (one matmul-bound, one at ~50 %
    duty) each meter their run with a ``Meter`` in ``device`` attribution through a common
    registry; their shares + remainders against the counter delta over the same span.

The GPU model, driver, NVML, CUDA and torch versions and every figure go to ``--out-json``
and a Markdown section for docs/benchmarks.md to ``--out-md``. Without torch with CUDA, NVML
or a GPU it says so and exits 0 (``--require-gpu``: exit 2). ``--quick`` shortens every phase
(a smoke test, ~1.5 min).

Usage:
    .venv/bin/python bench/gpu_validate.py --out-json gpu.json --out-md gpu.md
    .venv/bin/python bench/gpu_validate.py --quick --only a,c
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
CHECKS = ("a", "b", "c", "d", "e")


def _skip(reason: str, require: bool) -> None:
    print(f"gpu_validate: SKIPPED - {reason}. Nothing was measured.")
    sys.exit(2 if require else 0)


def _pct(value: float, reference: float) -> float | None:
    return 100.0 * (value - reference) / reference if reference else None


class PowerIntegrator(threading.Thread):
    """Independent trapezoid integration of NVML power at ``hz`` on one device."""

    def __init__(self, pynvml: Any, handle: Any, hz: float) -> None:
        super().__init__(daemon=True, name=f"gpu-validate-power-{hz:g}hz")
        self._nvml, self._handle, self._period = pynvml, handle, 1.0 / hz
        self._halt = threading.Event()
        self.energy_j = 0.0
        self.samples = 0
        self.peak_w = 0.0
        self.powers_w: list[float] = []
        self._last: tuple[float, float] | None = None

    def _sample(self) -> None:
        now, power_w = time.monotonic(), self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1e3
        if self._last is not None:
            self.energy_j += (self._last[1] + power_w) / 2.0 * (now - self._last[0])
        self._last = (now, power_w)
        self.samples += 1
        self.peak_w = max(self.peak_w, power_w)
        self.powers_w.append(power_w)

    def run(self) -> None:
        self._sample()
        next_t = time.monotonic()
        while not self._halt.is_set():
            next_t += self._period
            self._halt.wait(max(0.0, next_t - time.monotonic()))
            self._sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Gpu:
    """The device under test: NVML handle, counter, torch matrices."""

    def __init__(self, index: int, size: int) -> None:
        import pynvml
        import torch

        self.nvml, self.torch = pynvml, torch
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        device = torch.device("cuda:0")
        self.a = torch.randn(size, size, device=device, dtype=torch.float16)
        self.b = torch.randn(size, size, device=device, dtype=torch.float16)
        self.c = torch.empty_like(self.a)
        self.size = size
        self.matmuls = 0

    def counter_mj(self) -> int:
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def burst(self, n: int = 20) -> None:
        for _ in range(n):
            self.torch.matmul(self.a, self.b, out=self.c)
        self.torch.cuda.synchronize()
        self.matmuls += n

    def load(self, seconds: float, *, bursty: bool = False) -> None:
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < seconds:
            if bursty and int(elapsed) % 2 == 1:
                time.sleep(0.01)  # the off second of 1 s on / 1 s off
            else:
                self.burst()

    def info(self) -> dict[str, Any]:
        n = self.nvml

        def text(v: Any) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        return {
            "gpu": text(n.nvmlDeviceGetName(self.handle)),
            "uuid": text(n.nvmlDeviceGetUUID(self.handle)),
            "driver": text(n.nvmlSystemGetDriverVersion()),
            "nvml": text(n.nvmlSystemGetNVMLVersion()),
            "cuda": str(self.torch.version.cuda),
            "torch": str(self.torch.__version__),
            "power_limit_w": n.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1e3,
            "matrix_size": self.size,
        }


def _integrated(gpu: Gpu, seconds: float, *, bursty: bool, meter: Any = None) -> dict[str, Any]:
    """Counter, meter and 10/100 Hz integration over one load phase."""
    slow = PowerIntegrator(gpu.nvml, gpu.handle, 10.0)
    fast = PowerIntegrator(gpu.nvml, gpu.handle, 100.0)
    window = meter.open_window() if meter is not None else None
    slow.start(), fast.start()
    start_mj, t0, m0 = gpu.counter_mj(), time.monotonic(), gpu.matmuls
    gpu.load(seconds, bursty=bursty)
    end_mj, elapsed = gpu.counter_mj(), time.monotonic() - t0
    result = window.close() if window is not None else None
    slow.stop(), fast.stop()
    counter_j = (end_mj - start_mj) / 1e3
    out: dict[str, Any] = {
        "seconds": elapsed,
        "tflops": 2 * gpu.size**3 * (gpu.matmuls - m0) / elapsed / 1e12,
        "counter_energy_j": counter_j,
        "counter_avg_power_w": counter_j / elapsed,
        "power_10hz_energy_j": slow.energy_j,
        "power_10hz_samples": slow.samples,
        "power_10hz_vs_counter_pct": _pct(slow.energy_j, counter_j),
        "power_100hz_energy_j": fast.energy_j,
        "power_100hz_samples": fast.samples,
        "power_100hz_vs_counter_pct": _pct(fast.energy_j, counter_j),
        "peak_power_100hz_w": fast.peak_w,
    }
    if result is not None:
        from carbonledger.contract import J_PER_KWH

        comp = result.components["gpu"]
        out.update(
            meter_method=comp.method,
            meter_energy_j=comp.energy_kwh * J_PER_KWH,
            meter_vs_counter_pct=_pct(comp.energy_kwh * J_PER_KWH, counter_j),
        )
    return out


def check_period(gpu: Gpu, seconds: float, meter: Any) -> dict[str, Any]:
    """(c) Intervals between counter changes under load, the start-up probe, a short window."""
    from carbonledger.contract import J_PER_KWH
    from carbonledger.measure import short_window

    for _ in range(200):  # queue ~seconds of work without waiting for it
        gpu.torch.matmul(gpu.a, gpu.b, out=gpu.c)
    changes, last, t_end = [], gpu.counter_mj(), time.monotonic() + seconds
    while time.monotonic() < t_end:
        value = gpu.counter_mj()
        if value != last:
            changes.append(time.monotonic())
            last = value
        time.sleep(0.0005)
    gpu.torch.cuda.synchronize()
    gaps = sorted(b - a for a, b in zip(changes, changes[1:], strict=False))
    probes = [short_window.probe_update_period_s(gpu.counter_mj, budget_s=1.0) for _ in range(5)]
    for _ in range(20):  # keep the GPU busy during the 20 ms window
        gpu.torch.matmul(gpu.a, gpu.b, out=gpu.c)
    window, opened = meter.open_window(), time.monotonic()
    time.sleep(0.02)
    short = window.close().components["gpu"]
    short_s = time.monotonic() - opened
    gpu.torch.cuda.synchronize()
    q = statistics.quantiles(gaps, n=20) if len(gaps) >= 20 else [float("nan")] * 19
    return {
        "changes": len(changes),
        "period_median_ms": 1e3 * statistics.median(gaps) if gaps else None,
        "period_p5_ms": 1e3 * q[0],
        "period_p95_ms": 1e3 * q[18],
        "probe_ms": [1e3 * p if p is not None else None for p in probes],
        "short_window_s": short_s,
        "short_window_method": short.method,
        "short_window_energy_j": short.energy_kwh * J_PER_KWH,
    }


def check_idle(gpu: Gpu, seconds: float) -> dict[str, Any]:
    """(d) Idle power from the counter and from 10 Hz samples."""
    gpu.torch.cuda.synchronize()
    time.sleep(10.0)  # let clocks and fans settle after the load phases
    sampler = PowerIntegrator(gpu.nvml, gpu.handle, 10.0)
    start_mj, t0 = gpu.counter_mj(), time.monotonic()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    elapsed, counter_j = time.monotonic() - t0, (gpu.counter_mj() - start_mj) / 1e3
    return {
        "seconds": elapsed,
        "counter_idle_power_w": counter_j / elapsed,
        "sampled_idle_power_w": statistics.fmean(sampler.powers_w),
    }


def share_worker(seconds: float, duty: float, go: Path, out: Path, size: int) -> None:
    """One of the two sharing processes: meter a run like the plugin does, then report."""
    import torch

    from carbonledger.contract import J_PER_KWH
    from carbonledger.measure import Meter

    a = torch.randn(size, size, device="cuda:0", dtype=torch.float16)
    c = torch.empty_like(a)
    torch.matmul(a, a, out=c)
    torch.cuda.synchronize()
    meter = Meter(attribution="device")
    meter.start()
    gpu_source = next(s for s in meter.sources if s.component == "gpu")
    out.with_suffix(".ready").write_text("1")
    while not go.exists():
        time.sleep(0.01)
    window = meter.open_window()
    before = gpu_source.reading()  # type: ignore[attr-defined]
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        if elapsed % 1.0 < duty:
            for _ in range(10):
                torch.matmul(a, a, out=c)
            torch.cuda.synchronize()
        else:
            time.sleep(0.005)
    result = window.close().components["gpu"]
    after = gpu_source.reading()  # type: ignore[attr-defined]
    meter.close()
    tmp = out.with_suffix(".tmp")  # written whole, then renamed: the parent polls for it
    tmp.write_text(
        json.dumps(
            {
                "duty": duty,
                "method": result.method,
                "energy_j": result.energy_kwh * J_PER_KWH,
                "remainder_j": result.remainder_kwh * J_PER_KWH,
                "device_j": after.device_j - before.device_j,
                "share": result.share,
                "notes": list(meter.notes),
            }
        )
    )
    tmp.replace(out)


def check_sharing(gpu: Gpu, seconds: float, size: int) -> dict[str, Any]:
    """(e) Two metered processes on the GPU: shares + remainders against the counter."""
    folder = Path(tempfile.mkdtemp(prefix="gpu-validate-share-"))
    go, outs = folder / "go", [folder / "w1.json", folder / "w2.json"]
    env = {**os.environ, "CARBONLEDGER_GPU_SHARE_DIR": str(folder / "registry")}
    workers = [
        subprocess.Popen(
            [sys.executable, str(HERE), "--worker", str(duty), str(go), str(out)]
            + ["--size", str(size), "--share-s", str(seconds)],
            env=env,
        )
        for duty, out in zip((1.0, 0.5), outs, strict=True)
    ]
    deadline = time.monotonic() + 120
    while not all(o.with_suffix(".ready").exists() for o in outs):
        if time.monotonic() > deadline or any(w.poll() not in (None, 0) for w in workers):
            raise RuntimeError("the sharing workers did not start")
        time.sleep(0.05)
    start_mj = gpu.counter_mj()
    go.write_text("1")
    deadline = time.monotonic() + seconds + 120
    while not all(o.exists() for o in outs):  # a worker writes its figures as it ends
        if time.monotonic() > deadline or any(w.poll() not in (None, 0) for w in workers):
            raise RuntimeError("a sharing worker failed")
        time.sleep(0.01)
    counter_j = (gpu.counter_mj() - start_mj) / 1e3
    for w in workers:
        w.wait(timeout=60)
    runs = [json.loads(o.read_text()) for o in outs]
    charged = sum(r["energy_j"] for r in runs)
    remainder = sum(r["remainder_j"] for r in runs)
    device = statistics.fmean(r["device_j"] for r in runs)
    return {
        "runs": runs,
        "counter_energy_j": counter_j,
        "shares_sum_j": charged,
        "remainders_sum_j": remainder,
        "shares_plus_remainder_vs_device_pct": _pct(charged + remainder, device),
        "shares_plus_remainder_vs_counter_pct": _pct(charged + remainder, counter_j),
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}{unit}" if isinstance(value, float) else str(value)


def _rows(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    if "a" in figures:
        deviation = _fmt(figures["a"].get("meter_vs_counter_pct"), " %")
        rows.append(("(a) meter vs counter, steady matmul", deviation, "within 1 %"))
    for phase, p in figures.get("b", {}).items():
        for hz in ("10hz", "100hz"):
            label = f"(b) {hz[:-2]} Hz power vs counter, {phase}"
            rows.append((label, _fmt(p[f"power_{hz}_vs_counter_pct"], " %"), "reported"))
    if "c" in figures:
        c = figures["c"]
        spread = f"{_fmt(c['period_p5_ms'])}-{_fmt(c['period_p95_ms'])}"
        rows.append(
            ("(c) counter update period", f"{_fmt(c['period_median_ms'])} ms ({spread})", "~100 ms")
        )
        short = f"{_fmt(c['short_window_energy_j'])} J ({c['short_window_method']})"
        rows.append(("(c) a 20 ms window", short, "never 0 J"))
    if "d" in figures:
        d = figures["d"]
        idle = f"{_fmt(d['counter_idle_power_w'])} W / {_fmt(d['sampled_idle_power_w'])} W"
        rows.append(("(d) idle power, counter / sampled", idle, "reported"))
    if "e" in figures:
        e = figures["e"]
        for ref, target in (("device", "0 % by construction"), ("counter", "within 1 %")):
            value = _fmt(e[f"shares_plus_remainder_vs_{ref}_pct"], " %")
            rows.append((f"(e) 2 processes: shares + remainders vs {ref}", value, target))
    return rows


def markdown(figures: dict[str, Any]) -> str:
    """A section for docs/benchmarks.md."""
    info = figures["info"]
    head = (
        f"### {info['gpu']} (driver {info['driver']}, NVML {info['nvml']}, CUDA {info['cuda']}, "
        f"torch {info['torch']}), {time.strftime('%Y-%m-%d')}\n\n"
        "| check | result | target |\n|---|---|---|\n"
    )
    return head + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in _rows(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", type=int, default=0, help="NVML index of the GPU to test")
    parser.add_argument("--size", type=int, default=8192, help="square matrix size")
    parser.add_argument("--steady-s", "--seconds", type=float, default=60.0, dest="steady_s")
    parser.add_argument("--bursty-s", type=float, default=60.0)
    parser.add_argument("--period-s", type=float, default=5.0)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--share-s", type=float, default=60.0)
    parser.add_argument("--only", default=",".join(CHECKS), help="checks to run, e.g. a,c,e")
    parser.add_argument("--quick", action="store_true", help="10 s phases (a smoke test)")
    parser.add_argument("--out-json", "--out", dest="out_json", help="write the figures as JSON")
    parser.add_argument("--out-md", help="write a docs/benchmarks.md section here")
    parser.add_argument("--require-gpu", action="store_true", help="exit 2 when no GPU")
    parser.add_argument("--worker", nargs=3, metavar=("DUTY", "GO", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        duty, go, out = args.worker
        share_worker(args.share_s, float(duty), Path(go), Path(out), args.size)
        return
    if args.quick:
        args.steady_s = args.bursty_s = args.share_s = 10.0
        args.idle_s, args.period_s = 5.0, 2.0
    only = {c.strip() for c in args.only.split(",") if c.strip()}

    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA's indices are then NVML's
    os.environ["CUDA_VISIBLE_DEVICES"] = str(args.device)  # torch's cuda:0 and the meter's GPU
    os.environ.setdefault("CARBONLEDGER_GPU_SHARE_DIR", tempfile.mkdtemp(prefix="gpu-validate-"))
    try:
        import torch
    except ImportError:
        _skip("torch is not installed (pip install torch with CUDA)", args.require_gpu)
    if not torch.cuda.is_available():
        _skip("torch sees no CUDA GPU on this machine", args.require_gpu)
    from carbonledger.measure import Meter
    from carbonledger.measure.nvml import nvml_init

    if not nvml_init():
        _skip("NVML (libnvidia-ml) is not available", args.require_gpu)

    gpu = Gpu(args.device, args.size)
    figures: dict[str, Any] = {"info": gpu.info()}
    meter = Meter(attribution="device")
    meter.start()
    figures["meter_notes"] = list(meter.notes)
    gpu.load(5.0)  # warm up clocks before the steady phase
    if only & {"a", "b"}:
        steady = _integrated(gpu, args.steady_s, bursty=False, meter=meter)
        if "a" in only:
            figures["a"] = {k: v for k, v in steady.items() if "power_" not in k}
        if "b" in only:
            figures["b"] = {
                "steady": steady,
                "bursty": _integrated(gpu, args.bursty_s, bursty=True, meter=meter),
            }
    if "c" in only:
        figures["c"] = check_period(gpu, args.period_s, meter)
    meter.close()
    if "d" in only:
        figures["d"] = check_idle(gpu, args.idle_s)
    if "e" in only:
        figures["e"] = check_sharing(gpu, args.share_s, args.size)

    print(json.dumps(figures, indent=2, default=str))
    section = markdown(figures)
    print(section)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(figures, indent=2, default=str))
    if args.out_md:
        Path(args.out_md).write_text(section)


if __name__ == "__main__":
    main()
