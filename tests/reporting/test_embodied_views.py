"""SCI, ranges and the embodied totals of the ledger's views, on SQLite and PostgreSQL.

Rows are written straight into the tables (as the ETL would), so each expected figure is
computed here: the SCI specification's worked example, hand-computed quadrature, and
``carbonledger.uncertainty`` (``OperationalRecord``, ``total_range``) on a seeded ledger.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, insert, select, text

from carbonledger import contract as c
from carbonledger.ledger import add_emission_factor
from carbonledger.ledger.embodied_models import (
    EmbodiedFactor,
    EnergyMethodUncertainty,
    IntensityMethodUncertainty,
    RunEmbodied,
)
from carbonledger.ledger.models import InferenceWindow, Run, RunEnergy, TrackingSource
from carbonledger.reporting import build_report, parse_period, render
from carbonledger.reporting.embodied import total_with_range
from carbonledger.reporting.rollups import refresh_rollups
from carbonledger.uncertainty import (
    ENERGY_UNCERTAINTY,
    INTENSITY_UNCERTAINTY,
    UNKNOWN_METHOD_UNCERTAINTY,
    OperationalRecord,
    total_range,
)

T0 = datetime(2024, 6, 3, 8, tzinfo=UTC)
HOUR_S = 3600.0


def _source(conn: Connection) -> int:
    return conn.execute(
        insert(TrackingSource).values(uri="http://mlflow.test").returning(TrackingSource.id)
    ).scalar_one()


def _run(
    conn: Connection,
    source_id: int,
    run_id: str,
    *,
    energy: dict[str, tuple[float, str | None]],
    pue: float = 1.0,
    zone: str | None = "DE",
    kind: str = "training",
    team: str = "nlp",
) -> int:
    total = sum(kwh for kwh, _ in energy.values())
    pk = conn.execute(
        insert(Run)
        .values(
            source_id=source_id,
            run_id=run_id,
            kind=kind,
            status="FINISHED",
            team=team,
            start_time=T0,
            end_time=T0 + timedelta(hours=1),
            activity_year=2024,
            duration_s=HOUR_S,
            grid_zone=zone,
            metering="metered",
            energy_kwh=total,
            inclusive_energy_kwh=total,
            estimated_energy_kwh=0.0,
            pue=pue,
            facility_energy_kwh=total * pue,
            inclusive_facility_energy_kwh=total * pue,
            content_hash=run_id,
        )  # fmt: skip
        .returning(Run.id)
    ).scalar_one()
    conn.execute(
        insert(RunEnergy),
        [
            {"run_pk": pk, "component": comp, "energy_kwh": kwh, "method": method}
            for comp, (kwh, method) in energy.items()
        ],
    )
    return pk


def _reserve(
    conn: Connection, run_pk: int, key: str, te_kg: float, *, reserved: float, host: float
) -> None:
    if not conn.execute(select(EmbodiedFactor.id).where(EmbodiedFactor.factor_key == key)).first():
        conn.execute(
            insert(EmbodiedFactor).values(
                factor_key=key,
                version=1,
                embodied_co2e_kg=te_kg,
                method=c.EMBODIED_CCF_INSTANCE,
                source="test",
                relative_uncertainty=0.5,
                uncertainty_key="embodied:ccf",
                content_hash=key,
            )  # fmt: skip
        )
    conn.execute(
        insert(RunEmbodied).values(
            run_pk=run_pk,
            reservation_hash=key,
            factor_key=key,
            resource="vcpu",
            resources_reserved=reserved,
            resources_host=host,
            duration_s=HOUR_S,
            lifetime_years=4.0,
        )  # fmt: skip
    )


def test_the_uncertainty_tables_hold_the_python_constants(ledger: Engine) -> None:
    with ledger.connect() as conn:
        e, i = EnergyMethodUncertainty, IntensityMethodUncertainty
        energy = dict(conn.execute(select(e.method, e.relative_uncertainty)).all())
        intensity = dict(conn.execute(select(i.intensity_method, i.relative_uncertainty)).all())
    assert energy == {**ENERGY_UNCERTAINTY, "(unknown)": UNKNOWN_METHOD_UNCERTAINTY}
    assert intensity == dict(INTENSITY_UNCERTAINTY)


@pytest.mark.parametrize(
    ("energy_kwh", "te_kg", "printed_sci_g"),
    [(0.0656, 1205.52, 66.6906), (0.048, 1433.12, 50.76)],  # app server, database server
)
def test_the_sci_specifications_eshoppen_example_through_v_sci(
    ledger: Engine, energy_kwh: float, te_kg: float, printed_sci_g: float
) -> None:
    """E kWh for 1 h at 951 g/kWh; TE over 4 years; 2 of 16 vCPUs; R = 1 (tests/test_sci.py)."""
    with ledger.begin() as conn:
        add_emission_factor(
            conn, zone="ESHOP", year=2024, intensity_g_per_kwh=951.0, source="sci-case-study"
        )
        sid = _source(conn)
        train = _run(conn, sid, "train", energy={"machine": (energy_kwh, None)}, zone="ESHOP")
        _reserve(conn, train, "instance:test:server", te_kg, reserved=2, host=16)
        serve = _run(
            conn, sid, "serve", energy={"machine": (energy_kwh, None)}, zone="ESHOP",
            kind="inference",
        )  # fmt: skip
        _reserve(conn, serve, "instance:test:server", te_kg, reserved=2, host=16)
        conn.execute(
            insert(InferenceWindow).values(
                source_id=sid,
                run_id="serve",
                model_name="eshoppen",
                model_version=1,
                window_start=T0,
                window_end=T0 + timedelta(hours=1),
                activity_year=2024,
                requests=1,
                energy_kwh=energy_kwh,
                pue=1.0,
                facility_energy_kwh=energy_kwh,
                grid_zone="ESHOP",
            )  # fmt: skip
        )
    exact_kg = energy_kwh * 951.0 / 1000 + te_kg * (1 / 35040) * (2 / 16)
    with ledger.connect() as conn:
        rows = conn.execute(
            text("SELECT functional_unit, sci_co2e_kg_per_unit, sci_co2e_g_per_unit FROM v_sci")
        ).all()
    assert sorted(r[0] for r in rows) == ["request", "run"]
    for _, kg, g in rows:
        assert kg == pytest.approx(exact_kg, rel=1e-9)
        assert g == pytest.approx(exact_kg * 1000, rel=1e-9)
        assert g == pytest.approx(printed_sci_g, abs=0.005)  # the study's rounding


def test_a_runs_range_is_its_errors_in_quadrature(ledger: Engine) -> None:
    with ledger.begin() as conn:
        sid = _source(conn)
        _run(
            conn, sid, "hand", pue=1.2,
            energy={
                "gpu": (1.0, "nvml-energy-counter+nvml-process-share"),
                "cpu": (0.2, "rapl"),
                "ram": (0.05, "ram-w-per-gb-estimate"),
            },
        )  # fmt: skip
        _run(conn, sid, "world", zone=None, energy={"gpu": (2.0, "mystery-meter")})
    kg = {"gpu": 1.0 * 1.2 * 0.380, "cpu": 0.2 * 1.2 * 0.380, "ram": 0.05 * 1.2 * 0.380}
    total = sum(kg.values())
    # by hand: the joined method counts its less certain part, hypot(0.05, 0.10)
    sigma = math.sqrt(
        (math.hypot(0.05, 0.10) * kg["gpu"]) ** 2
        + (0.05 * kg["cpu"]) ** 2
        + (0.50 * kg["ram"]) ** 2
        + (0.30 * total) ** 2  # yearly intensity
    )
    world_kg = 2.0 * 0.475
    world_sigma = math.hypot(0.50 * world_kg, 1.00 * world_kg)  # unknown method, world default
    with ledger.connect() as conn:
        got = _ranges(conn)
    assert got["hand"][0] == pytest.approx(total, rel=1e-12)
    assert got["hand"][2] == pytest.approx(total + sigma, rel=1e-9)
    assert got["hand"][1] == pytest.approx(total / (1 + sigma / total), rel=1e-9)
    assert got["world"][2] == pytest.approx(world_kg + world_sigma, rel=1e-9)
    assert got["world"][1] == pytest.approx(world_kg / (1 + world_sigma / world_kg), rel=1e-9)


def _ranges(conn: Connection) -> dict[str, tuple[float, float, float]]:
    """``run_id -> (co2e_location_kg, low, high)`` of ``v_run_emissions``."""
    rows = conn.execute(
        text(
            "SELECT run_id, co2e_location_kg, co2e_location_low_kg, co2e_location_high_kg "
            "FROM v_run_emissions"
        )
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _records(conn: Connection, where: str = "") -> list[tuple[str, OperationalRecord]]:
    runs = conn.execute(
        text(
            "SELECT run_pk, run_id, pue, location_intensity_g_per_kwh, zone FROM v_run_emissions "
            f"WHERE co2e_location_kg IS NOT NULL {where}"
        )
    ).all()
    out = []
    for pk, run_id, pue, intensity, zone in runs:
        parts = conn.execute(
            text("SELECT component, energy_kwh, method FROM run_energy WHERE run_pk = :p"),
            {"p": pk},
        ).all()
        record = OperationalRecord(
            energy_kwh={comp: kwh for comp, kwh, _ in parts},
            methods={comp: m for comp, _, m in parts if m is not None},
            pue=pue,
            intensity_g_per_kwh=intensity,
            intensity_method=c.INTENSITY_WORLD_DEFAULT if zone == "WORLD" else c.INTENSITY_YEARLY,
        )
        out.append((run_id, record))
    return out


def test_every_runs_range_equals_the_operational_record_of_uncertainty_py(
    seeded: Engine,
) -> None:
    with seeded.connect() as conn:
        records = _records(conn)
        ledger = _ranges(conn)
    assert len(records) > 40
    for run_id, record in records:
        want = record.range()
        value, low, high = ledger[run_id]
        assert value == pytest.approx(want.value_kg, rel=1e-9, abs=1e-12)
        assert low == pytest.approx(want.low_kg, rel=1e-9, abs=1e-12)
        assert high == pytest.approx(want.high_kg, rel=1e-9, abs=1e-12)


def test_a_total_adds_each_methods_error_across_runs_before_the_quadrature(
    ledger: Engine,
) -> None:
    methods = {"gpu": (1.0, "nvml-energy-counter"), "cpu": (0.3, "tdp-utilisation-estimate")}
    with ledger.begin() as conn:
        sid = _source(conn)
        a = _run(conn, sid, "a", energy=methods, pue=1.1)
        b = _run(conn, sid, "b", energy={k: (2 * v, m) for k, (v, m) in methods.items()})
        _run(conn, sid, "other-team", energy=methods, team="vision")
        _reserve(conn, a, "instance:test:box", 1000.0, reserved=4, host=8)
        _reserve(conn, b, "instance:test:box", 1000.0, reserved=8, host=8)
        refresh_rollups(conn)  # the pages' total reads the rollup
    with ledger.connect() as conn:
        records = [r for run_id, r in _records(conn) if run_id in ("a", "b")]
    want = total_range((r.co2e_kg, r.contributions()) for r in records)
    got = total_with_range(ledger, team="nlp", period=parse_period("2024-06"))
    assert got.operational.value_kg == pytest.approx(want.value_kg, rel=1e-12)
    assert got.operational.high_kg == pytest.approx(want.high_kg, rel=1e-9)
    assert got.operational.low_kg == pytest.approx(want.low_kg, rel=1e-9)
    # wider than if the two runs' errors were independent
    independent = math.sqrt(sum((r.range().high_kg - r.co2e_kg) ** 2 for r in records))
    assert got.operational.high_kg - got.operational.value_kg > independent
    m_a = 1000.0 * HOUR_S / (4 * 365 * 86400) * 4 / 8
    m_b = 1000.0 * HOUR_S / (4 * 365 * 86400)
    assert got.embodied.value_kg == pytest.approx(m_a + m_b, rel=1e-9)
    assert got.embodied.high_kg == pytest.approx((m_a + m_b) * 1.5, rel=1e-9)  # one source
    assert (got.records, got.records_without_embodied) == (2, 0)
    everyone = total_with_range(ledger, period=parse_period("2024-06"))
    assert (everyone.records, everyone.records_without_embodied) == (3, 1)


def test_the_report_shows_embodied_and_sci_beside_scope_2(seeded: Engine) -> None:
    report = build_report(seeded, period=parse_period("2024-Q2"))
    summary = report.sections["Summary"]
    figures = dict(zip(summary.figure, summary.value, strict=True))
    location = figures["Location-based CO2e (kg)"]
    assert figures["Location-based CO2e, low end of range (kg)"] < location
    assert figures["Location-based CO2e, high end of range (kg)"] > location
    assert "Embodied CO2e, Scope 3, not in the figures above (kg)" in figures
    assert "Embodied CO2e (Scope 3) by team" in report.sections
    assert "SCI per model version (per request, all time)" in render(report, "md")
