"""The shipped tables: attributed, compact, loaded lazily, exactly what the build script makes."""

from __future__ import annotations

import filecmp
import importlib.util
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from carbonledger.intensity import ATTRIBUTION, known_zones, tables

ROOT = Path(__file__).resolve().parents[2]
DATA = resources.files("carbonledger.intensity").joinpath("data")
SOURCE = Path("/work/shared/data/intensity")
TABLES = (
    "electricity_maps_yearly.csv",
    "ember_yearly.csv",
    "countries.csv",
    "cloud_regions.csv",
    "cloud_providers.csv",
)
LICENCES = {
    "Electricity Maps": "ODbL 1.0",
    "Ember": "CC BY-SA 4.0",
    "UNFCCC": "CC BY-SA 4.0",
    "Cloud Carbon Footprint": "Apache-2.0",
}


def test_attribution_file_ships_in_package_data_and_names_every_source_and_licence() -> None:
    text = DATA.joinpath("ATTRIBUTION.md").read_text("utf-8")
    for source, licence in LICENCES.items():
        assert source in text
        assert licence in text
    for name in TABLES:
        assert f"`{name}`" in text, f"{name} is not attributed"
    assert DATA.joinpath("SOURCES.md").is_file()


def test_attribution_constant_names_every_source_and_licence() -> None:
    for source in LICENCES:
        assert source in ATTRIBUTION
    for licence in ("ODbL 1.0", "CC BY-SA 4.0", "Apache-2.0"):
        assert licence in ATTRIBUTION


def test_package_data_is_declared_for_installation() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"carbonledger.intensity" = ["data/*", "data/hourly/*"]' in text


def test_shipped_data_is_compact() -> None:
    total = sum(DATA.joinpath(name).stat().st_size for name in TABLES)  # type: ignore[attr-defined]
    assert total < 200_000, f"shipped tables grew to {total} bytes"


def test_tables_are_not_loaded_at_import() -> None:
    code = (
        "import carbonledger.intensity as ci, carbonledger.intensity.tables as t;"
        "print(t.zones.cache_info().currsize, t.cloud_regions.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_tables_are_parsed_once_and_cached() -> None:
    tables.clear_caches()
    first = tables.zones()
    assert tables.zones() is first
    assert tables.zones.cache_info().hits >= 1


def test_zone_table_has_every_zone_and_year() -> None:
    zones = known_zones()
    assert len(zones) == 352
    assert {"DE", "US-CAL-CISO", "SE-SE3"} <= set(zones)
    assert all(len(z.intensity_g_per_kwh_by_year) == 5 for z in tables.zones().values())


@pytest.mark.skipif(not SOURCE.is_dir(), reason="source data folder not on this machine")
def test_build_script_reproduces_the_shipped_tables_byte_for_byte(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "build_intensity_tables", ROOT / "scripts" / "build_intensity_tables.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(SOURCE, tmp_path)
    shipped = ROOT / "carbonledger" / "intensity" / "data"
    hourly = sorted(p.name for p in (shipped / "hourly").iterdir())
    assert sorted(p.name for p in (tmp_path / "hourly").iterdir()) == hourly
    for name in (*TABLES, "SOURCES.md", *(f"hourly/{h}" for h in hourly)):
        assert filecmp.cmp(tmp_path / name, shipped / name, shallow=False), f"{name} is stale"


HOURLY_ZONES = {
    "AU-NSW", "AU-VIC", "BR-CS", "CA-ON", "CL-SEN", "DE", "ES", "GB", "IN-WE", "JP-TK", "KR",
    "NO", "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA",
}  # fmt: skip


def test_hourly_tables_ship_compact_attributed_and_named_as_the_yearly_zones() -> None:
    from carbonledger.intensity import hourly

    hourly.clear_caches()
    assert set(hourly.hourly_zones()) == HOURLY_ZONES
    assert HOURLY_ZONES <= set(known_zones())  # DE-LU -> DE, BR-SP -> BR-CS, CL-SIC -> CL-SEN
    folder = DATA.joinpath("hourly")
    size = sum(p.stat().st_size for p in folder.iterdir())  # type: ignore[attr-defined]
    assert size < 5_000_000, f"hourly tables grew to {size} bytes"
    text = folder.joinpath("ATTRIBUTION.md").read_text("utf-8")
    assert "ODbL 1.0" in text and "Electricity Maps" in text
    table = hourly.hourly_table("DE")
    assert table is not None and len(table.utc_hour) == 3 * 8760
    assert hourly.hourly_table("FR") is None


def test_hourly_tables_are_not_loaded_at_import() -> None:
    code = (
        "import carbonledger, carbonledger.intensity.hourly as h;"
        "print(h.hourly_table.cache_info().currsize, h.hourly_zones.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]
