"""A budget scope's CO2e in a time range, read from the rollups wherever they are exact.

The views (``budgets.lifecycle``) define what a team or a model used; the rollups hold the
same figures pre-aggregated by UTC month (``rollup_team_month``, ``rollup_model_month``) and
UTC day (``rollup_inference_daily``). A range ``[since, until)`` splits into the whole months
(training) or days (inference) it covers, read from the rollups, and its ragged edges (a
budget's burn window starts at any second), read from the views with a selective start-time
predicate. What the rollups fold differently from the views is read from the views too:

* training runs without a start time (no month): counted only in an all-time range;
* serving windows without a team (the rollups charge them to ``unassigned``, the views to
  no team): a team budget on ``unassigned`` reads its inference from the views.

So :func:`usage` gives the views' figures (up to float summation order) at rollup cost; the
app and the report use it, ``budgets check`` (the CI gate) reads the views.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, bindparam, text

from carbonledger.budgets.lifecycle import (
    Basis,
    inference_co2e_by,
    training_co2e_by_model,
    training_co2e_by_team,
)

Scope = Literal["model", "team"]
Source = Literal["views", "rollups"]
UNASSIGNED = "unassigned"  # the rollups' team of a window without one (v_inference_daily)

Range = tuple[datetime | None, datetime | None]


def _month_floor(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _month_ceil(t: datetime) -> datetime:
    floor = _month_floor(t)
    if floor == t:
        return floor
    return datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)


def _day_floor(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def _day_ceil(t: datetime) -> datetime:
    floor = _day_floor(t)
    return floor if floor == t else floor + timedelta(days=1)


def split_range(
    since: datetime | None, until: datetime | None, bucket: Literal["month", "day"]
) -> tuple[Range | None, list[Range]]:
    """``[since, until)`` as its whole UTC buckets (``None``: none) and the edges left over.

    ``None`` bounds are open. The whole buckets are ``[lo, hi)`` with ``lo``/``hi`` on bucket
    starts; each edge is a ``(start, end)`` range shorter than a bucket.
    """
    floor, ceil = (_month_floor, _month_ceil) if bucket == "month" else (_day_floor, _day_ceil)
    since = since.astimezone(UTC) if since is not None else None
    until = until.astimezone(UTC) if until is not None else None
    lo = ceil(since) if since is not None else None
    hi = floor(until) if until is not None else None
    if since is not None and until is not None and lo is not None and hi is not None and lo >= hi:
        return None, [(since, until)] if since < until else []
    edges: list[Range] = []
    if since is not None and lo is not None and since < lo:
        edges.append((since, lo))
    if until is not None and hi is not None and hi < until:
        edges.append((hi, until))
    return (lo, hi), edges


def _key(t: datetime | None, bucket: Literal["month", "day"]) -> str | None:
    if t is None:
        return None
    return t.strftime("%Y-%m" if bucket == "month" else "%Y-%m-%d")


def _rollup_sum(
    conn: Connection,
    *,
    table: str,
    key: str,
    bucket: Literal["month", "day"],
    names: list[str],
    basis: Basis,
    whole: Range,
    extra: str = "",
) -> dict[str, float]:
    column = "co2e_market_kg" if basis == "market" else "co2e_location_kg"
    where = [f"{key} IN :names"]
    params: dict[str, object] = {"names": names}
    first, last = _key(whole[0], bucket), _key(whole[1], bucket)
    if first is not None:
        where.append(f"{bucket} >= :first")
        params["first"] = first
    if last is not None:
        where.append(f"{bucket} < :last")
        params["last"] = last
    stmt = text(
        f"SELECT {key}, COALESCE(SUM({column}), 0.0) FROM {table} "  # noqa: S608 (constants)
        f"WHERE {' AND '.join(where)}{extra} GROUP BY {key}"
    ).bindparams(bindparam("names", expanding=True))
    return {name: float(kg) for name, kg in conn.execute(stmt, params)}


def _add(into: dict[str, float], part: dict[str, float]) -> None:
    for name, kg in part.items():
        into[name] = into.get(name, 0.0) + kg


def _ranged(
    conn: Connection,
    *,
    names: list[str],
    basis: Basis,
    since: datetime | None,
    until: datetime | None,
    bucket: Literal["month", "day"],
    table: str,
    key: str,
    extra: str,
    view: Callable[[datetime | None, datetime | None], dict[str, float]],
) -> dict[str, float]:
    """Whole buckets of ``[since, until)`` from ``table``, its edges from ``view(start, end)``."""
    whole, edges = split_range(since, until, bucket)
    out: dict[str, float] = {}
    if whole is not None:
        _add(
            out,
            _rollup_sum(
                conn,
                table=table,
                key=key,
                bucket=bucket,
                names=names,
                basis=basis,
                whole=whole,
                extra=extra,
            ),
        )
    for start, end in edges:
        _add(out, view(start, end))
    return out


def training_usage(
    conn: Connection,
    scope: Scope,
    names: list[str],
    *,
    basis: Basis,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, float]:
    """Training CO2e (kg) per model (lifecycle runs) or team started in ``[since, until)``."""
    if not names:
        return {}
    by = training_co2e_by_model if scope == "model" else training_co2e_by_team
    out = _ranged(
        conn,
        names=names,
        basis=basis,
        since=since,
        until=until,
        bucket="month",
        table="rollup_model_month" if scope == "model" else "rollup_team_month",
        key="model_name" if scope == "model" else "team",
        extra="" if scope == "model" else " AND activity = 'training'",
        view=lambda start, end: by(conn, names, basis=basis, since=start, until=end),
    )
    if since is None and until is None:  # runs without a start time have no month
        _add(out, by(conn, names, basis=basis, start_is_null=True))
    return out


def inference_usage(
    conn: Connection,
    scope: Scope,
    names: list[str],
    *,
    basis: Basis,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, float]:
    """Inference CO2e (kg) per model or team of the windows starting in ``[since, until)``."""
    key: Literal["model_name", "team"] = "model_name" if scope == "model" else "team"
    from_views = [n for n in names if scope == "team" and n == UNASSIGNED]
    rolled = [n for n in names if n not in from_views]
    out: dict[str, float] = {}
    if from_views:
        _add(out, inference_co2e_by(conn, key, from_views, basis=basis, since=since, until=until))
    if rolled:
        _add(
            out,
            _ranged(
                conn,
                names=rolled,
                basis=basis,
                since=since,
                until=until,
                bucket="day",
                table="rollup_inference_daily",
                key=key,
                extra="",
                view=lambda start, end: inference_co2e_by(
                    conn, key, rolled, basis=basis, since=start, until=end
                ),
            ),
        )
    return out


def usage(
    conn: Connection,
    scope: Scope,
    names: list[str],
    *,
    basis: Basis,
    since: datetime | None,
    until: datetime | None,
    source: Source = "views",
) -> tuple[dict[str, float], dict[str, float]]:
    """(training, inference) CO2e per scope name in ``[since, until)`` (all time when None).

    ``source="views"`` reads the accounting views alone (the CI gate); ``"rollups"`` reads
    the rollups for whole months and days and the views for the rest (the app, the report).
    """
    if source == "rollups":
        return (
            training_usage(conn, scope, names, basis=basis, since=since, until=until),
            inference_usage(conn, scope, names, basis=basis, since=since, until=until),
        )
    if scope == "model":
        train = training_co2e_by_model(conn, names, basis=basis, since=since, until=until)
        key: Literal["model_name", "team"] = "model_name"
    else:
        train = training_co2e_by_team(conn, names, basis=basis, since=since, until=until)
        key = "team"
    return train, inference_co2e_by(conn, key, names, basis=basis, since=since, until=until)
