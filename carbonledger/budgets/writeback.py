"""Budget status back on the MLflow registered models, where the plugin's pre-flight reads it.

For each model budget, every tracking source of the ledger that has a registered model of that
name gets the ``carbon.budget_*`` tags below (only the ones that changed are written). A model
whose budget was removed loses them. The plugin never talks to the ledger: these tags are how
a training run learns that its model is over budget (see ``mlflow_plugin/preflight.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from carbonledger.budgets.evaluate import BudgetStatus
from carbonledger.contract import (  # the names the plugin's pre-flight reads
    TAG_BUDGET_LIMIT_CO2E_KG,
    TAG_BUDGET_ORIGIN,
    TAG_BUDGET_PROJECTION,
    TAG_BUDGET_STATUS,
    TAG_BUDGET_USED_CO2E_KG,
    TAG_BUDGET_USED_PCT,
)
from carbonledger.ledger.engine import redact_uri
from carbonledger.ledger.models import RegisteredModel, TrackingSource

STATUS_TAGS = (
    TAG_BUDGET_STATUS,
    TAG_BUDGET_USED_PCT,
    TAG_BUDGET_USED_CO2E_KG,
    TAG_BUDGET_LIMIT_CO2E_KG,
    TAG_BUDGET_PROJECTION,
    TAG_BUDGET_ORIGIN,
)

ClientFactory = Callable[[str], Any]


@dataclass(slots=True)
class WritebackResult:
    """Tags written and removed, and one line per tracking source that failed."""

    written: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


def status_tags(status: BudgetStatus) -> dict[str, str]:
    """The registered-model tags of a model budget's status (rounded, so they change rarely)."""
    return {
        TAG_BUDGET_STATUS: status.status,
        TAG_BUDGET_USED_PCT: f"{status.used_pct:.1f}",
        TAG_BUDGET_USED_CO2E_KG: f"{status.used_co2e_kg:.4g}",
        TAG_BUDGET_LIMIT_CO2E_KG: f"{status.budget.limit_co2e_kg:g}",
        TAG_BUDGET_PROJECTION: status.projection,
        TAG_BUDGET_ORIGIN: status.budget.origin,
    }


def _open_client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def write_status_tags(
    conn: Connection,
    statuses: list[BudgetStatus],
    *,
    client_factory: ClientFactory = _open_client,
) -> WritebackResult:
    """Write the status tags of every model budget; remove them where no budget is left.

    Never raises for a tracking server that fails: the error is recorded per source and the
    other sources are still written.
    """
    result = WritebackResult()
    wanted = {s.budget.scope_name: status_tags(s) for s in statuses if s.budget.scope == "model"}
    rows = conn.execute(
        select(RegisteredModel.name, RegisteredModel.tags, TrackingSource.uri)
        .join(TrackingSource, TrackingSource.id == RegisteredModel.source_id)
        .where(TrackingSource.kind == "mlflow")
    ).all()
    work: dict[str, list[tuple[str, dict[str, str] | None]]] = {}
    for name, tags, uri in rows:
        if name in wanted:
            work.setdefault(uri, []).append((name, wanted[name]))
        elif TAG_BUDGET_STATUS in (tags or {}):
            work.setdefault(uri, []).append((name, None))
    for uri, models in sorted(work.items()):
        try:
            client = client_factory(uri)
            for name, tags in models:
                current = dict(client.get_registered_model(name).tags or {})
                if tags is None:
                    for key in STATUS_TAGS:
                        if key in current:
                            client.delete_registered_model_tag(name, key)
                            result.removed += 1
                    continue
                for key, value in tags.items():
                    if current.get(key) != value:
                        client.set_registered_model_tag(name, key, value)
                        result.written += 1
        except Exception as exc:  # noqa: BLE001 - one server down must not stop the others
            result.errors.append(
                f"{redact_uri(uri)}: cannot write budget tags ({type(exc).__name__}: {exc})"
            )
    return result
