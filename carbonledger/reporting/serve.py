"""Serving the Streamlit app: where its script is, the command, a health wait.

Used by ``carbonledger app`` and ``carbonledger demo``. The app reads the database named by
``CARBONLEDGER_READ_DATABASE_URL`` in its environment (a replica, or the ledger itself),
read-only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def app_script() -> Path:
    """The Streamlit entry script: the wheel's packaged copy, else the checkout's ``app/``."""
    for candidate in (_PACKAGE_DIR / "_app", _PACKAGE_DIR.parent / "app"):
        if (candidate / "streamlit_app.py").is_file():
            return candidate / "streamlit_app.py"
    return _PACKAGE_DIR.parent / "app" / "streamlit_app.py"


def app_command(*, port: int, address: str) -> list[str]:
    """``streamlit run`` of the app, headless, without usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app_script()),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def app_env(ledger_url: str, read_url: str | None = None) -> dict[str, str]:
    """This process's environment with the ledger URL and the URL the app must read.

    Both are set, so a ``CARBONLEDGER_READ_DATABASE_URL`` inherited from this process never
    points the app at another database than the caller chose (default: the ledger).
    """
    env = dict(os.environ)
    env["CARBONLEDGER_LEDGER_URL"] = ledger_url
    env["CARBONLEDGER_READ_DATABASE_URL"] = read_url or ledger_url
    return env


def start_app(*, ledger_url: str, port: int, address: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Start the app in the background (the caller stops it)."""
    return subprocess.Popen(
        app_command(port=port, address=address),
        env=app_env(ledger_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_healthy(
    url: str, *, timeout_s: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """Poll Streamlit's ``/_stcore/health`` at ``url`` until it answers ``ok`` or time runs out."""
    deadline = time.monotonic() + timeout_s
    health = url.rstrip("/") + "/_stcore/health"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False
