"""The tax and welfare systems' tables: the people they know and their records per fiscal year.

``taxpayers`` is keyed by resident code, as the resident feed names people; the integrated
address number arrives separately (``number_assigned``) and is filled in when it does. The
records (``local_tax_records``, ``assistance_records``) are keyed by integrated address
number and fiscal year and carry the birth date the system holds: that pair is what the
health management asks by. ``origin`` says whether a record was made by the simulated
assessment (``seeded``) or loaded from a file (``loaded``); a loaded record is never
overwritten by the assessment.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, one_of, utcnow

RESIDENT_STATUSES = ("resident", "moved_out", "deceased")
TAX_STATUSES = ("taxed", "tax_exempt")  # 課税 / 非課税
ORIGINS = ("seeded", "loaded")



class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Taxpayer(Base):
    """宛名: a person the tax and welfare systems know, from the resident feed and the integrated address system."""

    __tablename__ = "taxpayers"

    resident_code: Mapped[str] = mapped_column(String(11), primary_key=True)  # 住民票コード
    integrated_address_number: Mapped[str | None] = mapped_column(String(15), unique=True, default=None)  # 統合宛名番号
    birth_date: Mapped[date | None] = mapped_column(Date, default=None)
    household_id: Mapped[str | None] = mapped_column(String(32), default=None)  # 世帯番号
    resident_since: Mapped[date | None] = mapped_column(Date, default=None)  # 転入日・出生日 (unknown: before the feed)
    status: Mapped[str | None] = mapped_column(String(16), default=None)
    # recorded_at of the newest resident change applied: an older one arriving late is not applied over it
    last_change_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint(f"status IS NULL OR {one_of('status', RESIDENT_STATUSES)}", name="status"),)


class LocalTaxRecord(Base):
    """住民税の課税状況: whether a person is taxed (課税) or not (非課税) in a fiscal year."""

    __tablename__ = "local_tax_records"

    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    birth_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(8))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("status", TAX_STATUSES), name="status"),
        CheckConstraint(one_of("origin", ORIGINS), name="origin"),
    )


class AssistanceRecord(Base):
    """生活保護の受給: a person who receives public assistance in a fiscal year (no row: does not)."""

    __tablename__ = "assistance_records"

    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    birth_date: Mapped[date] = mapped_column(Date)
    origin: Mapped[str] = mapped_column(String(8))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint(one_of("origin", ORIGINS), name="origin"),)


class YearAssessed(Base):
    """年度更新: a fiscal year for which everyone known was assessed (people who come later are assessed as they come)."""

    __tablename__ = "years_assessed"

    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    people: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
