"""The parts of a footprint total with its ranges: one SQL builder per part, one assembly.

A total's range follows ``carbonledger.uncertainty``: each error source's standard
uncertainty adds linearly across the records of the total, then the sources add in
quadrature. So every part is a sum over records grouped by its error source, and a sum over
records is the sum of the same sums over any partition of them: the rollup
``rollup_ranges`` holds each part grouped also by month (serving windows also by UTC day),
team and model, and a total over any months, team and model is its rows summed again. The
per-record rules stay in the views and in :func:`assemble`:

* ``run_co2e``: training runs counted and their location-based CO2e (``v_run_emissions``);
* ``run_sigma``: their standard uncertainty per error source (``v_run_uncertainty``);
* ``window_co2e``: serving windows' CO2e per method set and intensity method, with its
  component split (``inference_co2e``), which :func:`window_contributions` prices;
* ``run_embodied``, ``window_embodied``: embodied CO2e (Scope 3), its uncertainty per source
  and the records without a figure (``v_run_embodied``, ``v_window_embodied``).

Each builder takes a ``where`` on its records and a grain: the names of the keys to group by
(``month``, ``day``, ``team``, ``model_name``), each rendered from the part's own columns
(a run's lifecycle model comes from ``v_lifecycle_runs``, joined when asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carbonledger import contract as c
from carbonledger.reporting.rollup_sql import day_sql
from carbonledger.uncertainty import (
    Contribution,
    Range,
    energy_uncertainty,
    intensity_uncertainty,
    to_range,
)

if TYPE_CHECKING:  # pandas is imported where frames are read: the ETL's refresh needs none
    import pandas as pd

PARTS = ("run_co2e", "run_sigma", "window_co2e", "run_embodied", "window_embodied")
"""The parts of a total, in the order :func:`assemble` takes them."""

MEASURES = (
    "uncertainty_key",
    "methods",
    "intensity_method",
    "records",
    "records_without_embodied",
    "co2e_kg",
    "sigma_kg",
    "gpu_co2e_kg",
    "cpu_co2e_kg",
    "ram_co2e_kg",
)
"""Every column a part can have besides its keys (a part lacking one has it NULL or 0)."""

PART_MEASURES: dict[str, tuple[str, ...]] = {
    "run_co2e": ("records", "co2e_kg"),
    "run_sigma": ("uncertainty_key", "sigma_kg"),
    "window_co2e": (
        "methods",
        "intensity_method",
        "records",
        "gpu_co2e_kg",
        "cpu_co2e_kg",
        "ram_co2e_kg",
        "co2e_kg",
    ),
    "run_embodied": (
        "uncertainty_key",
        "records",
        "records_without_embodied",
        "co2e_kg",
        "sigma_kg",
    ),
    "window_embodied": (
        "uncertainty_key",
        "records",
        "records_without_embodied",
        "co2e_kg",
        "sigma_kg",
    ),
}
"""The columns each part's rows carry."""

_LIFECYCLE = "JOIN v_lifecycle_runs lr ON lr.run_pk = {runs}.run_pk"


@dataclass(frozen=True, slots=True)
class FootprintTotal:
    """A total with both scopes apart, each with its range.

    Attributes:
        operational: location-based operational CO2e (Scope 2), kg, with its range.
        embodied: embodied CO2e (Scope 3), kg, with its range; not part of ``operational``.
        records: runs and serving windows counted.
        records_without_embodied: of them, those without an embodied figure (each says why).
    """

    operational: Range
    embodied: Range
    records: int
    records_without_embodied: int


def _keys(grain: Sequence[str], columns: dict[str, str]) -> tuple[str, str]:
    """``(select list, group list)`` of ``grain``, each key from the part's ``columns``."""
    exprs = [columns[name] for name in grain]
    return "".join(f"{e} AS {n}, " for e, n in zip(exprs, grain, strict=True)), "".join(
        f"{e}, " for e in exprs
    )


def _run_columns(alias: str) -> dict[str, str]:
    return {"month": f"{alias}.month", "team": f"{alias}.team", "model_name": "lr.model_name"}


