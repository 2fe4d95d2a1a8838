"""Threshold alerts: recorded once per crossing, POSTed to a webhook (a loopback HTTP server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from budget_helpers import NOW, add_run
from sqlalchemy import Engine, text

from carbonledger.budgets import check_budgets, make_spec, set_budget


class Hook:
    """A loopback webhook that records the JSON bodies it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Type"] == "application/json"
                if hook.status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0KEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def alerts(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT * FROM budget_alerts ORDER BY budget_id, threshold_pct"))
        )


def test_each_threshold_crossing_fires_once(ledger: Engine, hook: Hook) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="fraud")  # 38 kg
        set_budget(conn, spec=make_spec(model="fraud", limit_co2e_kg=60.0))  # 63%

    first = check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)
    again = check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=60.0, start=NOW, model="fraud")  # 60.8 kg: 101%
    third = check_budgets(ledger, now=NOW + timedelta(hours=1), webhook_url=hook.url)

    assert (first.alerts_new, first.alerts_sent, again.alerts_new, again.alerts_sent) == (
        1,
        1,
        0,
        0,
    )
    assert (third.alerts_new, third.alerts_sent) == (3, 3)
    assert [b["threshold_pct"] for b in hook.bodies] == [50.0, 75.0, 90.0, 100.0]
    body = hook.bodies[0]
    assert body["event"] == "carbon_budget_threshold" and body["status"] == "warning"
    assert body["budget"] == {
        "id": 1,
        "scope": "model",
        "name": "fraud",
        "period": "lifecycle",
        "basis": "location",
        "limit_co2e_kg": 60.0,
        "thresholds_pct": [50.0, 75.0, 90.0, 100.0],
        "origin": "cli",
    }
    assert body["used_co2e_kg"] == pytest.approx(38.0)
    assert body["used_pct"] == pytest.approx(38 / 60 * 100)
    assert "threshold 50% crossed" in body["text"] and "model fraud" in body["text"]
    assert hook.bodies[-1]["status"] == "exceeded"
    rows = alerts(ledger)
    assert [(r.threshold_pct, r.delivery) for r in rows] == [
        (50.0, "sent"),
        (75.0, "sent"),
        (90.0, "sent"),
        (100.0, "sent"),
    ]
    assert str(rows[0].period_start)[:10] == "1970-01-01"  # a lifecycle budget's one period


def test_a_raised_limit_rearms_the_thresholds_it_uncrosses(ledger: Engine, hook: Hook) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="m")  # 38 kg
        set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=40.0))  # 95%
    check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)
    with ledger.begin() as conn:
        set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=50.0))  # 76%
    check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)
    assert [r.threshold_pct for r in alerts(ledger)] == [50.0, 75.0]
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=30.0, start=NOW, model="m")  # 49.4 kg: 98.8%

    report = check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)

    assert report.alerts_new == 1
    assert [b["threshold_pct"] for b in hook.bodies] == [50.0, 75.0, 90.0, 90.0]


def test_a_team_budget_alerts_again_in_its_next_period(ledger: Engine, hook: Hook) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, team="vision")
        add_run(conn, facility_kwh=100.0, start=NOW + timedelta(days=30), team="vision")
        set_budget(conn, spec=make_spec(team="vision", period="month", limit_co2e_kg=70.0))

    check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)
    check_budgets(ledger, now=NOW + timedelta(days=31), webhook_url=hook.url, write_tags=False)

    starts = [str(r.period_start)[:10] for r in alerts(ledger)]
    assert starts == ["2024-06-01", "2024-07-01"]
    assert [b["period_start"][:10] for b in hook.bodies] == ["2024-06-01", "2024-07-01"]


def test_a_failed_delivery_is_recorded_and_retried_at_the_next_check(
    ledger: Engine, hook: Hook
) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="m")
        set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=70.0))
    hook.status = 500

    failed = check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)

    assert (failed.alerts_new, failed.alerts_sent, failed.alerts_failed) == (1, 0, 1)
    [row] = alerts(ledger)
    assert row.delivery == "failed" and "HTTP 500" in row.detail
    assert "T0KEN" not in " ".join(failed.warnings)  # the URL (a secret) never shows
    hook.status = 200

    retried = check_budgets(ledger, now=NOW, webhook_url=hook.url, write_tags=False)

    assert (retried.alerts_new, retried.alerts_sent) == (0, 1)
    assert alerts(ledger)[0].delivery == "sent" and len(hook.bodies) == 1


def test_without_a_webhook_alerts_are_still_recorded(
    ledger: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="m")
        set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=70.0))

    report = check_budgets(ledger, now=NOW, write_tags=False)

    assert report.alerts_new == 1 and report.alerts_sent == 0
    assert [r.delivery for r in alerts(ledger)] == ["none"]


def test_the_webhook_url_comes_from_the_secret_setting(
    ledger: Engine, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_WEBHOOK_URL", hook.url)
    get_settings.cache_clear()
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="m")
        set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=70.0))

    check_budgets(ledger, now=NOW, write_tags=False)

    assert len(hook.bodies) == 1
    assert "T0KEN" not in repr(get_settings())
