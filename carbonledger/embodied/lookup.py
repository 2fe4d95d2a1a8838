"""The embodied emissions of a whole host (``TE``), with provenance on every figure.

First that applies (docs/methodology.md "Embodied emissions"):

1. the **instance type** (provider + type): the organisation's override for it, else Cloud
   Carbon Footprint's per-instance total (a type CCF lists several times, once per CPU
   microarchitecture, takes the largest total: conservative, and said);
2. the **machine model** (``carbon.host_model``): the organisation's override for it;
3. the **components** the run saw, with CCF's component model: the 1,000 kg base server,
   DRAM above 16 GB at 533 kg per 384 GB, and each GPU card at the organisation's figure for
   the model, else the ADEME/Hubblo card (manufacturing + transport, :mod:`.cards`), else
   CCF's 150 kg. CPU sockets beyond the first and local storage cannot be seen from a run
   and are left out (a lower bound, said in the notes).

Nothing known at all gives :class:`~carbonledger.embodied.reservation.Unavailable`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from carbonledger import contract as c
from carbonledger.embodied import tables
from carbonledger.embodied.cards import match_card
from carbonledger.embodied.overrides import EMPTY, OverrideRow, Overrides, content_hash
from carbonledger.embodied.reservation import (
    AMBIGUOUS_INSTANCE,
    UNKNOWN_HOST,
    Reservation,
    Unavailable,
)
from carbonledger.uncertainty import (
    EMBODIED_CCF_UNCERTAINTY,
    EMBODIED_LCA_UNCERTAINTY,
    EMBODIED_NEAREST_CARD_UNCERTAINTY,
    Contribution,
    combine,
)


@dataclass(frozen=True, slots=True)
class Part:
    """One line of a host's embodied figure.

    Attributes:
        name: what it is (``base server``, ``DRAM above 16 GB``, ``GPU card: NVIDIA L4``...).
        quantity: how many units (cards, GB, servers).
        unit_kg: kg CO2e per unit.
        co2e_kg: ``quantity x unit_kg``.
        source: dataset or document.
        licence: licence of the figure.
        relative_uncertainty: relative standard uncertainty of the unit figure.
        uncertainty_key: error source; parts with the same key are fully correlated.
    """

    name: str
    quantity: float
    unit_kg: float
    co2e_kg: float
    source: str
    licence: str
    relative_uncertainty: float
    uncertainty_key: str


@dataclass(frozen=True, slots=True)
class HostEmbodied:
    """The embodied emissions of a whole host, ``TE`` of the SCI's ``M``.

    Attributes:
        key: stable identity of the figure (``ccf:aws:p4d.24xlarge``,
            ``override:instance:aws:p4d.24xlarge``, ``components:gpu=8x...;ram_gb=1152``):
            what the ledger versions, with ``content_hash``.
        embodied_co2e_kg: the host's total (kg CO2e, manufacturing and transport).
        method: ``ccf-instance``, ``components`` or ``organisation-override``.
        source: where the figure comes from (datasets of every part).
        licence: licence(s) of the data.
        host_gpu_count: GPU cards of the host (None: unknown).
        host_vcpus: vCPUs of the host (None: unknown).
        parts: the figure's lines.
        notes: what was assumed or left out.
        content_hash: SHA-256 (16 hex digits) of the figure's values.
    """

    key: str
    embodied_co2e_kg: float
    method: str
    source: str
    licence: str
    host_gpu_count: int | None
    host_vcpus: int | None
    parts: tuple[Part, ...]
    notes: tuple[str, ...]
    content_hash: str

    @property
    def contributions(self) -> list[Contribution]:
        """The error contributions of the host's figure (kg)."""
        return [
            Contribution(p.uncertainty_key, p.relative_uncertainty * p.co2e_kg) for p in self.parts
        ]

    @property
    def relative_uncertainty(self) -> float:
        """Combined relative standard uncertainty of ``embodied_co2e_kg``."""
        total = self.embodied_co2e_kg
        return combine(self.contributions) / total if total > 0 else 0.0


