import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cl_ledger_fixtures import _plugin_off, client, ledger, ledger_url  # noqa: E402, F401
from seed import seed_ledger  # noqa: E402


@pytest.fixture
def seeded(ledger: Engine) -> Iterator[Engine]:  # noqa: F811
    """A migrated ledger with TEST_FACTORS and the deterministic seed, rollups refreshed."""
    seed_ledger(ledger)
    yield ledger
