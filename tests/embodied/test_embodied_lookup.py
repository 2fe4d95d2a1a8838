"""A host's total: instance type, else components (Hubblo cards, CCF's model), with provenance."""

from __future__ import annotations

import pytest

from carbonledger import contract as c
from carbonledger.embodied import (
    HostEmbodied,
    Reservation,
    Unavailable,
    match_card,
    reservation_from_hardware,
    reservation_from_tags,
    resolve_host,
    tables,
)
from carbonledger.embodied.cards import parse_gpu_name


def _host(res: Reservation | Unavailable) -> HostEmbodied:
    assert isinstance(res, Reservation)
    found = resolve_host(res)
    assert isinstance(found, HostEmbodied), found
    return found


def test_an_on_premise_gpu_server_is_built_from_ccf_parts_and_hubblo_cards() -> None:
    res = reservation_from_hardware(
        gpu_model="NVIDIA A100-SXM4-40GB", gpu_count=8, gpu_count_host=8, cpu_count=256, ram_gb=1024
    )
    host = _host(res)
    model = tables.component_model()
    card = tables.cards()["NVIDIA A100 SXM4 40GB"]
    expected = model.base_server_kg + (1024 - 16) * model.dram_kg_per_gb + 8 * card.embodied_kg
    assert host.embodied_co2e_kg == pytest.approx(expected)
    assert host.method == c.EMBODIED_COMPONENTS
    assert host.host_gpu_count == 8 and host.host_vcpus == 256
    assert [p.licence for p in host.parts] == [
        tables.LICENCE_CCF,
        tables.LICENCE_CCF,
        tables.LICENCE_HUBBLO,
    ]
    assert "CC-BY-SA-4.0" in host.licence and "Apache-2.0" in host.licence
    assert any("not counted" in n for n in host.notes)  # sockets and storage are not visible


def test_the_same_card_n_times_is_one_correlated_error() -> None:
    host = _host(reservation_from_hardware(gpu_model="NVIDIA L4", gpu_count=4, gpu_count_host=4))
    gpu = next(p for p in host.parts if p.name.startswith("GPU"))
    assert gpu.quantity == 4
    card_sigma = gpu.relative_uncertainty * gpu.co2e_kg  # linear over the 4 cards
    ccf_sigma = sum(p.relative_uncertainty * p.co2e_kg for p in host.parts if p is not gpu)
    expected = (card_sigma**2 + ccf_sigma**2) ** 0.5 / host.embodied_co2e_kg
    assert host.relative_uncertainty == pytest.approx(expected)


def test_a_gpu_without_a_card_in_the_study_takes_ccfs_per_gpu_figure_and_says_so() -> None:
    host = _host(reservation_from_hardware(gpu_model="NVIDIA H200", gpu_count=8, gpu_count_host=8))
    gpu = next(p for p in host.parts if p.name.startswith("GPU"))
    assert gpu.unit_kg == tables.component_model().gpu_kg == 150
    assert any("no card in the ADEME/Hubblo study" in n for n in host.notes)


def test_a_nearest_card_is_said_and_less_certain() -> None:
    exact = _host(reservation_from_hardware(gpu_model="NVIDIA A100-SXM4-40GB", gpu_count=1))
    nearest = _host(reservation_from_hardware(gpu_model="NVIDIA A100-SXM4-80GB", gpu_count=1))
    gpu = [next(p for p in h.parts if p.name.startswith("GPU")) for h in (exact, nearest)]
    assert gpu[0].unit_kg == gpu[1].unit_kg
    assert gpu[1].relative_uncertainty > gpu[0].relative_uncertainty
    assert any("memory 80 GB vs 40 GB" in n for n in nearest.notes)


def test_an_older_run_is_read_as_having_the_gpus_it_saw() -> None:
    res = reservation_from_tags({c.TAG_GPU_MODEL: "NVIDIA L4", c.TAG_GPU_COUNT: "2"})
    assert isinstance(res, Reservation)
    assert res.gpus_host == 2
    assert any("older run" in n for n in res.notes)


def test_tags_that_disagree_give_no_figure() -> None:
    res = reservation_from_tags(
        {c.TAG_GPU_MODEL: "NVIDIA L4", c.TAG_GPU_COUNT: "4", c.TAG_GPU_COUNT_HOST: "2"}
    )
    assert isinstance(res, Unavailable) and res.code == "inconsistent-reservation"


def test_a_microarchitecture_split_takes_the_largest_row_and_says_so() -> None:
    rows = tables.instances()[("gcp", "e2-standard-2")]
    assert len({r.total_kg for r in rows}) > 1
    host = _host(
        reservation_from_hardware(instance_type="e2-standard-2", cloud_provider="gcp", cpu_count=2)
    )
    assert host.embodied_co2e_kg == max(r.total_kg for r in rows)
    assert any("microarchitecture" in n for n in host.notes)


def test_azure_api_names_match_ccfs_spelling_and_the_provider_is_found() -> None:
    host = _host(reservation_from_hardware(instance_type="Standard_NC24s_v3", gpu_count=4))
    assert host.key == "ccf:azure:nc24s v3"
    assert host.host_gpu_count == tables.instances()[("azure", "nc24s v3")][0].host_gpu_count


def test_an_unknown_instance_type_falls_back_to_components_and_says_so() -> None:
    res = reservation_from_hardware(
        instance_type="x9.mega", cloud_provider="aws", cpu_count=16, ram_gb=64
    )
    host = _host(res)
    assert host.method == c.EMBODIED_COMPONENTS
    assert any("not in CCF's table" in n for n in host.notes)


@pytest.mark.parametrize(
    ("name", "card", "quality"),
    [
        ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 SXM4 40GB", "exact"),
        ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 PCIe 40GB", "exact"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 SXM4 40GB", "nearest"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe 80GB", "nearest"),  # SXM: no card of its own
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe 80GB", "exact"),
        ("Tesla P100-PCIE-16GB", "NVIDIA Tesla P100 PCIe 16GB", "exact"),
        ("NVIDIA GeForce GTX 1080 Ti", "NVIDIA GeForce GTX 1080 Ti", "exact"),
        ("NVIDIA GH200 480GB", "NVIDIA GH200", "exact"),
        ("A100", "NVIDIA A100 PCIe 40GB", "nearest"),  # two cards fit: the larger
    ],
)
def test_gpu_names_match_study_cards(name: str, card: str, quality: str) -> None:
    found = match_card(name)
    assert found is not None
    assert (found.card.name, found.quality) == (card, quality)
    assert (found.note is None) == (quality == "exact")


@pytest.mark.parametrize("name", ["NVIDIA H200", "NVIDIA L40S", "NVIDIA A10", "T4", "AMD MI300X"])
def test_a_different_family_never_matches_a_neighbour(name: str) -> None:
    assert match_card(name) is None


def test_names_are_taken_apart_into_family_form_and_memory() -> None:
    parsed = parse_gpu_name("NVIDIA A100-SXM4-80GB")
    assert (parsed.family, parsed.form, parsed.memory_gb) == ("A100", "SXM", 80)
