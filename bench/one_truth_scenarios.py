"""Issue 12 scenarios, before/after: nested runs charged to their ancestors, places spelled 3 ways.

Run: ``.venv/bin/python bench/one_truth_scenarios.py`` (prints JSON). To compare with an older
checkout, ``PYTHONPATH=<old checkout> .venv/bin/python bench/one_truth_scenarios.py``.
"""

import json
import os
import tempfile
from pathlib import Path

os.environ["CARBONLEDGER_DISABLE"] = "1"
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient
from sqlalchemy import text

from carbonledger.etl import run_etl
from carbonledger.ledger import create_ledger_engine, migrate
from carbonledger.ledger.repositories import seed_emission_factors, shipped_factors
from carbonledger.settings import get_settings


def store(d):
    uri = f"sqlite:///{d / 'mlflow.db'}"
    return uri, MlflowClient(uri, registry_uri=uri)


def run(client, exp, kwh, tags, start=1_717_200_000_000):
    r = client.create_run(exp, start_time=start)
    m = {
        "carbon/gpu_energy_kwh": kwh,
        "carbon/energy_kwh": kwh,
        "carbon/pue": 1.0,
        "carbon/facility_energy_kwh": kwh,
        "carbon/duration_s": 3600.0,
    }
    client.log_batch(
        r.info.run_id,
        metrics=[Metric(k, v, start, 0) for k, v in m.items()],
        tags=[
            RunTag(k, v)
            for k, v in {
                "carbon.grid_zone": "DE",
                "carbon.methods": "gpu=nvml-energy-counter",
                **tags,
            }.items()
        ],
    )
    client.set_terminated(r.info.run_id, end_time=start + 3_600_000)
    return r.info.run_id


def ledger(d):
    eng = create_ledger_engine(f"sqlite:///{d / 'ledger.db'}")
    migrate.upgrade(eng)
    with eng.begin() as conn:
        seed_emission_factors(conn, factors=shipped_factors())
    return eng


out = {}
d = Path(tempfile.mkdtemp())
uri, client = store(d)
eng = ledger(d)
exp = client.create_experiment("sweep")
parent = run(client, exp, 3.0, {"carbon.team": "nlp", "carbon.model_name": "lc-model"})
for _ in range(2):
    run(client, exp, 1.0, {"mlflow.parentRunId": parent})
run_etl(eng, mlflow_uris=[uri])
with eng.connect() as conn:
    teams = dict(
        conn.execute(
            text("SELECT team, SUM(co2e_location_kg) FROM v_team_monthly GROUP BY team")
        ).all()
    )
    out["nlp share of the work (v_team_monthly)"] = round(
        teams.get("nlp", 0) / sum(teams.values()), 3
    )
    out["teams"] = {k: round(v, 4) for k, v in teams.items()}
    out["v_model_lifecycle kg"] = round(
        conn.execute(
            text(
                "SELECT lifecycle_co2e_location_kg FROM v_model_lifecycle "
                "WHERE model_name = 'lc-model'"
            )
        ).scalar()
        or 0,
        4,
    )
    from carbonledger.budgets.lifecycle import model_lifecycle

    out["budgets lifecycle kg"] = round(model_lifecycle(conn, model_name="lc-model").co2e_kg, 4)
for country in ("DEU", "DE", "Germany"):
    d = Path(tempfile.mkdtemp())
    uri, client = store(d)
    eng = ledger(d)
    exp = client.create_experiment("old")
    r = client.create_run(exp, start_time=1_717_200_000_000)
    client.set_terminated(r.info.run_id, end_time=1_717_203_600_000)
    os.environ["CARBONLEDGER_COUNTRY"] = country
    get_settings.cache_clear()
    s = run_etl(eng, mlflow_uris=[uri])[0]
    with eng.connect() as conn:
        zone = conn.execute(text("SELECT metering, grid_zone FROM runs")).all()
    out[f"COUNTRY={country}"] = {
        "quarantined": dict(s.quarantined),
        "kept": [tuple(z) for z in zone],
    }
print(json.dumps(out, indent=1))
