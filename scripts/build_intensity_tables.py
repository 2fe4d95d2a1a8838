"""Build the shipped intensity tables from the source data (deterministic; run by hand).

Reads ``/work/shared/data/intensity/`` (or ``--source``) and writes compact CSV tables into
``carbonledger/intensity/data/``. The output depends only on the input files: rows are sorted
and numbers formatted the same way on every run, so a rebuild from unchanged data changes no
byte. Run it after the source data changes and commit its output::

    .venv/bin/python scripts/build_intensity_tables.py [--source DIR] [--out DIR]

Tables written (sources and licences in ``carbonledger/intensity/data/ATTRIBUTION.md``):

- ``electricity_maps_yearly.csv``: zone, zone name, country, one column per year (gCO2e/kWh).
- ``ember_yearly.csv``: Ember's latest yearly average per country (alpha-3) and world region.
- ``countries.csv``: ISO 3166-1 alpha-2 <-> alpha-3 <-> name (from the UNFCCC/IFI table, plus
  the few territories it lacks), with the UNFCCC 2021 operating-margin factor where published.
- ``cloud_regions.csv``: provider, canonical region, aliases, country, zone, PUE and its basis.
- ``cloud_providers.csv``: each provider's fleet-average PUE.
- ``hourly/<ZONE>.csv.gz``: Electricity Maps' free hourly data 2021-2023, one gzip CSV per zone
  (``utc_hour`` = hours since 1970-01-01T00:00Z, LCA and direct gCO2e/kWh, estimated flag),
  zones named as the yearly table names them (``HOURLY_ZONE_NAMES``); ODbL 1.0, attributed in
  ``hourly/ATTRIBUTION.md``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import shutil
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = Path("/work/shared/data/intensity")
DEFAULT_OUT = ROOT / "carbonledger" / "intensity" / "data"

# ISO 3166-1 codes of territories that have an Electricity Maps zone or an Ember row but no row
# in the UNFCCC/IFI table (ISO facts, not data from the sources).
EXTRA_COUNTRIES = (
    ("AX", "ALA", "Aland Islands"),
    ("GS", "SGS", "South Georgia and the South Sandwich Islands"),
    ("HK", "HKG", "Hong Kong"),
    ("MO", "MAC", "Macao"),
)

# Azure region names in the Cloud Carbon Footprint table that differ from the names Azure's
# API uses (``az account list-locations``): both resolve.
AZURE_API_ALIASES = {
    "apeast": ("eastasia",),
    "apsoutheast": ("southeastasia",),
}

# Code errors in the UNFCCC/IFI table, corrected to ISO 3166-1: the Cayman Islands are coded
# CY (Cyprus's code) and the Canary Islands (part of Spain) carry the Cayman Islands' codes.
ALPHA2_CORRECTIONS = {"Cayman Islands": "KY"}
SKIP_ROWS = {"Canary Islands (Spain)"}

FLEET_BASIS = "provider fleet-average PUE"

# File name prefix of the shared hourly files -> the zone the yearly tables (and the rest of
# the package) use; the files' own ``Zone Id`` column carries the same name.
HOURLY_ZONE_NAMES = {"DE-LU": "DE", "BR-SP": "BR-CS", "CL-SIC": "CL-SEN"}
HOURLY_HEADER = ["utc_hour", "lca_g_per_kwh", "direct_g_per_kwh", "estimated"]
HOURLY_ATTRIBUTION = """# Shipped hourly intensity data: source and licence

`<ZONE>.csv.gz` in this folder: hourly average (location-based, consumption) carbon intensity
per zone, 2021-2023, in gCO2e/kWh, lifecycle (LCA, the basis of the yearly tables) and direct
(combustion only), with Electricity Maps' own estimated-data flag. Columns: `utc_hour` (hours
since 1970-01-01T00:00 UTC; the hour the value applies to), `lca_g_per_kwh`,
`direct_g_per_kwh`, `estimated` (1 = Electricity Maps estimated the hour).

