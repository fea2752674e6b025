"""The pass of ``verify_ledger`` over a tenant's log: every check, in log order.

For each record in index order: the stored fields hash back to the stored leaf hash (or,
once pruned, a genuine pruning record accounts for it); the leaf extends the rebuilt tree,
whose completed subtrees must equal the stored ones; at a batch end, the seal must have
signed exactly the rebuilt root; at a checkpoint's size, the checkpoint must be signed and
have the rebuilt root. Reads take values as stored, so that no conversion can hide a change.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Boolean, Connection, Integer, String, func, select, type_coerce
from sqlalchemy.exc import OperationalError

from shared.ledger.merkle import HASH_SIZE, NodeId, TreeFrontier, leaf_hash
from shared.ledger.models import (
    PROVISION_FIELDS,
    TIME_TEXT_LENGTH,
    UtcTime,
    checkpoints,
    leaves,
    nodes,
    parse_utc,
    provision_records,
    pruning_records,
    seals,
    trees,
)
from shared.ledger.records import canonical_json, format_utc
from shared.ledger.retention import retention_cutoff
from shared.ledger.signing import BatchSeal, Checkpoint, SignatureError
from shared.ledger.tree_store import kept_level


@dataclass(frozen=True)
class Failure:
    """What failed first: ``subject`` is record, batch seal, checkpoint, tree node or tree."""

    subject: str
    position: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.subject} {self.position}: {self.reason}" if self.position is not None else f"{self.subject}: {self.reason}"


class Failed(Exception):
    def __init__(self, subject: str, position: int | None, reason: str) -> None:
        super().__init__(reason)
        self.failure = Failure(subject, position, reason)


def _raw(column):
    """The column as stored: times as their text, booleans as stored, no conversions."""
    if isinstance(column.type, UtcTime):
        return type_coerce(column, String(TIME_TEXT_LENGTH)).label(column.name)
    if isinstance(column.type, Boolean):
        return type_coerce(column, Integer).label(column.name)
    return column


def _strict_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: Where the record fields start in a row of ``Sweep._leaf_rows``.
_FIELDS_START = 4


def _stored_bytes(document: dict[str, Any]) -> bytes:
    """The canonical bytes of a record as stored, on the fast path alone.

    A genuine provision record is a flat object of strings, booleans and nulls, for which
    this is its RFC 8785 form (see ``records.canonical_json``); a value that a tampering hand
    turned into anything else encodes differently and so fails the hash comparison.
    """
    return _JSON.encode(document).encode("utf-8")


def _is_hash(value: Any) -> bool:
    return type(value) is bytes and len(value) == HASH_SIZE


@dataclass
class _Notice:
    index: int
    first_index: int
    end_index: int
    records_pruned: int
    pruned_before: str
    genuine: bool


class Sweep:
    """One pass over a tenant's log in index order, raising ``Failed`` at the first failure."""

    def __init__(
        self, conn: Connection, tenant: str, public_key: Ed25519PublicKey, chunk_size: int, trusted: list[Checkpoint]
    ) -> None:
        self.conn = conn
        self.trusted = sorted(enumerate(trusted), key=lambda item: item[1].tree_size)
        self.next_trusted = 0
        self.tenant = tenant
        self.key = public_key
        self.chunk = chunk_size
        self.frontier = TreeFrontier()
        self.records_checked = self.records_pruned = self.seals_checked = self.checkpoints_checked = 0
        self.nodes_checked = 0
        self._node_streams: dict[int, Iterator[Any]] = {}

    # -- reading -----------------------------------------------------------------------

    def _all(self, statement) -> list[Any]:
        try:
            return self.conn.execute(statement).all()
        except OperationalError:
            if self.conn.dialect.name != "sqlite":
                raise
        # Only a tampered database gets here: read again, text that is not UTF-8 included.
        with undecodable_text_tolerated(self.conn):
            return self.conn.execute(statement).all()

    def _keyset(self, query, key) -> Iterator[Any]:
        """Rows in ``key`` order, a chunk at a time, whatever the database."""
        after = -1
        while True:
            rows = self._all(query.where(key > after).order_by(key).limit(self.chunk))
            yield from rows
            if len(rows) < self.chunk:
                return
            after = rows[-1]._mapping[key.name]

    def _leaf_rows(self) -> Iterator[Any]:
        on = lambda table: (table.c.tenant == leaves.c.tenant) & (table.c.idx == leaves.c.idx)  # noqa: E731
        query = (
            select(
                leaves.c.idx,
                leaves.c.leaf_hash,
                provision_records.c.idx.label("record_idx"),
                pruning_records.c.idx.label("notice_idx"),
                *[_raw(provision_records.c[name]) for name in PROVISION_FIELDS],
            )
            .select_from(
                leaves.outerjoin(provision_records, on(provision_records)).outerjoin(pruning_records, on(pruning_records))
            )
            .where(leaves.c.tenant == self.tenant)
        )
        return self._keyset(query, leaves.c.idx)

    def _node_stream(self, level: int) -> Iterator[Any]:
        if level not in self._node_streams:
            query = select(nodes.c.idx, nodes.c.hash).where(nodes.c.tenant == self.tenant, nodes.c.level == level)
            self._node_streams[level] = self._keyset(query, nodes.c.idx)
        return self._node_streams[level]

    # -- checks ------------------------------------------------------------------------

    def run(self) -> None:
        self._load_checkpoints()
        self._load_notices()
        self._check_checkpoints(0)
        self._sweep()
        self._finish()

    def _load_checkpoints(self) -> None:
        query = select(*[_raw(c) for c in checkpoints.c]).where(checkpoints.c.tenant == self.tenant).order_by(checkpoints.c.seq)
        self.checkpoints = self._all(query)
        self.next_checkpoint = 0
        self.previous_checkpoint: Any = None

    def _load_notices(self) -> None:
        query = (
            select(*[_raw(c) for c in pruning_records.c], leaves.c.leaf_hash)
            .select_from(
                pruning_records.outerjoin(
                    leaves, (leaves.c.tenant == pruning_records.c.tenant) & (leaves.c.idx == pruning_records.c.idx)
                )
            )
            .where(pruning_records.c.tenant == self.tenant)
            .order_by(pruning_records.c.idx)
        )
        self.notices: dict[int, _Notice] = {}
        for row in self._all(query):
            document = {name: value for name, value in row._mapping.items() if name not in ("idx", "leaf_hash")}
            document["type"] = "retention_pruning"
            try:
                genuine = _is_hash(row.leaf_hash) and leaf_hash(canonical_json(document)) == row.leaf_hash
            except (TypeError, ValueError):
                genuine = False
            self.notices[row.idx] = _Notice(
                row.idx, row.first_index, row.end_index, row.records_pruned, row.pruned_before, genuine
            )
        self.genuine_notices = sorted((n for n in self.notices.values() if n.genuine), key=lambda n: n.index)
        self.notice_positions = [n.index for n in self.genuine_notices]

    def _sweep(self) -> None:
        seal_query = select(*[_raw(c) for c in seals.c]).where(seals.c.tenant == self.tenant)
        self.seals = self._keyset(seal_query, seals.c.seq)
        self.previous_seal: Any = None
        self._next_seal()
        for expected, row in enumerate(self._leaf_rows()):
            index = row.idx
            if index != expected:
                raise Failed("record", expected, "its leaf is missing from the log")
            if not _is_hash(row.leaf_hash):
                raise Failed("record", index, "its stored leaf hash is not a 32-byte hash")
            if self.seal is None:
                raise Failed("record", index, "no batch seal covers it")
            self._check_contents(row)
            for node, value in self.frontier.append(row.leaf_hash, kept_level):
                self._check_node(node, value)
            if self.seal.tree_size == self.frontier.size:
                self._check_seal()
            elif self.seal.tree_size < self.frontier.size:
                raise Failed("batch seal", self.seal.seq, f"seals tree size {self.seal.tree_size}, which no batch ends at")
            self._check_checkpoints(self.frontier.size)

    def _check_contents(self, row: Any) -> None:
        index = row.idx
        if row.record_idx is not None and row.notice_idx is not None:
            raise Failed("record", index, "it is stored both as a provision record and as a pruning record")
        if row.record_idx is not None:
            document = dict(zip(PROVISION_FIELDS, row[_FIELDS_START:], strict=True))
            document["type"] = "provision"
            try:
                document["non_disclosure"] = _strict_bool(document["non_disclosure"])
                data = _stored_bytes(document)
            except (TypeError, ValueError) as error:
                raise Failed("record", index, f"its stored fields cannot be read: {error}") from None
            if leaf_hash(data) != row.leaf_hash:
                raise Failed("record", index, "its stored fields do not hash to its leaf hash")
            self.records_checked += 1
        elif row.notice_idx is not None:
            self._check_notice(self.notices[index])
            self.records_checked += 1
        else:
            self._check_pruned(index)
            self.records_pruned += 1

    def _check_notice(self, notice: _Notice) -> None:
        if not notice.genuine:
            raise Failed("record", notice.index, "its stored pruning record does not hash to its leaf hash")
        position = self.notice_positions.index(notice.index)
        previous_end = self.genuine_notices[position - 1].end_index if position else 0
        if notice.first_index != previous_end:
            raise Failed(
                "record", notice.index, f"its pruning starts at {notice.first_index}, not where the last ended ({previous_end})"
            )
        inside = sum(1 for n in self.genuine_notices if notice.first_index <= n.index < notice.end_index)
        if notice.records_pruned != notice.end_index - notice.first_index - inside:
            raise Failed(
                "record",
                notice.index,
                f"it says {notice.records_pruned} records were pruned, "
                f"but its range holds {notice.end_index - notice.first_index - inside}",
            )
        sealed_at = self._seal_time()
        if notice.pruned_before > format_utc(retention_cutoff(sealed_at)):
            raise Failed("record", notice.index, "it pruned records that were still within their retention period")

    def _check_pruned(self, index: int) -> None:
        at = bisect.bisect_right(self.notice_positions, index)
        for notice in self.genuine_notices[at:]:
            if notice.first_index <= index < notice.end_index:
                if self.seal.sealed_at >= notice.pruned_before:
                    raise Failed("record", index, "its contents are gone although it was sealed after the pruning cutoff")
                return
        raise Failed("record", index, "its contents are gone and no pruning record accounts for it")

    def _next_seal(self) -> None:
        self.seal = next(self.seals, None)
        if self.seal is not None and not all(type(v) is int for v in (self.seal.first_index, self.seal.tree_size)):
            raise Failed("batch seal", self.seal.seq, "its first index or tree size is not a number")

    def _seal_time(self):
        try:
            return parse_utc(self.seal.sealed_at)
        except (TypeError, ValueError, AttributeError):
            raise Failed("batch seal", self.seal.seq, "its time is not a canonical UTC time") from None

    def _check_seal(self) -> None:
        seal, previous = self.seal, self.previous_seal
        expected_seq = 0 if previous is None else previous.seq + 1
        expected_first = 0 if previous is None else previous.tree_size
        if seal.seq != expected_seq:
            raise Failed("batch seal", expected_seq, "it is missing")
        if seal.first_index != expected_first:
            raise Failed("batch seal", seal.seq, f"its batch starts at {seal.first_index}, not at {expected_first}")
        sealed_at = self._seal_time()
        if not _is_hash(seal.root_hash) or type(seal.signature) is not bytes:
            raise Failed("batch seal", seal.seq, "its root hash or signature is malformed")
        body = BatchSeal.body_of(self.tenant, seal.first_index, seal.tree_size, seal.root_hash, sealed_at)
        try:
            self.key.verify(seal.signature, body)
        except Exception:
            raise Failed("batch seal", seal.seq, "its signature does not verify with the public key") from None
        if seal.root_hash != self.frontier.root():
            raise Failed("batch seal", seal.seq, f"it signed a root that is not the rebuilt root at size {seal.tree_size}")
        if previous is not None and seal.sealed_at < previous.sealed_at:
            raise Failed("batch seal", seal.seq, "it is dated before the seal before it")
        self.seals_checked += 1
        self.previous_seal = seal
        self._next_seal()

    def _check_node(self, node: NodeId, value: bytes) -> None:
        stored = next(self._node_stream(node.level), None)
        where = f"level {node.level} index {node.index} (records {node.first_leaf}-{node.end_leaf - 1})"
        if stored is None or stored.idx != node.index:
            raise Failed("tree node", None, f"{where} is missing from the store")
        if stored.hash != value:
            raise Failed("tree node", None, f"{where} differs from the tree rebuilt from the leaves")
        self.nodes_checked += 1

    def _check_checkpoints(self, size: int) -> None:
        while self.next_trusted < len(self.trusted) and self.trusted[self.next_trusted][1].tree_size <= size:
            number, checkpoint = self.trusted[self.next_trusted]
            if checkpoint.tenant != self.tenant:
                raise Failed("trusted checkpoint", number, f"it is a checkpoint of {checkpoint.tenant}, not of {self.tenant}")
            try:
                checkpoint.verify(self.key)
            except SignatureError as error:
                raise Failed("trusted checkpoint", number, str(error)) from None
            if checkpoint.root_hash != self.frontier.root():
                raise Failed("trusted checkpoint", number, f"the log is not consistent with it at size {checkpoint.tree_size}")
            self.next_trusted += 1
        while self.next_checkpoint < len(self.checkpoints):
            checkpoint = self.checkpoints[self.next_checkpoint]
            claimed = checkpoint.tree_size
            if type(claimed) is not int:
                raise Failed("checkpoint", checkpoint.seq, "its tree size is not a number")
            if claimed > size:
                return
            previous = self.previous_checkpoint
            if claimed < size:
                raise Failed("checkpoint", checkpoint.seq, f"its tree size {claimed} is below the checkpoint before it")
            expected_seq = 0 if previous is None else previous.seq + 1
            if checkpoint.seq != expected_seq:
                raise Failed("checkpoint", expected_seq, "it is missing")
            try:
                made_at = parse_utc(checkpoint.made_at)
                body = Checkpoint.body_of(self.tenant, claimed, checkpoint.root_hash, made_at)
                self.key.verify(checkpoint.signature, body)
            except Exception:
                raise Failed("checkpoint", checkpoint.seq, "its signature does not verify with the public key") from None
            if checkpoint.root_hash != self.frontier.root():
                raise Failed("checkpoint", checkpoint.seq, f"its root is not consistent with the log at size {claimed}")
            if previous is not None and checkpoint.made_at < previous.made_at:
                raise Failed("checkpoint", checkpoint.seq, "it is dated before the checkpoint before it")
            self.checkpoints_checked += 1
            self.previous_checkpoint = checkpoint
            self.next_checkpoint += 1

    def _finish(self) -> None:
        size = self.frontier.size
        if self.seal is not None:
            raise Failed(
                "record", size, f"its leaf is missing, yet batch seal {self.seal.seq} covers up to {self.seal.tree_size - 1}"
            )
        if self.next_checkpoint < len(self.checkpoints):
            checkpoint = self.checkpoints[self.next_checkpoint]
            raise Failed("checkpoint", checkpoint.seq, f"it claims {checkpoint.tree_size} records but the log holds {size}")
        if self.next_trusted < len(self.trusted):
            number, checkpoint = self.trusted[self.next_trusted]
            raise Failed(
                "trusted checkpoint", number, f"it vouches for {checkpoint.tree_size} records but the log holds only {size}"
            )
        # The stored state is where the next append starts: a wrong one would fork the tree.
        state = next(iter(self._all(select(*[_raw(c) for c in trees.c]).where(trees.c.tenant == self.tenant))), None)
        last = self.previous_seal
        rebuilt = (size, self.frontier.to_bytes(), self.seals_checked, None if last is None else last.sealed_at)
        stored = (0, b"", 0, None) if state is None else (state.size, state.frontier, state.seals, state.last_sealed_at)
        if stored != rebuilt:
            raise Failed("tree", None, f"the stored tree state (size {stored[0]}) is not the tree rebuilt from the log")
        stored_nodes = self.conn.scalar(select(func.count()).select_from(nodes).where(nodes.c.tenant == self.tenant))
        if stored_nodes != self.nodes_checked:
            raise Failed("tree node", None, f"{stored_nodes - self.nodes_checked} stored nodes are not part of the tree")
        for table in (provision_records, pruning_records):
            stray = self.conn.scalar(select(func.min(table.c.idx)).where(table.c.tenant == self.tenant, table.c.idx >= size))
            if stray is not None:
                raise Failed("record", stray, "it is stored without a leaf in the log")


@contextmanager
def undecodable_text_tolerated(conn: Connection) -> Iterator[None]:
    """Let SQLite hand over text that is not UTF-8 instead of failing the whole read.

    SQLite stores whatever bytes it is given; decoded with surrogate escapes, such text
    cannot be canonically encoded, so the record holding it fails by name.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi = conn.connection.dbapi_connection
    previous = dbapi.text_factory
    dbapi.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    try:
        yield
    finally:
        dbapi.text_factory = previous
