"""The welfare address system's tables: addressees (福祉宛名), residents and non-residents
(住登外者) alike, and the resident changes applied.

Every addressee has a welfare address number (福祉宛名番号). A resident is also known by
resident code; anyone with a My Number by it (unique) and by the integrated address number
the integrated address system gave them. A non-resident registered without a My Number is
known by the key of what was registered, so that registering the same person twice gives
the same number. Nobody is deleted: leaving or dying changes the status (M31).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, one_of, utcnow

STATUSES = ("resident", "moved_out", "deceased", "non_resident")



class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class WelfareAddressee(Base):
    """福祉宛名: one person the welfare address system knows."""

    __tablename__ = "welfare_addressees"

    welfare_address_number: Mapped[str] = mapped_column(String(10), primary_key=True)  # 福祉宛名番号
    integrated_address_number: Mapped[str | None] = mapped_column(String(15), unique=True, default=None)  # 統合宛名番号
    my_number: Mapped[str | None] = mapped_column(String(12), unique=True, default=None)  # 個人番号
    resident_code: Mapped[str | None] = mapped_column(String(11), unique=True, default=None)  # 住民票コード
    # SHA-256 of what was registered, for a non-resident registered without a My Number
    registration_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    # recorded_at of the newest resident change applied: an older one arriving late is not applied over it
    last_change_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("status", STATUSES), name="status"),
        CheckConstraint("sex IN ('male', 'female')", name="sex"),
    )


class AppliedChange(Base):
    """A resident change (異動) already applied, by the registry's ``change_id``."""

    __tablename__ = "applied_changes"

    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))  # applied | stale
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
