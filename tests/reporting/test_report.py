"""The period report: totals equal the views, every format renders, bad input is explained."""

from __future__ import annotations

import pytest
from expected import totals as expected_totals
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.errors import LedgerError, ReportingError
from carbonledger.reporting import build_report, parse_period, render, reporting_engine
from carbonledger.reporting.runs import pareto_front


def test_report_totals_equal_the_views(seeded: Engine) -> None:
    period = parse_period("2024-Q2")
    report = build_report(seeded, period=period)
    with seeded.connect() as conn:
        view = conn.execute(
            text(
                "SELECT SUM(co2e_location_kg), SUM(co2e_market_kg), "
                "SUM(estimated_co2e_location_kg) FROM v_team_monthly "
                "WHERE month BETWEEN '2024-04' AND '2024-06'"
            )
        ).one()
    assert report.totals.co2e_location_kg == pytest.approx(view[0], abs=1e-9)
    assert report.totals.co2e_market_kg == pytest.approx(view[1], abs=1e-9)
    assert report.totals.estimated_co2e_location_kg == pytest.approx(view[2], abs=1e-9)
    want = expected_totals(seeded, first="2024-04", last="2024-06")
    assert report.totals.co2e_location_kg == pytest.approx(want["loc_kg"], abs=1e-9)
    by_team = report.sections["By team"]
    assert by_team.co2e_location_kg.sum() == pytest.approx(want["loc_kg"], abs=1e-9)
    scope2 = report.sections["Scope 2 by zone (location- and market-based)"]
    assert scope2.co2e_market_kg.sum() == pytest.approx(want["mkt_kg"], abs=1e-9)


def test_report_cli_formats(seeded: Engine, ledger_url: str, tmp_path) -> None:  # noqa: ANN001
    runner = CliRunner()
    md = runner.invoke(app, ["report", "--period", "2024", "--ledger-url", ledger_url])
    assert md.exit_code == 0, md.output
    total = build_report(seeded, period=parse_period("2024")).totals.co2e_location_kg
    assert "# Carbon report 2024" in md.output and f"{total:.6f}".rstrip("0") in md.output
    assert "Electricity Maps" in md.output and "ppa-windpark-2024" in md.output
    out = tmp_path / "r.html"
    html = runner.invoke(
        app,
        [
            "report",
            "--period",
            "2024-07",
            "--format",
            "html",
            "-o",
            str(out),
            "--ledger-url",
            ledger_url,
        ],
    )
    assert html.exit_code == 0 and out.read_text().startswith("<!doctype html>")
    csv = runner.invoke(
        app, ["report", "--period", "2024-Q3", "--format", "csv", "--ledger-url", ledger_url]
    )
    assert csv.exit_code == 0 and "# By team\nteam,co2e_location_kg" in csv.output
    bad = runner.invoke(app, ["report", "--period", "2024-13", "--ledger-url", ledger_url])
    assert bad.exit_code == 1 and "YYYY-Qn" in bad.output
    fmt = runner.invoke(
        app, ["report", "--period", "2024", "--format", "pdf", "--ledger-url", ledger_url]
    )
    assert fmt.exit_code == 1 and "md, csv, html" in fmt.output


def test_reporting_engine_is_read_only(seeded: Engine, ledger_url: str) -> None:
    engine = reporting_engine(ledger_url)
    with pytest.raises(Exception, match="(?i)read.only|readonly|query_only|attempt to write"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM runs"))
    engine.dispose()
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM runs")).scalar() == 60


def test_reporting_engine_explains_an_unmigrated_ledger(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(LedgerError, match="carbonledger db upgrade"):
        reporting_engine(f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.parametrize(
    ("text_", "first", "last"),
    [
        ("2026", "2026-01", "2026-12"),
        ("2026-Q3", "2026-07", "2026-09"),
        ("2026-02", "2026-02", "2026-02"),
    ],
)
def test_periods(text_: str, first: str, last: str) -> None:
    p = parse_period(text_)
    assert (p.first_month, p.last_month) == (first, last)
    assert p.months[0] == first and p.months[-1] == last


@pytest.mark.parametrize("bad", ["26", "2026-Q5", "2026-00", "2026-13", "Q3-2026"])
def test_bad_periods_name_the_forms(bad: str) -> None:
    with pytest.raises(ReportingError, match="YYYY-MM"):
        parse_period(bad)


def test_pareto_front() -> None:
    co2e = [1.0, 2.0, 3.0, 2.5, 0.5]
    acc = [0.7, 0.8, 0.75, 0.9, 0.6]
    assert pareto_front(co2e, acc, True) == [True, True, False, True, True]
    assert pareto_front(co2e, acc, False) == [False, False, False, False, True]


def test_render_rejects_unknown_format(seeded: Engine) -> None:
    with pytest.raises(ReportingError, match="md, csv, html"):
        render(build_report(seeded, period=parse_period("2024")), "pdf")


def test_report_where_to_cut_is_the_advice(seeded: Engine) -> None:
    from carbonledger.advise import advise

    period = parse_period("2024")
    report = build_report(seeded, period=period, top=5)
    cut = report.sections["Where to cut"]
    want = advise(seeded, since=period.start)[:5]
    assert list(cut["Kind"]) == [r.kind for r in want]
    assert list(cut["Saving (kg CO2e/yr)"]) == pytest.approx(
        [r.saving_co2e_kg_per_year for r in want]
    )
    failed = [r for r in want if r.kind == "failed-training"]
    assert failed and failed[0].saving_co2e_kg_per_year > 0  # run0000, run0011, ... failed
    assert "## Where to cut" in render(report, "md")
