"""The community server's tables.

- ``identity_info`` (本人確認情報): one row per person the registry ever told us about; a
  person who moves out or dies keeps the row with that status.
- ``prefecture_forwarding``: each applied change's record, written in the same transaction
  as the change and sent to the prefecture server later (its own outbox), so that a
  prefecture server that is down loses nothing.
- ``search_records`` (検索・照会の記録): every 4-item search and identity lookup, with the
  purpose given, what was asked by item name (not value) and which people were shown.
- ``card_verifications`` (本人確認の記録, M01): every check of a My Number card at the counter.
- ``consistency_checks`` (整合性確認の記録): every comparison with the prefecture server.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, BigId, one_of, utcnow

STATUSES = ("resident", "moved_out", "deceased")



class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class IdentityInfo(Base):
    """本人確認情報: the numbers, the four items and the status, as of the last applied change."""

    __tablename__ = "identity_info"

    resident_code: Mapped[str] = mapped_column(String(11), primary_key=True)  # 住民票コード
    my_number: Mapped[str] = mapped_column(String(12), unique=True)  # 個人番号
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name_kana: Mapped[str] = mapped_column(String(100))
    given_name_kana: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the registry's recorded_at, UTC
    change_id: Mapped[str] = mapped_column(String(64))  # the last change applied
    change_kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))  # shared.contracts.juki.record_digest

    __table_args__ = (
        CheckConstraint(one_of("status", STATUSES), name="status"),
        CheckConstraint(one_of("sex", ("male", "female")), name="sex"),
    )


class PrefectureForwarding(Base):
    """One change's record waiting for (or done with) the trip to the prefecture server."""

    __tablename__ = "prefecture_forwarding"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resident_code: Mapped[str] = mapped_column(String(11))
    record: Mapped[str] = mapped_column(Text)  # IdentityRecord JSON, as of the change
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    forwarded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_prefecture_forwarding_pending", "forwarded_at", "id"),)


class SearchRecord(Base):
    """検索・照会の記録: who searched, for what purpose, with which items, and whom it showed."""

    __tablename__ = "search_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(8))  # http | bus
    operation: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    purpose: Mapped[str] = mapped_column(String(200))
    items: Mapped[str] = mapped_column(String(128))  # the item names given, comma-separated
    candidates: Mapped[int] = mapped_column(Integer)
    shown: Mapped[str] = mapped_column(Text)  # resident codes shown, best first, comma-separated
    prefecture_consulted: Mapped[bool] = mapped_column(default=False)


class CardVerification(Base):
    """本人確認の記録 (M01): one My Number card checked at the counter, and the outcome."""

    __tablename__ = "card_verifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    card_serial: Mapped[str] = mapped_column(String(32))
    resident_code: Mapped[str | None] = mapped_column(String(11), default=None)
    verified: Mapped[bool] = mapped_column()
    reasons: Mapped[str] = mapped_column(String(255))  # reason codes, comma-separated; empty when verified


class ConsistencyCheck(Base):
    """整合性確認の記録: one comparison with the prefecture server and what it found."""

    __tablename__ = "consistency_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    actor: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))  # consistent | differences | failed
    report: Mapped[str] = mapped_column(Text)  # the ConsistencyReport JSON
