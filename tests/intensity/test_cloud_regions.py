"""Cloud region names: canonical, Cloud Carbon Footprint spellings and Azure API names."""

from __future__ import annotations

import pytest

from carbonledger.intensity import Location, known_regions, resolve_intensity, resolve_pue
from carbonledger.intensity.cloud import lookup_region
from carbonledger.settings import Settings


@pytest.mark.parametrize(
    ("name", "canonical", "country"),
    [
        ("apeast", "apeast", "HK"),  # the source's spelling
        ("eastasia", "apeast", "HK"),  # Azure's API name for the same region
        ("apsoutheast", "apsoutheast", "SG"),
        ("southeastasia", "apsoutheast", "SG"),
        ("CentralUS", "centralus", "US"),  # source spelling, mixed case
        ("centralus", "centralus", "US"),
        ("West Europe", "westeurope", "NL"),  # Azure display name (REGION_NAME)
    ],
)
def test_azure_names_and_aliases(name: str, canonical: str, country: str) -> None:
    rec = lookup_region("azure", name)
    assert (rec.region, rec.country) == (canonical, country)


def test_azure_api_name_resolves_intensity_like_the_source_name() -> None:
    api = resolve_intensity(Settings(cloud_provider="azure", cloud_region="southeastasia"))
    source = resolve_intensity(Settings(cloud_provider="azure", cloud_region="apsoutheast"))
    assert api == source
    assert api.zone == "SG"


def test_aws_region_maps_to_its_zone() -> None:
    assert lookup_region("aws", "us-west-1").zone == "US-CAL-CISO"


def test_provider_names_are_normalised() -> None:
    assert lookup_region("AWS", "eu-west-1").zone == "IE"
    assert lookup_region("google", "europe-west1").zone == "BE"


def test_known_regions_lists_canonical_names_per_provider() -> None:
    azure = known_regions("azure")
    assert ("azure", "apeast") in azure
    assert all(p == "azure" for p, _ in azure)
    everything = known_regions()
    assert {p for p, _ in everything} == {"aws", "azure", "gcp"}
    assert everything == sorted(everything)
    assert len(everything) == 122


def test_region_without_provider_that_two_providers_lack_is_an_error() -> None:
    from carbonledger.errors import UnknownLocationError

    with pytest.raises(UnknownLocationError, match="CARBONLEDGER_CLOUD_PROVIDER"):
        resolve_intensity(Settings(), location=Location(cloud_region="eu-wst-1"))


def test_cloud_region_gives_pue_too() -> None:
    pue = resolve_pue(Settings(cloud_provider="azure", cloud_region="eastasia"))
    assert (pue.value, pue.source) == (1.185, "cloud-table")
