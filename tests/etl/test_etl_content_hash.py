"""The content hash keeps its values: a ledger loaded by an older version re-stages nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from carbonledger.etl.content_hash import content_hash, reference_hash

ROW: dict[str, Any] = {
    "run_id": "r1",
    "start_time": datetime(2024, 5, 31, 23, 0, tzinfo=UTC),
    "energy_kwh": 0.62,
    "team": "it's 100%",
    "gpu_count": 1,
    "ram_gb": None,
    "any_component_estimated": True,
    "pue": float("nan"),
}
PARTS: list[dict[str, Any]] = [
    {
        "component": "gpu",
        "energy_kwh": 0.5,
        "method": "nvml-energy-counter",
        "is_estimate": False,
        "inclusive_energy_kwh": 0.5,
    },
    {"gpu_model": "NVIDIA H100", "gpu_count": 1, "ram_gb": 24.0},
]


def test_the_digest_of_a_run_is_the_one_earlier_versions_stored() -> None:
    # Computed by carbonledger at ea037b8 (repr of the sorted row and of the parts).
    assert content_hash(ROW, PARTS) == "0e2a35dafd4f716f6b5e160311e78ca0"


class Text(str):
    """A str subclass: ``repr`` is the str's."""


@pytest.mark.parametrize(
    "value",
    [
        0.1 + 0.2,
        -0.0,
        float("inf"),
        1e300,
        12,
        2**70,
        False,
        None,
        "",
        "quote ' and \" and %s %r %%",
        "naïve ünïcode \x00 nul",
        Text("subclass"),
        datetime(2023, 1, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2023, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(2023, 1, 1),
        (1, "a"),
        [1.5, None],
        {"nested": 1},
    ],
    ids=repr,
)
def test_every_value_is_written_as_repr_writes_it(value: Any) -> None:
    row = {**ROW, "team": value, "zz_extra": value}
    parts = [{**PARTS[0], "method": value}, {}, PARTS[1]]
    assert content_hash(row, parts) == reference_hash(row, parts)


@pytest.mark.parametrize(
    ("row", "parts"),
    [
        ({"only": 1}, []),  # one key: no format string
        ({}, [{"a": 1}]),
        ({1: "a", 2: "b"}, []),  # keys that are not strings
        (ROW, [{("tuple",): 1}]),
        ({"%(x)s": 1, "%": 2}, [{"%d": 3}]),  # format characters in keys
    ],
)
def test_other_layouts_give_the_reference_digest(row: Any, parts: Any) -> None:
    assert content_hash(row, parts) == reference_hash(row, parts)


def test_the_key_order_of_a_row_does_not_matter_but_that_of_a_part_does() -> None:
    reordered = dict(reversed(list(ROW.items())))
    assert content_hash(reordered, PARTS) == content_hash(ROW, PARTS)
    flipped = [dict(reversed(list(PARTS[0].items()))), PARTS[1]]
    assert content_hash(ROW, flipped) == reference_hash(ROW, flipped)
    assert content_hash(ROW, flipped) != content_hash(ROW, PARTS)
