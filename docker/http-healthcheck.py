#!/usr/bin/env python3
"""HTTP health check of the image's services (the image has no curl): exit 0 on HTTP 200.

Usage: ``carbonledger-http-healthcheck URL [TIMEOUT_S]``, e.g.
``carbonledger-http-healthcheck http://127.0.0.1:5000/health`` for the MLflow tracking server
or ``http://127.0.0.1:8501/_stcore/health`` for the Streamlit app.
"""

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    """Request the URL; 0 when it answers 200, 1 otherwise (the reason goes to stdout)."""
    if len(argv) not in (2, 3):
        print("usage: carbonledger-http-healthcheck URL [TIMEOUT_S]")  # noqa: T201
        return 2
    url = argv[1]
    timeout_s = float(argv[2]) if len(argv) == 3 else 5.0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}")  # noqa: T201
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered HTTP {status}")  # noqa: T201
        return 1
    print(f"ok: {url}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
