"""Places: the one resolver of "where did this run" for every surface of carbonledger.

A place is given as a grid zone, a cloud provider and region, a country (ISO alpha-2, alpha-3
or name, any case) or an explicit intensity. The plugin, ``measure``, ``estimate``,
``doctor``, the ETL (metered tags, the unmetered estimate, ``import codecarbon`` and
``import inference``) and the demo all call :func:`normalize_location`, :func:`ledger_zone`
and :func:`resolve_place` here, so ``DEU``, ``DE``, ``deu`` and ``Germany`` are the same zone
everywhere. :func:`command_line_place` holds the CLI's rule that a place given as an option
beats the place and the intensity set in the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from carbonledger import contract
from carbonledger.intensity import cloud, tables
from carbonledger.intensity.factors import GridFactor, Location, PueFactor
from carbonledger.settings import Settings, get_settings


def normalize_location(loc: Location, *, shipped_zone: bool = True) -> Location:
    """The canonical spelling of every field of ``loc``.

    Provider ``aws``/``gcp``/``azure``; the region's canonical name (an alias or Azure
    display name is accepted); the country as ISO alpha-2; the grid zone as shipped.

    Args:
        loc: the location as given.
        shipped_zone: the grid zone must be a shipped zone; with ``False`` a zone that is not
            shipped is kept as given (the ledger may hold an organisation's own factors for it).

    Raises:
        UnknownLocationError: an unknown provider, region, country or zone (the message
            lists the closest names and the setting to fix).
    """
    from carbonledger.intensity.resolve import canonical_zone, normalize_country

    provider = cloud.normalize_provider(loc.cloud_provider) if loc.cloud_provider else None
    region = (loc.cloud_region or "").strip() or None
    if region is not None:
        if provider is None:
            owners = cloud.providers_of_region(region)
            provider = owners[0] if len(owners) == 1 else None
        if provider is not None:
            region = cloud.lookup_region(provider, region).region
    country = (loc.country or "").strip()
    zone = (loc.grid_zone or "").strip()
    if zone and (shipped_zone or zone.upper() in tables.zones_upper()):
        zone = canonical_zone(zone)
    return Location(
        cloud_provider=provider,
        cloud_region=region,
        country=normalize_country(country) if country and not zone else None,
        grid_zone=zone or None,
    )


def ledger_zone(loc: Location, *, shipped_zone: bool = True) -> str | None:
    """The zone code the ledger's emission factors use for ``loc`` (``None``: unknown).

    The grid zone when set; else the cloud region's zone when it is shipped, else the
    region's country; else the country (its Electricity Maps zone has the alpha-2 code as
    its name where one is shipped, and Ember's factor is keyed by alpha-2 otherwise).

    Args:
        loc: the location as given.
        shipped_zone: see :func:`normalize_location`.

    Raises:
        UnknownLocationError: a field of ``loc`` is unknown.
    """
    place = normalize_location(loc, shipped_zone=shipped_zone)
    if place.grid_zone:
        return place.grid_zone
    if place.cloud_provider and place.cloud_region:
        record = cloud.lookup_region(place.cloud_provider, place.cloud_region)
        if record.zone and record.zone in tables.zones():
            return record.zone
        if record.country:
            return record.country
    return place.country


def zone_of_tags(tags: Mapping[str, str]) -> str | None:
    """The ledger zone of a run from its ``carbon.grid_zone`` / ``carbon.country`` tags.

    A zone tag wins over the country tag; a zone that is not shipped is kept as it is (the
    ledger may hold the organisation's own factor for it, else the ETL quarantines the run).

    Raises:
        UnknownLocationError: the country tag (with no zone tag) names no known country.
    """
    return ledger_zone(
        Location(
            grid_zone=tags.get(contract.TAG_GRID_ZONE) or None,
            country=tags.get(contract.TAG_COUNTRY) or None,
        ),
        shipped_zone=False,
    )


def configured_zone(settings: Settings | None = None) -> str | None:
    """The ledger zone of the place configured in settings alone (no environment guess).

    The ETL charges runs without carbon data (and imports without a zone) to this place.

    Raises:
        UnknownLocationError: a configured place is unknown; the message names the setting.
    """
    settings = settings or get_settings()
    return ledger_zone(
        Location(
            cloud_provider=settings.cloud_provider,
            cloud_region=settings.cloud_region,
            country=settings.country,
            grid_zone=settings.grid_zone,
        )
    )


def command_line_place(
    settings: Settings,
    *,
    provider: str | None = None,
    region: str | None = None,
    country: str | None = None,
    zone: str | None = None,
) -> tuple[Settings, Location | None]:
    """Settings and location for a command given place options (``--zone`` and friends).

    A place given on the command line beats the place and the explicit intensity of the
    environment (``CARBONLEDGER_GRID_ZONE``, ``CARBONLEDGER_INTENSITY_G_PER_KWH``...): the
    returned settings drop the environment's intensity, and the location is the options'.
    With no place option, the settings are returned as they are and the location is
    ``None`` (detect it from the settings and the environment).
    """
    if not (provider or region or country or zone):
        return settings, None
    return settings.model_copy(update={"intensity_g_per_kwh": None}), Location(
        cloud_provider=provider, cloud_region=region, country=country, grid_zone=zone
    )


@dataclass(frozen=True, slots=True)
class Place:
    """Where work runs, normalised, with the grid factor and PUE that apply there.

    Attributes:
        location: the normalised location (see :func:`normalize_location`).
        grid: the grid factor with its provenance.
        pue: the PUE with its provenance.
    """

    location: Location
    grid: GridFactor
    pue: PueFactor

    @property
    def zone(self) -> str | None:
        """The ledger zone: the grid zone, else the factor's zone or country."""
        return self.location.grid_zone or self.grid.zone or self.grid.country

    def tags(self) -> dict[str, str]:
        """The location and factor tags a metered MLflow run carries (empty values dropped)."""
        loc = self.location
        tags = {
            contract.TAG_COUNTRY: loc.country or self.grid.country or "",
            contract.TAG_CLOUD_PROVIDER: loc.cloud_provider or "",
            contract.TAG_CLOUD_REGION: loc.cloud_region or "",
            contract.TAG_GRID_ZONE: loc.grid_zone or self.grid.zone or "",
            contract.TAG_INTENSITY_SOURCE: self.grid.label,
            contract.TAG_INTENSITY_RESOLVED_BY: self.grid.resolved_by,
            contract.TAG_PUE_SOURCE: self.pue.source,
        }
        return {k: v for k, v in tags.items() if v}


def resolve_place(
    settings: Settings | None = None,
    *,
    location: Location | None = None,
    explicit_g_per_kwh: float | None = None,
    year: int | None = None,
    unknown_datacentre: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Place:
    """Resolve where work runs and what grid factor and PUE apply there.

    Args:
        settings: the settings to read (default: :func:`get_settings`).
        location: where the work runs (default: detected from settings and ``environ``).
        explicit_g_per_kwh: an intensity that wins over every place.
        year: data year wanted (default: ``CARBONLEDGER_INTENSITY_YEAR``, else the latest).
        unknown_datacentre: PUE 1.56 instead of 1.0 when no data centre is known.
        environ: environment variables for cloud detection (default: ``os.environ``).

    Raises:
        UnknownLocationError: an unknown zone, region or country.
        ConfigError: an explicit intensity that is negative or not a number.
    """
    from carbonledger.intensity.resolve import detect_location, resolve_intensity, resolve_pue

    settings = settings or get_settings()
    raw = location if location is not None else detect_location(settings, environ)
    normal = normalize_location(raw)
    grid = resolve_intensity(
        settings, location=normal, explicit_g_per_kwh=explicit_g_per_kwh, year=year
    )
    pue = resolve_pue(settings, location=normal, unknown_datacentre=unknown_datacentre)
    if normal.grid_zone is None and grid.zone:
        normal = replace(normal, grid_zone=grid.zone)
    return Place(location=normal, grid=grid, pue=pue)
