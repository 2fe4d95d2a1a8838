"""Window accounting: a meter window read as energy deltas per component.

A :class:`WindowReader` opens one window on a ``carbonledger.measure`` meter and, at every
:meth:`~WindowReader.read`, returns what the devices drew since the previous read (kWh per
component the meter reports, never negative), the interval, and the method of each component.
The training plugin's accountant and the inference meter both charge what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carbonledger.contract import COMPONENTS


@dataclass(frozen=True, slots=True)
class WindowDelta:
    """The energy of one interval of a window.

    Attributes:
        energy_kwh: energy per component since the previous read (components the meter has).
        interval_s: seconds since the previous read.
        end_s: when this read was taken (epoch s, the meter's clock).
        gpu_remainder_kwh: the interval's part of shared GPUs' remainder charged to no metered
            process (idle time, unmetered processes), reported beside the GPU energy.
    """

    energy_kwh: dict[str, float]
    interval_s: float
    end_s: float
    gpu_remainder_kwh: float = 0.0


class WindowReader:
    """One open window on ``meter``, read as deltas.

    Args:
        meter: a ``carbonledger.measure.Meter`` (or anything with ``open_window()`` and
            ``hardware()``).

    Attributes:
        methods: component -> (method, measured) as of the last read.
        attribution: ``device`` or ``process`` as of the last read.
        hardware_tags: the meter's ``carbon.*`` hardware tags (empty when it cannot say).
        last_s: when the window was last read (epoch s).

    Raises:
        Exception: whatever opening or first reading the window raises (no device readable).
    """

    def __init__(self, meter: Any) -> None:
        self._window = meter.open_window()
        try:
            first = self._window.read()
        except Exception:
            self.close()
            raise
        self._closed = False
        self._last_kwh = {c: first.energy_of(c) for c in COMPONENTS}
        self._last_remainder_kwh = _gpu_remainder_kwh(first)
        self.last_s: float = first.end_s
        self.methods: dict[str, tuple[str, bool]] = {}
        self.attribution = "device"
        self._absorb(first)
        try:
            hardware = meter.hardware()
            self.hardware_tags = {k: str(v) for k, v in hardware.as_tags().items()}
        except Exception:  # noqa: BLE001 - hardware tags are best effort
            self.hardware_tags = {}

    def _absorb(self, result: Any) -> None:
        self.methods = {c: (e.method, bool(e.measured)) for c, e in result.components.items()}
        self.attribution = getattr(result, "attribution", "device")

    def read(self, *, final: bool = False) -> WindowDelta:
        """The energy since the previous read; ``final`` closes the window with this read."""
        result = self._window.close() if final else self._window.read()
        self._closed = self._closed or final
        kwh = {c: result.energy_of(c) for c in COMPONENTS}
        delta = {
            c: max(0.0, kwh[c] - self._last_kwh.get(c, 0.0))
            for c in COMPONENTS
            if c in result.components
        }
        interval_s = max(0.0, result.end_s - self.last_s)
        remainder = _gpu_remainder_kwh(result)
        delta_remainder = max(0.0, remainder - self._last_remainder_kwh)
        self._last_kwh, self._last_remainder_kwh, self.last_s = kwh, remainder, result.end_s
        self._absorb(result)
        return WindowDelta(
            energy_kwh=delta,
            interval_s=interval_s,
            end_s=result.end_s,
            gpu_remainder_kwh=delta_remainder,
        )

    def close(self) -> None:
        """Close the window (idempotent, best effort)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            self._window.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _gpu_remainder_kwh(result: Any) -> float:
    """A window result's GPU remainder so far (0 for results without one, e.g. test fakes)."""
    remainder_of = getattr(result, "remainder_of", None)
    return float(remainder_of("gpu")) if callable(remainder_of) else 0.0
