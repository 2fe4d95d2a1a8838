"""Validate the Meter's GPU energy on a real NVIDIA GPU (issue 2, item 7b).

Runs ``--seconds`` (default 60) of large matrix multiplications on the first visible GPU and
compares three figures over the same interval:

1. the ``Meter`` (GPU source only, the method it picks: energy counter or power integration);
2. a direct read of ``nvmlDeviceGetTotalEnergyConsumption`` before and after (Volta+);
3. an independent 10 Hz integration of ``nvmlDeviceGetPowerUsage`` on its own thread.

It prints each energy and the deviations (target: within 1 %), and writes JSON with
``--out``. Without torch with CUDA, NVML or a GPU it says so and exits with status 0
(``--require-gpu`` makes that status 2).

Usage:
    .venv/bin/python bench/gpu_validate.py [--seconds 60] [--out gpu_validate.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any


def _skip(reason: str, require: bool) -> None:
    print(f"gpu_validate: SKIPPED - {reason}. Nothing was measured.")
    sys.exit(2 if require else 0)


class PowerIntegrator(threading.Thread):
    """Independent trapezoid integration of NVML power at ``hz`` on one device."""

    def __init__(self, pynvml: Any, handle: Any, hz: float = 10.0) -> None:
        super().__init__(daemon=True, name="gpu-validate-power")
        self._nvml, self._handle, self._period = pynvml, handle, 1.0 / hz
        self._halt = threading.Event()
        self.energy_j = 0.0
        self.samples = 0
        self.peak_w = 0.0
        self._last: tuple[float, float] | None = None

    def _sample(self) -> None:
        now, power_w = time.monotonic(), self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1e3
        if self._last is not None:
            self.energy_j += (self._last[1] + power_w) / 2.0 * (now - self._last[0])
        self._last = (now, power_w)
        self.samples += 1
        self.peak_w = max(self.peak_w, power_w)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", type=int, default=8192, help="square matrix size")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--require-gpu", action="store_true", help="exit 2 when no GPU")
    args = parser.parse_args()

    try:
        import torch
    except ImportError:
        _skip("torch is not installed (pip install torch with CUDA)", args.require_gpu)
    if not torch.cuda.is_available():
        _skip("torch sees no CUDA GPU on this machine", args.require_gpu)
    from carbonledger.measure import Meter
    from carbonledger.measure.nvml import nvml_init, nvml_shutdown, open_gpu_source, pynvml

    if pynvml is None or not nvml_init():
        _skip("NVML (libnvidia-ml) is not available", args.require_gpu)
    source, notes = open_gpu_source()
    if source is None:
        _skip("NVML lists no visible GPU", args.require_gpu)
    assert source is not None
    # torch's cuda:0 is the first visible device, as is the source's first device.
    uuid = source.devices[0]
    handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
    name = pynvml.nvmlDeviceGetName(handle)
    if len(source.devices) > 1:  # validate one device: restrict the meter to it
        from carbonledger.measure.nvml import GpuDevice, NvmlGpuSource

        one = [GpuDevice(handle, 0, uuid)]
        source.close()
        source = NvmlGpuSource(one, mode=source.mode)
    try:
        counter_start_mj: int | None = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError_NotSupported:
        counter_start_mj = None

    device = torch.device("cuda:0")
    a = torch.randn(args.size, args.size, device=device, dtype=torch.float16)
    b = torch.randn(args.size, args.size, device=device, dtype=torch.float16)
    c = torch.empty_like(a)
    torch.cuda.synchronize()

    meter = Meter([source])
    integrator = PowerIntegrator(pynvml, handle, hz=10.0)
    window = meter.open_window()
    integrator.start()
    if counter_start_mj is not None:
        counter_start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    t0 = time.monotonic()
    matmuls = 0
    while time.monotonic() - t0 < args.seconds:
        for _ in range(20):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        matmuls += 20
    counter_end_mj = (
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) if counter_start_mj is not None else None
    )
    result = window.close()
    integrator.stop()
    elapsed_s = time.monotonic() - t0
    meter.close()
    nvml_shutdown()

    gpu = result.components["gpu"]
    meter_j = gpu.energy_kwh * 3.6e6
    counter_j = (
        (counter_end_mj - counter_start_mj) / 1e3
        if counter_start_mj is not None and counter_end_mj is not None
        else None
    )
    figures: dict[str, Any] = {
        "gpu": name if isinstance(name, str) else name.decode(),
        "seconds": elapsed_s,
        "matmuls": matmuls,
        "tflops": 2 * args.size**3 * matmuls / elapsed_s / 1e12,
        "meter_method": gpu.method,
        "meter_energy_j": meter_j,
        "meter_avg_power_w": gpu.avg_power_w,
        "meter_peak_power_w": gpu.peak_power_w,
        "nvml_counter_energy_j": counter_j,
        "power_10hz_energy_j": integrator.energy_j,
        "power_10hz_samples": integrator.samples,
        "power_10hz_peak_w": integrator.peak_w,
        "notes": notes,
    }
    if counter_j:
        figures["deviation_vs_counter_pct"] = 100.0 * (meter_j - counter_j) / counter_j
    if integrator.energy_j:
        figures["deviation_vs_power_10hz_pct"] = (
            100.0 * (meter_j - integrator.energy_j) / integrator.energy_j
        )
    for key, value in figures.items():
        print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")
    worst = max(
        abs(figures.get("deviation_vs_counter_pct", 0.0)),
        abs(figures.get("deviation_vs_power_10hz_pct", 0.0)),
    )
    print(f"{'verdict':>28}: {'PASS' if worst <= 1.0 else 'FAIL'} (target within 1 %)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
