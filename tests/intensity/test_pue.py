"""PUE: explicit, else the cloud table (region, else provider fleet), else 1.0."""

from __future__ import annotations

from carbonledger.intensity import UNKNOWN_DATACENTRE_PUE, Location, resolve_pue
from carbonledger.settings import Settings

GCP_NL = Location(cloud_provider="gcp", cloud_region="europe-west4")


def test_explicit_beats_cloud_table() -> None:
    pue = resolve_pue(Settings(pue=1.3), location=GCP_NL)
    assert (pue.value, pue.source) == (1.3, "explicit")


def test_region_value_beats_provider_fleet_value() -> None:
    pue = resolve_pue(Settings(), location=GCP_NL)
    assert (pue.value, pue.source) == (1.07, "cloud-table")  # Google's published TTM PUE
    assert "europe-west4" in (pue.note or "")


def test_provider_without_region_gets_fleet_value() -> None:
    for provider, value in (("aws", 1.135), ("gcp", 1.1), ("azure", 1.185)):
        pue = resolve_pue(Settings(), location=Location(cloud_provider=provider))
        assert (pue.value, pue.source) == (value, "cloud-table")
        assert "fleet" in (pue.note or "")


def test_nothing_known_is_one() -> None:
    pue = resolve_pue(Settings(), location=Location(country="DE"))
    assert (pue.value, pue.source) == (1.0, "default")
    assert "CARBONLEDGER_PUE" in (pue.note or "")


def test_unknown_datacentre_can_be_asked_for() -> None:
    assert UNKNOWN_DATACENTRE_PUE == 1.56
    pue = resolve_pue(Settings(), location=Location(), unknown_datacentre=True)
    assert (pue.value, pue.source) == (1.56, "default")


def test_unknown_datacentre_does_not_override_a_known_cloud() -> None:
    pue = resolve_pue(Settings(), location=GCP_NL, unknown_datacentre=True)
    assert pue.value == 1.07


def test_pue_from_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from carbonledger.settings import get_settings

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    get_settings.cache_clear()
    assert resolve_pue().value == 1.135
