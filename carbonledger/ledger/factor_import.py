"""``carbonledger db import-factors FILE``: an organisation's own hourly (or finer) factors.

Two CSV layouts, told apart by the header:

* the **Electricity Maps portal** format of the shared hourly files (``Datetime (UTC)``,
  ``Zone Id``, ``Carbon Intensity gCO₂eq/kWh (LCA)``, ``... (direct)``, ``Data Estimated``):
  location-based LCA values with the direct value and the estimated flag;
* a **plain** file ``zone,datetime_utc,intensity_g_per_kwh[,basis]`` (ISO 8601 times; without
  an offset they are UTC; ``basis`` ``location`` (default) or ``market``).

Values finer than an hour are averaged into their UTC hour. Every row is checked before
anything is written: a bad row refuses the whole file with its line number and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from carbonledger import contract
from carbonledger.errors import LedgerError
from carbonledger.ledger.hourly_factors import load_hourly_factors
from carbonledger.ledger.repositories import SeedResult

PORTAL_TIME = "Datetime (UTC)"
PORTAL_ZONE = "Zone Id"
PORTAL_LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
PORTAL_DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
PORTAL_ESTIMATED = "Data Estimated"
PLAIN = ("zone", "datetime_utc", "intensity_g_per_kwh")
MAX_REPORTED = 20


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: the file's layout, its rows and hours, and the seed counts."""

    layout: str
    rows: int
    hours: int
    counts: SeedResult


def read_factor_file(path: Path) -> tuple[str, pd.DataFrame]:
    """The layout and the load frame of a factor file (hourly means).

    Raises:
        LedgerError: unreadable file, unknown header, or bad rows (line numbers and reasons).
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise LedgerError(f"cannot read {path}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise LedgerError(f"{path} is empty: expected a header and rows") from None
    cols = [c.strip() for c in raw.columns]
    raw.columns = cols
    if {PORTAL_TIME, PORTAL_ZONE, PORTAL_LCA} <= set(cols):
        layout = "electricity-maps-portal"
        frame = pd.DataFrame(
            {
                "zone": raw[PORTAL_ZONE].str.strip(),
                "time": raw[PORTAL_TIME].str.strip(),
                "value": raw[PORTAL_LCA].str.strip(),
                "direct": raw.get(PORTAL_DIRECT, pd.Series([""] * len(raw))).str.strip(),
                "basis": "location",
                "estimated": raw.get(PORTAL_ESTIMATED, pd.Series([""] * len(raw)))
                .str.strip()
                .str.lower(),
            }
        )
    elif set(PLAIN) <= set(cols):
        layout = "plain"
        basis = raw["basis"].str.strip() if "basis" in cols else pd.Series(["location"] * len(raw))
        frame = pd.DataFrame(
            {
                "zone": raw["zone"].str.strip(),
                "time": raw["datetime_utc"].str.strip(),
                "value": raw["intensity_g_per_kwh"].str.strip(),
                "direct": "",
                "basis": basis.replace("", "location").to_numpy(),
                "estimated": "false",
            }
        )
    else:
        raise LedgerError(
            f"{path}: unknown header {cols[:6]}: use the Electricity Maps portal CSV or "
            "zone,datetime_utc,intensity_g_per_kwh[,basis]"
        )
    return layout, _validated(path, frame)


def _validated(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        raise LedgerError(f"{path} has a header but no rows")
    times = pd.to_datetime(frame["time"], utc=True, errors="coerce", format="ISO8601")
    values = pd.to_numeric(frame["value"], errors="coerce")
    direct = pd.to_numeric(frame["direct"].replace("", np.nan), errors="coerce")
    reasons = pd.Series("", index=frame.index)
    checks = (
        (frame["zone"] == "", "zone is empty"),
        (times.isna(), "datetime is not an ISO 8601 time"),
        (values.isna() | ~np.isfinite(values.fillna(0.0)), "intensity is not a number"),
        (values < 0, "intensity is negative"),
        (~frame["basis"].isin(["location", "market"]), "basis is not location or market"),
        (~frame["estimated"].isin(["", "true", "false"]), "Data Estimated is not true/false"),
    )
    for bad, reason in checks:
        reasons = reasons.where(~(bad & (reasons == "")), reason)
    failed = reasons[reasons != ""]
    if len(failed):
        lines = [f"line {int(i) + 2}: {reason}" for i, reason in failed.head(MAX_REPORTED).items()]
        more = f" (and {len(failed) - MAX_REPORTED} more)" if len(failed) > MAX_REPORTED else ""
        raise LedgerError(
            f"{path}: {len(failed)} bad rows, nothing imported{more}: " + "; ".join(lines)
        )
    epoch_s = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    clean = pd.DataFrame(
        {
            "zone": frame["zone"].to_numpy(),
            "basis": frame["basis"].to_numpy(),
            "utc_hour": np.floor(epoch_s / contract.S_PER_HOUR).astype(np.int64),
            "intensity_g_per_kwh": values.to_numpy(dtype=np.float64),
            "direct_intensity_g_per_kwh": direct.to_numpy(dtype=np.float64),
            "is_estimated": (frame["estimated"] == "true").to_numpy(),
        }
    )
    hourly = clean.groupby(["zone", "basis", "utc_hour"], as_index=False, sort=True).agg(
        intensity_g_per_kwh=("intensity_g_per_kwh", "mean"),
        direct_intensity_g_per_kwh=("direct_intensity_g_per_kwh", "mean"),
        is_estimated=("is_estimated", "max"),
    )
    return hourly


def import_factor_file(
    conn: Connection, *, path: Path, source: str | None = None, licence: str | None = None
) -> ImportResult:
    """Check and load ``path`` in the caller's transaction (all or nothing)."""
    layout, frame = read_factor_file(path)
    counts = load_hourly_factors(
        conn, frame=frame, source=source or f"import:{path.name}", licence=licence
    )
    rows = int(sum(1 for _ in path.open(encoding="utf-8")) - 1)
    return ImportResult(layout, rows, len(frame), counts)
