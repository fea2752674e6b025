"""The provision-record ledger of one tenant, stored through SQLAlchemy.

``Ledger.append_many`` is one transaction (``append_in`` the same within a caller's): the
records, their leaf hashes, the subtrees they complete, the new frontier and one batch seal
(an Ed25519 signature over the tree head after the batch) commit together, and the call
returns only after the commit. The
tenant's row in ``ledger_trees`` is locked first (``BEGIN IMMEDIATE`` on SQLite, see ``shared.db``, ``SELECT
… FOR UPDATE`` on PostgreSQL), so concurrent writers queue instead of forking the tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, bindparam, delete, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.ledger.merkle import TreeFrontier, leaf_hash
from shared.ledger.models import checkpoints, leaves, nodes, provision_records, pruning_records, seals, trees
from shared.ledger.reader import Entry, LedgerError, LedgerReader, TreeState
from shared.ledger.records import ProvisionRecord, RetentionPruning
from shared.ledger.retention import retention_cutoff
from shared.ledger.signing import BatchSeal, Checkpoint
from shared.ledger.tree_store import kept_level


def utc_now() -> datetime:
    return datetime.now(UTC)


class RetentionError(LedgerError):
    """Pruning asked for records still within their retention period."""


@dataclass(frozen=True)
class AppendReceipt:
    """Where a record went: its leaf index and leaf hash, both final once returned."""

    index: int
    leaf_hash: bytes


@dataclass(frozen=True)
class PruneResult:
    pruned_before: datetime
    first_index: int
    end_index: int
    records_pruned: int
    receipt: AppendReceipt | None  # the pruning record; None when nothing was due


@dataclass
class _OpenBatch:
    """What a transaction has appended to a tenant's ledger so far, under the tree's lock."""

    conn: Connection
    state: TreeState
    frontier: TreeFrontier
    ledger: Ledger


#: ``Session.info`` key: the open batches of the session's transaction, by tenant.
_OPEN_BATCHES = "renkei.ledger.open_batches"


@event.listens_for(Session, "before_commit")
def _seal_open_batches(session: Session) -> None:
    for batch in session.info.pop(_OPEN_BATCHES, {}).values():
        batch.ledger._seal(batch)


@event.listens_for(Session, "after_transaction_create")
def _seal_before_a_savepoint(session: Session, transaction) -> None:
    # A savepoint may roll back alone: what the transaction appended before it is sealed first,
    # and this runs before the SAVEPOINT is issued (SQLAlchemy issues it on first use).
    if transaction.nested:
        _seal_open_batches(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_open_batches(session: Session, transaction) -> None:
    if transaction.parent is None:  # the transaction itself ended: committed, rolled back or closed
        session.info.pop(_OPEN_BATCHES, None)


_INSERTS = {table: insert(table) for table in (leaves, provision_records, pruning_records, nodes, seals)}


def entry_row(index: int, entry: Entry) -> dict[str, Any]:
    """The table row of an entry: its fields (the table says its type) and its index."""
    row = entry.model_dump(exclude={"type"})
    row["idx"] = index
    return row


class Ledger(LedgerReader):
    """Appends to, checkpoints and prunes one tenant's ledger, signing with the tenant's key."""

    def __init__(
        self,
        engine: Engine,
        tenant: str,
        signing_key: Ed25519PrivateKey,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(engine, tenant)
        self._key = signing_key
        self._clock = clock
        #: Told of each batch of records once it is committed (the service's metrics).
        self.observer: Callable[[Sequence[ProvisionRecord]], None] | None = None
        # Built once: every batch runs them, and only their parameters change.
        self._tree_row = select(trees).where(trees.c.tenant == tenant)
        self._tree_update = (
            update(trees)
            .where(trees.c.tenant == tenant)
            .values(size=bindparam("new_size"), frontier=bindparam("new_frontier"), seals=bindparam("new_seals"), last_sealed_at=bindparam("new_sealed_at"))
        )
        self._ensure_tree_row()

    @property
    def engine(self) -> Engine:
        return self._engine

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise LedgerError("the ledger clock must give timezone-aware times")
        return now.astimezone(UTC)

    def _ensure_tree_row(self) -> None:
        values = {"tenant": self.tenant, "size": 0, "frontier": b"", "seals": 0, "last_sealed_at": None}
        with self._engine.begin() as conn:
            name = conn.dialect.name
            if name in ("sqlite", "postgresql"):
                dialect_insert = sqlite.insert if name == "sqlite" else postgresql.insert
                conn.execute(dialect_insert(trees).values(values).on_conflict_do_nothing(index_elements=["tenant"]))
            elif conn.execute(select(trees.c.tenant).where(trees.c.tenant == self.tenant)).first() is None:
                conn.execute(insert(trees).values(values))

    def _lock(self, conn: Connection) -> TreeState:
        """Take the tenant's writer lock for the rest of ``conn``'s transaction."""
        query = self._tree_row
        # On SQLite every transaction of ``shared.db.make_engine`` begins IMMEDIATE: the write
        # lock is held from the start, so two writers cannot both read the same frontier.
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).one()
        return TreeState(row.size, row.frontier, row.seals, row.last_sealed_at)

    def _prepare(self, entries: Iterable[Entry]) -> list[tuple[Entry, bytes]]:
        prepared = []
        for entry in entries:
            if not isinstance(entry, ProvisionRecord | RetentionPruning):
                raise TypeError(f"the ledger takes provision records, not {type(entry).__name__}")
            if entry.tenant != self.tenant:
                raise LedgerError(f"a record of tenant {entry.tenant} cannot go into the ledger of {self.tenant}")
            prepared.append((entry, leaf_hash(entry.canonical_bytes())))
        return prepared

    def _append_locked(self, conn: Connection, state: TreeState, prepared: Sequence[tuple[Entry, bytes]]) -> list[AppendReceipt]:
        """``prepared`` appended and sealed as one batch, under the lock ``state`` was read with."""
        batch = self._open(conn, state)
        receipts = self._add(batch, prepared)
        self._seal(batch)
        return receipts

    def _open(self, conn: Connection, state: TreeState) -> _OpenBatch:
        return _OpenBatch(conn, state, TreeFrontier.from_bytes(state.size, state.frontier), self)

    def _add(self, batch: _OpenBatch, prepared: Sequence[tuple[Entry, bytes]]) -> list[AppendReceipt]:
        """The entries' rows (leaves, contents, completed subtrees) written; the seal waits."""
        frontier = batch.frontier
        leaf_rows, record_rows, pruning_rows, node_rows, receipts = [], [], [], [], []
        for index, (entry, leaf) in enumerate(prepared, start=frontier.size):
            for node, value in frontier.append(leaf, kept_level):
                node_rows.append({"tenant": self.tenant, "level": node.level, "idx": node.index, "hash": value})
            leaf_rows.append({"tenant": self.tenant, "idx": index, "leaf_hash": leaf})
            (record_rows if isinstance(entry, ProvisionRecord) else pruning_rows).append(entry_row(index, entry))
            receipts.append(AppendReceipt(index, leaf))
        batch.conn.execute(_INSERTS[leaves], leaf_rows)
        for table, rows in ((provision_records, record_rows), (pruning_records, pruning_rows), (nodes, node_rows)):
            if rows:
                batch.conn.execute(_INSERTS[table], rows)
        return receipts

    def _seal(self, batch: _OpenBatch) -> None:
        """One seal over everything the batch appended, and the tree's new head."""
        state, frontier = batch.state, batch.frontier
        # Seal times never go backwards, even if the clock does: retention counts on them.
        sealed_at = self._now()
        if state.last_sealed_at is not None and sealed_at < state.last_sealed_at:
            sealed_at = state.last_sealed_at
        seal = BatchSeal.sign(self._key, state.seals, self.tenant, state.size, frontier.size, frontier.root(), sealed_at)
        batch.conn.execute(
            _INSERTS[seals],
            {
                "tenant": self.tenant,
                "seq": seal.seq,
                "first_index": seal.first_index,
                "tree_size": seal.tree_size,
                "root_hash": seal.root_hash,
                "sealed_at": seal.sealed_at,
                "signature": seal.signature,
            },
        )
        batch.conn.execute(
            self._tree_update,
            {"new_size": frontier.size, "new_frontier": frontier.to_bytes(), "new_seals": state.seals + 1, "new_sealed_at": sealed_at},
        )

    def append(self, record: ProvisionRecord) -> AppendReceipt:
        """Append one record as its own sealed batch; returns once it is committed."""
        return self.append_many([record])[0]

    def append_many(self, records: Iterable[ProvisionRecord]) -> list[AppendReceipt]:
        """Append records as one batch: one transaction, one seal; returns after commit."""
        records = list(records)
        with self._engine.connect() as conn:
            receipts = self.append_in(conn, records)
            conn.commit()
        self.observed(records)
        return receipts

    def append_in(self, conn: Connection | Session, records: Sequence[ProvisionRecord]) -> list[AppendReceipt]:
        """Append records in the caller's transaction, which commits them with whatever else it
        writes: a change and its record stand or fall together. On a connection they are one
        sealed batch. In a session every append of the transaction joins one batch, sealed once
        as the session commits (a transaction shared by several writers makes one seal, not one
        each). Tell ``observed`` once it has committed."""
        prepared = self._prepare(records)
        if any(not isinstance(entry, ProvisionRecord) for entry, _ in prepared):
            raise LedgerError("pruning records are made by prune() alone")
        if not prepared:
            return []
        if not isinstance(conn, Session):
            return self._append_locked(conn, self._lock(conn), prepared)
        connection = conn.connection()
        if conn.in_nested_transaction():  # sealed in the savepoint, which may roll back alone
            return self._append_locked(connection, self._lock(connection), prepared)
        opened = conn.info.setdefault(_OPEN_BATCHES, {})
        batch = opened.get(self.tenant)
        if batch is None or batch.conn is not connection:  # the first append of this transaction
            batch = opened[self.tenant] = self._open(connection, self._lock(connection))
        return self._add(batch, prepared)

    def observed(self, records: Sequence[ProvisionRecord]) -> None:
        """Records committed: the observer (the service's metrics) counts them."""
        if self.observer is not None and records:
            self.observer(records)

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree head, with the time, as the next checkpoint."""
        with self._engine.connect() as conn:
            state = self._lock(conn)
            last = conn.execute(
                select(checkpoints).where(checkpoints.c.tenant == self.tenant).order_by(checkpoints.c.seq.desc()).limit(1)
            ).first()
            made_at = self._now()
            if last is not None and made_at < last.made_at:
                made_at = last.made_at
            root = TreeFrontier.from_bytes(state.size, state.frontier).root()
            checkpoint = Checkpoint.sign(self._key, 0 if last is None else last.seq + 1, self.tenant, state.size, root, made_at)
            conn.execute(
                insert(checkpoints).values(
                    tenant=self.tenant,
                    seq=checkpoint.seq,
                    tree_size=checkpoint.tree_size,
                    root_hash=checkpoint.root_hash,
                    made_at=checkpoint.made_at,
                    signature=checkpoint.signature,
                )
            )
            conn.commit()
        return checkpoint

    def prune(self, before: datetime) -> PruneResult:
        """Drop the contents of records sealed before ``before``, once past retention (M32).

        Leaf hashes stay, so every proof and signature still verifies; the pruning itself
        is appended as a record in the same transaction.
        """
        if before.tzinfo is None:
            raise LedgerError("prune needs a timezone-aware time")
        before = before.astimezone(UTC)
        now = self._now()
        if before > retention_cutoff(now):
            raise RetentionError(f"records sealed after {retention_cutoff(now).isoformat()} are still within retention")
        with self._engine.connect() as conn:
            state = self._lock(conn)
            end = (
                conn.scalar(select(func.max(seals.c.tree_size)).where(seals.c.tenant == self.tenant, seals.c.sealed_at < before))
                or 0
            )
            first = conn.scalar(select(func.max(pruning_records.c.end_index)).where(pruning_records.c.tenant == self.tenant)) or 0
            if end <= first:
                conn.rollback()
                return PruneResult(before, first, first, 0, None)
            dropped = conn.execute(
                delete(provision_records).where(
                    provision_records.c.tenant == self.tenant, provision_records.c.idx >= first, provision_records.c.idx < end
                )
            ).rowcount
            notice = RetentionPruning(
                tenant=self.tenant, pruned_before=before, first_index=first, end_index=end, records_pruned=dropped, pruned_at=now
            )
            (receipt,) = self._append_locked(conn, state, self._prepare([notice]))
            conn.commit()
        return PruneResult(before, first, end, dropped, receipt)
