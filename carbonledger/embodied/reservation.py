"""What a run reserved and what its host has, read from a run's tags (or the ledger's columns).

The plugin records, per run: ``carbon.instance_type`` (DMI or the setting), ``carbon.host_model``,
``carbon.gpu_model``, ``carbon.gpu_count`` (GPUs used: the visible ones),
``carbon.gpu_count_host`` (GPUs present), ``carbon.cpu_count`` (logical CPUs of the host),
``carbon.cpu_count_used`` (those the run may use) and ``carbon.ram_gb``. Runs of older plugin
versions lack the ``*_host``/``*_used`` tags: they are read as having used every GPU and CPU
they saw, on a host made of exactly those (said in the notes). Runs of other tools fall back to
the hardware columns they carry (``reservation_from_hardware``); a run without any hardware
figure gets no embodied figure, with the reason (:class:`Unavailable`), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from carbonledger import contract as c

NO_HARDWARE = "no-hardware"
UNKNOWN_HOST = "unknown-host"
HOST_RESOURCES_UNKNOWN = "host-resources-unknown"
INCONSISTENT = "inconsistent-reservation"
AMBIGUOUS_INSTANCE = "ambiguous-instance-type"


@dataclass(frozen=True, slots=True)
class Unavailable:
    """No embodied figure, and why.

    Attributes:
        code: ``no-hardware``, ``unknown-host``, ``host-resources-unknown``,
            ``inconsistent-reservation`` or ``ambiguous-instance-type``.
        reason: a sentence for a person, naming what would make a figure possible.
    """

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """What some work reserved on its host, and what the host has (counts, not kg).

    Attributes:
        instance_type: cloud instance type, when known.
        cloud_provider: ``aws``, ``azure`` or ``gcp``, when known.
        host_model: the machine's model (DMI product_name), when known.
        gpu_model: model of the GPUs used (None without GPUs).
        gpus_used: GPUs the work used (0 for a CPU job).
        gpus_host: GPUs present on the host as the work saw it (None: unknown).
        cpus_used: logical CPUs (vCPUs) the work could use (None: unknown).
        cpus_host: logical CPUs of the host as the work saw it (None: unknown).
        ram_gb: memory of the host as the work saw it, GB (None: unknown).
        notes: how missing tags were read.
    """

    instance_type: str | None = None
    cloud_provider: str | None = None
    host_model: str | None = None
    gpu_model: str | None = None
    gpus_used: int = 0
    gpus_host: int | None = None
    cpus_used: int | None = None
    cpus_host: int | None = None
    ram_gb: float | None = None
    notes: tuple[str, ...] = ()


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if text and text.lower() not in ("none", "unknown", "n/a", "null") else None


MAX_COUNT = 1_000_000
"""More GPUs or CPUs than this on one host is no count (a garbled tag): no figure, said."""


def _count(value: object) -> int | None:
    try:
        number = float(str(value)) if value is not None and str(value).strip() else None
    except ValueError:
        return None
    if number is None or not math.isfinite(number) or not 0 <= number <= MAX_COUNT:
        return None
    return int(number)


def _gb(value: object) -> float | None:
    try:
        number = float(str(value)) if value is not None and str(value).strip() else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number > 0 else None


def reservation_from_hardware(
    *,
    instance_type: str | None = None,
    cloud_provider: str | None = None,
    host_model: str | None = None,
    gpu_model: str | None = None,
    gpu_count: int | None = None,
    gpu_count_host: int | None = None,
    cpu_count: int | None = None,
    cpu_count_used: int | None = None,
    ram_gb: float | None = None,
) -> Reservation | Unavailable:
    """A reservation from hardware figures (the plugin's tags, or an imported run's columns).

    ``gpu_count`` and ``cpu_count`` mean what the plugin's tags mean: GPUs used, CPUs of the
    host. A missing ``gpu_count_host`` is read as ``gpu_count`` and a missing
    ``cpu_count_used`` as ``cpu_count`` (the work had the host it saw), with a note.
    """
    instance_type, host_model, gpu_model = map(_text, (instance_type, host_model, gpu_model))
    provider = (_text(cloud_provider) or "").lower() or None
    gpus_used = _count(gpu_count) or 0
    gpus_host, cpus_host = _count(gpu_count_host), _count(cpu_count)
    cpus_used, ram = _count(cpu_count_used), _gb(ram_gb)
    known = [instance_type, host_model, gpu_model, gpus_used or None, cpus_host, ram]
    if all(v is None for v in known):
        return Unavailable(
            NO_HARDWARE,
            "no hardware is recorded (no carbon.instance_type, carbon.host_model, "
            "carbon.gpu_model/gpu_count, carbon.cpu_count or carbon.ram_gb): meter the run "
            "with the carbonledger plugin, or import it with its hardware columns; no "
            "embodied figure is made up",
        )
    notes = []
    if gpus_host is None and gpus_used:
        gpus_host = gpus_used
        notes.append(
            "GPUs present on the host not recorded (older run): the host is taken to have "
            f"the {gpus_used} GPU(s) the run used"
        )
    if cpus_used is None and cpus_host is not None and not gpus_used:
        cpus_used = cpus_host
        notes.append("CPUs used not recorded: the run is taken to have reserved every CPU")
    if gpus_host is not None and gpus_used > gpus_host:
        return Unavailable(
            INCONSISTENT,
            f"the run used {gpus_used} GPUs but its host has {gpus_host}: the hardware tags "
            "disagree; fix carbon.gpu_count/carbon.gpu_count_host",
        )
    return Reservation(
        instance_type=instance_type,
        cloud_provider=provider,
        host_model=host_model,
        gpu_model=gpu_model,
        gpus_used=gpus_used,
        gpus_host=gpus_host,
        cpus_used=cpus_used,
        cpus_host=cpus_host,
        ram_gb=ram,
        notes=tuple(notes),
    )


HARDWARE_TAGS = (
    c.TAG_INSTANCE_TYPE,
    c.TAG_CLOUD_PROVIDER,
    c.TAG_HOST_MODEL,
    c.TAG_GPU_MODEL,
    c.TAG_GPU_COUNT,
    c.TAG_GPU_COUNT_HOST,
    c.TAG_CPU_COUNT,
    c.TAG_CPU_COUNT_USED,
    c.TAG_RAM_GB,
)
"""The tags :func:`hardware_from_tags` reads, in the order of its result's keys."""
_HARDWARE_PARSE = (_text, _text, _text, _text, _count, _count, _count, _count, _gb)
_HARDWARE_KEYS = (
    *("instance_type", "cloud_provider", "host_model", "gpu_model", "gpu_count"),
    *("gpu_count_host", "cpu_count", "cpu_count_used", "ram_gb"),
)


def hardware_from_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    """The hardware a run's tags record, parsed (``reservation_from_hardware``'s arguments).

    What the ledger keeps in ``run_embodied``. Parsed once per distinct set of values (a
    store repeats its hardware); each call returns its own dict.
    """
    values = tuple(map(tags.get, HARDWARE_TAGS))
    try:
        return dict(_parsed_hardware(values))
    except TypeError:  # a value that cannot be a cache key (not a tag MLflow writes)
        return dict(_parsed_hardware.__wrapped__(values))


@lru_cache(maxsize=4096)
def _parsed_hardware(values: tuple[Any, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (key, parse(value))
        for key, parse, value in zip(_HARDWARE_KEYS, _HARDWARE_PARSE, values, strict=True)
    )


def reservation_from_tags(tags: Mapping[str, str]) -> Reservation | Unavailable:
    """What a run reserved, from its MLflow tags (the ETL calls this for every run).

    Reads the plugin's host and hardware tags (docs/plugin.md); see the module docstring for
    older runs and runs of other tools.
    """
    return reservation_from_hardware(**hardware_from_tags(tags))
