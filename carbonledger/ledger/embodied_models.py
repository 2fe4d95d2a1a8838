"""Embodied emissions as activity data, and the uncertainty tables behind every range.

``embodied_factors`` holds versioned host figures (``TE``), like ``emission_factors`` holds
grid intensities: the highest ``version`` per ``factor_key`` is current, and a changed figure
(an organisation's override, a restated dataset) is a new version, never an edit.
``run_embodied`` is the activity side: what each run reserved (its hardware as tagged), the
factor key it resolves to, the resource share and the duration, or the reason there is no
figure. The ``v_run_embodied`` view computes ``M = TE x duration / lifetime x reserved /
host`` from the current factor version, so a new version restates every run without a
reload. ``energy_method_uncertainty`` and ``intensity_method_uncertainty`` are seeded from
``carbonledger.uncertainty`` (the one source of the figures) by ``sync_uncertainty``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from carbonledger.ledger.models import Base, Timestamp


class EmbodiedFactor(Base):
    """A versioned embodied figure of a whole host (kg CO2e); the highest version is current.

    ``factor_key`` is what runs resolve to: ``instance:<provider>:<type>``, ``host:<model>``
    or ``components:gpu=<n>x<model>;ram_gb=<gb>``. ``uncertainty_key`` names the error source
    of its largest part (equal keys are fully correlated in totals).
    """

    __tablename__ = "embodied_factors"
    __table_args__ = (
        UniqueConstraint("factor_key", "version"),
        CheckConstraint("embodied_co2e_kg >= 0", name="embodied_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    factor_key: Mapped[str] = mapped_column(String(300))
    version: Mapped[int] = mapped_column(Integer, default=1)
    embodied_co2e_kg: Mapped[float] = mapped_column(Double)
    host_gpu_count: Mapped[int | None] = mapped_column(Integer)
    host_vcpus: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(500))
    licence: Mapped[str | None] = mapped_column(String(200))
    relative_uncertainty: Mapped[float] = mapped_column(Double)
    uncertainty_key: Mapped[str] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)


class RunEmbodied(Base):
    """What one run reserved, the factor it resolves to, or why it has no embodied figure.

    The hardware columns are the run's tags as loaded (``reservation_hash`` digests them), so
    a re-resolution (new overrides) needs no reload. ``factor_key`` is NULL when there is no
    figure; ``reason_code``/``reason`` then say why (``no-hardware``, ``unknown-host``...).
    """

    __tablename__ = "run_embodied"
    __table_args__ = (
        CheckConstraint("resource IN ('gpu', 'vcpu')", name="resource"),
        Index(None, "reservation_hash", "resolution_hash"),
        Index(None, "factor_key"),
    )

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    reservation_hash: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str | None] = mapped_column(String(200))
    cloud_provider: Mapped[str | None] = mapped_column(String(16))
    host_model: Mapped[str | None] = mapped_column(String(200))
    gpu_model: Mapped[str | None] = mapped_column(String(200))
    gpu_count: Mapped[int | None] = mapped_column(Integer)
    gpu_count_host: Mapped[int | None] = mapped_column(Integer)
    cpu_count: Mapped[int | None] = mapped_column(Integer)
    cpu_count_used: Mapped[int | None] = mapped_column(Integer)
    ram_gb: Mapped[float | None] = mapped_column(Double)
    factor_key: Mapped[str | None] = mapped_column(String(300))
    resource: Mapped[str | None] = mapped_column(String(8))
    resources_reserved: Mapped[float | None] = mapped_column(Double)
    resources_host: Mapped[float | None] = mapped_column(Double)
    duration_s: Mapped[float | None] = mapped_column(Double)
    lifetime_years: Mapped[float] = mapped_column(Double)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    resolution_hash: Mapped[str | None] = mapped_column(String(64))


class EnergyMethodUncertainty(Base):
    """Relative standard uncertainty of an energy method (``uncertainty.ENERGY_UNCERTAINTY``).

    The row ``(unknown)`` is ``UNKNOWN_METHOD_UNCERTAINTY``, for methods the table lacks.
    """

    __tablename__ = "energy_method_uncertainty"

    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    relative_uncertainty: Mapped[float] = mapped_column(Double)


class IntensityMethodUncertainty(Base):
    """Relative standard uncertainty of an intensity method (``INTENSITY_UNCERTAINTY``)."""

    __tablename__ = "intensity_method_uncertainty"

    intensity_method: Mapped[str] = mapped_column(String(64), primary_key=True)
    relative_uncertainty: Mapped[float] = mapped_column(Double)
