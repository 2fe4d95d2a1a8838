"""Shared UI helpers of the carbonledger app: the engine, cached queries, filters, downloads.

Data access goes only through ``carbonledger.reporting`` functions, cached with
``st.cache_data``; the engine is read-only (see carbonledger/reporting/db.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from carbonledger.reporting import months_between, queries, reporting_engine
from carbonledger.settings import get_settings

TTL_S = 300
ALL = "All"


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Any:
    return reporting_engine(url)


def engine() -> Any:
    """The read-only reporting engine on CARBONLEDGER_READ_DATABASE_URL (else the ledger)."""
    return _engine(get_settings().read_url())


def reads_replica() -> bool:
    """Whether the app reads a database apart from the ledger URL (a replica)."""
    settings = get_settings()
    return settings.read_url() != settings.ledger_url.get_secret_value()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _call(
    url: str,
    key: str,
    first: str | None,
    last: str | None,
    kwargs: tuple[tuple[str, Any], ...],
    _fn: Callable[..., Any],
) -> Any:
    # ``key`` (the function's qualified name) only keys the cache; ``_fn`` is not hashed.
    params = dict(kwargs)
    if first is not None and last is not None:
        params["period"] = months_between(first, last)
    return _fn(_engine(url), **params)


def q(fn: Callable[..., Any], *, period: bool = True, **kwargs: Any) -> Any:
    """Call a ``carbonledger.reporting`` query function on the ledger, cached for TTL_S.

    ``period=True`` passes the sidebar's months as ``period``. The function is called
    directly (``q(queries.totals, team=team)``), so tools can follow every call.
    """
    first, last = (st.session_state.cl_first, st.session_state.cl_last) if period else (None, None)
    url = get_settings().read_url()
    key = f"{fn.__module__}.{fn.__qualname__}"
    return _call(url, key, first, last, tuple(sorted(kwargs.items())), fn)


def options() -> dict[str, list[str]]:
    """Months, teams and models in the ledger."""
    return q(queries.filter_options, period=False)


# Filters travel in the URL (``?from=2024-06&to=2024-09&team=nlp``): a link opens the same view.
URL_KEYS = {"cl_first": "from", "cl_last": "to", "cl_team": "team", "cl_model": "model"}


def _pick(label: str, choices: list[str], state_key: str, default: str) -> str:
    from_url = st.query_params.get(URL_KEYS[state_key])
    if from_url in choices and f"{state_key}_url_read" not in st.session_state:
        st.session_state[state_key] = from_url
    st.session_state[f"{state_key}_url_read"] = True
    current = st.session_state.get(state_key, default)
    index = choices.index(current) if current in choices else choices.index(default)
    value = st.sidebar.selectbox(label, choices, index=index)
    st.session_state[state_key] = value
    if value == default:
        st.query_params.pop(URL_KEYS[state_key], None)
    else:
        st.query_params[URL_KEYS[state_key]] = value
    return value


def filters(*, team: bool = True, model: bool = False) -> tuple[str | None, str | None]:
    """Sidebar filters shared across pages (kept in st.session_state); stops when empty.

    The sidebar also says how current the figures are (a replica may be behind the ledger).
    """
    from carbonledger.reporting.freshness import freshness

    opts = options()
    st.sidebar.caption(q(freshness, period=False, replica=reads_replica()).describe())
    months = opts["months"]
    if not months:
        st.info(
            "The ledger has no data yet. Load runs with `carbonledger etl --mlflow-uri ...` "
            "(after `carbonledger db upgrade`), then reload this page."
        )
        st.stop()
    first = _pick("From month", months, "cl_first", months[0])
    last_choices = [m for m in months if m >= first]
    last = _pick("To month", last_choices, "cl_last", last_choices[-1])
    st.session_state.cl_first, st.session_state.cl_last = first, last
    chosen_team = chosen_model = None
    if team:
        value = _pick("Team", [ALL, *opts["teams"]], "cl_team", ALL)
        chosen_team = None if value == ALL else value
    if model:
        value = _pick("Model", [ALL, *opts["models"]], "cl_model", ALL)
        chosen_model = None if value == ALL else value
    return chosen_team, chosen_model


# Column names as people read them: a known name, else words with the unit from the suffix.
NAMES = {
    "co2e_location_kg": "CO2e location-based (kg CO2e)",
    "co2e_market_kg": "CO2e market-based (kg CO2e)",
    "co2e_location_yearly_kg": "CO2e location-based, yearly factors (kg CO2e)",
    "run_name": "Run",
    "run_id": "Run ID",
    "model_name": "Model",
    "model_version": "Version",
    "experiment": "Experiment",
    "saving_co2e_kg_per_year": "Saving (kg CO2e/yr)",
    "saving_energy_kwh_per_year": "Saving (kWh/yr)",
    "metric_value": "Metric value",
    "on_front": "On the Pareto front",
    "any_component_estimated": "Any component estimated",
    "market_is_location_fallback": "Market = location fallback",
    "co2e_g_per_1000_requests": "CO2e (g per 1,000 requests)",
    "co2e_location_kg_per_1000_requests": "CO2e location-based (kg per 1,000 requests)",
    "wh_per_request": "Energy (Wh per request)",
    "co2e_location_g_per_request": "CO2e location-based (g per request)",
    "used_pct": "Used (%)",
}
UNITS = (
    ("_g_per_kwh", "g CO2e/kWh"),
    ("_kg_per_year", "kg CO2e/yr"),
    ("_kwh_per_year", "kWh/yr"),
    ("_g_per_request", "g CO2e per request"),
    ("_wh_per_request", "Wh per request"),
    ("_kwh", "kWh"),
    ("_kg", "kg CO2e"),
    ("_pct", "%"),
    ("_ms", "ms"),
    ("_gb", "GB"),
    ("_w", "W"),
    ("_s", "s"),
)
WORDS = {
    "co2e": "CO2e",
    "sci": "SCI",
    "pue": "PUE",
    "gpu": "GPU",
    "cpu": "CPU",
    "ram": "RAM",
    "id": "ID",
}


def human(column: str) -> str:
    """A column name for people: ``facility_energy_kwh`` -> ``Facility energy (kWh)``."""
    if column in NAMES:
        return NAMES[column]
    base, unit = column, ""
    for suffix, label in UNITS:
        if column.endswith(suffix):
            base, unit = column[: -len(suffix)], f" ({label})"
            break
    words = [WORDS.get(w, w) for w in base.split("_") if w]
    text = " ".join(words) or column
    return text[:1].upper() + text[1:] + unit


def labels(df: pd.DataFrame) -> dict[str, str]:
    """Plotly ``labels=`` for every column of ``df`` (axis and legend titles)."""
    return {str(c): human(str(c)) for c in df.columns}


def table(df: pd.DataFrame, name: str) -> None:
    """Show a table, columns named for people, with a CSV download button."""
    shown = df.rename(columns=labels(df))
    # Numbers rounded for reading (the CSV keeps every digit): 3 decimals, thousands grouped.
    numbers = {
        c: st.column_config.NumberColumn(format="localized")
        for c in shown.columns
        if pd.api.types.is_float_dtype(shown[c])
    }
    st.dataframe(shown, hide_index=True, width="stretch", column_config=numbers)
    st.download_button(
        f"Download {name.replace('_', ' ')} (CSV)",
        shown.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"dl_{name}",
    )


def kg(value: float) -> str:
    """A mass for reading: kg CO2e to two decimals, t CO2e from 1,000 kg."""
    if abs(value) >= 1000:
        return f"{value / 1000:,.2f} t CO2e"
    return f"{value:,.2f} kg CO2e"


def kwh(value: float | None) -> str:
    """An energy short enough for a metric tile: MWh from 1,000 kWh, 4 decimals below 1."""
    v = value or 0.0
    if abs(v) >= 1000:
        return f"{v / 1000:,.2f} MWh"
    return f"{v:,.1f} kWh" if abs(v) >= 100 else f"{v:,.2f} kWh" if abs(v) >= 1 else f"{v:.4f} kWh"


def pct(value: float) -> str:
    """A share 0..1 as a percentage."""
    return f"{100.0 * value:.1f} %"


def scopes(*, team: str | None = None, model: str | None = None, period: bool = True) -> None:
    """Operational CO2e (Scope 2) with its range and embodied (Scope 3) beside it, apart."""
    from carbonledger.reporting import embodied
    from carbonledger.uncertainty import format_range_auto

    t = q(embodied.total_with_range, period=period, team=team, model=model)
    op, em = t.operational, t.embodied
    lifetime = get_settings().embodied_lifetime_years
    cols = st.columns(2)
    cols[0].metric(
        "Operational CO2e with range (Scope 2)",
        format_range_auto(op.value_kg, op.low_kg, op.high_kg),
        help="Location-based; the range combines each method's documented uncertainty.",
    )
    cols[1].metric(
        "Embodied CO2e (Scope 3)",
        kg(em.value_kg),
        help=f"Manufacturing share of the hardware reserved, {lifetime:g}-year lifetime; "
        "not included in the Scope 2 figures.",
    )
    st.caption(
        f"Scope 2 (location-based): {format_range_auto(op.value_kg, op.low_kg, op.high_kg)}. "
        f"Scope 3 embodied, shown apart and never added to Scope 2: "
        f"{format_range_auto(em.value_kg, em.low_kg, em.high_kg)} over a {lifetime:g}-year "
        f"lifetime; {t.records_without_embodied:,} of {t.records:,} runs and serving windows "
        "have no embodied figure (unknown hardware; the Methodology page says why)."
    )
