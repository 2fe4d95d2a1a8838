"""Cloud regions: name lookup (with aliases), location detection from the environment.

Region names are matched case-insensitively with spaces removed, so Azure's display names
(``West Europe``), its API names (``westeurope``, ``eastasia``) and Cloud Carbon Footprint's
spellings (``CentralUS``, ``apeast``) all resolve. Nothing here touches the network: the
region comes from settings or from environment variables, never from a metadata service.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from carbonledger.errors import UnknownLocationError
from carbonledger.intensity import tables
from carbonledger.intensity.tables import CloudRegionRecord, normalize_region_name

PROVIDERS: tuple[str, ...] = ("aws", "azure", "gcp")

# Environment variables that name the region, per provider, in the order they are read.
REGION_ENV_VARS: dict[str, tuple[str, ...]] = {
    "aws": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "gcp": ("GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION"),
    "azure": ("AZURE_REGION", "REGION_NAME"),
}

_PROVIDER_ALIASES = {
    "amazon": "aws",
    "google": "gcp",
    "gce": "gcp",
    "microsoft": "azure",
}


def normalize_provider(provider: str) -> str:
    """Return ``aws``, ``gcp`` or ``azure`` for a provider name.

    Raises:
        UnknownLocationError: the provider is not one of them.
    """
    name = provider.strip().lower()
    name = _PROVIDER_ALIASES.get(name, name)
    if name not in PROVIDERS:
        raise UnknownLocationError(
            f"unknown cloud provider {provider!r}; known: {', '.join(PROVIDERS)} "
            "(set CARBONLEDGER_CLOUD_PROVIDER to one of these)",
            suggestions=list(PROVIDERS),
        )
    return name


def region_from_env(provider: str, environ: Mapping[str, str]) -> str | None:
    """The region named by the provider's environment variables, if any."""
    for var in REGION_ENV_VARS.get(provider, ()):
        value = environ.get(var, "").strip()
        if value:
            return value
    return None


def lookup_region(provider: str, region: str) -> CloudRegionRecord:
    """Find a cloud region by name or alias.

    Raises:
        UnknownLocationError: no such region for the provider; lists the closest names.
    """
    provider = normalize_provider(provider)
    canonical = tables.cloud_region_names().get((provider, normalize_region_name(region)))
    if canonical is None:
        names = sorted(r for p, r in tables.cloud_regions() if p == provider)
        close = difflib.get_close_matches(normalize_region_name(region), names, n=5, cutoff=0.5)
        raise UnknownLocationError(
            f"unknown {provider} region {region!r}; "
            f"{_closest(close)} (set CARBONLEDGER_CLOUD_REGION to one of these; "
            "`carbonledger estimate --list-regions` lists all)",
            suggestions=close,
        )
    return tables.cloud_regions()[(provider, canonical)]


def providers_of_region(region: str) -> list[str]:
    """Providers that have a region of this name (used when only the region is set)."""
    key = normalize_region_name(region)
    return sorted({p for (p, name) in tables.cloud_region_names() if name == key})


def known_regions(provider: str | None = None) -> list[tuple[str, str]]:
    """``(provider, region)`` of every shipped cloud region (canonical names), sorted."""
    wanted = normalize_provider(provider) if provider else None
    return sorted(k for k in tables.cloud_regions() if wanted is None or k[0] == wanted)


def fleet_pue(provider: str) -> tuple[float, str]:
    """The provider's fleet-average PUE and its basis."""
    return tables.provider_fleet_pue()[normalize_provider(provider)]


def _closest(names: list[str]) -> str:
    return f"closest: {', '.join(names)}" if names else "no close match"
