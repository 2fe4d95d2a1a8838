"""The settings object: prefix, parsing, validation errors that name the fix, secrets hidden."""

from __future__ import annotations

import pytest

from carbonledger.errors import CarbonLedgerError, ConfigError
from carbonledger.settings import Settings, get_settings


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "7.5")
    monkeypatch.setenv("CARBONLEDGER_GRID_ZONE", "DE")
    monkeypatch.setenv("CARBONLEDGER_CLOUD_PROVIDER", " AWS ")
    s = get_settings()
    assert s.flush_s == 7.5
    assert s.grid_zone == "DE"
    assert s.cloud_provider == "aws"


def test_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "3")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().flush_s == 3


def test_mlflow_uris_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_MLFLOW_URIS", "http://a:5000, sqlite:///b.db,,")
    assert get_settings().mlflow_uris == ["http://a:5000", "sqlite:///b.db"]


def test_invalid_value_names_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_PUE", "0.5-secret-looking")
    with pytest.raises(ConfigError) as err:
        get_settings()
    assert isinstance(err.value, CarbonLedgerError)
    assert "CARBONLEDGER_PUE" in str(err.value)
    assert "secret-looking" not in str(err.value)


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_LEDGER_URL", "postgresql+psycopg://app:hunter2@db/ledger")
    monkeypatch.setenv("CARBONLEDGER_ELECTRICITYMAPS_TOKEN", "tok-123456")
    s = get_settings()
    for text in (repr(s), str(s), str(s.model_dump())):
        assert "hunter2" not in text
        assert "tok-123456" not in text
    assert s.ledger_url.get_secret_value().endswith("@db/ledger")


@pytest.mark.parametrize(
    "name", ["TEAM_RULES_PATH", "BUDGETS_PATH", "WEBHOOK_URL", "GRID_ZONE", "TEAM"]
)
def test_an_empty_variable_means_unset_not_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(f"CARBONLEDGER_{name}", "  ")
    assert getattr(Settings(), name.lower()) is None
