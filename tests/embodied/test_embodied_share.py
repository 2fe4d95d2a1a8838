"""M = TE x (duration / lifetime) x (reserved / host): GPUs for GPU jobs, else vCPUs."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from carbonledger import contract as c
from carbonledger.embodied import (
    EmbodiedShare,
    Unavailable,
    amortised_co2e_kg,
    embodied_for_tags,
    embodied_share,
    reservation_from_tags,
)
from carbonledger.errors import EmbodiedError

HOUR_S = 3600.0


def _shipped_total_kg(provider: str, instance_type: str) -> float:
    path = resources.files("carbonledger.embodied").joinpath("data", "ccf_instances.csv")
    with path.open("r", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if (row["provider"], row["instance_type"]) == (provider, instance_type):
                return float(row["total_kg"])
    raise AssertionError(f"{instance_type} is not in the shipped table")


def _p4d_tags(gpus_used: int) -> dict[str, str]:
    return {
        c.TAG_INSTANCE_TYPE: "p4d.24xlarge",
        c.TAG_CLOUD_PROVIDER: "aws",
        c.TAG_GPU_MODEL: "NVIDIA A100-SXM4-40GB",
        c.TAG_GPU_COUNT: str(gpus_used),
        c.TAG_GPU_COUNT_HOST: "8",
        c.TAG_CPU_COUNT: "96",
        c.TAG_CPU_COUNT_USED: "24",
        c.TAG_RAM_GB: "1152.0",
    }


def test_two_gpus_of_an_8_gpu_instance_for_10_hours_over_4_years() -> None:
    te_kg = _shipped_total_kg("aws", "p4d.24xlarge")  # CCF: the whole 8-GPU host
    expected = te_kg * (10 * HOUR_S / (4 * 365 * 24 * HOUR_S)) * (2 / 8)
    share = embodied_share(reservation_from_tags(_p4d_tags(2)), 10 * HOUR_S, lifetime_years=4)
    assert isinstance(share, EmbodiedShare)
    assert share.embodied_co2e_kg == pytest.approx(expected, rel=1e-12)
    assert (share.resource, share.resources_reserved, share.resources_host) == ("gpu", 2, 8)
    assert share.lifetime_years == 4
    assert share.host.method == c.EMBODIED_CCF_INSTANCE
    assert share.host.key == "ccf:aws:p4d.24xlarge"
    assert "Apache-2.0" in share.host.licence and share.host.source
    low, high = share.range.low_kg, share.range.high_kg
    assert low < share.embodied_co2e_kg < high


def test_the_lifetime_setting_is_applied_and_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_EMBODIED_LIFETIME_YEARS", "6")
    share = embodied_for_tags(_p4d_tags(8), HOUR_S)
    assert isinstance(share, EmbodiedShare)
    assert share.lifetime_years == 6
    assert share.as_dict()["lifetime_years"] == 6
    expected = _shipped_total_kg("aws", "p4d.24xlarge") * HOUR_S / (6 * c.S_PER_YEAR)
    assert share.embodied_co2e_kg == pytest.approx(expected)


def test_a_cpu_job_is_charged_by_vcpus() -> None:
    tags = {
        c.TAG_INSTANCE_TYPE: "m5.2xlarge",
        c.TAG_CLOUD_PROVIDER: "aws",
        c.TAG_GPU_MODEL: "none",
        c.TAG_GPU_COUNT: "0",
        c.TAG_CPU_COUNT: "8",
        c.TAG_RAM_GB: "32.0",
    }
    share = embodied_share(reservation_from_tags(tags), HOUR_S, lifetime_years=4)
    assert isinstance(share, EmbodiedShare)
    # the VM sees its 8 vCPUs; the host is the family's largest size, m5.24xlarge = 96
    assert (share.resource, share.resources_reserved, share.resources_host) == ("vcpu", 8, 96)
    te_kg = _shipped_total_kg("aws", "m5.2xlarge")
    assert share.embodied_co2e_kg == pytest.approx(te_kg * HOUR_S / (4 * c.S_PER_YEAR) * 8 / 96)


def test_a_cpu_job_on_a_gpu_host_is_charged_by_vcpus() -> None:
    tags = {**_p4d_tags(0), c.TAG_GPU_COUNT: "0"}
    share = embodied_share(reservation_from_tags(tags), HOUR_S, lifetime_years=4)
    assert isinstance(share, EmbodiedShare)
    assert (share.resource, share.resources_reserved, share.resources_host) == ("vcpu", 24, 96)


def test_a_serving_window_is_charged_for_its_length() -> None:
    minute = embodied_share(reservation_from_tags(_p4d_tags(1)), 60.0, lifetime_years=4)
    hour = embodied_share(reservation_from_tags(_p4d_tags(1)), HOUR_S, lifetime_years=4)
    assert isinstance(minute, EmbodiedShare) and isinstance(hour, EmbodiedShare)
    assert hour.embodied_co2e_kg == pytest.approx(60 * minute.embodied_co2e_kg)


def test_more_reserved_than_the_host_is_known_to_have_charges_the_whole_host() -> None:
    tags = {**_p4d_tags(0), c.TAG_GPU_COUNT: "0", c.TAG_CPU_COUNT_USED: "128"}
    share = embodied_share(reservation_from_tags(tags), HOUR_S, lifetime_years=4)
    assert isinstance(share, EmbodiedShare)
    assert share.resource_share == 1.0
    assert any("charged the whole host" in n for n in share.notes)


def test_a_run_without_hardware_gets_no_embodied_figure_and_says_why() -> None:
    found = embodied_share(reservation_from_tags({}), HOUR_S, lifetime_years=4)
    assert isinstance(found, Unavailable)
    assert found.code == "no-hardware"
    assert "carbon.gpu_model" in found.reason and "made up" in found.reason


def test_a_host_model_without_figure_or_counts_gets_none() -> None:
    found = embodied_share(
        reservation_from_tags({c.TAG_HOST_MODEL: "Mystery Box 9000"}), HOUR_S, lifetime_years=4
    )
    assert isinstance(found, Unavailable) and found.code == "unknown-host"
    assert "CARBONLEDGER_EMBODIED_PATH" in found.reason


def test_an_instance_type_without_vcpu_sizes_cannot_charge_a_cpu_job() -> None:
    tags = {
        c.TAG_INSTANCE_TYPE: "u-6tb1.metal",
        c.TAG_CLOUD_PROVIDER: "aws",
        c.TAG_CPU_COUNT: "448",
    }
    found = embodied_share(reservation_from_tags(tags), HOUR_S, lifetime_years=4)
    assert isinstance(found, Unavailable) and found.code == "host-resources-unknown"
    assert "host_vcpus" in found.reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lifetime_years": 0}, "lifetime"),
        ({"duration_s": -1}, "negative"),
        ({"resources_reserved": 3, "resources_host": 2}, "reserved"),
        ({"resources_host": 0}, "reserved"),
    ],
)
def test_the_formula_refuses_impossible_values(kwargs: dict[str, float], match: str) -> None:
    args = {
        "host_embodied_co2e_kg": 1000.0,
        "duration_s": HOUR_S,
        "lifetime_years": 4.0,
        "resources_reserved": 1.0,
        "resources_host": 2.0,
        **kwargs,
    }
    with pytest.raises(EmbodiedError, match=match):
        amortised_co2e_kg(**args)
