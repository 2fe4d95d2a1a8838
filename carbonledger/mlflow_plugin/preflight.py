"""Budget pre-flight: a run working toward a model whose carbon budget is exceeded.

When a metered run is created with ``carbon.model_name`` (a run tag, or
``CARBONLEDGER_MODEL_NAME``), :func:`check_budget` reads the budget status that
``carbonledger budgets check`` and the ETL write back on the MLflow registered model
(``carbon.budget_status``, ``carbon.budget_used_pct``...). The plugin never talks to the
ledger. With ``CARBONLEDGER_BUDGET_POLICY=warn`` (default) an exceeded budget logs a warning
and tags the run; with ``block`` the run is ended as ``FAILED`` and ``create_run`` raises
:class:`~carbonledger.errors.BudgetExceededError`, whose message names the budget and how to
raise it.

Cheap: one registry read per model and tracking URI every ``CACHE_TTL_S`` per process (no
retries, ``CARBONLEDGER_FLUSH_TIMEOUT_S`` at most); failures are cached too, so a registry
that is down costs one timeout per TTL, never one per run. Only the deliberate block raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from carbonledger.contract import (
    TAG_BUDGET_BLOCKED,
    TAG_BUDGET_LIMIT_CO2E_KG,
    TAG_BUDGET_ORIGIN,
    TAG_BUDGET_STATUS,
    TAG_BUDGET_USED_CO2E_KG,
    TAG_BUDGET_USED_PCT,
    TAG_BUDGET_WARNING,
    TAG_MODEL_NAME,
)
from carbonledger.errors import BudgetExceededError
from carbonledger.mlflow_plugin.safety import report_once
from carbonledger.mlflow_plugin.state import plugin_state

CACHE_TTL_S = 300.0

logger = logging.getLogger("carbonledger.mlflow_plugin")


@dataclass(frozen=True, slots=True)
class BudgetInfo:
    """A registered model's budget status as its tags say."""

    status: str
    used_pct: str
    used_kg: str
    limit_kg: str
    origin: str


def _fetch_tags(tracking_uri: str, model_name: str) -> dict[str, str] | None:
    """The registered model's tags, ``None`` when no such model; raises on failure."""
    from carbonledger.mlflow_plugin.transport import TrackingClient

    return TrackingClient(tracking_uri).registered_model_tags(model_name)


def budget_info(tracking_uri: str, model_name: str) -> BudgetInfo | None:
    """The model's budget status (cached ``CACHE_TTL_S``); ``None`` when unknown."""
    key = (tracking_uri, model_name)
    now = time.monotonic()
    state = plugin_state()
    with state.lock:
        hit = state.budget_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    info = None
    try:
        tags = _fetch_tags(tracking_uri, model_name)
        if tags and tags.get(TAG_BUDGET_STATUS):
            info = BudgetInfo(
                status=tags[TAG_BUDGET_STATUS],
                used_pct=tags.get(TAG_BUDGET_USED_PCT, "?"),
                used_kg=tags.get(TAG_BUDGET_USED_CO2E_KG, "?"),
                limit_kg=tags.get(TAG_BUDGET_LIMIT_CO2E_KG, "?"),
                origin=tags.get(TAG_BUDGET_ORIGIN, "cli"),
            )
    except Exception as exc:  # noqa: BLE001 - an unreachable registry never stops a run
        report_once("budget pre-flight (registry read)", exc)
    with state.lock:
        state.budget_cache[key] = (now + CACHE_TTL_S, info)
    return info


def message(model_name: str, info: BudgetInfo, *, blocked: bool) -> str:
    """What the user reads: the budget, how far over, and how to raise it."""
    if info.origin == "yaml":
        how = (
            f"raise limit_co2e_kg of `model: {model_name}` in budgets.yaml "
            "(CARBONLEDGER_BUDGETS_PATH), then run `carbonledger budgets check`"
        )
    else:
        how = (
            f"raise it with `carbonledger budgets set --model {model_name} --limit-kg N`, "
            "then `carbonledger budgets check`"
        )
    text = (
        f"carbon budget of model {model_name!r} is exceeded: {info.used_pct}% used "
        f"({info.used_kg} of {info.limit_kg} kg CO2e, lifecycle, as of the last budget check); "
        f"{how}"
    )
    if blocked:
        text += "; or let runs proceed with a warning: CARBONLEDGER_BUDGET_POLICY=warn"
    return text


def check_budget(run_id: str, tracking_uri: str, tags: Mapping[str, str]) -> None:
    """The pre-flight the plugin runs on each new metered run (see the module docstring).

    Raises:
        BudgetExceededError: the model's budget is exceeded and the policy is ``block``.
    """
    from carbonledger.settings import get_settings

    settings = get_settings()
    model_name = tags.get(TAG_MODEL_NAME) or settings.model_name
    if not model_name:
        return
    info = budget_info(tracking_uri, model_name)
    if info is None:
        return
    run_tags = {TAG_BUDGET_STATUS: info.status}
    if info.status != "exceeded":
        _tag(tracking_uri, run_id, run_tags)
        return
    blocked = settings.budget_policy == "block"
    text = message(model_name, info, blocked=blocked)
    if blocked:
        _refuse(tracking_uri, run_id, {**run_tags, TAG_BUDGET_BLOCKED: "true"})
        raise BudgetExceededError(text)
    logger.warning("carbonledger: %s", text)
    _tag(tracking_uri, run_id, {**run_tags, TAG_BUDGET_WARNING: text[:5000]})


def _tag(tracking_uri: str, run_id: str, tags: dict[str, str]) -> None:
    from carbonledger.mlflow_plugin import flusher
    from carbonledger.mlflow_plugin.journal import Entry
    from carbonledger.mlflow_plugin.transport import now_ms

    flusher.submit(Entry(tracking_uri, run_id, [], tags, now_ms()))


def _refuse(tracking_uri: str, run_id: str, tags: dict[str, str]) -> None:
    """Stop metering the run and end it FAILED, tagged as blocked (never raises)."""
    from carbonledger.mlflow_plugin import flusher
    from carbonledger.mlflow_plugin.journal import Entry
    from carbonledger.mlflow_plugin.registry import registry
    from carbonledger.mlflow_plugin.transport import now_ms

    try:
        registry().end(run_id)
        ts = now_ms()
        flusher.deliver(Entry(tracking_uri, run_id, [], tags, ts, "FAILED", ts))
    except Exception as exc:  # noqa: BLE001
        report_once("budget pre-flight (ending the refused run)", exc)
