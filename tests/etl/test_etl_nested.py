"""Nested runs in the ledger: a parent's figure includes its children; sums count each kWh once."""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl


def rows(engine: Engine, sql: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.run_id: dict(r._mapping) for r in conn.execute(text(sql))}


def test_sums_over_a_parent_and_its_children_count_each_kwh_once(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("sweep")
    # The plugin's parent figure is inclusive: 2.0 kWh IT covers the two 0.5 kWh children.
    parent = make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=2.0, cpu=0.0, ram=0.0, pue=1.0),
        tags=metered_tags(),
    )
    children = [
        make_run(
            client,
            exp,
            metrics=metered_metrics(gpu=0.5, cpu=0.0, ram=0.0, pue=1.0),
            tags=metered_tags(**{"mlflow.parentRunId": parent}),
        )
        for _ in range(2)
    ]
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    view = rows(
        ledger,
        "SELECT run_id, parent_run_id, facility_energy_kwh, inclusive_facility_energy_kwh, "
        "co2e_location_kg FROM run_co2e",
    )
    assert view[parent]["facility_energy_kwh"] == pytest.approx(1.0)
    assert view[parent]["inclusive_facility_energy_kwh"] == pytest.approx(2.0)
    assert all(view[c]["parent_run_id"] == parent for c in children)
    assert sum(r["facility_energy_kwh"] for r in view.values()) == pytest.approx(2.0)
    # DE 2024 at 380 g/kWh: 2.0 kWh in all, whatever the nesting.
    assert sum(r["co2e_location_kg"] for r in view.values()) == pytest.approx(2.0 * 0.380)


def test_children_created_after_the_fact_are_not_estimated_on_top_of_their_parent(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_UNMETERED_POWER_W", "300")
    get_settings.cache_clear()
    exp = client.create_experiment("gridsearch")
    parent = make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=1.0, cpu=0.0, ram=0.0, pue=1.0),
        tags=metered_tags(),
    )
    child = make_run(
        client,
        exp,
        tags={
            "mlflow.parentRunId": parent,
            "carbon.metered": "false",
            "carbon.unmetered_reason": "created-after-the-fact",
        },
    )
    other = make_run(client, exp, tags={})  # an unrelated run from another tool: estimated
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    view = rows(ledger, "SELECT run_id, metering, facility_energy_kwh FROM run_co2e")
    assert view[child]["metering"] == "unmetered"
    assert view[child]["facility_energy_kwh"] is None
    assert view[parent]["facility_energy_kwh"] == pytest.approx(1.0)
    assert view[other]["facility_energy_kwh"] == pytest.approx(0.3)  # 300 W x 1 h


def _metered(client: Any, exp: str, kwh: float, **tags: str) -> str:
    """A metered run of ``kwh`` GPU energy at PUE 1.0 in DE (2024: 380 g/kWh)."""
    return make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=kwh, cpu=0.0, ram=0.0, pue=1.0),
        tags=metered_tags(**tags),
    )


def _tree(client: Any, exp: str, **root_tags: str) -> tuple[str, list[str], list[str]]:
    """Root (inclusive 7 kWh) > 2 children (3 kWh each, inclusive) > 2 grandchildren (1 kWh)."""
    root = _metered(client, exp, 7.0, **root_tags)
    children = [_metered(client, exp, 3.0, **{"mlflow.parentRunId": root}) for _ in range(2)]
    grand = [
        _metered(client, exp, 1.0, **{"mlflow.parentRunId": c}) for c in children for _ in range(2)
    ]
    return root, children, grand


