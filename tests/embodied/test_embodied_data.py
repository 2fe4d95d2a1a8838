"""The shipped embodied tables: one licence file each, lazy, exactly what the script makes."""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from carbonledger.embodied import ATTRIBUTION, tables

ROOT = Path(__file__).resolve().parents[2]
DATA = resources.files("carbonledger.embodied").joinpath("data")
SOURCE = Path("/work/shared/data/embodied")
TABLES = ("ccf_instances.csv", "ccf_components.csv", "hubblo_gpu_cards.csv")


def test_every_table_is_attributed_with_its_own_licence_file() -> None:
    text = DATA.joinpath("ATTRIBUTION.md").read_text("utf-8")
    for name in TABLES:
        assert f"`{name}`" in text, f"{name} is not attributed"
    assert "Cloud Carbon Footprint" in text and "Apache-2.0" in text
    assert "ADEME" in text and "Hubblo" in text and "CC BY-SA 4.0" in text
    apache = DATA.joinpath("LICENSE-Apache-2.0.txt").read_text("utf-8")
    assert "Apache License" in apache and "Version 2.0" in apache
    assert "END OF TERMS AND CONDITIONS" in apache
    cc = DATA.joinpath("LICENSE-CC-BY-SA-4.0.md").read_text("utf-8")
    assert "`hubblo_gpu_cards.csv`" in cc
    assert "https://creativecommons.org/licenses/by-sa/4.0/" in cc
    assert "Changes made" in cc  # CC BY-SA asks to indicate changes
    assert DATA.joinpath("SOURCES.md").is_file()


def test_attribution_constant_names_both_sources_and_the_share_alike() -> None:
    assert "Cloud Carbon Footprint" in ATTRIBUTION and "Apache-2.0" in ATTRIBUTION
    assert "Hubblo" in ATTRIBUTION and "CC BY-SA 4.0" in ATTRIBUTION


def test_no_boaviztapi_data_is_shipped() -> None:
    for name in TABLES:
        assert "boavizta" not in DATA.joinpath(name).read_text("utf-8").lower()


def test_package_data_is_declared_for_installation() -> None:
    assert '"carbonledger.embodied" = ["data/*"]' in (ROOT / "pyproject.toml").read_text()


def test_shipped_tables_are_compact() -> None:
    total = sum(DATA.joinpath(name).stat().st_size for name in TABLES)  # type: ignore[attr-defined]
    assert total < 150_000, f"shipped embodied tables grew to {total} bytes"


def test_tables_are_not_loaded_at_import() -> None:
    code = (
        "import carbonledger.embodied, carbonledger.embodied.tables as t;"
        "print(t.instances.cache_info().currsize, t.cards.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_the_hubblo_figure_is_manufacturing_plus_transport_without_end_of_life() -> None:
    h100 = tables.cards()["NVIDIA H100 PCIe 80GB"]
    # casing + heatsink + PWB + die + VRAM + upstream transport, then boat + truck
    manufacturing = 6.51 + 5.17 + 9.65 + 85.5 + 59.8 + 0.439
    assert h100.manufacturing_kg == pytest.approx(manufacturing)
    assert h100.transport_kg == pytest.approx(0.427 + 0.0852)
    assert h100.embodied_kg == pytest.approx(manufacturing + 0.427 + 0.0852)
    assert h100.end_of_life_kg == pytest.approx(2.55)
    assert "Average" not in tables.cards()  # per-unit factors, not a card


def test_ccf_host_counts_follow_from_its_model() -> None:
    p4d = tables.instances()[("aws", "p4d.24xlarge")][0]
    assert p4d.total_kg == pytest.approx(4676.79)
    assert p4d.host_gpu_count == 8 and p4d.host_vcpus == 96
    model = tables.component_model()
    assert (model.base_server_kg, model.gpu_kg, model.cpu_kg) == (1000, 150, 100)
    assert model.dram_kg_per_gb == pytest.approx(533 / 384)
    assert model.lifetime_years == 4
    # CCF's total is the base server plus its additions
    additions = p4d.additional_memory_kg + p4d.additional_storage_kg
    additions += p4d.additional_cpus_kg + p4d.additional_gpus_kg
    assert p4d.total_kg == pytest.approx(model.base_server_kg + additions)
    with DATA.joinpath("ccf_instances.csv").open("r", encoding="utf-8") as fh:
        providers = {row["provider"] for row in csv.DictReader(fh)}
    assert providers == {"aws", "azure", "gcp"}


@pytest.mark.skipif(not SOURCE.is_dir(), reason="source data folder not on this machine")
def test_build_script_reproduces_the_shipped_tables_byte_for_byte(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "build_embodied_tables", ROOT / "scripts" / "build_embodied_tables.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(SOURCE, tmp_path)
    shipped = ROOT / "carbonledger" / "embodied" / "data"
    for name in (*TABLES, "SOURCES.md"):
        assert filecmp.cmp(tmp_path / name, shipped / name, shallow=False), f"{name} is stale"
