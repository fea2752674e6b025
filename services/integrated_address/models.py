"""The integrated address system's tables: addressees (宛名) and the resident changes applied.

An addressee is keyed by its integrated address number (統合宛名番号) and, uniquely, by its
My Number: the unique My Number is what makes assignment safe under concurrent requests
(insert-or-fetch). A person who moved out or died keeps their row and number (M31).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, one_of, utcnow

STATUSES = ("resident", "moved_out", "deceased", "non_resident")



class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Addressee(Base):
    """宛名: one person the city deals with, resident or not."""

    __tablename__ = "addressees"

    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)  # 統合宛名番号
    my_number: Mapped[str] = mapped_column(String(12), unique=True)  # 個人番号
    resident_code: Mapped[str | None] = mapped_column(String(11), unique=True, default=None)  # 住民票コード
    name: Mapped[str | None] = mapped_column(String(100), default=None)
    name_kana: Mapped[str | None] = mapped_column(String(100), default=None)
    sex: Mapped[str | None] = mapped_column(String(6), default=None)
    birth_date: Mapped[date | None] = mapped_column(Date, default=None)
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16))
    # recorded_at of the newest resident change applied: an older one arriving late is not applied over it
    last_change_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("status", STATUSES), name="status"),
        CheckConstraint("sex IS NULL OR sex IN ('male', 'female')", name="sex"),
    )


class AppliedChange(Base):
    """A resident change (異動) already applied, by the registry's ``change_id``.

    The kernel's inbox drops a redelivered message; this drops the same change arriving
    again under another message id (a re-publish, a replay of the feed).
    """

    __tablename__ = "applied_changes"

    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))  # applied | stale (older than what was already applied)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
