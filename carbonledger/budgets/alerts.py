"""Threshold alerts: recorded once per crossing in ``budget_alerts``, posted to a webhook.

A crossing is a threshold the budget's usage reached in its current period (a lifecycle
budget has one period). It is inserted with ``ON CONFLICT DO NOTHING`` on
``(budget_id, threshold_pct, period_start)``, so concurrent checks (the ETL and a CI job)
record and post it once. A threshold the usage falls back below (a raised limit, a restated
factor) is re-armed: its row is removed and the next crossing fires again.

The webhook (``CARBONLEDGER_WEBHOOK_URL``, a secret) gets one ``POST`` of JSON per crossing;
the ``text`` field makes it readable as a Slack/Teams/Mattermost incoming webhook. Rows are
committed as ``pending`` before the POST; ``pending`` and ``failed`` ones are retried at the
next check.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from carbonledger.budgets.evaluate import BudgetStatus
from carbonledger.ledger.models import BudgetAlert

WEBHOOK_TIMEOUT_S = 5.0
EVENT = "carbon_budget_threshold"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :func:`record_alerts` did: crossings newly recorded, and the alerts to post."""

    new: int
    to_send: list[AlertToSend]


@dataclass(frozen=True, slots=True)
class AlertToSend:
    """A recorded crossing waiting for the webhook: the alert row id and its JSON payload."""

    alert_id: int
    payload: dict[str, Any]


def record_alerts(
    conn: Connection, statuses: list[BudgetStatus], *, now: datetime, webhook: bool
) -> Recorded:
    """Record new crossings, re-arm uncrossed thresholds; say what to post.

    Args:
        conn: a connection in a transaction (commit before posting).
        statuses: ``evaluate_budgets`` output.
        now: the evaluation time (``fired_at`` of new alerts).
        webhook: whether a webhook is configured (new rows are ``pending``, else ``none``).

    Returns:
        The number of new crossings, and (when ``webhook`` is set) the alerts to post: the
        new ones plus earlier ``pending``/``failed`` ones.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    by_budget = {s.budget.id: s for s in statuses}
    new = 0
    for s in statuses:
        conn.execute(
            delete(BudgetAlert).where(
                BudgetAlert.budget_id == s.budget.id,
                BudgetAlert.period_start == s.alert_period_start,
                BudgetAlert.threshold_pct > s.used_pct,
            )
        )
        for pct in s.crossed_pct:
            inserted = conn.execute(
                dialect.insert(BudgetAlert)
                .values(
                    budget_id=s.budget.id,
                    threshold_pct=pct,
                    period_start=s.alert_period_start,
                    fired_at=now,
                    co2e_kg=s.used_co2e_kg,
                    used_pct=s.used_pct,
                    limit_co2e_kg=s.budget.limit_co2e_kg,
                    delivery="pending" if webhook else "none",
                )
                .on_conflict_do_nothing(
                    index_elements=["budget_id", "threshold_pct", "period_start"]
                )
                .returning(BudgetAlert.id)  # rowcount is -1 on psycopg: count what returns
            ).first()
            new += inserted is not None
    if not webhook or not by_budget:
        return Recorded(new, [])
    rows = conn.execute(
        select(BudgetAlert)
        .where(
            BudgetAlert.delivery.in_(("pending", "failed")),
            BudgetAlert.budget_id.in_(list(by_budget)),
        )
        .order_by(BudgetAlert.budget_id, BudgetAlert.threshold_pct)
    ).all()
    return Recorded(new, [AlertToSend(r.id, payload(by_budget[r.budget_id], r)) for r in rows])


def payload(status: BudgetStatus, alert: Any) -> dict[str, Any]:
    """The webhook's JSON for one crossing (``alert`` is a ``budget_alerts`` row)."""
    b = status.budget
    used_pct = float(alert.used_pct if alert.used_pct is not None else status.used_pct)
    text = (
        f"carbon budget {b.label}: threshold {alert.threshold_pct:g}% crossed, "
        f"{used_pct:.1f}% used ({alert.co2e_kg:.3g} of {b.limit_co2e_kg:g} kg CO2e, "
        f"{b.basis}-based); projected exhaustion: {status.projection}"
    )
    return {
        "event": EVENT,
        "text": text,
        "budget": {
            "id": b.id,
            "scope": b.scope,
            "name": b.scope_name,
            "period": b.period,
            "basis": b.basis,
            "limit_co2e_kg": b.limit_co2e_kg,
            "thresholds_pct": list(b.thresholds_pct),
            "origin": b.origin,
        },
        "threshold_pct": float(alert.threshold_pct),
        "used_co2e_kg": float(alert.co2e_kg),
        "used_pct": used_pct,
        "status": status.status,
        "period_start": status.period_start.isoformat() if status.period_start else None,
        "period_end": status.period_end.isoformat() if status.period_end else None,
        "burn_rate_kg_per_day": status.burn_rate_kg_per_day,
        "projected_exhaustion": status.projection,
        "fired_at": _iso(alert.fired_at),
    }


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def post_webhook(url: str, body: dict[str, Any], *, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
    """POST ``body`` as JSON to ``url``.

    Raises:
        OSError: the endpoint is unreachable, times out or answers outside 2xx; the message
            never contains the URL (it often carries a token).
    """
    import urllib.error  # here: urllib.request (http.client, ssl) is for the rare alert
    import urllib.parse
    import urllib.request

    headers = {"Content-Type": "application/json", "User-Agent": "carbonledger"}
    raw, target = url, urllib.parse.urlsplit(url)
    if target.username is not None or target.password is not None:
        # urllib would take ``user:pass@host`` for a host name: send HTTP Basic instead.
        user, password = (urllib.parse.unquote(v or "") for v in (target.username, target.password))
        userinfo = f"{user}:{password}"
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
        host = target.netloc.rpartition("@")[2]
        url = urllib.parse.urlunsplit(target._replace(netloc=host))
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"the webhook answered HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise OSError(f"the webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        detail = str(reason).replace(raw, "<url>").replace(url, "<url>")
        raise OSError(f"the webhook is unreachable: {detail}") from None


def mark_delivery(conn: Connection, *, alert_id: int, ok: bool, detail: str | None) -> None:
    """Record how the webhook took one alert."""
    conn.execute(
        update(BudgetAlert)
        .where(BudgetAlert.id == alert_id)
        .values(delivery="sent" if ok else "failed", detail=detail)
    )
