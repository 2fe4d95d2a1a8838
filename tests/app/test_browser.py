"""A real ``streamlit run`` of the app, every page loaded in headless Debian chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import Engine

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "overview": "",
    "cut": "cut",
    "teams": "teams",
    "models": "models",
    "runs": "runs",
    "efficiency": "efficiency",
    "whatif": "whatif",
    "methodology": "methodology",
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_page_renders_without_exception(
    seeded: Engine, ledger_url: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """Screenshots go to tmp_path; ``--screenshots docs/img`` refreshes the README's."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: apt-get install -y chromium (make install-dev)")
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "CARBONLEDGER_LEDGER_URL": ledger_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("streamlit did not become healthy in 30 s")
                time.sleep(0.2)
        chosen = pytestconfig.getoption("--screenshots")
        out = pytestconfig.rootpath / chosen if chosen else tmp_path
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, path in PAGES.items():
                page.goto(f"{base}/{path}")
                page.wait_for_selector("h1", timeout=30_000)
                page.wait_for_function(
                    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                    timeout=30_000,
                )
                # Charts and tables load their code lazily (a skeleton until then) and plotly
                # draws after the script run ends: wait for both.
                page.wait_for_function(
                    "() => !document.querySelector('[data-testid=\"stSkeletonElement\"]')"
                    " && [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                    ".every(c => c.querySelector('.main-svg'))",
                    timeout=30_000,
                )
                page.wait_for_timeout(500)
                body = page.inner_text("body")
                assert page.locator("[data-testid='stException']").count() == 0, (name, body)
                assert "Traceback" not in body and "Error:" not in body, (name, body[:2000])
                assert page.locator("h1").first.inner_text().strip(), name
                # At 1400 px nothing overflows the page: no table wider than the viewport,
                # no page-wide horizontal scroll, no headline tile truncated ("3,165.64...").
                overflow = page.evaluate(
                    "() => [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
                    ".map(t => t.getBoundingClientRect().right)"
                    ".filter(r => r > window.innerWidth)"
                )
                assert not overflow, (name, overflow)
                assert page.evaluate(
                    "() => document.documentElement.scrollWidth <= window.innerWidth"
                ), name
                cut = page.evaluate(
                    "() => [...document.querySelectorAll('[data-testid=\"stMetricValue\"] div')]"
                    ".filter(v => v.scrollWidth > v.clientWidth + 1).map(v => v.innerText)"
                )
                assert not cut, (name, cut)
                page.screenshot(path=str(out / f"app-{name}.png"), full_page=False)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
