"""Reading one tenant's ledger: tree heads, proofs, checkpoints and records. Needs no key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Row, select

from shared.ledger.evidence import ConsistencyProof, InclusionProof, RecordProof
from shared.ledger.merkle import (
    EMPTY_ROOT,
    NodeId,
    assemble,
    consistency_plan,
    fold_cover,
    inclusion_plan,
    plan_nodes,
    root_plan,
)
from shared.ledger.models import PROVISION_FIELDS, checkpoints, leaves, provision_records, pruning_records, seals, trees
from shared.ledger.records import ProvisionRecord, RetentionPruning, check_tenant, looks_like_my_number
from shared.ledger.signing import BatchSeal, Checkpoint
from shared.ledger.tree_store import StoredTree

Entry = ProvisionRecord | RetentionPruning


class LedgerError(Exception):
    """A request the ledger cannot serve (an index beyond the tree, another tenant's record…)."""


@dataclass(frozen=True)
class StoredRecord:
    index: int
    leaf_hash: bytes
    record: ProvisionRecord


@dataclass(frozen=True)
class TreeState:
    size: int
    frontier: bytes
    seals: int
    last_sealed_at: datetime | None


def record_from_row(row: Row) -> ProvisionRecord:
    return ProvisionRecord.model_validate({name: getattr(row, name) for name in PROVISION_FIELDS})


def seal_from_row(row: Row) -> BatchSeal:
    return BatchSeal(row.seq, row.tenant, row.first_index, row.tree_size, row.root_hash, row.sealed_at, row.signature)


def checkpoint_from_row(row: Row) -> Checkpoint:
    return Checkpoint(row.seq, row.tenant, row.tree_size, row.root_hash, row.made_at, row.signature)


class LedgerReader:
    """Reads one tenant's ledger: proofs, checkpoints, records. Needs no key."""

    def __init__(self, engine: Engine, tenant: str) -> None:
        self._engine = engine
        self.tenant = check_tenant(tenant)

    def _state(self, conn: Connection) -> TreeState:
        row = conn.execute(select(trees).where(trees.c.tenant == self.tenant)).first()
        if row is None:
            return TreeState(0, b"", 0, None)
        return TreeState(row.size, row.frontier, row.seals, row.last_sealed_at)

    def tree_size(self) -> int:
        with self._engine.connect() as conn:
            return self._state(conn).size

    def _size_or_current(self, conn: Connection, tree_size: int | None) -> int:
        current = self._state(conn).size
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise LedgerError(f"{self.tenant}: tree size {tree_size} is beyond the log's {current}")
        return tree_size

    @staticmethod
    def _root(found: dict[NodeId, bytes], size: int) -> bytes:
        return fold_cover([found[n] for n in root_plan(size)]) if size else EMPTY_ROOT

    def root_hash(self, tree_size: int | None = None) -> bytes:
        with self._engine.connect() as conn:
            size = self._size_or_current(conn, tree_size)
            return self._root(StoredTree(conn, self.tenant).hashes(root_plan(size)), size)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """The audit path of leaf ``index`` in the tree of ``tree_size`` (now, by default)."""
        with self._engine.connect() as conn:
            size = self._size_or_current(conn, tree_size)
            if not 0 <= index < size:
                raise LedgerError(f"{self.tenant}: no record {index} in a tree of size {size}")
            plan = inclusion_plan(index, size)
            leaf = NodeId(0, index)
            found = StoredTree(conn, self.tenant).hashes(plan_nodes(plan) | set(root_plan(size)) | {leaf})
        return InclusionProof(index, size, found[leaf], tuple(assemble(plan, found)), self._root(found, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``old_size`` is a prefix of the tree of ``new_size``."""
        with self._engine.connect() as conn:
            new = self._size_or_current(conn, new_size)
            if not 0 < old_size <= new:
                raise LedgerError(f"{self.tenant}: no consistency proof from size {old_size} to {new}")
            plan = consistency_plan(old_size, new)
            found = StoredTree(conn, self.tenant).hashes(plan_nodes(plan) | set(root_plan(old_size)) | set(root_plan(new)))
        return ConsistencyProof(old_size, new, self._root(found, old_size), self._root(found, new), tuple(assemble(plan, found)))

    def seal_covering(self, index: int) -> BatchSeal:
        """The seal of the batch that appended record ``index``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(seals).where(seals.c.tenant == self.tenant, seals.c.tree_size > index).order_by(seals.c.tree_size).limit(1)
            ).first()
        if row is None or index < 0:
            raise LedgerError(f"{self.tenant}: no sealed record {index}")
        return seal_from_row(row)

    def record_proof(self, index: int) -> RecordProof:
        """The record's bytes, its path to the root its batch seal signed, and that seal."""
        seal = self.seal_covering(index)
        proof = self.inclusion_proof(index, seal.tree_size)
        entry = self.entry(index)
        return RecordProof(index, None if entry is None else entry.canonical_bytes(), proof.leaf_hash, proof.path, seal)

    def entry(self, index: int) -> Entry | None:
        """The record at ``index``: a provision record, a pruning record, or None once pruned."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(provision_records).where(provision_records.c.tenant == self.tenant, provision_records.c.idx == index)
            ).first()
            if row is not None:
                return record_from_row(row)
            row = conn.execute(
                select(pruning_records).where(pruning_records.c.tenant == self.tenant, pruning_records.c.idx == index)
            ).first()
            if row is not None:
                return RetentionPruning.model_validate({k: v for k, v in row._mapping.items() if k != "idx"})
            if not 0 <= index < self._state(conn).size:
                raise LedgerError(f"{self.tenant}: no record {index}")
        return None

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(checkpoints).where(checkpoints.c.tenant == self.tenant).order_by(checkpoints.c.seq.desc()).limit(1)
            ).first()
        return None if row is None else checkpoint_from_row(row)

    def checkpoints(self) -> list[Checkpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(checkpoints).where(checkpoints.c.tenant == self.tenant).order_by(checkpoints.c.seq))
            return [checkpoint_from_row(row) for row in rows]

    def records_about(self, person_key: str, *, include_non_disclosure: bool = False) -> list[StoredRecord]:
        """Who asked for the person's data, when, for what and how it ended (開示請求, M34).

        Records flagged 不開示 are left out unless ``include_non_disclosure``: what this
        returns by default is what may be disclosed to the person.
        """
        if looks_like_my_number(person_key):
            raise ValueError("records are found by the tenant's own person key, never by My Number")
        query = (
            select(provision_records, leaves.c.leaf_hash)
            .join(leaves, (leaves.c.tenant == provision_records.c.tenant) & (leaves.c.idx == provision_records.c.idx))
            .where(provision_records.c.tenant == self.tenant, provision_records.c.person_key == person_key)
            .order_by(provision_records.c.idx)
        )
        if not include_non_disclosure:
            query = query.where(provision_records.c.non_disclosure.is_(False))
        with self._engine.connect() as conn:
            return [StoredRecord(row.idx, row.leaf_hash, record_from_row(row)) for row in conn.execute(query)]
