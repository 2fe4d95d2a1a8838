"""bench/gpu_validate.py (issue 17 item 6) runs end to end: here on a simulated GPU.

The real check needs an NVIDIA GPU; this dry run puts stand-ins for ``pynvml`` and ``torch``
first on ``PYTHONPATH`` (a 300 W device whose counter steps every 100 ms, matmuls that take
1 ms), so every phase, the two sharing worker processes and the JSON/Markdown output are
exercised before a GPU is ever spent on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_validate.py"

FAKE_PYNVML = """
import os, time
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_DRIVER_NOT_LOADED = 9
class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value
T0 = float(os.environ["FAKE_GPU_T0"])
def _mj():  # 300 W, updated every 100 ms
    return int((time.time() - T0) // 0.1 * 30_000)
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(i): return "h0"
def nvmlDeviceGetUUID(h): return "GPU-fake-0000"
def nvmlDeviceGetName(h): return "Fake H200"
def nvmlSystemGetDriverVersion(): return "999.0"
def nvmlSystemGetNVMLVersion(): return "12.999"
def nvmlDeviceGetEnforcedPowerLimit(h): return 700_000
def nvmlDeviceGetMemoryInfo(h): return type("M", (), {"total": 141 * 2**30})()
def nvmlDeviceGetTotalEnergyConsumption(h): return _mj()
def nvmlDeviceGetPowerUsage(h): return 300_000
def nvmlDeviceGetMigMode(h): raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
def nvmlDeviceGetProcessUtilization(h, ts):
    # like the driver's buffer: one sample per process per 100 ms period it ran a kernel in
    folder, now, out = os.environ["FAKE_GPU_PIDS"], time.time(), []
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            busy = {int(float(line) / 0.1) for line in f if line.strip()}
        for period in sorted(busy):
            stamp = int((period + 1) * 0.1 * 1e6)
            if ts < stamp <= now * 1e6:
                s = type("S", (), {})()
                s.pid, s.timeStamp, s.smUtil = int(name), stamp, 50
                s.memUtil = s.encUtil = s.decUtil = 0
                out.append(s)
    if not out:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return out
def nvmlDeviceGetComputeRunningProcesses(h): return []
"""

FAKE_TORCH = """
import os, time
__version__ = "0.0-fake"
float16 = "float16"
class version:
    cuda = "0.0"
class _T:
    pass
def device(name): return name
def randn(*a, **k): return _T()
def empty_like(x): return _T()
def matmul(a, b, out=None):
    pids = os.environ["FAKE_GPU_PIDS"]
    with open(os.path.join(pids, str(os.getpid())), "a") as f:
        f.write(f"{time.time()}\\n")
    time.sleep(0.001)
class cuda:
    @staticmethod
    def is_available(): return True
    @staticmethod
    def synchronize(): pass
"""


@pytest.mark.slow
def test_the_validation_script_runs_every_check_on_a_simulated_gpu(tmp_path: Path) -> None:
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "pynvml.py").write_text(FAKE_PYNVML)
    (fakes / "torch.py").write_text(FAKE_TORCH)
    (tmp_path / "pids").mkdir()
    import time

    env = {
        **os.environ,
        "PYTHONPATH": f"{fakes}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "FAKE_GPU_T0": str(time.time()),
        "FAKE_GPU_PIDS": str(tmp_path / "pids"),
    }
    out_json, out_md = tmp_path / "gpu.json", tmp_path / "gpu.md"
    durations = ["--steady-s", "0.6", "--bursty-s", "0.6", "--period-s", "0.5"]
    durations += ["--idle-s", "0.3", "--share-s", "1.5", "--size", "64"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *durations, "--out-json", str(out_json)]
        + ["--out-md", str(out_md), "--require-gpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out_json.read_text())
    assert figures["info"]["gpu"] == "Fake H200" and figures["info"]["nvml"] == "12.999"
    assert set(figures) >= {"a", "b", "c", "d", "e"}
    assert abs(figures["a"]["meter_vs_counter_pct"]) < 25  # steps of 100 ms over 0.6 s
    assert figures["c"]["period_median_ms"] == pytest.approx(100.0, rel=0.2)
    if figures["c"]["short_window_s"] < 0.05:  # a loaded machine can stretch the 20 ms sleep
        assert figures["c"]["short_window_method"] == "short-window-power-interpolation"
    assert figures["c"]["short_window_energy_j"] > 0
    assert figures["d"]["sampled_idle_power_w"] == pytest.approx(300.0)
    runs = figures["e"]["runs"]
    assert len(runs) == 2 and all(r["method"] for r in runs)
    assert any("nvml-process-share" in r["method"] for r in runs), runs
    # exact for equal windows; the workers' windows differ by a counter step of 30 J here,
    # two when a loaded machine (xdist beside other jobs) starts one worker late
    step_pct = 100 * 30.0 / min(r["device_j"] for r in runs)
    deviation = figures["e"]["shares_plus_remainder_vs_device_pct"]
    assert abs(deviation) <= 2 * step_pct + 0.1, json.dumps(figures["e"])
    section = out_md.read_text()
    assert section.startswith("### Fake H200 (driver 999.0, NVML 12.999")
    assert "(e) 2 processes" in section
