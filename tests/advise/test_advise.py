"""``advise`` on a ledger where each kind's answer is computed by hand (advice_seed.py).

Window 2024-10-01 to 2024-12-30: 90 days, so a yearly saving is the window's x 365 / 90.
"""

from __future__ import annotations

import json
import sys
import types

import pandas as pd
import pytest
from advice_seed import SINCE, seed_advice
from sqlalchemy import Engine
from typer.testing import CliRunner

from carbonledger import contract
from carbonledger.advise import Recommendation, advise
from carbonledger.advise import timing as timing_mod
from carbonledger.advise.base import make_scope, parse_since

YEAR = 365 / 90


@pytest.fixture
def seeded(ledger: Engine) -> Engine:
    seed_advice(ledger)
    return ledger


@pytest.fixture(autouse=True)
def _no_hourly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timing kind without hourly factors, whatever is installed (tests opt in)."""
    monkeypatch.setattr(timing_mod, "hourly_available", lambda: False)


def _one(found: list[Recommendation], kind: str) -> Recommendation:
    hits = [r for r in found if r.kind == kind]
    assert len(hits) == 1, [r.title for r in hits]
    return hits[0]


def test_scope_is_ninety_days(seeded: Engine) -> None:
    scope = make_scope(seeded, since=SINCE)
    assert scope.days == pytest.approx(90.0)
    assert scope.per_year(90.0) == pytest.approx(365.0)


def test_idle_serving_version(seeded: Engine) -> None:
    found = advise(seeded, since=SINCE)
    r = _one(found, contract.ADVICE_IDLE_SERVING)
    # v1: 14 quiet hours x 0.1 kWh idle x 10 days = 14 kWh at DE 380 g/kWh = 5.32 kg
    assert (r.model_name, r.model_version, r.team) == ("bert-qa", 1, "nlp")
    assert r.saving_energy_kwh_per_year == pytest.approx(14.0 * YEAR)
    assert r.saving_co2e_kg_per_year == pytest.approx(5.32 * YEAR)
    assert "55% of the energy idle" in r.evidence and "00-08h, 18-24h" in r.evidence
    assert r.confidence == contract.CONFIDENCE_ESTIMATE


def test_failed_runs(seeded: Engine) -> None:
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_FAILED_TRAINING)
    # f1 10 kWh + f2 5 kWh in DE: 15 x 0.38 = 5.7 kg
    assert r.team == "vision" and "resnet-tuning" in r.title
    assert set(r.run_ids) == {"f1", "f2"}
    assert r.saving_co2e_kg_per_year == pytest.approx(5.7 * YEAR)
    assert r.confidence == contract.CONFIDENCE_MEASURED


def test_training_past_best_validation_loss(seeded: Engine) -> None:
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_PAST_BEST)
    # best val_loss at step 6 (3.5 of 5.0 kWh): 1.5 kWh after it, 30 % of 1.9 kg
    assert r.run_ids == ("pb",) and r.model_name == "bert-qa"
    assert r.saving_energy_kwh_per_year == pytest.approx(1.5 * YEAR)
    assert r.saving_co2e_kg_per_year == pytest.approx(0.57 * YEAR)
    assert "step 6, 3 more steps" in r.evidence


def test_sweep_best_child_is_the_fourth(seeded: Engine) -> None:
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_SWEEP)
    # children 5..12 use 1.4..2.1 kWh = 14 kWh in FR at 50 g/kWh = 0.7 kg
    assert r.run_ids[0] == "sw" and r.run_ids[1:] == tuple(f"c{i:02d}" for i in range(5, 13))
    assert r.saving_energy_kwh_per_year == pytest.approx(14.0 * YEAR)
    assert r.saving_co2e_kg_per_year == pytest.approx(0.7 * YEAR)
    # front: c01..c04 (each dearer and better than the last); 8 of 12 dominated
    assert "child 4 of 12" in r.evidence and "67% of the children dominated" in r.evidence


def test_place_dirty_region(seeded: Engine) -> None:
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_PLACE)
    # 40 kWh at PUE 1.135: DE 380 -> 17.252 kg; FR (eu-west-3) 50 -> 2.27 kg
    assert r.team == "vision" and "eu-west-3" in r.title
    assert r.saving_co2e_kg_per_year == pytest.approx((17.252 - 2.27) * YEAR)


def test_model_efficiency_two_versions(seeded: Engine) -> None:
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_MODEL_EFFICIENCY)
    # v1 4.4 Wh/request (accuracy 0.91), v2 0.6 Wh (0.905, within 1 %); 10,000 requests on v1
    assert r.model_version == 1 and "v2 instead of v1" in r.title
    assert r.saving_energy_kwh_per_year == pytest.approx(38.0 * YEAR)
    assert r.saving_co2e_kg_per_year == pytest.approx(38.0 * 0.38 * YEAR)


def test_timing_needs_hourly_data(seeded: Engine) -> None:
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_TIMING)
    assert r.saving_co2e_kg_per_year == 0.0 and "needs hourly data" in r.evidence


def test_timing_from_shift_savings(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def shift_savings(conn, *, flex_h, team=None, since=None, hourly_zones_only=False):  # type: ignore[no-untyped-def]
        calls.append((flex_h, hourly_zones_only))
        return pd.DataFrame(
            {
                "run_id": ["p1", "c01"], "team": ["vision", "nlp"],
                "model_name": [None, None], "zone": ["DE", "FR"],
                "start_utc": [SINCE, SINCE], "energy_kwh": [20.0, 1.0],
                "co2e_actual_kg": [8.6, 0.05], "co2e_best_kg": [6.6, 0.04],
                "best_start_utc": [SINCE, SINCE], "saving_kg": [2.0, 0.01],
                "intensity_method": ["hourly", "hourly"],
            }
        )  # fmt: skip

    module = types.ModuleType(timing_mod.TIMING_MODULE)
    module.shift_savings = shift_savings  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, timing_mod.TIMING_MODULE, module)
    monkeypatch.setattr(timing_mod, "hourly_available", lambda: True)
    from sqlalchemy import update

    from carbonledger.ledger.models import Run

    with seeded.begin() as conn:  # p1 ran 2 h; c01 stays at 1 h (not deferrable)
        conn.execute(update(Run).where(Run.run_id == "p1").values(duration_s=7200.0))
    r = _one(advise(seeded, since=SINCE), contract.ADVICE_TIMING)
    assert calls == [(12, True)] and r.run_ids == ("p1",)
    assert r.saving_co2e_kg_per_year == pytest.approx(2.0 * YEAR)


def test_ranked_and_filtered(seeded: Engine) -> None:
    found = advise(seeded, since=SINCE)
    savings = [r.saving_co2e_kg_per_year for r in found]
    assert savings == sorted(savings, reverse=True)
    assert found[0].kind == contract.ADVICE_PLACE
    assert {r.kind for r in found} == set(contract.ADVICE_KINDS)
    nlp = advise(seeded, team="nlp", since=SINCE)
    assert {r.team for r in nlp if r.kind != contract.ADVICE_TIMING} == {"nlp"}
    assert {r.kind for r in advise(seeded, model_name="bert-qa", since=SINCE)} == {
        contract.ADVICE_IDLE_SERVING, contract.ADVICE_PAST_BEST,
        contract.ADVICE_MODEL_EFFICIENCY, contract.ADVICE_TIMING,
    }  # fmt: skip


def test_since_forms() -> None:
    from datetime import timedelta

    assert parse_since("90d") == timedelta(days=90)
    assert parse_since("2024-Q4") == SINCE
    assert parse_since("2024-10-01") == SINCE
    from carbonledger.errors import ReportingError

    with pytest.raises(ReportingError, match="not a duration"):
        parse_since("yesterday")


def test_cli_table_and_json(seeded: Engine, ledger_url: str) -> None:
    from carbonledger.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["advise", "--since", "90d", "--ledger-url", ledger_url])
    assert out.exit_code == 0, out.output
    assert "Where to cut" in out.output and "eu-west-3" in out.output
    out = runner.invoke(
        app, ["advise", "--team", "nlp", "--since", "90d", "--json", "--ledger-url", ledger_url]
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    sweep = next(r for r in rows if r["kind"] == contract.ADVICE_SWEEP)
    assert sweep["saving_co2e_kg_per_year"] == pytest.approx(0.7 * YEAR)
    assert set(sweep) >= {"evidence", "method", "confidence", "saving_energy_kwh_per_year"}
