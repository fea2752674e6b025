"""The ledger's tables. Every table has a tenant column: tenants share a database, not rows.

ledger_trees                one row per tenant: size, right frontier (for the next append),
                            the row writers lock so that a tenant's appends never fork
ledger_leaves               every leaf hash, kept for ever (pruning never touches them)
ledger_nodes                complete subtrees at levels 4, 8, 12, …: proofs read these
ledger_provision_records    the records' fields, one column each (dropped when pruned)
ledger_pruning_records      the records of pruning (never pruned themselves)
ledger_seals                one signed tree head per appended batch
ledger_checkpoints          signed tree heads made on demand or by the timer

Times are stored as their canonical UTC text (``2024-05-01T00:00:00.000000Z``), so a
column holds exactly what was hashed or signed, and text order is time order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

from shared.ledger.records import ProvisionRecord, format_utc
from shared.models import NAMING

TIME_TEXT_LENGTH = len("2024-05-01T00:00:00.000000Z")


def parse_utc(text: str) -> datetime:
    """A time back from its canonical text; any other spelling of it is refused."""
    try:
        value = datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC) if text.endswith("Z") else None
    except ValueError:
        value = None
    if value is None or format_utc(value) != text:
        raise ValueError(f"not a canonical UTC time: {text!r}")
    return value


class UtcTime(TypeDecorator):
    """An aware datetime, stored as canonical UTC text."""

    impl = String(TIME_TEXT_LENGTH)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("ledger times must be timezone-aware")
        return format_utc(value)

    def process_result_value(self, value, dialect):
        return None if value is None else parse_utc(value)


metadata = MetaData(naming_convention=NAMING)


def _tenant() -> Column:
    return Column("tenant", String(8), primary_key=True)


trees = Table(
    "ledger_trees",
    metadata,
    _tenant(),
    Column("size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),
    Column("seals", BigInteger, nullable=False, comment="how many batch seals: the next seal's seq"),
    Column("last_sealed_at", UtcTime, nullable=True),
)

leaves = Table(
    "ledger_leaves",
    metadata,
    _tenant(),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
)

nodes = Table(
    "ledger_nodes",
    metadata,
    _tenant(),
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

_LENGTHS = {
    "tenant": 8,
    "kind": 16,
    "requester": 64,
    "provider": 64,
    "affair_code": 16,
    "procedure_code": 16,
    "item_code": 16,
    "serial_number": 64,
    "outcome": 16,
    "refusal_reason": 500,
    "person_key": 64,
}
#: The record fields, in model order; the table's ``tenant`` column is the record's tenant.
PROVISION_FIELDS: tuple[str, ...] = tuple(name for name in ProvisionRecord.model_fields if name != "type")
_TIMES = {"requested_at", "provided_at"}


def _provision_column(name: str) -> Column:
    if name == "tenant":
        return _tenant()
    nullable = not ProvisionRecord.model_fields[name].is_required()
    if name in _TIMES:
        return Column(name, UtcTime, nullable=nullable)
    if name == "non_disclosure":
        return Column(name, Boolean, nullable=False)
    return Column(name, String(_LENGTHS[name]), nullable=nullable)


provision_records = Table(
    "ledger_provision_records",
    metadata,
    *[_provision_column(name) for name in PROVISION_FIELDS],
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Index("ix_ledger_provision_records_person", "tenant", "person_key"),
)

pruning_records = Table(
    "ledger_pruning_records",
    metadata,
    _tenant(),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("pruned_before", UtcTime, nullable=False),
    Column("first_index", BigInteger, nullable=False),
    Column("end_index", BigInteger, nullable=False),
    Column("records_pruned", BigInteger, nullable=False),
    Column("pruned_at", UtcTime, nullable=False),
)

seals = Table(
    "ledger_seals",
    metadata,
    _tenant(),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("first_index", BigInteger, nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("sealed_at", UtcTime, nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    UniqueConstraint("tenant", "tree_size", name="uq_ledger_seals_tree_size"),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    _tenant(),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("made_at", UtcTime, nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)
