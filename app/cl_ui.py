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
    """The read-only reporting engine on CARBONLEDGER_LEDGER_URL."""
    return _engine(get_settings().ledger_url.get_secret_value())


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
    url = get_settings().ledger_url.get_secret_value()
    key = f"{fn.__module__}.{fn.__qualname__}"
    return _call(url, key, first, last, tuple(sorted(kwargs.items())), fn)


def options() -> dict[str, list[str]]:
    """Months, teams and models in the ledger."""
    return q(queries.filter_options, period=False)


def _pick(label: str, choices: list[str], state_key: str, default: str) -> str:
    current = st.session_state.get(state_key, default)
    index = choices.index(current) if current in choices else choices.index(default)
    value = st.sidebar.selectbox(label, choices, index=index)
    st.session_state[state_key] = value
    return value


def filters(*, team: bool = True, model: bool = False) -> tuple[str | None, str | None]:
    """Sidebar filters shared across pages (kept in st.session_state); stops when empty."""
    opts = options()
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


def table(df: pd.DataFrame, name: str) -> None:
    """Show a table with a CSV download button."""
    st.dataframe(df, hide_index=True, width="stretch")
    st.download_button(
        f"Download {name} (CSV)",
        df.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"dl_{name}",
    )


def kg(value: float) -> str:
    """A mass in kg CO2e, to the gram."""
    return f"{value:,.3f} kg"


def kwh(value: float | None) -> str:
    """An energy in kWh, short enough for a metric tile (4 decimals below 1 kWh)."""
    v = value or 0.0
    return f"{v:,.1f} kWh" if abs(v) >= 100 else f"{v:,.2f} kWh" if abs(v) >= 1 else f"{v:.4f} kWh"


def pct(value: float) -> str:
    """A share 0..1 as a percentage."""
    return f"{100.0 * value:.1f} %"
