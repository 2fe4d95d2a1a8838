"""Where the work runs: settings first, then the clouds' standard environment variables."""

from __future__ import annotations

import socket

import pytest

from carbonledger.intensity import Location, detect_location, resolve_intensity
from carbonledger.settings import Settings, get_settings


def test_aws_region_variable() -> None:
    loc = detect_location(Settings(), environ={"AWS_REGION": "eu-central-1"})
    assert (loc.cloud_provider, loc.cloud_region) == ("aws", "eu-central-1")


def test_aws_default_region_variable() -> None:
    loc = detect_location(Settings(), environ={"AWS_DEFAULT_REGION": "us-west-2"})
    assert (loc.cloud_provider, loc.cloud_region) == ("aws", "us-west-2")


def test_aws_region_beats_aws_default_region() -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert detect_location(Settings(), environ=env).cloud_region == "eu-west-1"


@pytest.mark.parametrize(
    ("var", "provider", "region"),
    [
        ("GOOGLE_CLOUD_REGION", "gcp", "europe-west1"),
        ("CLOUDSDK_COMPUTE_REGION", "gcp", "us-central1"),
        ("AZURE_REGION", "azure", "westeurope"),
        ("REGION_NAME", "azure", "West Europe"),
    ],
)
def test_gcp_and_azure_variables(var: str, provider: str, region: str) -> None:
    loc = detect_location(Settings(), environ={var: region})
    assert (loc.cloud_provider, loc.cloud_region) == (provider, region)


def test_settings_beat_environment() -> None:
    settings = Settings(cloud_provider="gcp", cloud_region="europe-west4")
    loc = detect_location(settings, environ={"AWS_REGION": "us-east-1"})
    assert (loc.cloud_provider, loc.cloud_region) == ("gcp", "europe-west4")


def test_provider_setting_takes_region_from_its_own_variables() -> None:
    env = {"AWS_REGION": "us-east-1", "GOOGLE_CLOUD_REGION": "asia-east1"}
    loc = detect_location(Settings(cloud_provider="gcp"), environ=env)
    assert (loc.cloud_provider, loc.cloud_region) == ("gcp", "asia-east1")


def test_region_setting_alone_finds_its_only_provider() -> None:
    loc = detect_location(Settings(cloud_region="europe-west4"), environ={})
    assert loc.cloud_provider == "gcp"


def test_country_and_zone_settings_are_carried() -> None:
    loc = detect_location(Settings(country="DEU", grid_zone="DE"), environ={})
    assert loc == Location(country="DEU", grid_zone="DE")


def test_nothing_set_gives_an_empty_location() -> None:
    assert detect_location(Settings(), environ={}) == Location()


def test_reads_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    get_settings.cache_clear()
    loc = detect_location()
    assert (loc.cloud_provider, loc.cloud_region, loc.country) == ("aws", "eu-north-1", None)
    factor = resolve_intensity()
    assert (factor.resolved_by, factor.zone) == ("cloud-region", "SE-SE3")


def test_detection_and_resolution_never_open_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during location detection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    loc = detect_location(Settings())
    assert resolve_intensity(Settings(), location=loc).zone == "US-MIDA-PJM"


def test_configured_country_is_not_overridden_by_a_stray_aws_default_region() -> None:
    # The AWS CLI leaves AWS_DEFAULT_REGION set on laptops: an explicit country wins.
    loc = detect_location(Settings(country="DE"), environ={"AWS_DEFAULT_REGION": "us-east-1"})
    assert loc == Location(country="DE")
    assert resolve_intensity(Settings(), location=loc).zone == "DE"


def test_configured_provider_still_reads_its_region_variable_with_a_country_set() -> None:
    loc = detect_location(
        Settings(cloud_provider="aws", country="DE"), environ={"AWS_REGION": "eu-west-1"}
    )
    assert (loc.cloud_provider, loc.cloud_region, loc.country) == ("aws", "eu-west-1", "DE")
