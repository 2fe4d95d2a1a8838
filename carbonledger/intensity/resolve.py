"""Resolve the grid intensity and PUE that apply to a run.

Intensity, first rule that applies:

1. an explicit intensity (argument, or ``CARBONLEDGER_INTENSITY_G_PER_KWH``);
2. an explicit Electricity Maps grid zone (``CARBONLEDGER_GRID_ZONE``);
3. a cloud provider + region (settings, else the provider's environment variables): the region's
   zone, else the region's country (rule 4's lookup);
4. a country (ISO alpha-2, alpha-3 or name): the Electricity Maps country zone for the year,
   else Ember's latest yearly figure;
5. otherwise the world average 475 gCO2e/kWh (IEA 2019), with a warning and a note.

With ``CARBONLEDGER_LIVE_INTENSITY`` and a token, rules 2-4 that end at a zone ask Electricity
Maps' live API first and fall back to the yearly table, recording why in the factor's note.

PUE: explicit (``CARBONLEDGER_PUE``), else the cloud table (region, else the provider's fleet
value), else 1.0 (a personal machine), or 1.56 when asked for an unknown data centre.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping

from carbonledger.errors import ConfigError, LiveIntensityError, UnknownLocationError
from carbonledger.intensity import cloud, tables
from carbonledger.intensity.factors import (
    DEFAULT_PUE,
    LICENCE_ELECTRICITY_MAPS,
    LICENCE_ELECTRICITY_MAPS_API,
    LICENCE_EMBER,
    LIVE_FALLBACK_SUFFIX,
    PUE_CLOUD_TABLE,
    PUE_DEFAULT,
    PUE_EXPLICIT,
    RESOLVED_CLOUD_REGION,
    RESOLVED_COUNTRY,
    RESOLVED_EXPLICIT,
    RESOLVED_LIVE,
    RESOLVED_WORLD_DEFAULT,
    RESOLVED_ZONE,
    SOURCE_ELECTRICITY_MAPS_LIVE,
    SOURCE_ELECTRICITY_MAPS_YEARLY,
    SOURCE_EMBER_YEARLY,
    SOURCE_EXPLICIT,
    SOURCE_WORLD_DEFAULT,
    UNKNOWN_DATACENTRE_PUE,
    WORLD_AVERAGE_G_PER_KWH,
    GridFactor,
    Location,
    PueFactor,
)
from carbonledger.intensity.live import fetch_live_intensity
from carbonledger.settings import Settings, get_settings

_log = logging.getLogger(__name__)
_world_warned = threading.Event()

WORLD_DEFAULT_NOTE = (
    "nothing is known about where this runs: used the world average 475 gCO2e/kWh (IEA 2019); "
    "set CARBONLEDGER_GRID_ZONE, CARBONLEDGER_COUNTRY or CARBONLEDGER_CLOUD_PROVIDER and "
    "CARBONLEDGER_CLOUD_REGION (or CARBONLEDGER_INTENSITY_G_PER_KWH) for a real figure"
)


def detect_location(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> Location:
    """Where the work runs, from settings, else from the clouds' standard environment variables.

    Settings ``cloud_provider``/``cloud_region``/``country``/``grid_zone`` come first. A missing
    region is read from the provider's variables (``AWS_REGION``, ``AWS_DEFAULT_REGION``;
    ``GOOGLE_CLOUD_REGION``, ``CLOUDSDK_COMPUTE_REGION``; ``AZURE_REGION``, ``REGION_NAME``);
    with no provider set, the first provider (aws, gcp, azure) whose variable is set wins, unless
    a country or grid zone is configured (an explicit place beats a guess from the environment).
    A region set without a provider gets the one provider that has a region of that name. Never
    touches the network or a metadata address.
    """
    settings = settings or get_settings()
    env: Mapping[str, str] = os.environ if environ is None else environ
    provider: str | None = settings.cloud_provider
    region = (settings.cloud_region or "").strip() or None
    if provider and not region:
        region = cloud.region_from_env(provider, env)
    elif region and not provider:
        owners = cloud.providers_of_region(region)
        provider = owners[0] if len(owners) == 1 else None
    elif not provider and not (settings.country or settings.grid_zone):
        # Guess from the environment only when no place is configured: AWS_DEFAULT_REGION is
        # often set on laptops by the AWS CLI, and must not beat an explicit country.
        for candidate in ("aws", "gcp", "azure"):
            region = cloud.region_from_env(candidate, env)
            if region:
                provider = candidate
                break
    return Location(
        cloud_provider=provider,
        cloud_region=region,
        country=(settings.country or "").strip() or None,
        grid_zone=(settings.grid_zone or "").strip() or None,
    )


def resolve_intensity(
    settings: Settings | None = None,
    *,
    location: Location | None = None,
    explicit_g_per_kwh: float | None = None,
    year: int | None = None,
) -> GridFactor:
    """Return the grid factor for a location (default: :func:`detect_location`).

    Args:
        settings: the settings to read (default: :func:`get_settings`).
        location: where the work runs; detected from settings and environment when omitted.
        explicit_g_per_kwh: an intensity that wins over everything else.
        year: data year wanted (default: ``CARBONLEDGER_INTENSITY_YEAR``, else the latest
            shipped); the latest shipped year at or before it is used when it is not shipped.

    Raises:
        UnknownLocationError: an unknown zone, region or country (the message lists the closest).
        ConfigError: an explicit intensity that is negative or not a number.
    """
    settings = settings or get_settings()
    loc = location if location is not None else detect_location(settings)
    wanted_year = year if year is not None else settings.intensity_year
    explicit = explicit_g_per_kwh
    if explicit is None:
        explicit = settings.intensity_g_per_kwh
    if explicit is not None:
        if not math.isfinite(explicit) or explicit < 0:
            raise ConfigError(f"an explicit intensity must be >= 0 gCO2e/kWh, got {explicit!r}")
        return GridFactor(
            float(explicit),
            SOURCE_EXPLICIT,
            resolved_by=RESOLVED_EXPLICIT,
            note="intensity set explicitly",
        )
    if loc.grid_zone:
        zone = canonical_zone(loc.grid_zone)
        return _zone_with_live(zone, RESOLVED_ZONE, wanted_year, settings, None)
    record = _cloud_record(loc)
    if record is not None:
        where = f"{record.provider} region {record.region}"
        if record.zone and record.zone in tables.zones():
            return _zone_with_live(record.zone, RESOLVED_CLOUD_REGION, wanted_year, settings, where)
        if record.country:
            return _country_factor(
                record.country, RESOLVED_CLOUD_REGION, wanted_year, settings, where
            )
    if loc.country:
        alpha2 = normalize_country(loc.country)
        return _country_factor(alpha2, RESOLVED_COUNTRY, wanted_year, settings, None)
    return world_default()


def world_default(note: str = WORLD_DEFAULT_NOTE) -> GridFactor:
    """The world-average factor, logging a warning the first time in the process."""
    if not _world_warned.is_set():
        _world_warned.set()
        _log.warning("carbonledger: %s", note)
    return GridFactor(
        WORLD_AVERAGE_G_PER_KWH,
        SOURCE_WORLD_DEFAULT,
        year=2019,
        resolved_by=RESOLVED_WORLD_DEFAULT,
        note=note,
    )


def resolve_pue(
    settings: Settings | None = None,
    *,
    location: Location | None = None,
    unknown_datacentre: bool = False,
) -> PueFactor:
    """Return the PUE: explicit, else the cloud table, else 1.0.

    Args:
        settings: the settings to read (default: :func:`get_settings`).
        location: where the work runs; detected when omitted.
        unknown_datacentre: when nothing else is known, use :data:`UNKNOWN_DATACENTRE_PUE`
            (1.56, an unknown data centre) instead of 1.0 (a personal machine).

    Raises:
        UnknownLocationError: an unknown cloud provider or region.
    """
    settings = settings or get_settings()
    if settings.pue is not None:
        return PueFactor(float(settings.pue), PUE_EXPLICIT, note="PUE set explicitly")
    loc = location if location is not None else detect_location(settings)
    record = _cloud_record(loc)
    if record is not None:
        return PueFactor(
            record.pue,
            PUE_CLOUD_TABLE,
            note=f"{record.provider} region {record.region}: {record.pue_basis}",
        )
    if loc.cloud_provider:
        value, basis = cloud.fleet_pue(loc.cloud_provider)
        provider = cloud.normalize_provider(loc.cloud_provider)
        return PueFactor(value, PUE_CLOUD_TABLE, note=f"{provider}: {basis} (region unknown)")
    if unknown_datacentre:
        return PueFactor(
            UNKNOWN_DATACENTRE_PUE,
            PUE_DEFAULT,
            note="unknown data centre: 1.56 (Uptime Institute 2024 average); set CARBONLEDGER_PUE",
        )
    return PueFactor(
        DEFAULT_PUE,
        PUE_DEFAULT,
        note="no data centre known: PUE 1.0 (a personal machine); set CARBONLEDGER_PUE "
        "(1.56 is the average of an unknown data centre)",
    )


def yearly_factors() -> Iterator[GridFactor]:
    """Every shipped location-based yearly factor: Electricity Maps zones, then Ember rows."""
    for zone in sorted(tables.zones().values(), key=lambda z: z.zone):
        for year, value in sorted(zone.intensity_g_per_kwh_by_year.items()):
            yield GridFactor(
                value,
                SOURCE_ELECTRICITY_MAPS_YEARLY,
                year=year,
                zone=zone.zone,
                country=zone.country,
                resolved_by=RESOLVED_ZONE,
                licence=LICENCE_ELECTRICITY_MAPS,
            )
    for rec in sorted(tables.ember().values(), key=lambda r: r.code):
        yield GridFactor(
            rec.intensity_g_per_kwh,
            SOURCE_EMBER_YEARLY,
            year=rec.year,
            country=rec.alpha2,
            resolved_by=RESOLVED_COUNTRY,
            licence=LICENCE_EMBER,
            region=None if rec.alpha2 else rec.name,
        )


def known_zones() -> list[str]:
    """Every shipped Electricity Maps zone, sorted."""
    return sorted(tables.zones())


def known_countries() -> list[tuple[str, str, str]]:
    """``(alpha2, alpha3, name)`` of every known country, sorted by alpha-2."""
    return [(c.alpha2, c.alpha3, c.name) for c in sorted(tables.countries().values(), key=_a2)]


def canonical_zone(zone: str) -> str:
    """The shipped spelling of a zone (case-insensitive match).

    Raises:
        UnknownLocationError: no such zone; the message lists the closest.
    """
    found = tables.zones_upper().get(zone.strip().upper())
    if found is None:
        upper = tables.zones_upper()
        close = [
            upper[z]
            for z in difflib.get_close_matches(zone.strip().upper(), upper, n=5, cutoff=0.5)
        ]
        raise UnknownLocationError(
            f"unknown grid zone {zone!r}; {_closest(close)} (set CARBONLEDGER_GRID_ZONE to one "
            "of these; `carbonledger estimate --list-zones` lists all)",
            suggestions=close,
        )
    return found


def normalize_country(country: str) -> str:
    """ISO alpha-2 code of a country given as alpha-2, alpha-3 or name (case-insensitive).

    Raises:
        UnknownLocationError: no such country; the message lists the closest.
    """
    key = country.strip().upper()
    aliases = tables.country_aliases()
    if key in aliases:
        return aliases[key]
    close_keys = difflib.get_close_matches(key, aliases, n=5, cutoff=0.6)
    close = list(dict.fromkeys(_country_label(aliases[k]) for k in close_keys))
    raise UnknownLocationError(
        f"unknown country {country!r}; {_closest(close)} (set CARBONLEDGER_COUNTRY to an ISO "
        "3166-1 alpha-2 or alpha-3 code; `carbonledger estimate --list-countries` lists all)",
        suggestions=close,
    )


def _country_label(alpha2: str) -> str:
    rec = tables.countries()[alpha2]
    return f"{rec.alpha2} ({rec.name})"


def _a2(rec: tables.CountryRecord) -> str:
    return rec.alpha2


def _cloud_record(loc: Location) -> tables.CloudRegionRecord | None:
    if not loc.cloud_region:
        return None
    if loc.cloud_provider:
        return cloud.lookup_region(loc.cloud_provider, loc.cloud_region)
    owners = cloud.providers_of_region(loc.cloud_region)
    if len(owners) == 1:
        return cloud.lookup_region(owners[0], loc.cloud_region)
    names = [f"{p}:{r}" for p, r in cloud.known_regions()]
    key = tables.normalize_region_name(loc.cloud_region)
    close = difflib.get_close_matches(key, [n.split(":", 1)[1] for n in names], n=5, cutoff=0.5)
    labelled = [n for n in names if n.split(":", 1)[1] in close][:5]
    if owners:
        why = f"cloud region {loc.cloud_region!r} exists at {', '.join(owners)}"
        fix = "set CARBONLEDGER_CLOUD_PROVIDER"
    else:
        why = f"unknown cloud region {loc.cloud_region!r}; {_closest(labelled)}"
        fix = "set CARBONLEDGER_CLOUD_PROVIDER and CARBONLEDGER_CLOUD_REGION"
    raise UnknownLocationError(
        f"{why} ({fix}; `carbonledger estimate --list-regions` lists all)",
        suggestions=labelled,
    )


def _pick_year(available: list[int], wanted: int | None) -> tuple[int, str | None]:
    latest = max(available)
    if wanted is None or wanted in available:
        return (wanted if wanted is not None else latest), None
    earlier = [y for y in available if y <= wanted]
    chosen = max(earlier) if earlier else latest
    return chosen, f"no {wanted} table shipped: used {chosen}"


def _zone_factor(zone: str, rule: str, wanted_year: int | None, where: str | None) -> GridFactor:
    rec = tables.zones()[zone]
    year, year_note = _pick_year(sorted(rec.intensity_g_per_kwh_by_year), wanted_year)
    notes = [n for n in (f"from {where}" if where else None, year_note) if n]
    return GridFactor(
        rec.intensity_g_per_kwh_by_year[year],
        SOURCE_ELECTRICITY_MAPS_YEARLY,
        year=year,
        zone=zone,
        country=rec.country,
        resolved_by=rule,
        licence=LICENCE_ELECTRICITY_MAPS,
        note="; ".join(notes) or None,
    )


def _zone_with_live(
    zone: str, rule: str, wanted_year: int | None, settings: Settings, where: str | None
) -> GridFactor:
    yearly = _zone_factor(zone, rule, wanted_year, where)
    if not settings.live_intensity:
        return yearly
    token = settings.electricitymaps_token
    if token is None or not token.get_secret_value():
        why = "CARBONLEDGER_LIVE_INTENSITY is on but CARBONLEDGER_ELECTRICITYMAPS_TOKEN is not set"
        return _fallback(yearly, why)
    try:
        reading = fetch_live_intensity(
            zone,
            base_url=settings.electricitymaps_url,
            token=token,
            timeout_s=settings.live_timeout_s,
            cache_ttl_s=settings.live_cache_ttl_s,
        )
    except LiveIntensityError as exc:
        return _fallback(yearly, str(exc))
    detail = [f"live via {rule}"]
    if reading.datetime:
        detail.append(f"for {reading.datetime}")
    if reading.is_estimated:
        detail.append("estimated by Electricity Maps")
    if reading.cached:
        detail.append("cached")
    return GridFactor(
        reading.intensity_g_per_kwh,
        SOURCE_ELECTRICITY_MAPS_LIVE,
        year=reading.year,
        zone=zone,
        country=yearly.country,
        resolved_by=RESOLVED_LIVE,
        licence=LICENCE_ELECTRICITY_MAPS_API,
        note=", ".join(detail),
    )


def _fallback(yearly: GridFactor, why: str) -> GridFactor:
    note = f"live intensity unavailable ({why}); used the yearly table"
    _log.warning("carbonledger: %s", note)
    if yearly.note:
        note = f"{note}; {yearly.note}"
    return GridFactor(
        yearly.intensity_g_per_kwh,
        yearly.source,
        year=yearly.year,
        zone=yearly.zone,
        country=yearly.country,
        resolved_by=yearly.resolved_by + LIVE_FALLBACK_SUFFIX,
        licence=yearly.licence,
        note=note,
    )


def _country_factor(
    alpha2: str, rule: str, wanted_year: int | None, settings: Settings, where: str | None
) -> GridFactor:
    if alpha2 in tables.zones():
        return _zone_with_live(alpha2, rule, wanted_year, settings, where)
    rec = tables.ember_by_alpha2().get(alpha2)
    if rec is None:
        return world_default(
            f"no grid intensity is shipped for country {alpha2}: used the world average "
            "475 gCO2e/kWh (IEA 2019); set CARBONLEDGER_INTENSITY_G_PER_KWH for a real figure"
        )
    notes = [f"from {where}" if where else None]
    if wanted_year is not None and wanted_year != rec.year:
        notes.append(f"Ember ships one year per country: used {rec.year}")
    return GridFactor(
        rec.intensity_g_per_kwh,
        SOURCE_EMBER_YEARLY,
        year=rec.year,
        country=alpha2,
        resolved_by=rule,
        licence=LICENCE_EMBER,
        note="; ".join(n for n in notes if n) or None,
    )


def _closest(names: list[str]) -> str:
    return f"closest: {', '.join(names)}" if names else "no close match"
