"""Hourly tables: versioned hourly emission factors, their profiles, energy per hour.

Hours are integers, ``utc_hour`` = hours since 1970-01-01T00:00Z (the hour from
``utc_hour`` x 3600 s to the next), so matching an activity's hours to factors is an integer
join on both engines. ``profile_cell`` is the (weekend, month, hour of day) cell 0..575 of
``carbonledger.intensity.hourly.profile_cells``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from carbonledger.ledger.models import Base, Timestamp


class HourlyEmissionFactor(Base):
    """A grid factor valid for one UTC hour; the row with ``is_current`` is the one used.

    A changed value for a ``(zone, basis, utc_hour)`` is written as version + 1 and the older
    version keeps ``is_current = false`` (the audit trail), as yearly factors do.
    """

    __tablename__ = "hourly_emission_factors"
    __table_args__ = (
        UniqueConstraint("zone", "basis", "utc_hour", "version"),
        CheckConstraint("basis IN ('location', 'market')", name="basis"),
        CheckConstraint("intensity_g_per_kwh >= 0", name="intensity_nonnegative"),
        Index("ix_hourly_emission_factors_current", "zone", "basis", "utc_hour", "is_current"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    utc_hour: Mapped[int] = mapped_column(BigInteger)
    basis: Mapped[str] = mapped_column(String(16))
    intensity_g_per_kwh: Mapped[float] = mapped_column(Double)
    direct_intensity_g_per_kwh: Mapped[float | None] = mapped_column(Double)
    is_estimated: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(200))
    licence: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean)
    valid_from: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class HourlyProfile(Base):
    """A zone's profile ratio for one (weekend, month, hour of day) cell, from one year.

    ``ratio`` = the cell's mean hourly intensity / the year's mean; the profile estimate of
    an hour is ``ratio x`` the zone's yearly factor (rebuilt whenever hourly factors load).
    """

    __tablename__ = "hourly_profiles"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    basis: Mapped[str] = mapped_column(String(16), primary_key=True)
    profile_cell: Mapped[int] = mapped_column(Integer, primary_key=True)
    ratio: Mapped[float] = mapped_column(Double)
    source_year: Mapped[int] = mapped_column(Integer)


class ActivityEnergyHour(Base):
    """The energy a run (``record_kind = 'run'``) or serving window used in one UTC hour.

    Written by the ETL once per load of the record; ``facility_energy_kwh`` sums to the
    record's exclusive facility energy.
    """

    __tablename__ = "activity_energy_hours"
    __table_args__ = (CheckConstraint("record_kind IN ('run', 'window')", name="record_kind"),)

    record_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    record_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    utc_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    profile_cell: Mapped[int] = mapped_column(Integer)
    energy_kwh: Mapped[float] = mapped_column(Double)
    facility_energy_kwh: Mapped[float] = mapped_column(Double)