def _window_columns(dialect: str, alias: str) -> dict[str, str]:
    """A window's keys from ``alias``; its month from ``v_window_embodied`` (``e``)."""
    return {
        "month": "e.month",
        "day": day_sql(dialect, f"{alias}.window_start"),
        "team": f"{alias}.team",
        "model_name": f"{alias}.model_name",
    }


def run_keys(dialect: str, column: str, runs: str) -> str:
    """SQL: ``column`` (a run key) is one of the keys ``runs`` (a subquery) selects.

    On PostgreSQL an array of the keys, so a view grouped by run key (``v_run_uncertainty``)
    is computed for those runs only (a semi-join was planned over every run: 5 s at 200,000).
    """
    if dialect == "postgresql":
        return f"{column} = ANY(ARRAY({runs}))"
    return f"{column} IN ({runs})"


def run_co2e_sql(dialect: str, *, runs: str, where: str, grain: Sequence[str]) -> str:
    """Training runs counted and their CO2e, from ``runs`` (``v_run_emissions`` or its rows)."""
    select, group = _keys(grain, _run_columns("r"))
    join = _LIFECYCLE.format(runs="r") if "model_name" in grain else ""
    tail = f" GROUP BY {group[:-2]}" if grain else ""
    return (
        f"SELECT {select}COUNT(*) AS records, SUM(r.co2e_location_kg) AS co2e_kg "
        f"FROM {runs} r {join} WHERE r.kind <> 'inference' AND {where}{tail}"
    )


def run_sigma_sql(
    dialect: str, *, runs: str, where: str, grain: Sequence[str], sigma: str = "v_run_uncertainty"
) -> str:
    """The runs' standard uncertainty per error source (``v_run_uncertainty``, or its rows)."""
    select, group = _keys(grain, _run_columns("r"))
    join = _LIFECYCLE.format(runs="r") if "model_name" in grain else ""
    return (
        f"SELECT {select}u.uncertainty_key, SUM(u.sigma_kg) AS sigma_kg "
        f"FROM {sigma} u JOIN {runs} r ON r.run_pk = u.run_pk {join} "
        f"WHERE r.kind <> 'inference' AND {where} GROUP BY {group}u.uncertainty_key"
    )


def window_co2e_sql(dialect: str, *, where: str, grain: Sequence[str]) -> str:
    """Serving windows' CO2e and component split per method set (``inference_co2e``)."""
    select, group = _keys(grain, _window_columns(dialect, "i"))
    split = "".join(
        f"SUM(w.{part}_energy_kwh * COALESCE(i.pue, 1.0) * i.location_intensity_g_per_kwh) "
        f"/ 1000.0 AS {part}_co2e_kg, "
        for part in ("gpu", "cpu", "ram")
    )
    return (
        f"SELECT {select}i.methods, i.intensity_method, COUNT(*) AS records, {split}"
        "SUM(i.co2e_location_kg) AS co2e_kg "
        "FROM inference_co2e i JOIN inference_windows w ON w.id = i.window_pk "
        "JOIN v_window_embodied e ON e.window_pk = i.window_pk "
        f"WHERE {where} GROUP BY {group}i.methods, i.intensity_method"
    )


_EMBODIED = (
    "{select}{a}.uncertainty_key, COUNT(*) AS records, "
    "SUM(CASE WHEN {a}.embodied_co2e_kg IS NULL THEN 1 ELSE 0 END) AS records_without_embodied, "
    "SUM({a}.embodied_co2e_kg) AS co2e_kg, "
    "SUM({a}.embodied_co2e_kg * {a}.relative_uncertainty) AS sigma_kg"
)


def run_embodied_sql(dialect: str, *, where: str, grain: Sequence[str]) -> str:
    """Training runs' embodied CO2e per uncertainty source (``v_run_embodied``)."""
    select, group = _keys(grain, _run_columns("m"))
    join = _LIFECYCLE.format(runs="m") if "model_name" in grain else ""
    return (
        f"SELECT {_EMBODIED.format(select=select, a='m')} FROM v_run_embodied m {join} "
        f"WHERE m.kind <> 'inference' AND {where} GROUP BY {group}m.uncertainty_key"
    )


