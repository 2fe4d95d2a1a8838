"""One window of one hosted version: what the inference meter logs to its inference run.

:meth:`WindowRecord.metrics` gives the window's ``carbon/inference/*`` metrics (names in
:mod:`carbonledger.contract`, documented in docs/inference.md), CO2e through the one formula
(:func:`carbonledger.footprint.co2e_kg`).
"""

from __future__ import annotations

from dataclasses import dataclass

from carbonledger.contract import (
    G_PER_KG,
    W_ACTIVE_ENERGY_KWH,
    W_ACTIVE_WH_PER_REQUEST,
    W_BUSY_S,
    W_CO2E_G_PER_REQUEST,
    W_CO2E_KG,
    W_COMPONENT_ENERGY_KWH,
    W_ENERGY_KWH,
    W_ERRORS,
    W_FACILITY_ENERGY_KWH,
    W_HOSTED_S,
    W_IDLE_ENERGY_KWH,
    W_IDLE_POWER_W,
    W_INTENSITY_G_PER_KWH,
    W_LATENCY_MS,
    W_PUE,
    W_REQUESTS,
    W_ROWS,
    W_WH_PER_REQUEST,
    W_WINDOW_S,
)
from carbonledger.footprint import co2e_kg
from carbonledger.inference.split import per_request


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One window of one version, as logged to its inference run (energy in kWh)."""

    model_name: str
    model_version: int
    start_s: float
    end_s: float
    requests: int
    rows: int
    errors: int
    busy_s: float
    hosted_s: float
    energy_kwh: dict[str, float]
    active_energy_kwh: float
    idle_energy_kwh: float
    idle_method: str
    idle_power_w: float | None
    pue: float
    intensity_g_per_kwh: float
    latency_ms: dict[float, float] | None

    @property
    def it_energy_kwh(self) -> float:
        """GPU + CPU + RAM."""
        return sum(self.energy_kwh.values())

    @property
    def facility_energy_kwh(self) -> float:
        """IT energy x PUE."""
        return self.it_energy_kwh * self.pue

    @property
    def co2e_kg(self) -> float:
        """Facility energy x intensity."""
        return co2e_kg(self.it_energy_kwh, self.pue, self.intensity_g_per_kwh)

    def metrics(self) -> dict[str, float]:
        """The ``carbon/inference/*`` metrics of this window."""
        out = {
            W_REQUESTS: float(self.requests),
            W_ROWS: float(self.rows),
            W_ERRORS: float(self.errors),
            W_WINDOW_S: self.end_s - self.start_s,
            W_BUSY_S: self.busy_s,
            W_HOSTED_S: self.hosted_s,
            **{m: self.energy_kwh.get(k, 0.0) for k, m in W_COMPONENT_ENERGY_KWH.items()},
            W_ENERGY_KWH: self.it_energy_kwh,
            W_ACTIVE_ENERGY_KWH: self.active_energy_kwh,
            W_IDLE_ENERGY_KWH: self.idle_energy_kwh,
            W_PUE: self.pue,
            W_FACILITY_ENERGY_KWH: self.facility_energy_kwh,
            W_INTENSITY_G_PER_KWH: self.intensity_g_per_kwh,
            W_CO2E_KG: self.co2e_kg,
        }
        if self.requests:
            out[W_WH_PER_REQUEST] = per_request(self.facility_energy_kwh, self.requests) or 0.0
            active = per_request(self.active_energy_kwh * self.pue, self.requests) or 0.0
            out[W_ACTIVE_WH_PER_REQUEST] = active
            out[W_CO2E_G_PER_REQUEST] = self.co2e_kg * G_PER_KG / self.requests
        if self.latency_ms:
            out.update({W_LATENCY_MS[p]: v for p, v in self.latency_ms.items()})
        if self.idle_power_w is not None:
            out[W_IDLE_POWER_W] = self.idle_power_w
        return out
