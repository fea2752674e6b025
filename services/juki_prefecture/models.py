"""The prefecture server's table: every city's identity information, as its CS forwarded it.

A person who moves keeps a row under the city they left (status ``moved_out``) and gains
one under the city they moved to: the key is the city and the resident code.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, utcnow


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class IdentityCopy(Base):
    """本人確認情報 of one person in one city, the newest the city's CS sent."""

    __tablename__ = "identity_copies"

    city: Mapped[str] = mapped_column(String(6), primary_key=True)
    resident_code: Mapped[str] = mapped_column(String(11), primary_key=True)
    my_number: Mapped[str] = mapped_column(String(12), index=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name_kana: Mapped[str] = mapped_column(String(100))
    given_name_kana: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    digest: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_identity_copies_birth", "birth_date", "sex"),
        Index("ix_identity_copies_code", "resident_code"),
    )
