"""What the host is and what this process may use of it: DMI, CPU affinity, cgroup quota.

No network call, nothing at import: the DMI files (``/sys/class/dmi/id``, the root is
``CARBONLEDGER_DMI_ROOT`` so tests build a tree in ``tmp_path``) are read once per root and
process; a file that cannot be read is simply unknown. AWS writes the instance type into DMI
``product_name`` (``p4d.24xlarge``); GCP (``Google Compute Engine``) and Azure
(``Virtual Machine``) do not, so there the setting ``CARBONLEDGER_INSTANCE_TYPE`` says it.
A ``product_name`` that is neither an instance type nor a generic VM name is the machine's
model (``PowerEdge XE9680``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from carbonledger.contract import INSTANCE_TYPE_FROM_DMI, INSTANCE_TYPE_FROM_SETTING

DMI_FIELDS = ("product_name", "sys_vendor")
MAX_NAME_CHARS = 200
_AWS_TYPE = re.compile(
    r"^[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$"
)
GENERIC_PRODUCTS = frozenset(
    {
        "",
        "virtual machine",
        "google compute engine",
        "hvm domu",
        "kvm",
        "bochs",
        "vmware virtual platform",
        "virtualbox",
        "openstack nova",
        "openstack compute",
        "standard pc (q35 + ich9, 2009)",
        "standard pc (i440fx + piix, 1996)",
        "to be filled by o.e.m.",
        "system product name",
        "default string",
        "not specified",
        "not applicable",
        "none",
    }
)
"""``product_name`` values that name no machine model (hypervisors, firmware placeholders)."""


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What is known of the host without asking anyone.

    Attributes:
        instance_type: cloud instance type (``p4d.24xlarge``), when known.
        instance_type_source: ``setting`` or ``dmi`` (None when no type is known).
        host_model: the machine's model from DMI, when it names one.
    """

    instance_type: str | None = None
    instance_type_source: str | None = None
    host_model: str | None = None


@lru_cache(maxsize=8)
def read_dmi(root: Path) -> dict[str, str]:
    """The readable DMI fields under ``root`` (``product_name``, ``sys_vendor``), once per root."""
    out: dict[str, str] = {}
    for name in DMI_FIELDS:
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # absent (containers, macOS) or root-only: unknown, never an error
        value = " ".join(text.split())[:MAX_NAME_CHARS]
        if value:
            out[name] = value
    return out


def looks_like_instance_type(name: str) -> bool:
    """True for an AWS-style instance type name (``g5.xlarge``, ``c7i.metal-24xl``)."""
    return bool(_AWS_TYPE.match(name))


def describe_host(*, dmi_root: Path, instance_type: str | None = None) -> HostInfo:
    """The host's instance type (setting first, else DMI) and machine model.

    Args:
        dmi_root: the DMI folder (``CARBONLEDGER_DMI_ROOT``).
        instance_type: ``CARBONLEDGER_INSTANCE_TYPE``, which wins when set.
    """
    product = read_dmi(dmi_root).get("product_name", "")
    from_dmi = product if looks_like_instance_type(product) else None
    model = product if from_dmi is None and product.lower() not in GENERIC_PRODUCTS else None
    if instance_type and instance_type.strip():
        return HostInfo(instance_type.strip(), INSTANCE_TYPE_FROM_SETTING, model)
    if from_dmi:
        return HostInfo(from_dmi, INSTANCE_TYPE_FROM_DMI, None)
    return HostInfo(None, None, model)


def _cgroup_quota_cpus(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """The tightest cgroup v2 ``cpu.max`` quota (in CPUs) of this process's cgroup and parents."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    relative = next((ln[3:] for ln in lines if ln.startswith("0::")), "/")
    folder = cgroup_root / relative.lstrip("/")
    best: float | None = None
    for candidate in (folder, *folder.parents):
        try:
            quota, period = (candidate / "cpu.max").read_text(encoding="utf-8").split()[:2]
        except (OSError, ValueError):
            quota = period = ""
        if quota not in ("", "max") and period.isdigit() and quota.isdigit() and int(period):
            cpus = int(quota) / int(period)
            best = cpus if best is None else min(best, cpus)
        if candidate == cgroup_root:
            break
    return best


def cpus_used(
    *,
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    proc_cgroup: Path = Path("/proc/self/cgroup"),
) -> int | None:
    """Logical CPUs this process may use: its affinity, capped by a cgroup CPU quota.

    A quota of 2.5 CPUs counts as 3 (the work holds part of a third). None when neither can be
    read.
    """
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        affinity = os.cpu_count()
    quota = _cgroup_quota_cpus(cgroup_root, proc_cgroup)
    if quota is None:
        return affinity
    capped = max(1, math.ceil(quota))
    return capped if affinity is None else min(affinity, capped)
