"""What the host is and what a process reserved: DMI (root injectable), affinity, cgroup quota."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from carbonledger.measure import describe_hardware
from carbonledger.measure.host import cpus_used, describe_host, looks_like_instance_type, read_dmi


def _dmi(tmp_path: Path, product: str, vendor: str = "") -> Path:
    root = tmp_path / "dmi"
    root.mkdir(exist_ok=True)
    (root / "product_name").write_text(product + "\n")
    if vendor:
        (root / "sys_vendor").write_text(vendor + "\n")
    read_dmi.cache_clear()
    return root


def test_aws_writes_the_instance_type_into_dmi(tmp_path: Path) -> None:
    root = _dmi(tmp_path, "p4d.24xlarge", "Amazon EC2")
    host = describe_host(dmi_root=root)
    assert (host.instance_type, host.instance_type_source, host.host_model) == (
        "p4d.24xlarge",
        "dmi",
        None,
    )


@pytest.mark.parametrize("product", ["Google Compute Engine", "Virtual Machine", "HVM domU"])
def test_gcp_azure_and_xen_name_no_instance_type_nor_model(tmp_path: Path, product: str) -> None:
    host = describe_host(dmi_root=_dmi(tmp_path, product))
    assert host == type(host)(None, None, None)


def test_the_setting_wins_and_a_machine_model_is_kept(tmp_path: Path) -> None:
    root = _dmi(tmp_path, "PowerEdge XE9680", "Dell Inc.")
    assert describe_host(dmi_root=root).host_model == "PowerEdge XE9680"
    host = describe_host(dmi_root=root, instance_type=" a2-highgpu-8g ")
    assert (host.instance_type, host.instance_type_source) == ("a2-highgpu-8g", "setting")
    assert host.host_model == "PowerEdge XE9680"


def test_an_absent_or_unreadable_dmi_folder_is_unknown_not_an_error(tmp_path: Path) -> None:
    read_dmi.cache_clear()
    assert describe_host(dmi_root=tmp_path / "missing") == describe_host(dmi_root=tmp_path)


def test_dmi_is_read_once_per_root(tmp_path: Path) -> None:
    root = _dmi(tmp_path, "g5.xlarge")
    read_dmi(root)
    (root / "product_name").write_text("changed\n")
    assert read_dmi(root)["product_name"] == "g5.xlarge"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("p4d.24xlarge", True),
        ("g5.xlarge", True),
        ("t3.micro", True),
        ("c7i.metal-24xl", True),
        ("m7i-flex.large", True),
        ("u-6tb1.metal", True),
        ("PowerEdge R750", False),
        ("Standard PC (Q35 + ICH9, 2009)", False),
        ("e2-standard-2", False),
    ],
)
def test_aws_instance_type_names(name: str, ok: bool) -> None:
    assert looks_like_instance_type(name) is ok


def _cgroup(tmp_path: Path, quota: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    leaf = root / "job.slice"
    leaf.mkdir(parents=True)
    (root / "cpu.max").write_text("max 100000\n")
    (leaf / "cpu.max").write_text(quota + "\n")
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("0::/job.slice\n")
    return root, proc


def test_a_cgroup_quota_caps_the_cpus_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    root, proc = _cgroup(tmp_path, "250000 100000")  # 2.5 CPUs: holds part of a third
    assert cpus_used(cgroup_root=root, proc_cgroup=proc) == 3
    root2, proc2 = _cgroup(tmp_path / "b", "max 100000")
    assert cpus_used(cgroup_root=root2, proc_cgroup=proc2) == 16


def test_affinity_is_the_cpus_used_without_a_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert cpus_used(cgroup_root=tmp_path / "none", proc_cgroup=tmp_path / "none") == 4


def test_hardware_tags_say_used_vs_present(
    gpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("CARBONLEDGER_DMI_ROOT", str(_dmi(tmp_path, "p4d.24xlarge")))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    from carbonledger.settings import get_settings

    get_settings.cache_clear()
    tags = describe_hardware().as_tags()
    assert tags["carbon.gpu_count"] == "1"  # used
    assert tags["carbon.gpu_count_host"] == "3"  # present
    assert tags["carbon.instance_type"] == "p4d.24xlarge"
    assert tags["carbon.instance_type_source"] == "dmi"
    assert int(tags["carbon.cpu_count_used"]) <= 2
    assert "carbon.host_model" not in tags


def test_instance_type_setting_reaches_the_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonledger.measure import amd, nvml

    monkeypatch.setattr(nvml, "nvml_init", lambda: False)  # no GPU library: none present
    monkeypatch.setattr(amd, "amd_init", lambda: False)
    monkeypatch.setenv("CARBONLEDGER_INSTANCE_TYPE", "Standard_ND96asr_v4")
    from carbonledger.settings import get_settings

    get_settings.cache_clear()
    tags = describe_hardware().as_tags()
    assert tags["carbon.instance_type"] == "Standard_ND96asr_v4"
    assert tags["carbon.instance_type_source"] == "setting"
    assert tags["carbon.gpu_count_host"] == "0"
