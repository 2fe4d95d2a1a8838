"""Budgets as code: budgets.yaml parsing and validation, syncing, and CLI-set budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from carbonledger.budgets import (
    DEFAULT_THRESHOLDS_PCT,
    list_budgets,
    load_budget_file,
    make_spec,
    remove_budget,
    set_budget,
    sync_budgets,
)
from carbonledger.errors import ConfigError

YAML = """
budgets:
  - model: fraud-detector
    limit_co2e_kg: 500
  - team: vision
    period: quarter
    limit_co2e_kg: 1200
    thresholds_pct: [100, 80]
    basis: market
    note: agreed with sustainability
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(text)
    return path


def test_a_budgets_file_parses_with_defaults(tmp_path: Path) -> None:
    model, team = load_budget_file(write(tmp_path, YAML))

    assert (model.scope, model.scope_name, model.period) == ("model", "fraud-detector", "lifecycle")
    assert model.thresholds_pct == DEFAULT_THRESHOLDS_PCT and model.basis == "location"
    assert (team.scope, team.period, team.limit_co2e_kg) == ("team", "quarter", 1200.0)
    assert team.thresholds_pct == (80.0, 100.0) and team.basis == "market"
    assert team.label == "team vision (quarter)" and model.label == "model fraud-detector"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- {model: m}", "limit_co2e_kg is missing"),
        ("- {model: m, limit_co2e_kg: -1}", "positive number"),
        ("- {model: m, limit_co2e_kg: lots}", "must be a number"),
        ("- {team: t, limit_co2e_kg: 1}", "needs `period: month`"),
        ("- {model: m, period: month, limit_co2e_kg: 1}", "whole lifecycle"),
        ("- {model: m, team: t, limit_co2e_kg: 1}", "exactly one of"),
        ("- {model: m, limit_co2e_kg: 1, basis: cheap}", "location or market"),
        ("- {model: m, limit_co2e_kg: 1, thresholds_pct: [0]}", "must lie in"),
        ("- {model: m, limit_co2e_kg: 1, owner: me}", "unknown keys ['owner']"),
        ("- {model: ok, limit_co2e_kg: 2}", "model ok is defined twice"),
    ],
)
def test_a_bad_entry_is_refused_with_its_number_and_the_fix(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = write(tmp_path, f"budgets:\n  - {{model: ok, limit_co2e_kg: 5}}\n  {entry}\n")

    with pytest.raises(ConfigError, match="budget 2") as info:
        load_budget_file(path)
    assert message in str(info.value)


def test_unreadable_or_shapeless_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_budget_file(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="top-level `budgets:` list"):
        load_budget_file(write(tmp_path, "model: m\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_budget_file(write(tmp_path, "budgets: [\n"))
    assert load_budget_file(write(tmp_path, "")) == []


def test_sync_adds_updates_and_removes_what_the_file_owns_only(
    ledger: Engine, tmp_path: Path
) -> None:
    specs = load_budget_file(write(tmp_path, YAML))
    with ledger.begin() as conn:
        set_budget(conn, spec=make_spec(team="nlp", period="month", limit_co2e_kg=10))
        first = sync_budgets(conn, specs=specs)
        again = sync_budgets(conn, specs=specs)
        changed = [make_spec(model="fraud-detector", limit_co2e_kg=600)]
        third = sync_budgets(conn, specs=changed)
        budgets = {b.label: b for b in list_budgets(conn)}

    assert sorted(first.added) == ["model fraud-detector", "team vision (quarter)"]
    assert (again.added, again.updated, again.removed, again.unchanged) == ([], [], [], 2)
    assert third.updated == ["model fraud-detector"] and third.removed == ["team vision (quarter)"]
    assert set(budgets) == {"model fraud-detector", "team nlp (month)"}  # the CLI one stays
    assert budgets["model fraud-detector"].limit_co2e_kg == 600.0
    assert budgets["model fraud-detector"].origin == "yaml"
    assert budgets["team nlp (month)"].origin == "cli"


def test_the_file_takes_over_a_cli_budget_and_the_cli_cannot_change_it(ledger: Engine) -> None:
    with ledger.begin() as conn:
        action, _ = set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=5))
        assert action == "added"
        assert set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=5))[0] == "unchanged"
        sync_budgets(conn, specs=[make_spec(model="m", limit_co2e_kg=7)])
        with pytest.raises(ConfigError, match="defined in budgets.yaml"):
            set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=9))
        with pytest.raises(ConfigError, match="remove it from the file"):
            remove_budget(conn, scope="model", scope_name="m", period="lifecycle")
        [stored] = list_budgets(conn)
    assert (stored.limit_co2e_kg, stored.origin) == (7.0, "yaml")
