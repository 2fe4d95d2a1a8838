"""One budget pass: sync ``budgets.yaml``, evaluate, record and post alerts, write status tags.

``carbonledger budgets check`` and the ETL (after each load) both run :func:`check_budgets`.
The ledger part (sync, evaluation, alert rows) is one transaction; webhook posts and MLflow
tag writes happen after it commits and never fail the pass: their errors are reported in
``CheckReport.warnings``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from carbonledger.budgets.alerts import mark_delivery, post_webhook, record_alerts
from carbonledger.budgets.definitions import BudgetSpec, SyncResult, load_budget_file, sync_budgets
from carbonledger.budgets.evaluate import BudgetStatus, evaluate_budgets, exit_code
from carbonledger.budgets.writeback import ClientFactory, WritebackResult, write_status_tags

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CheckReport:
    """What a budget pass found and did."""

    statuses: list[BudgetStatus]
    sync: SyncResult | None = None
    alerts_new: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    tags: WritebackResult | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 all within, 1 a threshold crossed, 2 a budget exceeded."""
        return exit_code(self.statuses)


def check_budgets(
    engine: Engine,
    *,
    now: datetime | None = None,
    budgets_path: Path | None = None,
    specs: list[BudgetSpec] | None = None,
    notify: bool = True,
    webhook_url: str | None = None,
    write_tags: bool = True,
    client_factory: ClientFactory | None = None,
) -> CheckReport:
    """Run one budget pass over the ledger.

    Args:
        engine: the ledger (at the newest schema).
        now: evaluation time (default: now, UTC).
        budgets_path: ``budgets.yaml`` to sync first (ignored when ``specs`` is given).
        specs: already-parsed budget definitions to sync first.
        notify: record crossings and post them to ``webhook_url``.
        webhook_url: where to POST alerts (default: ``CARBONLEDGER_WEBHOOK_URL``).
        write_tags: write ``carbon.budget_*`` tags on the registered models.
        client_factory: ``uri -> MlflowClient`` (tests).

    Raises:
        ConfigError: ``budgets_path`` is unreadable or invalid (nothing was changed).
    """
    from carbonledger.settings import get_settings

    now = (now or datetime.now(UTC)).astimezone(UTC)
    if specs is None and budgets_path is not None:
        specs = load_budget_file(budgets_path)
    if notify and webhook_url is None:
        secret = get_settings().webhook_url
        webhook_url = secret.get_secret_value() if secret is not None else None
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        sync = sync_budgets(conn, specs=specs, now=now) if specs is not None else None
        statuses = evaluate_budgets(conn, now=now)
        recorded = (
            record_alerts(conn, statuses, now=now, webhook=bool(webhook_url)) if notify else None
        )
    report = CheckReport(statuses=statuses, sync=sync, alerts_new=recorded.new if recorded else 0)
    if webhook_url and recorded is not None:
        for alert in recorded.to_send:
            try:
                post_webhook(webhook_url, alert.payload)
                ok, detail = True, None
            except OSError as exc:
                ok, detail = False, str(exc)
                report.warnings.append(f"budget alert not delivered (retried next check): {exc}")
            with engine.begin() as conn:
                mark_delivery(conn, alert_id=alert.alert_id, ok=ok, detail=detail)
            report.alerts_sent += ok
            report.alerts_failed += not ok
    if write_tags:
        with engine.connect() as conn:
            kwargs = {"client_factory": client_factory} if client_factory else {}
            report.tags = write_status_tags(conn, statuses, **kwargs)
        report.warnings.extend(report.tags.errors)
    for warning in report.warnings:
        log.warning("budgets: %s", warning)
    return report
