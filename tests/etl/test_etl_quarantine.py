"""Bad input goes to quarantine with its reason and raw payload; nothing is silently dropped."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl


def quarantine(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT record_id, reason, detail, payload FROM quarantine"))
        return {
            r.record_id: (
                r.reason,
                r.detail,
                r.payload if isinstance(r.payload, dict) else json.loads(r.payload),
            )
            for r in rows
        }


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        ({"carbon/gpu_energy_kwh": math.nan}, "non-finite", "carbon/gpu_energy_kwh is nan"),
        ({"carbon/energy_kwh": -1.0}, "negative", "cannot be negative"),
        ({"carbon/avg_power_w": 2e7}, "impossible", "above 10 MW"),
        ({"carbon/energy_kwh": 1e6, "carbon/duration_s": 60.0}, "impossible", "10 MW average"),
        ({"carbon/pue": 0.5}, "impossible", "PUE lies between"),
    ],
)
def test_impossible_values_are_quarantined_with_the_raw_payload(
    ledger: Engine,
    client: Any,
    mlflow_uri: str,
    change: dict[str, float],
    reason: str,
    detail: str,
) -> None:
    exp = client.create_experiment("e")
    good = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags())
    bad = make_run(client, exp, metrics={**metered_metrics(), **change}, tags=metered_tags())

    summary = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert summary.loaded == 1 and dict(summary.quarantined) == {reason: 1}
    got_reason, got_detail, payload = quarantine(ledger)[bad]
    assert got_reason == reason and detail in got_detail
    assert payload["run_id"] == bad and payload["tags"]["carbon.grid_zone"] == "DE"
    assert set(change) <= set(payload["metrics"])
    with ledger.connect() as conn:
        assert conn.execute(text("SELECT run_id FROM runs")).scalars().all() == [good]


def test_unknown_zones_and_missing_fields_are_quarantined(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    atlantis = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("XX-ATL"))
    partial = metered_metrics()
    del partial["carbon/pue"], partial["carbon/facility_energy_kwh"]
    no_pue = make_run(client, exp, metrics=partial, tags=metered_tags())

    summary = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert dict(summary.quarantined) == {"unknown-zone": 1, "missing-field": 1}
    q = quarantine(ledger)
    assert q[atlantis][0] == "unknown-zone" and "carbonledger db add-factor" in q[atlantis][1]
    assert q[no_pue][0] == "missing-field"


def test_a_fixed_run_leaves_quarantine_on_the_next_load(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    bad = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("XX-ATL"))
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    assert bad in quarantine(ledger)

    client.set_tag(bad, "carbon.grid_zone", "FR")
    summary = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]

    assert summary.loaded == 1 and quarantine(ledger) == {}


def test_a_run_mended_back_to_what_the_ledger_holds_leaves_quarantine(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    """Loaded, then a bad edit (quarantined, the ledger keeps the good version), then the edit
    undone: the run reads as unchanged (never staged) and its quarantine row goes."""
    exp = client.create_experiment("e")
    run = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("FR"))
    assert run_etl(ledger, mlflow_uris=[mlflow_uri])[0].loaded == 1
    client.set_tag(run, "carbon.grid_zone", "XX-ATL")
    assert run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0].quarantined
    assert run in quarantine(ledger)

    client.set_tag(run, "carbon.grid_zone", "FR")
    summary = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]

    assert (summary.loaded, summary.updated, summary.unchanged) == (0, 0, 1)
    assert quarantine(ledger) == {}
