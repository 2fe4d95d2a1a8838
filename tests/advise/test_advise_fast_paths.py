"""The set-based advice paths give what the per-window computation gives, on both engines.

``idle_serving`` sums energy and requests per version and hour from ``inference_windows`` and
reads ``inference_co2e`` only for the versions that qualify; ``model_efficiency`` reads the
served versions from ``rollup_inference_daily`` and a partial first day from the view. Each
is checked against the per-window computation it replaced (``_idle_reference``,
``_served_reference``, kept here as the oracle) on a ledger with what the fast paths must
not get wrong: windows without a team, without a model, without an idle/active split, in a
zone without a factor (no CO2e: left out), and a window opening inside a day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from advice_seed import SINCE, seed_advice
from sqlalchemy import Engine, insert

from carbonledger import contract
from carbonledger.advise import timing as timing_mod
from carbonledger.advise.base import Scope, as_utc, day, filters, make_scope
from carbonledger.advise.efficiency import served_versions
from carbonledger.advise.serving import idle_serving
from carbonledger.ledger.models import InferenceWindow
from carbonledger.reporting.db import frame
from carbonledger.reporting.rollups import refresh_rollups
from carbonledger.settings import get_settings


@pytest.fixture(autouse=True)
def _no_hourly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing_mod, "hourly_available", lambda: False)


def _window(start: datetime, **kw: Any) -> dict[str, Any]:
    row = {
        "source_id": 1,
        "run_id": "serve-extra",
        "model_name": "gpt-small",
        "model_version": 3,
        "team": "nlp",
        "window_start": start,
        "window_end": start + timedelta(hours=1),
        "activity_year": 2024,
        "requests": 0,
        "energy_kwh": 0.3,
        "active_energy_kwh": 0.1,
        "idle_energy_kwh": 0.2,
        "pue": 1.2,
        "facility_energy_kwh": 0.36,
        "grid_zone": "FR",
    }
    return row | kw


@pytest.fixture
def served(ledger: Engine) -> Engine:
    """The advice seed plus idle versions with the awkward cases, rollups refreshed."""
    seed_advice(ledger)
    rows = []
    for d in range(6):
        for h in range(24):
            t = datetime(2024, 12, 2 + d, h, 30, tzinfo=UTC)
            busy = 9 <= h < 17
            rows.append(
                _window(
                    t,
                    run_id="serve-a",
                    requests=50 if busy else 0,
                    idle_energy_kwh=None if h % 5 == 0 else 0.2,  # no split: idle iff no request
                    grid_zone=None if h % 7 == 0 else ("XX" if h == 3 else "FR"),  # WORLD, none
                )
            )
            rows.append(
                _window(
                    t,
                    run_id="serve-b",
                    model_name=None,
                    model_version=None,
                    team=None,
                    requests=20 if busy else 1,
                    grid_zone="DE",
                )
            )
            rows.append(
                _window(
                    t,
                    run_id="serve-c",
                    model_name="bert-qa",
                    model_version=1,
                    team=None,
                    requests=10 if busy else 0,
                    energy_kwh=0.5,
                    facility_energy_kwh=0.5,
                    idle_energy_kwh=0.3,
                    active_energy_kwh=0.2,
                    grid_zone="DE",
                )
            )
    with ledger.begin() as conn:
        conn.execute(insert(InferenceWindow), rows)
        refresh_rollups(conn)
    return ledger


def _idle_reference(engine: Engine, scope: Scope) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """Per version: (kg, kWh, windows, requests) of the per-window computation it replaced."""
    settings = get_settings()
    df = frame(
        engine,
        "SELECT model_name, model_version, team, window_start, requests, energy_kwh, "
        "COALESCE(idle_energy_kwh, CASE WHEN requests = 0 THEN energy_kwh ELSE 0 END) AS idle_kwh, "
        "facility_energy_kwh, co2e_location_kg FROM inference_co2e "
        "WHERE window_start >= :since AND window_start <= :until AND energy_kwh > 0 "
        f"AND co2e_location_kg IS NOT NULL AND {filters('team', 'model_name')}",
        **scope.bind(engine),
    )
    df["hour"] = [as_utc(v).hour for v in df.window_start]  # type: ignore[union-attr]
    out = {}
    keys = ["model_name", "model_version", "team"]
    for (model, version, team), g in df.fillna({"team": contract.UNASSIGNED_TEAM}).groupby(
        keys, dropna=False
    ):
        idle_share = float(g.idle_kwh.sum() / g.energy_kwh.sum())
        requests = int(g.requests.sum())
        by_hour: dict[int, int] = defaultdict(int)
        for hour, n in zip(g.hour, g.requests, strict=True):
            by_hour[int(hour)] += int(n)
        quiet = [h for h in range(24) if by_hour[h] <= settings.advise_quiet_hour_share * requests]
        if idle_share < settings.advise_idle_share or not quiet:
            continue
        q = g[g.hour.isin(quiet)]
        share = q.idle_kwh / q.energy_kwh
        kg = float((q.co2e_location_kg * share).sum())
        if kg > 0:
            key = (
                None if model != model else str(model),
                None if version != version else int(version),
                str(team),
            )
            kwh = float((q.facility_energy_kwh * share).sum())
            out[key] = (scope.per_year(kg), scope.per_year(kwh), len(g), requests)
    return out


@pytest.mark.parametrize("team", [None, "nlp", contract.UNASSIGNED_TEAM])
def test_idle_serving_equals_the_per_window_computation(served: Engine, team: str | None) -> None:
    scope = make_scope(served, since=SINCE, team=team)
    want = _idle_reference(served, scope)
    got = {(r.model_name, r.model_version, r.team): r for r in idle_serving(served, scope)}
    assert set(got) == set(want)
    assert want or team == contract.UNASSIGNED_TEAM  # the view has no window of that team
    for key, (kg, kwh, windows, requests) in want.items():
        r = got[key]
        assert r.saving_co2e_kg_per_year == pytest.approx(kg, rel=1e-12)
        assert r.saving_energy_kwh_per_year == pytest.approx(kwh, rel=1e-12)
        assert r.evidence.startswith(f"{windows} serving windows")
        assert f"{requests:,} requests;" in r.evidence


def _served_reference(engine: Engine, scope: Scope) -> pd.DataFrame:
    df = frame(
        engine,
        "SELECT model_name, model_version, MIN(team) AS team, "
        "CAST(SUM(requests) AS BIGINT) AS requests, "
        "SUM(facility_energy_kwh) AS facility_kwh, SUM(co2e_location_kg) AS co2e_kg, "
        "MIN(window_start) AS first, MAX(window_start) AS last FROM inference_co2e "
        "WHERE window_start >= :since AND window_start <= :until AND model_name IS NOT NULL "
        f"AND model_version IS NOT NULL AND {filters('team', 'model_name')} "
        "GROUP BY model_name, model_version HAVING SUM(requests) > 0",
        **scope.bind(engine),
    )
    df["first"] = [day(v) for v in df["first"]]
    df["last"] = [day(v) for v in df["last"]]
    return df.sort_values(["model_name", "model_version"]).reset_index(drop=True)


@pytest.mark.parametrize(
    "since",
    [SINCE, datetime(2024, 12, 4, 12, 15, tzinfo=UTC)],  # a day boundary; inside a day
)
@pytest.mark.parametrize("team", [None, "nlp", contract.UNASSIGNED_TEAM])
def test_served_versions_from_the_rollups_equal_the_view(
    served: Engine, since: datetime, team: str | None
) -> None:
    scope = make_scope(served, since=since, team=team)
    want = _served_reference(served, scope)
    got = served_versions(served, scope)
    assert list(got.model_name) == list(want.model_name)
    assert [int(v) for v in got.model_version] == [int(v) for v in want.model_version]
    assert list(got.requests.astype(int)) == list(want.requests.astype(int))
    assert list(got["first"]) == list(want["first"]) and list(got["last"]) == list(want["last"])
    for column in ("facility_kwh", "co2e_kg"):
        assert list(got[column]) == pytest.approx(list(want[column]), rel=1e-12)
    if team is None:  # a version whose windows all lack a team: the rollups say unassigned
        assert set(got.team) <= set(want.team.dropna()) | {contract.UNASSIGNED_TEAM}