def window_embodied_sql(dialect: str, *, where: str, grain: Sequence[str]) -> str:
    """Serving windows' embodied CO2e per uncertainty source (``v_window_embodied``)."""
    select, group = _keys(grain, _window_columns(dialect, "e"))
    return (
        f"SELECT {_EMBODIED.format(select=select, a='e')} FROM v_window_embodied e "
        f"WHERE {where} GROUP BY {group}e.uncertainty_key"
    )


def _none(df: pd.DataFrame, column: str) -> list[str | None]:
    import pandas as pd

    return [None if v is None or pd.isna(v) else str(v) for v in df[column]]


def _numeric(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``df`` with ``columns`` as floats (SQL NULL as NaN), whatever the driver returned."""
    import pandas as pd

    return df.assign(**{col: pd.to_numeric(df[col], errors="coerce") for col in columns})


def _float(value: float) -> float | None:
    import pandas as pd

    return None if pd.isna(value) else float(value)


def window_contributions(df: pd.DataFrame) -> tuple[float, list[Contribution]]:
    """Operational CO2e of serving windows and its contributions, from ``window_co2e`` rows.

    One row per method set and intensity method: each component's energy method contributes
    its uncertainty times that component's CO2e, energy not split by component (imported
    windows) its methods' least certain, and the intensity method its uncertainty times all.
    """
    total, parts = 0.0, []
    methods_col, intensity_col = _none(df, "methods"), _none(df, "intensity_method")
    df = _numeric(df, "co2e_kg", "gpu_co2e_kg", "cpu_co2e_kg", "ram_co2e_kg")
    for i, row in enumerate(df.itertuples(index=False)):
        kg = _float(row.co2e_kg) or 0.0
        total += kg
        methods = c.parse_methods(methods_col[i])
        known = 0.0
        for component in ("gpu", "cpu", "ram"):
            part = _float(getattr(row, f"{component}_co2e_kg"))
            if part is not None:
                method = methods.get(component)
                key = f"energy:{method or 'unknown'}"
                parts.append(Contribution(key, energy_uncertainty(method) * part))
                known += part
        rest = kg - known
        if rest > 1e-12 * max(kg, 1.0):  # energy not split by component (imported windows)
            method = "+".join(sorted(set(methods.values()))) or None
            parts.append(
                Contribution(f"energy:{method or 'unknown'}", energy_uncertainty(method) * rest)
            )
        intensity = intensity_col[i] or c.INTENSITY_YEARLY  # as activity_co2e chose
        parts.append(Contribution(f"intensity:{intensity}", intensity_uncertainty(intensity) * kg))
    return total, parts


def assemble(
    run_co2e: pd.DataFrame,
    run_sigma: pd.DataFrame,
    window_co2e: pd.DataFrame,
    run_embodied: pd.DataFrame,
    window_embodied: pd.DataFrame,
) -> FootprintTotal:
    """The total from its parts (each the rows of its builder, summed over any grain)."""
    import pandas as pd

    window_kg, contributions = window_contributions(window_co2e)
    run_co2e = _numeric(run_co2e, "records", "co2e_kg")
    run_sigma = _numeric(run_sigma, "sigma_kg")
    sigma = run_sigma.groupby("uncertainty_key", dropna=True)["sigma_kg"].sum(min_count=1)
    contributions += [
        Contribution(str(key), float(value)) for key, value in sigma.items() if not pd.isna(value)
    ]
    operational_kg = float(run_co2e.co2e_kg.fillna(0.0).sum()) + window_kg
    numbers = ("records", "records_without_embodied", "co2e_kg", "sigma_kg")
    run_embodied = _numeric(run_embodied, *numbers)
    window_embodied = _numeric(window_embodied, *numbers)
    both = pd.concat([run_embodied, window_embodied], ignore_index=True)
    by_key = both.groupby("uncertainty_key", dropna=True)[["co2e_kg", "sigma_kg"]].sum(min_count=1)
    embodied_kg = float(by_key.co2e_kg.fillna(0.0).sum())
    embodied_parts = [
        Contribution(str(key), float(value))
        for key, value in by_key.sigma_kg.items()
        if not pd.isna(value)
    ]
    return FootprintTotal(
        operational=to_range(operational_kg, contributions),
        embodied=to_range(embodied_kg, embodied_parts),
        records=int(run_co2e.records.sum()) + int(window_embodied.records.sum()),
        records_without_embodied=int(both.records_without_embodied.sum()),
    )
