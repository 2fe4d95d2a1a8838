"""The shipped embodied-emissions tables: loaded on first use, parsed once, cached.

The CSV files in ``carbonledger/embodied/data/`` are built by
``scripts/build_embodied_tables.py`` from Cloud Carbon Footprint (Apache-2.0) and ADEME/Hubblo
(CC BY-SA 4.0) data; each keeps its own file and licence (see ``ATTRIBUTION``). Nothing is read
at import time.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

ATTRIBUTION = (
    "Embodied emissions data: Cloud Carbon Footprint per-instance embodied coefficients and "
    "component model (Thoughtworks, ccf-coefficients, Apache-2.0); GPU card life-cycle "
    "assessment by ADEME / Hubblo (Lees-Perasso, Ekchajzer, Roussilhe, De Latour, ADEME 2026; "
    "hubblo-org/gpu-calculator), licensed CC BY-SA 4.0; the derived table "
    "hubblo_gpu_cards.csv stays CC BY-SA 4.0."
)
SOURCE_CCF_INSTANCES = "ccf-coefficients embodied (snapshot 2026-04)"
SOURCE_CCF_COMPONENTS = "ccf-coefficients constants.py (snapshot 2026-04)"
SOURCE_HUBBLO = "ADEME/Hubblo GPU LCA (gpu-calculator, snapshot 2026-03-30)"
LICENCE_CCF = "Apache-2.0 (Cloud Carbon Footprint)"
LICENCE_HUBBLO = "CC-BY-SA-4.0 (ADEME/Hubblo)"
PROVIDERS = ("aws", "azure", "gcp")


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One row of CCF's per-instance table: a cloud instance type's whole host.

    Attributes:
        provider: ``aws``, ``azure`` or ``gcp``.
        instance_type: the type as CCF spells it (``p4d.24xlarge``, ``NC24s v3``).
        family: the provider's family (AWS: the name before the size).
        microarchitecture: CPU microarchitecture (Azure, GCP; empty for AWS).
        additional_memory_kg: DRAM above 16 GB.
        additional_storage_kg: SSDs and HDDs.
        additional_cpus_kg: CPU sockets beyond the first.
        additional_gpus_kg: GPU cards at 150 kg each.
        total_kg: the host's embodied emissions (1,000 kg base + the additions).
        host_gpu_count: GPU cards of the host (the GPU addition / 150 kg).
        host_vcpus: vCPUs of the host: the largest size its family's names spell (None when
            none does).
    """

    provider: str
    instance_type: str
    family: str
    microarchitecture: str
    additional_memory_kg: float
    additional_storage_kg: float
    additional_cpus_kg: float
    additional_gpus_kg: float
    total_kg: float
    host_gpu_count: int
    host_vcpus: int | None


@dataclass(frozen=True, slots=True)
class CardRecord:
    """One GPU card of the ADEME/Hubblo study: climate-change impact (kg CO2e) per phase.

    Attributes:
        name: the card as the study names it (``NVIDIA A100 SXM4 40GB``).
        manufacturing_kg: manufacturing of every component, upstream transport included.
        transport_kg: distribution transport (boat, truck, plane; only some cards have it).
        end_of_life_kg: end of life (not part of ``embodied_kg``).
        embodied_kg: ``manufacturing_kg + transport_kg``, the figure carbonledger uses.
    """

    name: str
    manufacturing_kg: float
    transport_kg: float
    end_of_life_kg: float
    embodied_kg: float


@dataclass(frozen=True, slots=True)
class ComponentModel:
    """Cloud Carbon Footprint's embodied model of a rack server (kg CO2e per part)."""

    base_server_kg: float
    cpu_kg: float
    gpu_kg: float
    ssd_kg: float
    hdd_kg: float
    dram_threshold_gb: float
    dram_kg_per_gb: float
    lifetime_years: float


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("carbonledger.embodied").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def instances() -> dict[tuple[str, str], tuple[InstanceRecord, ...]]:
    """CCF rows by ``(provider, normalised type)``; several rows where microarchitectures differ."""
    out: dict[tuple[str, str], list[InstanceRecord]] = {}
    for row in _read_csv("ccf_instances.csv"):
        rec = InstanceRecord(
            provider=row["provider"],
            instance_type=row["instance_type"],
            family=row["family"],
            microarchitecture=row["microarchitecture"],
            additional_memory_kg=float(row["additional_memory_kg"]),
            additional_storage_kg=float(row["additional_storage_kg"]),
            additional_cpus_kg=float(row["additional_cpus_kg"]),
            additional_gpus_kg=float(row["additional_gpus_kg"]),
            total_kg=float(row["total_kg"]),
            host_gpu_count=int(row["host_gpu_count"]),
            host_vcpus=int(row["host_vcpus"]) if row["host_vcpus"] else None,
        )
        key = (rec.provider, normalize_instance_type(rec.instance_type))
        out.setdefault(key, []).append(rec)
    return {key: tuple(rows) for key, rows in out.items()}


@cache
def cards() -> dict[str, CardRecord]:
    """ADEME/Hubblo GPU cards by the study's name."""
    out: dict[str, CardRecord] = {}
    for row in _read_csv("hubblo_gpu_cards.csv"):
        out[row["graphics_card"]] = CardRecord(
            name=row["graphics_card"],
            manufacturing_kg=float(row["manufacturing_kg"]),
            transport_kg=float(row["transport_kg"]),
            end_of_life_kg=float(row["end_of_life_kg"]),
            embodied_kg=float(row["embodied_kg"]),
        )
    return out


@cache
def component_model() -> ComponentModel:
    """CCF's component model (``ccf_components.csv``)."""
    values = {row["parameter"]: float(row["value"]) for row in _read_csv("ccf_components.csv")}
    return ComponentModel(**{name: values[name] for name in ComponentModel.__slots__})


def normalize_instance_type(name: str) -> str:
    """A comparable instance type: lower case, single spaces, no Azure ``Standard_`` prefix.

    Azure's API spells ``Standard_NC24s_v3`` what CCF spells ``NC24s v3``; both give
    ``nc24s v3``. AWS and GCP names only lose their case.
    """
    text = name.strip()
    if text.lower().startswith("standard_"):
        text = text[len("standard_") :]
    return " ".join(text.replace("_", " ").split()).lower()


def clear_caches() -> None:
    """Forget every parsed table (tests that swap the data use this)."""
    for fn in (instances, cards, component_model):
        fn.cache_clear()
