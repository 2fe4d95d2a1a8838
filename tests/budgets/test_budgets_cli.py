"""`carbonledger budgets set/list/check/remove/lifecycle`; check's exit status is a CI gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from budget_helpers import NOW, add_run, add_window
from sqlalchemy import Engine
from typer.testing import CliRunner

from carbonledger.cli import app

AT = NOW.strftime("%Y-%m-%dT%H:%M:%S")


def cli(url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["budgets", *args, "--ledger-url", url])


def test_set_list_and_remove(ledger: Engine, ledger_url: str) -> None:
    out = cli(ledger_url, "set", "--model", "fraud", "--limit-kg", "500")
    assert out.exit_code == 0, out.output
    assert "model fraud: added, 500 kg CO2e (location-based), alerts at 50%, 75%, 90%, 100%" in (
        out.output
    )
    team = cli(
        ledger_url, "set", "--team", "vision", "--period", "quarter", "--limit-kg", "1200",
        "--thresholds", "80,100", "--basis", "market", "--note", "Q3",
    )  # fmt: skip
    assert team.exit_code == 0 and "team vision (quarter): added" in team.output

    listed = json.loads(cli(ledger_url, "list", "--json").output)
    assert [(b["scope"], b["name"], b["period"]) for b in listed] == [
        ("model", "fraud", "lifecycle"),
        ("team", "vision", "quarter"),
    ]
    assert listed[1]["thresholds_pct"] == [80.0, 100.0] and listed[1]["note"] == "Q3"
    table = cli(ledger_url, "list").output
    assert "fraud" in table and "lifecycle" in table and "cli" in table

    assert cli(ledger_url, "remove", "--model", "fraud").exit_code == 0
    missing = cli(ledger_url, "remove", "--model", "fraud")
    assert missing.exit_code == 1 and "no budget for model fraud" in missing.output


def test_set_refuses_bad_definitions_with_the_fix(ledger: Engine, ledger_url: str) -> None:
    no_period = cli(ledger_url, "set", "--team", "vision", "--limit-kg", "5")
    assert no_period.exit_code == 1 and "needs `period: month`" in no_period.output
    negative = cli(ledger_url, "set", "--model", "m", "--limit-kg", "-5")
    assert negative.exit_code == 1 and "positive number" in negative.output


def test_check_exits_0_within_1_on_a_threshold_2_when_exceeded(
    ledger: Engine, ledger_url: str
) -> None:
    assert cli(ledger_url, "check", "--at", AT).exit_code == 0  # no budgets: all within
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="fraud")  # 38 kg
    cli(ledger_url, "set", "--model", "fraud", "--limit-kg", "100")

    within = cli(ledger_url, "check", "--at", AT, "--no-tags")
    cli(ledger_url, "set", "--model", "fraud", "--limit-kg", "70")
    threshold = cli(ledger_url, "check", "--at", AT, "--no-tags")
    cli(ledger_url, "set", "--model", "fraud", "--limit-kg", "30")
    exceeded = cli(ledger_url, "check", "--at", AT, "--no-tags", "--json")

    assert within.exit_code == 0, within.output
    assert "model fraud" in within.output and "ok" in within.output
    assert threshold.exit_code == 1 and "warning" in threshold.output
    assert "1 new threshold crossings recorded" in threshold.output
    assert exceeded.exit_code == 2
    [status] = json.loads(exceeded.output)
    assert status["status"] == "exceeded" and status["used_pct"] > 100
    assert status["projected_exhaustion"] == "exceeded" and status["crossed_pct"][-1] == 100.0


def test_check_syncs_a_budgets_file_first(ledger: Engine, ledger_url: str, tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - team: vision\n    period: month\n    limit_co2e_kg: 1000\n")

    out = cli(ledger_url, "check", "--file", str(path), "--at", AT, "--no-notify")

    assert out.exit_code == 0, out.output
    assert "budgets.yaml: 1 added, 0 updated, 0 removed, 0 unchanged" in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  - team: vision\n    limit_co2e_kg: 5\n")
    refused = cli(ledger_url, "check", "--file", str(bad))
    assert refused.exit_code == 1 and "budget 1: a team budget needs `period" in refused.output


def test_lifecycle_prints_totals_and_per_request_co2e_over_time(
    ledger: Engine, ledger_url: str
) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=10.0, start=NOW, model="fraud")
        add_window(conn, facility_kwh=1.0, start=NOW, requests=1000)

    out = CliRunner().invoke(
        app, ["budgets", "lifecycle", "fraud", "--by", "day", "--ledger-url", ledger_url]
    )
    as_json = CliRunner().invoke(
        app, ["budgets", "lifecycle", "fraud", "--json", "--ledger-url", ledger_url]
    )

    assert out.exit_code == 0, out.output
    assert "fraud: 4.18 kg CO2e (location-based) = training 3.8 kg (1 runs, 0 failed)" in out.output
    assert "0.38 g/request fully loaded" in out.output and "2024-06-20" in out.output
    data = json.loads(as_json.output)
    assert data["inference_requests"] == 1000 and data["timeline"][0]["period"] == "2024-06"
