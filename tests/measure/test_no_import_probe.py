"""Importing carbonledger.measure probes no hardware and starts no thread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SPY = """
CALLS = []
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_DRIVER_NOT_LOADED = 9
class NVMLError(Exception):
    value = 999
def __getattr__(name):
    if name.startswith("nvml"):
        def call(*args):
            CALLS.append(name)
            raise NVMLError(name)
        return call
    raise AttributeError(name)
"""

PROBE = """
import builtins, json, os, sys, threading
opened = []
real_open = builtins.open
def spy_open(file, *a, **k):
    opened.append(str(file))
    return real_open(file, *a, **k)
builtins.open = spy_open
import carbonledger.measure, carbonledger.testing, carbonledger.cli
import pynvml
builtins.open = real_open
print(json.dumps({
    "threads": threading.active_count(),
    "nvml_calls": pynvml.CALLS,
    "pynvml_is_spy": hasattr(pynvml, "CALLS"),
    "sysfs": [f for f in opened if f.startswith(("/sys", "/proc/cpuinfo", "/dev"))],
}))
"""


def test_import_opens_no_nvml_reads_no_sysfs_and_starts_no_thread(tmp_path: Path) -> None:
    (tmp_path / "pynvml.py").write_text(SPY)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=60,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["pynvml_is_spy"]  # the spy really stood in for nvidia-ml-py
    assert seen["nvml_calls"] == []
    assert seen["threads"] == 1
    assert seen["sysfs"] == []
