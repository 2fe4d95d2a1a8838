"""The demo's closing figures, read back from the ledger's views (never from MLflow tags)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

_ALL_RUNS = text("SELECT COUNT(*) AS runs, SUM(facility_energy_kwh) AS kwh FROM run_co2e")
_BY_TEAM = text(
    """
    SELECT team, SUM(training_runs) AS training_runs, SUM(inference_requests) AS requests,
           SUM(facility_energy_kwh) AS energy_kwh,
           SUM(training_co2e_location_kg) AS training_co2e_kg,
           SUM(inference_co2e_location_kg) AS inference_co2e_kg,
           SUM(co2e_location_kg) AS co2e_kg
    FROM v_team_monthly GROUP BY team ORDER BY co2e_kg DESC
    """
)
_BY_MODEL = text(
    """
    SELECT model_name, training_runs, inference_requests AS requests,
           training_facility_energy_kwh + inference_facility_energy_kwh AS energy_kwh,
           training_co2e_location_kg AS training_co2e_kg,
           inference_co2e_location_kg AS inference_co2e_kg,
           lifecycle_co2e_location_kg AS co2e_kg
    FROM v_model_lifecycle ORDER BY lifecycle_co2e_location_kg DESC
    """
)


def ledger_totals(ledger_url: str) -> dict[str, Any]:
    """Per team and per model (lifecycle): facility kWh and location-based kg CO2e.

    ``runs``/``energy_kwh`` cover every run the ledger holds (training and inference runs),
    for comparing with the tracking server; team and model rows count inference once,
    through its windows.
    """
    from carbonledger.ledger import create_ledger_engine

    engine = create_ledger_engine(ledger_url)
    try:
        with engine.connect() as conn:
            everything = conn.execute(_ALL_RUNS).one()
            teams = [dict(r._mapping) for r in conn.execute(_BY_TEAM)]
            models = [dict(r._mapping) for r in conn.execute(_BY_MODEL)]
    finally:
        engine.dispose()
    return {
        "teams": teams,
        "models": models,
        "runs": everything.runs,
        "energy_kwh": everything.kwh or 0.0,
        "co2e_kg": sum(t["co2e_kg"] or 0.0 for t in teams),
    }
