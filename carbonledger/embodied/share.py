"""The embodied share of some work: ``M = TE x (duration / lifetime) x (reserved / host)``.

The SCI specification's ``M = TE x (TiR / EL) x (RR / ToR)``: ``TE`` the host's embodied
emissions (:mod:`.lookup`), ``TiR`` the time the work held the hardware (a run's duration, a
serving window's length), ``EL`` the lifetime (``CARBONLEDGER_EMBODIED_LIFETIME_YEARS``,
years of 365 days), ``RR / ToR`` the resource share:

* **GPU work** (the run used at least one GPU): GPUs used / GPUs of the host;
* **otherwise**: vCPUs the work could use / vCPUs of the host.

The host's count comes with its figure: CCF's host for an instance type (its GPU cards, the
largest vCPU size of its family), the override's ``host_gpu_count``/``host_vcpus``, or the
host the run saw for a figure built from components. A reservation larger than the host's
known size is charged the whole host, and says so. A GPU shared by several metered runs is
charged to each (each reserved it); a MIG slice as a whole GPU (a known upper bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carbonledger import contract as c
from carbonledger.embodied.lookup import HostEmbodied, resolve_host
from carbonledger.embodied.overrides import EMPTY, Overrides, load_overrides
from carbonledger.embodied.reservation import (
    HOST_RESOURCES_UNKNOWN,
    Reservation,
    Unavailable,
    reservation_from_tags,
)
from carbonledger.errors import EmbodiedError
from carbonledger.uncertainty import Contribution, Range, to_range


def amortised_co2e_kg(
    *,
    host_embodied_co2e_kg: float,
    duration_s: float,
    lifetime_years: float,
    resources_reserved: float,
    resources_host: float,
) -> float:
    """``M = TE x (duration_s / lifetime) x (resources_reserved / resources_host)``, in kg.

    Args:
        host_embodied_co2e_kg: ``TE``, the whole host's embodied emissions (kg CO2e).
        duration_s: time the hardware was reserved (s).
        lifetime_years: amortisation period (years of 365 days).
        resources_reserved: GPUs (or vCPUs) reserved.
        resources_host: GPUs (or vCPUs) of the host.

    Raises:
        EmbodiedError: a negative figure, a zero lifetime or host, or more reserved than the
            host has.
    """
    if host_embodied_co2e_kg < 0 or duration_s < 0:
        raise EmbodiedError("embodied kg and duration must not be negative")
    if lifetime_years <= 0:
        raise EmbodiedError(
            "the lifetime must be above 0 years (CARBONLEDGER_EMBODIED_LIFETIME_YEARS)"
        )
    if resources_host <= 0 or not 0 <= resources_reserved <= resources_host:
        raise EmbodiedError(
            f"{resources_reserved:g} resources reserved of a host of {resources_host:g}: the "
            "reserved share must be between 0 and the host's count"
        )
    time_share = duration_s / (lifetime_years * c.S_PER_YEAR)
    return host_embodied_co2e_kg * time_share * resources_reserved / resources_host


@dataclass(frozen=True, slots=True)
class EmbodiedShare:
    """The embodied emissions charged to some work, with everything it came from.

    Attributes:
        embodied_co2e_kg: ``M`` (kg CO2e, Scope 3), never added to operational CO2e silently.
        host: the host's figure ``TE`` with provenance (key, method, source, licence, parts).
        duration_s: time reserved.
        lifetime_years: amortisation period applied (shown beside every figure).
        time_share: ``duration_s / lifetime``.
        resource: ``gpu`` or ``vcpu``.
        resources_reserved: GPUs or vCPUs reserved.
        resources_host: GPUs or vCPUs of the host.
        resource_share: ``resources_reserved / resources_host`` (capped at 1).
        notes: assumptions and fallbacks, for a person.
    """

    embodied_co2e_kg: float
    host: HostEmbodied
    duration_s: float
    lifetime_years: float
    time_share: float
    resource: str
    resources_reserved: float
    resources_host: float
    resource_share: float
    notes: tuple[str, ...]

    @property
    def contributions(self) -> list[Contribution]:
        """Error contributions of ``embodied_co2e_kg`` (the host's, scaled by the share)."""
        scale = self.time_share * self.resource_share
        return [Contribution(k.key, k.sigma_kg * scale) for k in self.host.contributions]

    @property
    def range(self) -> Range:
        """``embodied_co2e_kg`` with its range."""
        return to_range(self.embodied_co2e_kg, self.contributions)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (CLI ``--json``, reports)."""
        r = self.range
        return {
            "embodied_co2e_kg": self.embodied_co2e_kg,
            "embodied_co2e_low_kg": r.low_kg,
            "embodied_co2e_high_kg": r.high_kg,
            "relative_uncertainty": r.relative_uncertainty,
            "lifetime_years": self.lifetime_years,
            "duration_s": self.duration_s,
            "time_share": self.time_share,
            "resource": self.resource,
            "resources_reserved": self.resources_reserved,
            "resources_host": self.resources_host,
            "resource_share": self.resource_share,
            "host_embodied_co2e_kg": self.host.embodied_co2e_kg,
            "host_key": self.host.key,
            "host_content_hash": self.host.content_hash,
            "method": self.host.method,
            "source": self.host.source,
            "licence": self.host.licence,
            "parts": [
                {"name": p.name, "quantity": p.quantity, "unit_kg": p.unit_kg, "co2e_kg": p.co2e_kg}
                for p in self.host.parts
            ],
            "notes": list(self.notes),
        }


def resource_share(
    reservation: Reservation, host: HostEmbodied
) -> tuple[str, float, float, list[str]] | Unavailable:
    """The resource rule: ``(resource, reserved, of the host, notes)``, or why not."""
    notes: list[str] = []
    reserved: int | None
    total: int | None
    if reservation.gpus_used > 0:
        resource, reserved, total = c.RESOURCE_GPU, reservation.gpus_used, host.host_gpu_count
        if not total:
            return Unavailable(
                HOST_RESOURCES_UNKNOWN,
                f"the run used {reserved} GPU(s) but the host's GPU count is unknown for "
                f"{host.key}: give host_gpu_count in CARBONLEDGER_EMBODIED_PATH",
            )
    else:
        resource, reserved, total = c.RESOURCE_VCPU, reservation.cpus_used, host.host_vcpus
        if not total or not reserved:
            return Unavailable(
                HOST_RESOURCES_UNKNOWN,
                f"a CPU job's share needs the vCPUs it used ({reserved or 'unknown'}) and the "
                f"host's ({total or 'unknown'}) for {host.key}: give host_vcpus in "
                "CARBONLEDGER_EMBODIED_PATH",
            )
    if reserved > total:
        notes.append(
            f"the run reserved {reserved} {resource}s but the host is known to have {total}: "
            "charged the whole host"
        )
        reserved = total
    return resource, float(reserved), float(total), notes


def embodied_share(
    reservation: Reservation | Unavailable,
    duration_s: float,
    *,
    lifetime_years: float,
    overrides: Overrides = EMPTY,
) -> EmbodiedShare | Unavailable:
    """The embodied emissions of some work on its host, or why there is no figure.

    Args:
        reservation: what the work reserved (``reservation_from_tags``), or why unknown.
        duration_s: a run's duration, or a serving window's length (s).
        lifetime_years: amortisation period.
        overrides: the organisation's figures (win over the shipped ones).
    """
    if isinstance(reservation, Unavailable):
        return reservation
    host = resolve_host(reservation, overrides=overrides)
    if isinstance(host, Unavailable):
        return host
    share = resource_share(reservation, host)
    if isinstance(share, Unavailable):
        return share
    resource, reserved, total, notes = share
    kg = amortised_co2e_kg(
        host_embodied_co2e_kg=host.embodied_co2e_kg,
        duration_s=duration_s,
        lifetime_years=lifetime_years,
        resources_reserved=reserved,
        resources_host=total,
    )
    return EmbodiedShare(
        embodied_co2e_kg=kg,
        host=host,
        duration_s=duration_s,
        lifetime_years=lifetime_years,
        time_share=duration_s / (lifetime_years * c.S_PER_YEAR),
        resource=resource,
        resources_reserved=reserved,
        resources_host=total,
        resource_share=reserved / total,
        notes=(*host.notes, *notes),
    )


def embodied_for_tags(
    tags: Mapping[str, str], duration_s: float, *, settings: Any = None
) -> EmbodiedShare | Unavailable:
    """The embodied share of a run (or serving window) from its MLflow tags and the settings.

    The ETL's entry point: reads ``CARBONLEDGER_EMBODIED_LIFETIME_YEARS`` and the overrides
    file (``CARBONLEDGER_EMBODIED_PATH``, parsed once per file version).

    Raises:
        EmbodiedOverridesError: the overrides file is invalid (fix it; nothing is guessed).
    """
    from carbonledger.settings import get_settings

    s = settings or get_settings()
    return embodied_share(
        reservation_from_tags(tags),
        duration_s,
        lifetime_years=s.embodied_lifetime_years,
        overrides=load_overrides(s.embodied_path),
    )
