"""The intermediate server's tables. Every one has a ``tenant`` column (the city's code),
is keyed by it first, and is read only through queries that name it (M23): the platform
serves many cities, and no city's rows are reachable from another's requests.

- ``symbol_links``: 符号 ↔ 統合宛名番号 — never a My Number, never a resident code;
- ``symbol_requests``: people whose symbol is still to be obtained (the resident code is
  kept only until the hub has answered);
- ``queries``: this city's queries (情報照会) and, once answered, the decrypted records until
  the retention sweep deletes them (M21);
- ``result_deletions``: each query deleted by the sweep, and why (M32);
- ``provision_copies``: the provision database (副本), one row per person and item;
- ``used_permits``: the serial number of every permit this city answered, so none is used twice;
- ``review_items``: answers about no-auto-response items waiting for staff (M26);
- ``permitted_list_copies``: this city's copy of the permitted-query list, as the hub signed it;
- ``batch_runs``: when each background job last ran and how it ended.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, BigId, utcnow


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _tenant() -> Mapped[str]:
    return mapped_column(String(6), primary_key=True)


class SymbolLink(Base):
    __tablename__ = "symbol_links"

    tenant: Mapped[str] = _tenant()
    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(40))
    obtained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("tenant", "symbol", name="uq_symbol_links_tenant_symbol"),)


class SymbolRequestRow(Base):
    __tablename__ = "symbol_requests"

    tenant: Mapped[str] = _tenant()
    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)
    resident_code: Mapped[str] = mapped_column(String(11))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class QueryRow(Base):
    """情報照会: one query of this city, and its answer until the sweep deletes it."""

    __tablename__ = "queries"

    tenant: Mapped[str] = _tenant()
    query_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    integrated_address_number: Mapped[str] = mapped_column(String(15))
    requested_by: Mapped[str] = mapped_column(String(64))  # the business system or staff member
    provider: Mapped[str] = mapped_column(String(6))
    affair_code: Mapped[str] = mapped_column(String(16))
    procedure_code: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(16))
    consent: Mapped[str] = mapped_column(Text)  # Consent, JSON
    status: Mapped[str] = mapped_column(String(16), default="pending")
    serial_number: Mapped[str | None] = mapped_column(String(64), default=None)
    records: Mapped[str | None] = mapped_column(Text, default=None)  # the decrypted records, JSON
    refusal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        Index("ix_queries_tenant_status_updated", "tenant", "status", "updated_at"),
        Index("ix_queries_tenant_serial", "tenant", "serial_number"),
    )


class ResultDeletion(Base):
    __tablename__ = "result_deletions"

    tenant: Mapped[str] = _tenant()
    query_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # the query's status when deleted
    reason: Mapped[str] = mapped_column(String(32))  # finished | abandoned
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_result_deletions_tenant_deleted", "tenant", "deleted_at"),)


class ProvisionCopy(Base):
    """副本: one person's records of one item, as the business system registered them."""

    __tablename__ = "provision_copies"

    tenant: Mapped[str] = _tenant()
    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    records: Mapped[str] = mapped_column(Text)  # JSON list in the item's layout
    record_count: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_provision_copies_tenant_item", "tenant", "item_code", "integrated_address_number"),)


class UsedPermit(Base):
    __tablename__ = "used_permits"

    tenant: Mapped[str] = _tenant()
    serial_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    query_id: Mapped[str] = mapped_column(String(32))
    requester: Mapped[str] = mapped_column(String(6))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewItem(Base):
    """An answer about a no-auto-response item, waiting for a reviewer (自動応答不可)."""

    __tablename__ = "review_items"

    tenant: Mapped[str] = _tenant()
    serial_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    query_id: Mapped[str] = mapped_column(String(32))
    requester: Mapped[str] = mapped_column(String(6))
    affair_code: Mapped[str] = mapped_column(String(16))
    procedure_code: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(16))
    integrated_address_number: Mapped[str] = mapped_column(String(15))
    permit: Mapped[str] = mapped_column(Text)  # SignedPermit, JSON
    state: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | released | refused
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    refusal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    outcome: Mapped[str | None] = mapped_column(Text, default=None)  # ProvisionOutcome to deliver, JSON (sealed)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivery_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_review_items_tenant_state", "tenant", "state", "received_at"),)


class PermittedListCopy(Base):
    __tablename__ = "permitted_list_copies"

    tenant: Mapped[str] = _tenant()
    version: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # SignedPermittedList, JSON
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchRun(Base):
    __tablename__ = "batch_runs"

    tenant: Mapped[str] = _tenant()
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)


class SubjectRequest(Base):
    """A person's request about their information (本人からの請求, M34): disclosure (開示),
    correction (訂正) or suspension of use (利用停止), as received at the counter and decided.

    An accepted suspension stops this city providing the person's information: every query
    about them is refused, and recorded, until the suspension is lifted.
    """

    __tablename__ = "subject_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(16))  # disclosure | correction | suspension
    integrated_address_number: Mapped[str] = mapped_column(String(15))
    details: Mapped[str] = mapped_column(String(2000))
    received_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="received")  # received | accepted | refused
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    decision_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    lifted_by: Mapped[str | None] = mapped_column(String(64), default=None)  # a suspension's end
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (Index("ix_subject_requests_person", "tenant", "integrated_address_number", "kind", "state"),)
