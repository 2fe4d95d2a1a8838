"""The period report (``carbonledger report``) in Markdown, CSV or HTML.

Markdown for people, CSV for spreadsheets, HTML for the audit file; built from the same
query functions as the app.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine

from carbonledger import __version__
from carbonledger.errors import ReportingError
from carbonledger.reporting import advice, embodied, lifecycle, methodology, queries, timing_report
from carbonledger.reporting.freshness import Freshness, freshness
from carbonledger.reporting.periods import Period

FORMATS = ("md", "csv", "html")


@dataclass(slots=True)
class Report:
    """Figures of one period, each section a DataFrame."""

    period: Period
    totals: queries.Totals
    sections: dict[str, pd.DataFrame] = field(default_factory=dict)
    estimates: methodology.EstimateCounts | None = None
    freshness: Freshness | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def build_report(engine: Engine, *, period: Period, top: int = 10, replica: bool = False) -> Report:
    """Collect every figure of the period report.

    Args:
        engine: a reporting engine.
        period: the period reported.
        top: how many top emitting runs (and recommendations) to list.
        replica: ``engine`` reads a replica, not the ledger URL (the header says so).
    """
    t = queries.totals(engine, period=period)
    summary = pd.DataFrame(
        [
            ("Location-based CO2e (kg)", t.co2e_location_kg),
            ("Market-based CO2e (kg)", t.co2e_market_kg),
            ("Facility energy (kWh)", t.facility_energy_kwh),
            ("Training CO2e, location (kg)", t.training_co2e_location_kg),
            ("Inference CO2e, location (kg)", t.inference_co2e_location_kg),
            ("Measured CO2e, location (kg)", t.measured_co2e_location_kg),
            ("Estimated CO2e, location (kg)", t.estimated_co2e_location_kg),
            ("Estimated share (%)", 100.0 * t.estimated_share),
            ("Training runs", t.training_runs),
            ("Inference requests", t.inference_requests),
        ],
        columns=["figure", "value"],
    )
    summary = pd.concat([summary, _footprint_rows(engine, period)], ignore_index=True)
    report = Report(period=period, totals=t)
    report.sections = {
        "Summary": summary,
        "By team": queries.by_team(engine, period=period),
        "By model": queries.by_model(engine, period=period),
        "Scope 2 by zone (location- and market-based)": queries.scope2(engine, period=period),
        "Top emitting runs": queries.top_runs(engine, period=period, limit=top),
        "Where to cut": advice.where_to_cut(engine, period=period, top=top),
        **embodied_sections(engine, period=period),
        "Budgets": lifecycle.budgets(engine).drop(columns=["thresholds_pct"], errors="ignore"),
        timing_report.section_title(): timing_report.timing_section(engine, period=period),
        "Emission factors in use": methodology.factors_in_use(engine, period=period),
        "Formulas": pd.DataFrame(methodology.FORMULAS, columns=["quantity", "formula"]),
        "Defaults": pd.DataFrame(methodology.DEFAULTS, columns=["when", "default"]),
    }
    report.estimates = methodology.estimate_counts(engine, period=period)
    report.freshness = freshness(engine, replica=replica)
    return report


def _footprint_rows(engine: Engine, period: Period) -> pd.DataFrame:
    """Summary rows beside Scope 2: its range, and embodied CO2e (Scope 3) with its own."""
    f = embodied.total_with_range(engine, period=period)
    return pd.DataFrame(
        [
            ("Location-based CO2e, low end of range (kg)", f.operational.low_kg),
            ("Location-based CO2e, high end of range (kg)", f.operational.high_kg),
            ("Embodied CO2e, Scope 3, not in the figures above (kg)", f.embodied.value_kg),
            ("Embodied CO2e, low end of range (kg)", f.embodied.low_kg),
            ("Embodied CO2e, high end of range (kg)", f.embodied.high_kg),
            ("Records without an embodied figure", f.records_without_embodied),
        ],
        columns=["figure", "value"],
    )


def embodied_sections(engine: Engine, *, period: Period) -> dict[str, pd.DataFrame]:
    """The report's "embodied and SCI" sections: Scope 3 per team, SCI per model version."""
    return {
        "Embodied CO2e (Scope 3) by team": embodied.embodied_by_team(engine, period=period),
        "SCI per model version (per request, all time)": embodied.sci_by_version(engine),
    }


def render(report: Report, fmt: str) -> str:
    """Render ``report`` as ``md``, ``csv`` or ``html``.

    Raises:
        ReportingError: unknown format.
    """
    if fmt == "md":
        return _markdown(report)
    if fmt == "csv":
        return _csv(report)
    if fmt == "html":
        return _html(report)
    raise ReportingError(f"report format {fmt!r} is unknown: use one of {', '.join(FORMATS)}")


def _header(report: Report) -> list[str]:
    e = report.estimates
    lines = [
        f"Period {report.period.label} ({report.period.first_month} to "
        f"{report.period.last_month}, UTC), generated {report.generated_at:%Y-%m-%d %H:%M} UTC "
        f"by carbonledger {__version__}.",
    ]
    if e is not None:
        lines.append(
            f"Training runs: {e.runs}; with an estimated component: {e.runs_with_estimates}; "
            "unmetered: "
            f"{e.unmetered_runs}; at the world-default intensity: {e.world_default_runs}; "
            f"market-based falling back to location-based: {e.market_fallback_runs}."
        )
    if report.freshness is not None:
        lines.append(report.freshness.describe(report.generated_at))
    return lines


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_none_"
    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        out.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    return str(value).replace("|", "\\|")


def _markdown(report: Report) -> str:
    parts = [f"# Carbon report {report.period.label}", "", *_header(report), ""]
    for title, df in report.sections.items():
        parts += [f"## {title}", "", _md_table(df), ""]
    parts += ["## Data sources and licences", "", methodology.attribution_text()]
    return "\n".join(parts)


def _csv(report: Report) -> str:
    """One long table: section, then each row's columns as ``key=value`` pairs flattened."""
    buf = io.StringIO()
    for title, df in report.sections.items():
        buf.write(f"# {title}\n")
        df.to_csv(buf, index=False)
        buf.write("\n")
    return buf.getvalue()


def _html(report: Report) -> str:
    body = [f"<h1>Carbon report {html.escape(report.period.label)}</h1>"]
    body += [f"<p>{html.escape(line)}</p>" for line in _header(report)]
    for title, df in report.sections.items():
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(df.to_html(index=False, na_rep="", escape=True) if len(df) else "<p>none</p>")
    body.append("<h2>Data sources and licences</h2>")
    body.append(f"<pre>{html.escape(methodology.attribution_text())}</pre>")
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    style += "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Carbon report {html.escape(report.period.label)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
