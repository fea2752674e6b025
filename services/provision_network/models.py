"""The hub's tables. The hub keeps no answer and no resident code: only what routing needs.

- ``institutions``: each intermediate server's network address and answer key (the
  directory of public keys), as the server registered them over mutual TLS;
- ``issued_symbols``: each symbol issued, by institution and by the hub's own reference for
  the person (a keyed hash of the resident code, not the code): the table that lets the
  hub, and only the hub, translate one institution's symbol into another's;
- ``permits``: each permit issued, with the provider's symbol to hand over when the query
  is relayed, and when it was used and answered (a permit serves one query, once).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, utcnow


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Institution(Base):
    """An intermediate server the hub routes to (情報照会者・情報提供者)."""

    __tablename__ = "institutions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)  # local-government code
    kind: Mapped[str] = mapped_column(String(16))
    network_url: Mapped[str] = mapped_column(String(255))
    answer_key: Mapped[str] = mapped_column(Text)  # SignedKeyStatement, JSON
    key_id: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IssuedSymbol(Base):
    """符号: one person's symbol at one institution."""

    __tablename__ = "issued_symbols"

    institution: Mapped[str] = mapped_column(String(6), primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(64), primary_key=True)  # keyed hash, never the resident code
    symbol: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("institution", "symbol", name="uq_issued_symbols_institution_symbol"),)


class Permit(Base):
    """情報提供許可証 as issued, and what became of it."""

    __tablename__ = "permits"

    serial_number: Mapped[str] = mapped_column(String(64), primary_key=True)  # 処理通番
    query_id: Mapped[str] = mapped_column(String(32))
    requester: Mapped[str] = mapped_column(String(6))
    provider: Mapped[str] = mapped_column(String(6))
    affair_code: Mapped[str] = mapped_column(String(16))
    procedure_code: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(16))
    requester_symbol: Mapped[str] = mapped_column(String(40))
    provider_symbol: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the permit as signed (permits.digest)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    state: Mapped[str] = mapped_column(String(16), default="issued")  # issued | sent | held | answered | refused | undelivered | superseded
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (Index("ix_permits_requester_query", "requester", "query_id"),)
