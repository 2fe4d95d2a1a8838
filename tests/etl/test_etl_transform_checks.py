"""The value and text checks of a run say the first problem in the run's own order."""

from __future__ import annotations

import math
from typing import Any

import pytest

from carbonledger.etl.transform import _Reject, check_row, check_values

GOOD_ROW: dict[str, Any] = {
    "run_id": "r1",
    "run_name": "fine",
    "kind": "training",
    "energy_kwh": 1.0,
    "country": "DE",
    "activity_year": 2024,
}
GOOD_ENERGY = [{"component": "gpu", "method": "nvml-energy-counter", "energy_kwh": 1.0}]


class Text(str):
    """A str subclass (checked like a str)."""


def _problem(call: Any) -> tuple[str, str] | None:
    try:
        call()
    except _Reject as rej:
        return rej.reason, rej.detail
    return None


@pytest.mark.parametrize(
    ("changes", "energy_method", "expected"),
    [
        ({}, "nvml-energy-counter", None),
        ({"run_name": None, "country": None}, None, None),
        ({"country": "DEU-DEU-DEU"}, "x", ("invalid-field", "country is 11 characters long")),
        ({"kind": Text("t" * 17)}, "x", ("invalid-field", "kind is 17 characters long")),
        ({"run_name": "a\x00b"}, "x", ("invalid-field", "run_name contains a NUL")),
        # two problems: the first column of the row is the one named
        ({"run_name": "a\x00", "kind": "k" * 40}, "x", ("invalid-field", "run_name contains")),
        ({"kind": "k" * 40, "run_name": "a\x00"}, "x", ("invalid-field", "kind is 40")),
        ({}, "m" * 65, ("invalid-field", "carbon.methods (gpu) is 65 characters long")),
        ({}, "rapl\x00", ("invalid-field", "carbon.methods (gpu) contains a NUL")),
        ({"activity_year": "20\x0024"}, "x", ("invalid-field", "activity_year contains a NUL")),
        ({"kind": 7}, "x", None),  # no text: not a text problem (the loader's to refuse)
        ({"not_a_column": "\x00"}, "x", None),
    ],
)
def test_check_row_names_the_first_text_problem(
    changes: dict[str, Any], energy_method: Any, expected: tuple[str, str] | None
) -> None:
    row = {**changes, **{k: v for k, v in GOOD_ROW.items() if k not in changes}}  # in order
    energy = [{**GOOD_ENERGY[0], "method": energy_method}]
    got = _problem(lambda: check_row(row, energy))
    if expected is None:
        assert got is None
    else:
        assert got is not None and got[0] == expected[0] and got[1].startswith(expected[1])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"carbon/energy_kwh": 1.0, "carbon/pue": 1.2}, None),
        ({"carbon/energy_kwh": 1, "carbon/duration_s": 0}, None),  # ints are figures too
        ({"carbon/energy_kwh": math.nan}, ("non-finite", "carbon/energy_kwh is nan")),
        ({"carbon/duration_s": math.inf}, ("non-finite", "carbon/duration_s is inf")),
        ({"carbon/gpu_energy_kwh": -1.0}, ("negative", "carbon/gpu_energy_kwh is -1.0")),
        ({"carbon/energy_kwh": 1e12}, ("impossible", "carbon/energy_kwh is 1e+12 kWh")),
        ({"carbon/duration_s": 1e300}, None),  # large, finite and not energy: let through
        ({"carbon/energy_kwh": "1"}, ("non-finite", "carbon/energy_kwh is '1'")),
        # the first bad value in the run's order is the one named
        ({"carbon/cpu_energy_kwh": -2.0, "carbon/gpu_energy_kwh": math.nan}, ("negative", "")),
        ({"carbon/pue": 0.5}, ("impossible", "carbon/pue is 0.5")),
    ],
)
def test_check_values_names_the_first_wrong_figure(
    values: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    got = _problem(lambda: check_values(values))
    if expected is None:
        assert got is None
    else:
        assert got is not None and got[0] == expected[0] and got[1].startswith(expected[1])
