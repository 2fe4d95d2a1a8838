"""ML-CO2-Impact-style estimates: rated power x count x hours x PUE x grid intensity.

The model (Lacoste et al. 2019, "Quantifying the Carbon Emissions of Machine Learning")::

    energy_kwh          = power_w x count x duration_h / 1000
    facility_energy_kwh = energy_kwh x PUE
    co2e_kg             = facility_energy_kwh x intensity_g_per_kwh / 1000

Rated power comes from ``data/hardware_power.csv`` (manufacturers' TDP / maximum board power,
as tabulated by the ML CO2 Impact calculator where it lists the part). For CPUs the measure
package's TDP table (``carbonledger/measure/data/cpu_tdp.csv``, ~2,900 CPUs, matched by
``carbonledger.measure.cpu_estimate.lookup_tdp``) is asked first, then the few CPUs here.
It is an upper-bound style estimate: devices rarely draw their rated power all the time.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from carbonledger.errors import ConfigError, UnknownHardwareError
from carbonledger.intensity.factors import GridFactor, PueFactor

HardwareKind = Literal["gpu", "cpu"]

_VENDOR_WORDS = ("nvidia", "tesla", "geforce", "amd", "instinct", "intel", "xeon", "google")


@dataclass(frozen=True, slots=True)
class HardwarePower:
    """The rated power of a device model and where the figure comes from."""

    name: str
    kind: str
    power_w: float
    source: str


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimated footprint, with the factors it used.

    Attributes:
        power_w: rated power of one device (W).
        count: number of devices.
        duration_h: hours of use.
        energy_kwh: IT energy (kWh).
        pue: the PUE applied, with provenance.
        facility_energy_kwh: ``energy_kwh x pue``.
        grid: the grid factor applied, with provenance.
        co2e_kg: ``facility_energy_kwh x intensity / 1000``.
        hardware: the device model, when given by name.
        power_source: where ``power_w`` comes from (``--power-w`` or the table's source).
    """

    power_w: float
    count: int
    duration_h: float
    energy_kwh: float
    pue: PueFactor
    facility_energy_kwh: float
    grid: GridFactor
    co2e_kg: float
    hardware: str | None = None
    power_source: str = "given"


def estimate_emissions(
    *,
    power_w: float,
    duration_h: float,
    grid: GridFactor,
    pue: PueFactor,
    count: int = 1,
    hardware: str | None = None,
    power_source: str = "given",
) -> Estimate:
    """Estimate energy and CO2e of ``count`` devices drawing ``power_w`` for ``duration_h``.

    Raises:
        ConfigError: a negative power or duration, or a count below 1.
    """
    if power_w < 0 or duration_h < 0:
        raise ConfigError("power and hours must be >= 0 (check --power-w and --hours)")
    if count < 1:
        raise ConfigError("the device count must be >= 1 (check --count)")
    energy_kwh = power_w * count * duration_h / 1000.0
    from carbonledger.footprint import co2e_kg

    return Estimate(
        power_w=power_w,
        count=count,
        duration_h=duration_h,
        energy_kwh=energy_kwh,
        pue=pue,
        facility_energy_kwh=energy_kwh * pue.value,
        grid=grid,
        co2e_kg=co2e_kg(energy_kwh, pue.value, grid.intensity_g_per_kwh),
        hardware=hardware,
        power_source=power_source,
    )


def lookup_hardware(name: str, kind: HardwareKind) -> HardwarePower:
    """The rated power of a GPU (or TPU) or CPU model, matched loosely (case, dashes, vendor).

    Raises:
        UnknownHardwareError: the model is not in the table; the message lists close names.
    """
    if kind == "cpu":
        found = _measure_cpu(name)
        if found is not None:
            return found
    table = _index(kind)
    for key in _keys(name):
        if key in table:
            return table[key]
    names = sorted({rec.name for rec in table.values()})
    if kind == "cpu":
        names = sorted(set(names) | set(_measure_cpu_names()))
    by_key = {_key(n): n for n in names}
    close_keys = difflib.get_close_matches(_keys(name)[-1], list(by_key), n=5, cutoff=0.4)
    close = [by_key[k] for k in close_keys]
    flag = "--gpu" if kind == "gpu" else "--cpu"
    hint = f"closest: {', '.join(close)}" if close else "no close match"
    raise UnknownHardwareError(
        f"unknown {kind.upper()} model {name!r}; {hint} (give a known model with {flag}, or the "
        f"power with --power-w; `carbonledger estimate --list-hardware` lists all)",
        suggestions=close,
    )


def known_hardware(kind: HardwareKind | None = None) -> list[HardwarePower]:
    """Every device in the table (``kind`` ``gpu`` includes TPUs), sorted by kind and name."""
    rows = [r for r in _rows() if kind is None or _matches_kind(r.kind, kind)]
    return sorted(rows, key=lambda r: (r.kind, r.name))


def _matches_kind(row_kind: str, kind: HardwareKind) -> bool:
    return row_kind in ("gpu", "tpu") if kind == "gpu" else row_kind == kind


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9+]", "", text.lower())


def _keys(name: str) -> list[str]:
    """The name's key, then the key without vendor words (``NVIDIA Tesla T4`` -> ``t4``)."""
    words = re.split(r"[\s_]+", name.lower().replace("(r)", "").replace("(tm)", ""))
    stripped = " ".join(w for w in words if w not in _VENDOR_WORDS)
    return list(dict.fromkeys([_key(name), _key(stripped)]))


@cache
def _rows() -> tuple[HardwarePower, ...]:
    text = resources.files("carbonledger.intensity").joinpath("data", "hardware_power.csv")
    rows = [
        HardwarePower(r["name"], r["kind"], float(r["power_w"]), r["source"])
        for r in csv.DictReader(io.StringIO(text.read_text("utf-8")))
    ]
    return tuple(rows)


@cache
def _index(kind: HardwareKind) -> dict[str, HardwarePower]:
    out: dict[str, HardwarePower] = {}
    text = resources.files("carbonledger.intensity").joinpath("data", "hardware_power.csv")
    aliases = {
        r["name"]: [a for a in r["aliases"].split("|") if a]
        for r in csv.DictReader(io.StringIO(text.read_text("utf-8")))
    }
    for rec in _rows():
        if not _matches_kind(rec.kind, kind):
            continue
        for label in (rec.name, *aliases.get(rec.name, [])):
            for key in _keys(label):
                out.setdefault(key, rec)
    return out


MEASURE_TABLE_SOURCE = (
    "carbonledger.measure CPU TDP table (CodeCarbon's cpu_power.csv: manufacturers' TDP)"
)


def _measure_cpu(name: str) -> HardwarePower | None:
    """A CPU from the measure package's TDP table, when that package ships one."""
    try:
        from carbonledger.measure.cpu_estimate import lookup_tdp
    except ImportError:  # pragma: no cover - the measure package always ships it
        return None
    found = lookup_tdp(name)
    return HardwarePower(found[0], "cpu", float(found[1]), MEASURE_TABLE_SOURCE) if found else None


def _measure_cpu_names() -> list[str]:
    try:
        from carbonledger.measure.cpu_estimate import load_tdp_table
    except ImportError:  # pragma: no cover
        return []
    return [name for name, _ in load_tdp_table().values()]