def test_three_levels_are_charged_to_the_root_team_and_model_and_counted_once(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("nested")
    root, children, grand = _tree(
        client, exp, **{"carbon.team": "nlp", "carbon.model_name": "lc-model"}
    )
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    view = rows(
        ledger,
        "SELECT run_id, team, team_rule, model_name, model_rule, facility_energy_kwh, "
        "inclusive_facility_energy_kwh, co2e_location_kg, inclusive_co2e_location_kg "
        "FROM v_run_emissions",
    )
    assert {r["team"] for r in view.values()} == {"nlp"}
    assert {r["model_name"] for r in view.values()} == {"lc-model"}
    for run in children + grand:
        assert view[run]["team_rule"] == "ancestor:run:carbon.team"
        assert view[run]["model_rule"] == "ancestor:run:carbon.model_name"
    assert view[root]["facility_energy_kwh"] == pytest.approx(1.0)  # 7 - 2 x 3
    assert view[children[0]]["facility_energy_kwh"] == pytest.approx(1.0)  # 3 - 2 x 1
    assert view[grand[0]]["facility_energy_kwh"] == pytest.approx(1.0)
    assert sum(r["facility_energy_kwh"] for r in view.values()) == pytest.approx(7.0)
    # shown alone, the root keeps MLflow's inclusive figure
    assert view[root]["inclusive_co2e_location_kg"] == pytest.approx(7.0 * 0.380)
    with ledger.connect() as conn:
        team_kg = conn.execute(
            text("SELECT SUM(co2e_location_kg) FROM v_team_monthly WHERE team = 'nlp'")
        ).scalar_one()
        model_kg, model_runs = conn.execute(
            text(
                "SELECT training_co2e_location_kg, training_runs FROM v_model_lifecycle "
                "WHERE model_name = 'lc-model'"
            )
        ).one()
        rollup_kg = conn.execute(
            text(
                "SELECT SUM(co2e_location_kg) FROM rollup_model_month WHERE model_name = 'lc-model'"
            )
        ).scalar_one()
    assert team_kg == pytest.approx(7.0 * 0.380)
    assert model_kg == pytest.approx(7.0 * 0.380) and model_runs == 7
    assert rollup_kg == pytest.approx(7.0 * 0.380)


def test_a_20_child_sweep_equals_its_parents_inclusive_figure(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    from carbonledger.budgets.lifecycle import model_lifecycle

    exp = client.create_experiment("sweep")
    parent = _metered(client, exp, 10.5, **{"carbon.team": "nlp", "carbon.model_name": "m"})
    for _ in range(20):
        _metered(client, exp, 0.5, **{"mlflow.parentRunId": parent})
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.connect() as conn:
        lc = model_lifecycle(conn, model_name="m")
        unassigned = conn.execute(
            text("SELECT COUNT(*) FROM runs WHERE team = 'unassigned'")
        ).scalar_one()
    assert lc.training_runs == 21 and unassigned == 0
    assert lc.training_co2e_kg == pytest.approx(10.5 * 0.380)  # parent's overhead 0.5 kWh


def test_a_parent_arriving_in_a_later_pass_reattributes_its_children(
    ledger: Engine, client: Any, mlflow_uri: str, mocker: Any
) -> None:
    import uuid

    exp = client.create_experiment("late-parent")
    parent_id = uuid.uuid4().hex
    children = [_metered(client, exp, 1.0, **{"mlflow.parentRunId": parent_id}) for _ in range(2)]
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    first = rows(ledger, "SELECT run_id, team, model_name, facility_energy_kwh FROM runs")
    assert {first[c]["team"] for c in children} == {"unassigned"}

    # The parent's run id is MLflow's own uuid4; pin it so the children named it first.
    mocker.patch(
        "mlflow.store.tracking.sqlalchemy_store.uuid.uuid4", return_value=uuid.UUID(parent_id)
    )
    parent = _metered(client, exp, 2.5, **{"carbon.team": "nlp", "carbon.model_name": "m"})
    mocker.stopall()
    assert parent == parent_id
    summary = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert summary.loaded == 1  # only the parent was read again
    after = rows(ledger, "SELECT run_id, team, model_name, facility_energy_kwh FROM runs")
    assert {after[c]["team"] for c in children} == {"nlp"}
    assert {after[c]["model_name"] for c in children} == {"m"}
    assert after[parent]["facility_energy_kwh"] == pytest.approx(0.5)
    with ledger.connect() as conn:
        by_team = dict(
            conn.execute(
                text("SELECT team, SUM(co2e_location_kg) FROM rollup_team_month GROUP BY team")
            ).all()
        )
    assert by_team == {"nlp": pytest.approx(2.5 * 0.380)}


def test_a_parent_tagged_later_moves_its_subtree(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("retag")
    root, children, grand = _tree(client, exp)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    assert {r["team"] for r in rows(ledger, "SELECT run_id, team FROM runs").values()} == {
        "unassigned"
    }
    client.set_tag(root, "carbon.team", "vision")
    client.set_terminated(root, end_time=T0_MS + 7_200_000)  # the edit is a new end time
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    teams = rows(ledger, "SELECT run_id, team FROM runs")
    assert {teams[r]["team"] for r in [root, *children, *grand]} == {"vision"}


def test_a_child_keeps_its_own_tags_and_the_experiment_tag_comes_after_ancestors(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("own", tags={"carbon.team": "exp-team"})
    parent = _metered(client, exp, 2.0, **{"carbon.team": "nlp"})
    own = _metered(client, exp, 0.5, **{"mlflow.parentRunId": parent, "carbon.team": "speech"})
    inherit = _metered(client, exp, 0.5, **{"mlflow.parentRunId": parent})
    alone = _metered(client, exp, 0.5)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    teams = rows(ledger, "SELECT run_id, team, team_rule FROM runs")
    assert teams[own]["team"] == "speech" and teams[own]["team_rule"] == "run:carbon.team"
    assert teams[inherit]["team"] == "nlp"
    assert teams[alone]["team"] == "exp-team" and teams[alone]["team_rule"] == (
        "experiment:carbon.team"
    )
