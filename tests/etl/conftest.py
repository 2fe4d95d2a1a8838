import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))

from cl_ledger_fixtures import _plugin_off, client, ledger, ledger_url  # noqa: E402, F401
from store_fixtures import pg_mlflow_template, store_uri  # noqa: E402, F401
