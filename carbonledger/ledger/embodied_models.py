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

from carbonledger.ledger.models import Base, Col, Timestamp, column


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

    id: Col[int] = column(Integer, primary_key=True)
    factor_key: Col[str] = column(String(300))
    version: Col[int] = column(Integer, default=1)
    embodied_co2e_kg: Col[float] = column(Double)
    host_gpu_count: Col[int | None] = column(Integer)
    host_vcpus: Col[int | None] = column(Integer)
    method: Col[str] = column(String(64))
    source: Col[str] = column(String(500))
    licence: Col[str | None] = column(String(200))
    relative_uncertainty: Col[float] = column(Double)
    uncertainty_key: Col[str] = column(String(300))
    content_hash: Col[str] = column(String(64))
    valid_from: Col[datetime] = column(Timestamp, server_default=func.now())
    note: Col[str | None] = column(Text)


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

    run_pk: Col[int] = column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    reservation_hash: Col[str] = column(String(64))
    instance_type: Col[str | None] = column(String(200))
    cloud_provider: Col[str | None] = column(String(16))
    host_model: Col[str | None] = column(String(200))
    gpu_model: Col[str | None] = column(String(200))
    gpu_count: Col[int | None] = column(Integer)
    gpu_count_host: Col[int | None] = column(Integer)
    cpu_count: Col[int | None] = column(Integer)
    cpu_count_used: Col[int | None] = column(Integer)
    ram_gb: Col[float | None] = column(Double)
    factor_key: Col[str | None] = column(String(300))
    resource: Col[str | None] = column(String(8))
    resources_reserved: Col[float | None] = column(Double)
    resources_host: Col[float | None] = column(Double)
    duration_s: Col[float | None] = column(Double)
    lifetime_years: Col[float] = column(Double)
    reason_code: Col[str | None] = column(String(64))
    reason: Col[str | None] = column(Text)
    notes: Col[str | None] = column(Text)
    resolution_hash: Col[str | None] = column(String(64))


class EnergyMethodUncertainty(Base):
    """Relative standard uncertainty of an energy method (``uncertainty.ENERGY_UNCERTAINTY``).

    The row ``(unknown)`` is ``UNKNOWN_METHOD_UNCERTAINTY``, for methods the table lacks.
    """

    __tablename__ = "energy_method_uncertainty"

    method: Col[str] = column(String(64), primary_key=True)
    relative_uncertainty: Col[float] = column(Double)


class IntensityMethodUncertainty(Base):
    """Relative standard uncertainty of an intensity method (``INTENSITY_UNCERTAINTY``)."""

    __tablename__ = "intensity_method_uncertainty"

    intensity_method: Col[str] = column(String(64), primary_key=True)
    relative_uncertainty: Col[float] = column(Double)