def _host(
    *,
    key: str,
    method: str,
    parts: list[Part],
    host_gpu_count: int | None,
    host_vcpus: int | None,
    notes: list[str],
) -> HostEmbodied:
    total = math.fsum(p.co2e_kg for p in parts)
    sources = "; ".join(dict.fromkeys(p.source for p in parts))
    licences = "; ".join(dict.fromkeys(p.licence for p in parts))
    values = {
        "method": method,
        "parts": [asdict(p) for p in parts],
        "host_gpu_count": host_gpu_count,
        "host_vcpus": host_vcpus,
    }
    digest = content_hash(values)
    return HostEmbodied(
        key=key,
        embodied_co2e_kg=total,
        method=method,
        source=sources,
        licence=licences,
        host_gpu_count=host_gpu_count,
        host_vcpus=host_vcpus,
        parts=tuple(parts),
        notes=tuple(notes),
        content_hash=digest,
    )


def _override_part(row: OverrideRow, name: str, quantity: float = 1.0) -> Part:
    return Part(
        name=name,
        quantity=quantity,
        unit_kg=row.embodied_co2e_kg,
        co2e_kg=quantity * row.embodied_co2e_kg,
        source=f"organisation: {row.source}",
        licence="organisation's own figure",
        relative_uncertainty=row.relative_uncertainty,
        uncertainty_key=f"embodied:override:{row.key}",
    )


def _from_override(row: OverrideRow, notes: list[str]) -> HostEmbodied:
    return _host(
        key=f"override:{row.key}",
        method=c.EMBODIED_OVERRIDE,
        parts=[_override_part(row, f"host: {row.name}")],
        host_gpu_count=row.host_gpu_count,
        host_vcpus=row.host_vcpus,
        notes=[*notes, *([row.note] if row.note else [])],
    )


def _ccf_rows(res: Reservation) -> tuple[tables.InstanceRecord, ...] | Unavailable | None:
    assert res.instance_type is not None
    name = tables.normalize_instance_type(res.instance_type)
    providers = [res.cloud_provider] if res.cloud_provider else list(tables.PROVIDERS)
    found = {p: tables.instances().get((p, name)) for p in providers}
    hits = {p: rows for p, rows in found.items() if rows}
    if len(hits) > 1:
        return Unavailable(
            AMBIGUOUS_INSTANCE,
            f"instance type {res.instance_type!r} exists at {', '.join(sorted(hits))}: set "
            "CARBONLEDGER_CLOUD_PROVIDER (carbon.cloud_provider) to say which",
        )
    return next(iter(hits.values()), None)


def _from_ccf(rows: tuple[tables.InstanceRecord, ...], notes: list[str]) -> HostEmbodied:
    row = max(rows, key=lambda r: (r.total_kg, r.microarchitecture))
    if len({r.total_kg for r in rows}) > 1:
        arches = ", ".join(f"{r.microarchitecture or '?'} {r.total_kg:g} kg" for r in rows)
        notes.append(
            f"{row.instance_type} is listed once per CPU microarchitecture ({arches}): the "
            "largest is used"
        )
    if row.host_vcpus is None:
        notes.append(f"the host's vCPUs are unknown for {row.instance_type} (CPU jobs need them)")
    part = Part(
        name=f"host: {row.provider} {row.instance_type}",
        quantity=1.0,
        unit_kg=row.total_kg,
        co2e_kg=row.total_kg,
        source=tables.SOURCE_CCF_INSTANCES,
        licence=tables.LICENCE_CCF,
        relative_uncertainty=EMBODIED_CCF_UNCERTAINTY,
        uncertainty_key="embodied:ccf",
    )
    return _host(
        key=f"ccf:{row.provider}:{tables.normalize_instance_type(row.instance_type)}",
        method=c.EMBODIED_CCF_INSTANCE,
        parts=[part],
        host_gpu_count=row.host_gpu_count,
        host_vcpus=row.host_vcpus,
        notes=notes,
    )


