import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cl_ledger_fixtures import _plugin_off, ledger, ledger_url  # noqa: E402, F401
