"""Wh per request of a model on this machine (``carbonledger inference-bench``).

For models served outside Python, request counts become energy through a measured figure:
the benchmark meters the devices (``carbonledger.measure``) while idle for ``idle_s``, then
while calling ``predict`` back to back on a sample input for ``duration_s`` (or ``requests``
calls), and reports

* ``wh_per_request``: all the IT energy of the loaded phase / requests (what the devices drew
  per request at full load, their idle draw included);
* ``active_wh_per_request``: the same minus the idle power over the loaded phase.

A real deployment is rarely at full load: its idle time comes on top, so imported request
counts estimated from ``wh_per_request`` are a lower bound (and flagged as estimates).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from carbonledger.contract import G_PER_KG, energy_kwh_at
from carbonledger.errors import ConfigError
from carbonledger.footprint import co2e_kg
from carbonledger.inference.split import per_request, percentiles_ms


@dataclass(frozen=True, slots=True)
class BenchResult:
    """What the benchmark measured (energy is IT energy; per-request figures in Wh)."""

    model_uri: str
    requests: int
    rows_per_request: int
    duration_s: float
    energy_kwh: float
    idle_s: float
    idle_power_w: float | None
    wh_per_request: float
    active_wh_per_request: float | None
    requests_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    methods: str
    measured: bool
    pue: float
    intensity_g_per_kwh: float
    co2e_g_per_request: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--output`` writes and ``import inference --bench`` reads)."""
        return asdict(self)


def load_input(path: Path) -> Any:
    """A request body from JSON, in any format ``mlflow models serve`` accepts.

    ``{"dataframe_split": ...}`` and ``{"dataframe_records": ...}`` become a pandas
    DataFrame, ``{"instances": ...}``/``{"inputs": ...}`` their value (a numpy array when
    it is a list), a bare list of objects a DataFrame; anything else is passed as is.

    Raises:
        ConfigError: the file is unreadable or not JSON.
    """
    import numpy as np
    import pandas as pd

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the sample input {path}: {exc}") from None
    if isinstance(data, dict):
        if "dataframe_split" in data:
            return pd.DataFrame(**data["dataframe_split"])
        if "dataframe_records" in data:
            return pd.DataFrame(data["dataframe_records"])
        for key in ("instances", "inputs"):
            if key in data:
                value = data[key]
                return np.asarray(value) if isinstance(value, list) else value
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    return data


def run_bench(
    model: Any,
    data: Any,
    *,
    model_uri: str = "",
    duration_s: float = 10.0,
    requests: int | None = None,
    idle_s: float = 3.0,
    warmup: int = 3,
    meter: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BenchResult:
    """Measure energy per request of ``model.predict(data)`` on this machine.

    Args:
        model: anything with ``predict``.
        data: one request's input.
        model_uri: recorded in the result.
        duration_s: length of the loaded phase (ignored when ``requests`` is given).
        requests: number of calls of the loaded phase.
        idle_s: length of the idle phase (0 skips it: no active figure).
        warmup: calls before measuring (load caches, JIT, lazy init).
        meter: a ``carbonledger.measure.Meter`` (default: the process-wide one).
        sleep: how to wait through the idle phase (tests).
    """
    from carbonledger.inference.wrapper import _rows
    from carbonledger.mlflow_plugin.api import get_factors

    if meter is None:
        from carbonledger.measure import shared_meter

        meter = shared_meter()
    idle_power_w = None
    if idle_s > 0:
        with meter.open_window() as idle:
            sleep(idle_s)
        quiet = idle.close()
        idle_power_w = quiet.avg_power_w if quiet.duration_s > 0 else None
    for _ in range(warmup):
        model.predict(data)
    latencies: list[float] = []
    deadline = time.perf_counter() + duration_s
    with meter.open_window() as loaded:
        while (len(latencies) < requests) if requests else (time.perf_counter() < deadline):
            t0 = time.perf_counter()
            model.predict(data)
            latencies.append(time.perf_counter() - t0)
    result = loaded.close()
    n = max(1, len(latencies))
    energy = result.energy_kwh
    active = None
    if idle_power_w is not None:
        idle_kwh = energy_kwh_at(idle_power_w, result.duration_s)
        active = per_request(max(0.0, energy - idle_kwh), n)
    pct = percentiles_ms(latencies) or {50.0: 0.0, 95.0: 0.0, 99.0: 0.0}
    factors = get_factors()
    wh = per_request(energy, n) or 0.0
    return BenchResult(
        model_uri=model_uri,
        requests=len(latencies),
        rows_per_request=_rows(data),
        duration_s=result.duration_s,
        energy_kwh=energy,
        idle_s=idle_s,
        idle_power_w=idle_power_w,
        wh_per_request=wh,
        active_wh_per_request=active,
        requests_per_s=len(latencies) / result.duration_s if result.duration_s > 0 else 0.0,
        latency_p50_ms=pct[50.0],
        latency_p95_ms=pct[95.0],
        latency_p99_ms=pct[99.0],
        methods=result.methods,
        measured=all(c.measured for c in result.components.values()),
        pue=factors.pue.value,
        intensity_g_per_kwh=factors.grid.intensity_g_per_kwh,
        co2e_g_per_request=G_PER_KG
        * co2e_kg(energy / n, factors.pue.value, factors.grid.intensity_g_per_kwh),
    )
