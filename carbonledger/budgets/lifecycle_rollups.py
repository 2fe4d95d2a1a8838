"""A model's lifecycle read from the rollups: the figures of ``budgets.lifecycle`` at page cost.

``rollup_model_month`` holds the training CO2e of each model's lifecycle runs
(``v_lifecycle_runs``) per team and month, ``rollup_inference_daily`` the serving of each
version per day, both refreshed by the ETL from the views. The Models page and the report
read them; ``budgets lifecycle`` and the tests read the views, and the tests check both agree.

Read from the views still, with a predicate on the one model: the training totals (run
counts by status and estimate are not in ``rollup_model_month``; one model's runs are few)
and the count of estimated serving windows (``rollup_inference_daily`` has no
``estimated_windows`` column).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from carbonledger.budgets.lifecycle import (
    Basis,
    Lifecycle,
    LifecyclePoint,
    estimated_windows,
    make_lifecycle,
    timeline_points,
    training_totals,
)

UNKNOWN_VERSION = 0  # v_inference_daily's version of a window without one


def _co2e(basis: Basis) -> str:
    return "co2e_market_kg" if basis == "market" else "co2e_location_kg"


def model_lifecycle(conn: Connection, *, model_name: str, basis: Basis = "location") -> Lifecycle:
    """``budgets.lifecycle.model_lifecycle`` with the serving totals from the daily rollup."""
    i = conn.execute(
        text(
            "SELECT COALESCE(SUM(windows), 0), COALESCE(SUM(requests), 0), "
            f"COALESCE(SUM(facility_energy_kwh), 0.0), COALESCE(SUM({_co2e(basis)}), 0.0) "
            "FROM rollup_inference_daily WHERE model_name = :m"
        ),
        {"m": model_name},
    ).one()
    versions = conn.execute(
        text(
            "SELECT DISTINCT model_version FROM rollup_inference_daily "
            "WHERE model_name = :m AND model_version <> :unknown ORDER BY model_version"
        ),
        {"m": model_name, "unknown": UNKNOWN_VERSION},
    )
    estimated = estimated_windows(conn, model_name=model_name) if i[0] else 0
    return make_lifecycle(
        model_name=model_name,
        basis=basis,
        training=training_totals(conn, model_name=model_name, basis=basis),
        inference=(i[0], estimated, i[1], i[2], i[3]),
        versions=[int(v) for (v,) in versions],
    )


def lifecycle_by_month(
    conn: Connection, *, model_name: str, basis: Basis = "location"
) -> list[LifecyclePoint]:
    """``budgets.lifecycle.lifecycle_timeline(bucket="month")`` from the rollups alone."""
    training = conn.execute(
        text(
            f"SELECT month, SUM({_co2e(basis)}) FROM rollup_model_month "
            "WHERE model_name = :m GROUP BY month"
        ),
        {"m": model_name},
    )
    inference = conn.execute(
        text(
            f"SELECT month, SUM({_co2e(basis)}), SUM(requests) FROM rollup_inference_daily "
            "WHERE model_name = :m GROUP BY month"
        ),
        {"m": model_name},
    )
    return timeline_points(
        [(str(p), kg) for p, kg in training], [(str(p), kg, n) for p, kg, n in inference]
    )