def _ccf_part(name: str, quantity: float, unit_kg: float) -> Part:
    return Part(
        name=name,
        quantity=quantity,
        unit_kg=unit_kg,
        co2e_kg=quantity * unit_kg,
        source=tables.SOURCE_CCF_COMPONENTS,
        licence=tables.LICENCE_CCF,
        relative_uncertainty=EMBODIED_CCF_UNCERTAINTY,
        uncertainty_key="embodied:ccf",
    )


def _gpu_part(res: Reservation, count: int, overrides: Overrides, notes: list[str]) -> Part:
    model = res.gpu_model
    row = overrides.gpu(model) if model else None
    if row is not None:
        return _override_part(row, f"GPU card: {model}", count)
    match = match_card(model) if model else None
    if match is not None:
        u = EMBODIED_LCA_UNCERTAINTY
        if match.quality != "exact":
            u = math.hypot(u, EMBODIED_NEAREST_CARD_UNCERTAINTY)
            notes.append(match.note or "")
        return Part(
            name=f"GPU card: {match.card.name}",
            quantity=count,
            unit_kg=match.card.embodied_kg,
            co2e_kg=count * match.card.embodied_kg,
            source=tables.SOURCE_HUBBLO,
            licence=tables.LICENCE_HUBBLO,
            relative_uncertainty=u,
            uncertainty_key=f"embodied:hubblo:{match.card.name}",
        )
    model_text = repr(model) if model else "of unknown model"
    notes.append(f"GPU {model_text} has no card in the ADEME/Hubblo study: CCF's per-GPU figure")
    return _ccf_part("GPU card (CCF per-GPU figure)", count, tables.component_model().gpu_kg)


def _from_components(res: Reservation, overrides: Overrides, notes: list[str]) -> HostEmbodied:
    model = tables.component_model()
    parts = [_ccf_part("base server (1 CPU socket, 16 GB DRAM)", 1, model.base_server_kg)]
    if res.ram_gb is not None:
        extra_gb = max(0.0, res.ram_gb - model.dram_threshold_gb)
        if extra_gb > 0:
            parts.append(_ccf_part("DRAM above 16 GB (GB)", extra_gb, model.dram_kg_per_gb))
    else:
        notes.append("memory not recorded: DRAM above 16 GB is not counted")
    gpus = res.gpus_host or 0
    if gpus:
        parts.append(_gpu_part(res, gpus, overrides, notes))
    notes.append("CPU sockets beyond the first and local storage are not visible: not counted")
    ram = f"{res.ram_gb:.0f}" if res.ram_gb is not None else "?"
    gpu = f"{gpus}x{res.gpu_model or 'gpu'}" if gpus else "0"
    return _host(
        key=f"components:gpu={gpu};ram_gb={ram}".lower(),
        method=c.EMBODIED_COMPONENTS,
        parts=parts,
        host_gpu_count=gpus,
        host_vcpus=res.cpus_host,
        notes=notes,
    )


def resolve_host(
    reservation: Reservation, *, overrides: Overrides = EMPTY
) -> HostEmbodied | Unavailable:
    """The embodied figure of the host a reservation ran on (see the module docstring)."""
    res = reservation
    notes = list(res.notes)
    if res.instance_type:
        row = overrides.instance(res.cloud_provider, res.instance_type)
        if row is not None:
            return _from_override(row, notes)
        ccf = _ccf_rows(res)
        if isinstance(ccf, Unavailable):
            return ccf
        if ccf:
            return _from_ccf(ccf, notes)
        notes.append(
            f"instance type {res.instance_type!r} is not in CCF's table: the host is built from "
            "its components (add it to CARBONLEDGER_EMBODIED_PATH for a better figure)"
        )
    if res.host_model:
        row = overrides.host(res.host_model)
        if row is not None:
            return _from_override(row, notes)
    if res.gpus_host is None and res.cpus_host is None and res.ram_gb is None:
        return Unavailable(
            UNKNOWN_HOST,
            "neither the instance type nor the machine model has a figure, and no GPU, CPU "
            "or memory count is recorded to build one from: add the model to "
            "CARBONLEDGER_EMBODIED_PATH",
        )
    return _from_components(res, overrides, notes)
