"""The pages' total with its ranges from ``rollup_ranges`` equals the per-record computation.

``embodied.total_with_range`` sums the rollup; ``embodied.total_from_views`` computes the same
parts from the views record by record. They must agree for every period, team and model
filter, after a full build and after incremental refreshes. Periods are whole months
(``carbonledger.reporting.periods``); the ledger's activity starts and ends mid-month, so the
first and last months are partial ones. Edge records: a run without a start time (no month:
the total reads it from the views), a serving window without a team, one without a model, a
run in two models' lifecycles (tag and lineage), windows with and without a component split,
runs with and without an embodied figure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from seed import MODELS, TEAMS
from sqlalchemy import Connection, Engine, insert, select, text, update

from carbonledger import contract as c
from carbonledger.ledger.embodied_models import EmbodiedFactor, RunEmbodied
from carbonledger.ledger.models import (
    InferenceWindow,
    ModelVersion,
    RegisteredModel,
    Run,
    RunEnergy,
    TrackingSource,
)
from carbonledger.reporting.embodied import total_from_views, total_with_range
from carbonledger.reporting.periods import Period, parse_period
from carbonledger.reporting.range_parts import FootprintTotal
from carbonledger.reporting.rollups import refresh_rollups

REL = 1e-9
PERIODS: tuple[Period | None, ...] = (
    None,
    parse_period("2024-04"),  # the first month: activity starts on the 3rd
    parse_period("2024-06"),
    parse_period("2024-07"),  # windows of a new model start mid-month
    parse_period("2024-Q2"),
    parse_period("2024-Q3"),
    parse_period("2024"),
    parse_period("2023-01"),  # nothing
)
FILTERS = [(t, m) for t in (None, *TEAMS, "unassigned") for m in (None, *MODELS, "no-such")]


def _same(got: FootprintTotal, want: FootprintTotal, what: object) -> None:
    for scope in ("operational", "embodied"):
        a, b = getattr(got, scope), getattr(want, scope)
        for field in ("value_kg", "low_kg", "high_kg", "relative_uncertainty"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=REL, abs=1e-12), (
                what,
                scope,
                field,
            )
    assert (got.records, got.records_without_embodied) == (
        want.records,
        want.records_without_embodied,
    ), what


def _source(conn: Connection) -> int:
    return conn.execute(select(TrackingSource.id)).scalar_one()


def _window(source: int, start: datetime, *, team: str | None, model: str | None, **kw) -> dict:  # noqa: ANN003
    energy = kw.pop("energy", 0.2)
    return {
        "source_id": source,
        "run_id": kw.pop("run_id", "serve-v1"),
        "model_name": model,
        "model_version": kw.pop("version", 1),
        "team": team,
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "activity_year": start.year,
        "requests": 12,
        "energy_kwh": energy,
        "pue": 1.1,
        "facility_energy_kwh": energy * 1.1,
        "grid_zone": kw.pop("zone", "DE"),
        **kw,
    }


def _split_windows(source: int, day: datetime, n: int, energy: float) -> list[dict]:
    """Windows of resnet-prod (team vision) with energy split by component and methods."""
    return [
        _window(
            source,
            day + timedelta(hours=h),
            team="vision",
            model="resnet-prod",
            run_id="serve-resnet",
            energy=energy,
            gpu_energy_kwh=energy * 0.7,
            cpu_energy_kwh=energy * 0.2,
            ram_energy_kwh=energy * 0.1,
            methods="gpu=nvml-energy-counter;cpu=rapl;ram=estimate-w-per-gb",
            zone="FR",
        )
        for h in range(n)
    ]


def _training_run(
    conn: Connection, source: int, run_id: str, start: datetime | None, **kw: object
) -> int:
    """A finished training run of vision charged to resnet-prod (``start``: may be None)."""
    energy, pue = float(kw.pop("energy_kwh")), float(kw.pop("pue"))  # type: ignore[arg-type]
    return conn.execute(
        insert(Run)
        .values(
            source_id=source,
            run_id=run_id,
            experiment_id="1",
            kind="training",
            status="FINISHED",
            start_time=start,
            end_time=start + timedelta(hours=2) if start else None,
            activity_year=2024,
            team="vision",
            model_name="resnet-prod",
            grid_zone=kw.pop("zone"),
            metering="metered",
            any_component_estimated=False,
            energy_kwh=energy,
            pue=pue,
            facility_energy_kwh=energy * pue,
            content_hash=run_id,
            **kw,
        )  # fmt: skip
        .returning(Run.id)
    ).scalar_one()


def _reserve(conn: Connection, run_pks: list[int], key: str = "box") -> None:
    conn.execute(
        insert(RunEmbodied),
        [
            {
                "run_pk": pk,
                "reservation_hash": f"{key}-{pk}",
                "factor_key": key,
                "resource": "vcpu",
                "resources_reserved": 8,
                "resources_host": 64,
                "duration_s": 3600.0 * (1 + pk % 3),
                "lifetime_years": 4.0,
            }
            for pk in run_pks
        ],
    )


@pytest.fixture
def edges(seeded: Engine) -> Engine:
    """The seed with embodied figures (some runs, both serving runs) and the edge records."""
    with seeded.begin() as conn:
        source = _source(conn)
        conn.execute(
            insert(EmbodiedFactor),
            [
                {
                    "factor_key": key,
                    "version": 1,
                    "embodied_co2e_kg": kg,
                    "method": c.EMBODIED_CCF_INSTANCE,
                    "source": "test",
                    "relative_uncertainty": u,
                    "uncertainty_key": f"embodied:{key}",
                    "content_hash": key,
                }
                for key, kg, u in (("box", 3000.0, 0.5), ("card", 1500.0, 0.15))
            ],
        )
        serving = [
            {
                "source_id": source,
                "run_id": run_id,
                "kind": "inference",
                "status": "RUNNING",
                "team": team,
                "start_time": datetime(2024, 6, 1, tzinfo=UTC),
                "end_time": datetime(2024, 8, 1, tzinfo=UTC),
                "activity_year": 2024,
                "metering": "metered",
                "energy_kwh": 0.0,
                "content_hash": run_id,
            }
            for run_id, team in (("serve-v1", "nlp"), ("serve-resnet", "vision"))
        ]
        serving_pks = list(conn.execute(insert(Run).returning(Run.id), serving).scalars())
        _training_run(conn, source, "run-no-start", None, zone="FR", energy_kwh=3.0, pue=1.2)
        pks = dict(conn.execute(select(Run.run_id, Run.id).where(Run.kind == "training")).all())
        conn.execute(
            insert(RunEnergy),
            [
                {"run_pk": pks["run-no-start"], "component": "gpu", "energy_kwh": 3.0},
                {"run_pk": pks["run-no-start"], "component": "cpu", "energy_kwh": 0.0},
            ],
        )
        training = sorted(pk for run_id, pk in pks.items() if run_id != "run-no-start")
        _reserve(conn, training[::3] + [pks["run-no-start"]])  # the others have no figure
        _reserve(conn, training[1::6], key="card")
        _reserve(conn, serving_pks)
        # run0001 (tagged bert-qa) also produced a whisper-small version: two lifecycles
        whisper = conn.execute(
            select(RegisteredModel.id).where(RegisteredModel.name == "whisper-small")
        ).scalar_one()
        conn.execute(
            insert(ModelVersion).values(
                registered_model_id=whisper, version=1, run_id="run0001", lineage="run_id"
            )
        )
        july = datetime(2024, 7, 18, 5, tzinfo=UTC)
        conn.execute(insert(InferenceWindow), _split_windows(source, july, 6, 0.3))
        windows = [
            _window(source, datetime(2024, 6, 15, 3, tzinfo=UTC), team=None, model="bert-qa"),
            _window(source, datetime(2024, 7, 2, 9, tzinfo=UTC), team="nlp", model=None),
        ]
        conn.execute(insert(InferenceWindow), windows)
        refresh_rollups(conn)
    return seeded


def _all_equal(engine: Engine, periods=PERIODS, filters=FILTERS) -> dict:  # noqa: ANN001
    out = {}
    for period in periods:
        for team, model in filters:
            args = {"period": period, "team": team, "model": model}
            got = total_with_range(engine, **args)
            _same(got, total_from_views(engine, **args), args)
            out[(period.label if period else None, team, model)] = got
    return out


def test_the_rollup_total_equals_the_views_for_every_filter(edges: Engine) -> None:
    totals = _all_equal(edges)
    everything = totals[(None, None, None)]
    assert everything.operational.value_kg > 0 and everything.embodied.value_kg > 0
    assert 0 < everything.records_without_embodied < everything.records
    assert everything.operational.high_kg > everything.operational.value_kg
    # the run without a start time counts without a period only
    resnet = totals[(None, "vision", "resnet-prod")]
    assert resnet.records == totals[("2024", "vision", "resnet-prod")].records + 1
    # a run in two lifecycles counts in each, once in the total
    assert totals[(None, None, "whisper-small")].records > 0
    assert totals[("2023-01", None, None)].records == 0
    assert totals[("2024-07", None, None)].operational.value_kg > 0


def test_an_incremental_refresh_keeps_the_total_equal_to_the_views(edges: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    few = [(None, None), ("vision", None), (None, "resnet-prod"), ("nlp", "bert-qa")]
    periods = (None, parse_period("2024"), parse_period("2024-Q4"), parse_period("2024-07"))
    before = _all_equal(edges, periods, few)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    with edges.begin() as conn:  # backdated loads: the next refresh sees only what follows
        conn.execute(update(Run).values(loaded_at=old))
        conn.execute(update(InferenceWindow).values(loaded_at=old))
        refresh_rollups(conn)
    with edges.begin() as conn:
        source = _source(conn)
        start = datetime(2024, 11, 20, 8, tzinfo=UTC)  # a new month of training
        pk = _training_run(
            conn, source, "run-late", start, zone="DE", energy_kwh=5.0, pue=1.3,
            methods="gpu=nvml-power-integration",
        )  # fmt: skip
        conn.execute(
            insert(RunEnergy).values(
                run_pk=pk, component="gpu", energy_kwh=5.0, method="nvml-power-integration"
            )
        )
        _reserve(conn, [pk], key="card")
        # and a run of an existing month moved to another team
        conn.execute(
            update(Run)
            .where(Run.run_id == "run0002")
            .values(team="vision", loaded_at=datetime(2100, 1, 1, tzinfo=UTC))
        )
        rows = _split_windows(source, datetime(2024, 7, 25, tzinfo=UTC), 5, 0.5)
        assert upsert_windows(conn, rows, update=False) == (5, 0)
        summary = refresh_rollups(conn)
    assert not summary.full and "2024-11" in summary.months and "2024-07-25" in summary.days
    after = _all_equal(edges, periods, few)
    for key in ((None, None, None), ("2024", "vision", None), (None, None, "resnet-prod")):
        assert after[key].operational.value_kg > before[key].operational.value_kg, key
        assert after[key].records > before[key].records, key
    assert (before[("2024-Q4", None, None)].records, after[("2024-Q4", None, None)].records) == (
        0,
        1,
    )
    incremental = _rows(edges)
    with edges.begin() as conn:
        assert refresh_rollups(conn, full=True).full
    full = _rows(edges)
    assert len(incremental) == len(full)
    for got, want in zip(incremental, full, strict=True):
        same = [
            g == pytest.approx(w, rel=REL) if isinstance(w, float) else g == w
            for g, w in zip(got, want, strict=True)
        ]
        assert all(same), (got, want)


def _rows(engine: Engine) -> list[tuple]:
    """The rollup's rows without their surrogate ids, keys first, sorted."""
    with engine.connect() as conn:
        rows = [tuple(r[1:]) for r in conn.execute(text("SELECT * FROM rollup_ranges"))]
    return sorted(rows, key=lambda r: [str(v) for v in r[:9]])


def test_the_etl_refreshes_the_total(ledger: Engine, client, mlflow_uri: str) -> None:  # noqa: ANN001
    """Through the ETL: a new run changes the pages' total, which stays the views'."""
    from cl_ledger_fixtures import make_run, metered_metrics, metered_tags

    from carbonledger.etl import run_etl

    exp = client.create_experiment("ranges-etl")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("DE"))
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    first = total_with_range(ledger)
    _same(first, total_from_views(ledger), "first pass")
    assert first.records == 1 and first.operational.value_kg > 0
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("FR"))
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    second = total_with_range(ledger)
    _same(second, total_from_views(ledger), "second pass")
    assert second.records == 2 and second.operational.value_kg > first.operational.value_kg