Source: Electricity Maps (https://www.electricitymaps.com), free hourly datasets of its data
portal, as republished in HewlettPackard/green-dcc and, for ES and NO,
umassos/decarbonization-potential (see `../SOURCES.md`). Zone names follow the yearly table:
the files `DE-LU` are zone `DE`, `BR-SP` is `BR-CS`, `CL-SIC` is `CL-SEN`.

Licence: ODbL 1.0, the Open Database License (https://opendatacommons.org/licenses/odbl/1-0/).
Attribute "Electricity Maps (electricitymaps.com)". These tables, and the ledger's
`hourly_emission_factors` and `hourly_profiles` rows built from them, are derived databases:
publish adapted versions under the ODbL too.
"""


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _num(value: float) -> str:
    """Format a number without float noise: integers stay integers."""
    value = float(value)
    return str(int(value)) if value.is_integer() else format(value, ".10g")


def build_countries(source: Path) -> tuple[str, dict[str, str]]:
    """Return the countries table and the alpha-3 -> alpha-2 map."""
    marginal = json.loads((source / "marginal-intensities-2021.json").read_text())
    rows: dict[str, list[str]] = {}
    for key in sorted(marginal):
        rec = marginal[key]
        alpha2, alpha3 = rec["country_code_iso_2"].strip(), rec["country_code_iso_3"].strip()
        alpha2 = ALPHA2_CORRECTIONS.get(key, alpha2)
        if key in SKIP_ROWS:
            continue
        if len(alpha2) != 2 or len(alpha3) != 3 or alpha2 in rows:
            continue  # sub-national islands, EU memo line, duplicate codes: first name wins
        om = rec.get("Operating Margin Grid Emission", "").strip()
        om_value = _num(float(om)) if om and float(om) > 0 else ""
        rows[alpha2] = [alpha2, alpha3, " ".join(key.split()), om_value]
    for alpha2, alpha3, name in EXTRA_COUNTRIES:
        rows.setdefault(alpha2, [alpha2, alpha3, name, ""])
    ordered = [rows[k] for k in sorted(rows)]
    header = ["alpha2", "alpha3", "name", "marginal_om_g_per_kwh_2021"]
    return _csv_text(header, ordered), {r[1]: r[0] for r in ordered}


def build_electricity_maps(source: Path, alpha2_codes: set[str]) -> str:
    """Return the zone x year table."""
    years = sorted(
        int(p.stem.split("_")[1]) for p in (source / "electricity-maps").glob("yearly_*.json")
    )
    data = {
        y: json.loads((source / f"electricity-maps/yearly_{y}.json").read_text()) for y in years
    }
    zones = sorted(set().union(*(set(d) for d in data.values())))
    rows = []
    for zone in zones:
        latest = next(data[y][zone] for y in reversed(years) if zone in data[y])
        prefix = zone.split("-")[0]
        values = []
        for y in years:
            rec = data[y].get(zone)
            if rec is None:
                values.append("")
                continue
            unit = rec["carbonIntensity"]["unit"]
            if unit != "gCO2eq/kWh":
                raise SystemExit(f"{zone} {y}: unexpected unit {unit!r}")
            values.append(_num(rec["carbonIntensity"]["value"]))
        country = prefix if prefix in alpha2_codes else ""
        rows.append([zone, latest["zone"]["zoneName"], country, *values])
    return _csv_text(["zone", "zone_name", "country", *map(str, years)], rows)


def build_ember(source: Path, alpha3_to_2: dict[str, str]) -> str:
    """Return Ember's latest yearly average per country and region."""
    data = json.loads((source / "average-intensities.json").read_text())
    rows = []
    for key in sorted(data):
        rec = data[key]
        alpha3 = rec["country_code"].strip()
        alpha2 = alpha3_to_2.get(alpha3, "") if alpha3 else ""
        rows.append(
            [
                key,
                alpha2,
                rec["country_or_region"].strip(),
                str(int(rec["year"])),
                _num(rec["emissions_intensity_gco2_per_kwh"]),
            ]
        )
    return _csv_text(["code", "alpha2", "name", "year", "intensity_g_per_kwh"], rows)


def build_cloud(source: Path) -> tuple[str, str]:
    """Return the region table (canonical lower-case names + aliases) and the provider table."""
    with (source / "cloud_regions.csv").open(newline="") as fh:
        records = list(csv.DictReader(fh))
    rows = []
    fleet: dict[str, Counter[str]] = {}
    for rec in records:
        provider, name = rec["provider"].strip().lower(), rec["region"].strip()
        region = name.lower()
        aliases = [name] if name != region else []
        aliases.extend(AZURE_API_ALIASES.get(region, ()) if provider == "azure" else ())
        pue = _num(float(rec["pue"]))
        basis = rec["pue_basis"].strip()
        if basis == FLEET_BASIS:
            fleet.setdefault(provider, Counter())[pue] += 1
        rows.append(
            [
                provider,
                region,
                " ".join(aliases),
                rec["country_iso2"].strip().upper(),
                rec["electricity_maps_zone"].strip(),
                pue,
                basis,
            ]
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    header = ["provider", "region", "aliases", "country", "zone", "pue", "pue_basis"]
    providers = [[p, fleet[p].most_common(1)[0][0], FLEET_BASIS] for p in sorted(fleet)]
    return _csv_text(header, rows), _csv_text(["provider", "fleet_pue", "basis"], providers)


def build_hourly(source: Path) -> dict[str, bytes]:
    """Return one gzip CSV per zone (``hourly/<ZONE>.csv.gz``), deterministic bytes."""
    by_zone: dict[str, list[list[str]]] = {}
    for path in sorted((source / "hourly").glob("*_hourly.csv.gz")):
        prefix = path.name.rsplit("_", 2)[0]
        zone = HOURLY_ZONE_NAMES.get(prefix, prefix)
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            for rec in csv.DictReader(fh):
                if rec["Zone Id"] != zone:
                    raise SystemExit(f"{path.name}: Zone Id {rec['Zone Id']!r}, expected {zone}")
                stamp = rec["Datetime (UTC)"]
                epoch_s = _epoch_s(stamp)
                if epoch_s % 3600:
                    raise SystemExit(f"{path.name}: {stamp} is not on the hour")
                by_zone.setdefault(zone, []).append(
                    [
                        str(epoch_s // 3600),
                        _num(float(rec["Carbon Intensity gCO₂eq/kWh (LCA)"])),
                        _num(float(rec["Carbon Intensity gCO₂eq/kWh (direct)"])),
                        "1" if rec["Data Estimated"].strip().lower() == "true" else "0",
                    ]
                )
    out = {}
    for zone, rows in sorted(by_zone.items()):
        rows.sort(key=lambda r: int(r[0]))
        text = _csv_text(HOURLY_HEADER, rows).encode()
        out[f"{zone}.csv.gz"] = gzip.compress(text, compresslevel=9, mtime=0)
    return out


def _epoch_s(stamp: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp())


def build(source: Path, out: Path) -> dict[str, int]:
    """Write every table into ``out``; return their sizes in bytes."""
    countries, alpha3_to_2 = build_countries(source)
    regions, providers = build_cloud(source)
    tables = {
        "countries.csv": countries,
        "electricity_maps_yearly.csv": build_electricity_maps(source, set(alpha3_to_2.values())),
        "ember_yearly.csv": build_ember(source, alpha3_to_2),
        "cloud_regions.csv": regions,
        "cloud_providers.csv": providers,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (out / name).write_text(text, encoding="utf-8")
    shutil.copyfile(source / "SOURCES.md", out / "SOURCES.md")
    sizes = {name: len(text.encode()) for name, text in tables.items()}
    hourly = out / "hourly"
    hourly.mkdir(exist_ok=True)
    for name, data in build_hourly(source).items():
        (hourly / name).write_bytes(data)
        sizes[f"hourly/{name}"] = len(data)
    (hourly / "ATTRIBUTION.md").write_text(HOURLY_ATTRIBUTION, encoding="utf-8")
    return sizes


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for name, size in build(args.source, args.out).items():
        print(f"{name}: {size} bytes")  # noqa: T201


if __name__ == "__main__":
    main()
