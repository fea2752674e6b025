"""Subtree hashes from the database, for proofs over millions of stored leaves.

Every complete subtree is immutable once its last leaf is appended. The store keeps the
leaves and the subtrees at every ``STRIDE``-th level, about one row per 15 leaves; any other
complete subtree is folded from at most ``2**(STRIDE-1)`` kept children one level band
below. A proof at a million leaves thus reads a few hundred hashes in a dozen queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, select

from shared.ledger.merkle import NodeId, fold_complete
from shared.ledger.models import leaves, nodes

STRIDE = 4

_LEAF_RANGE = select(leaves.c.idx, leaves.c.leaf_hash).where(
    leaves.c.tenant == bindparam("tenant"), leaves.c.idx >= bindparam("first"), leaves.c.idx < bindparam("end")
)
_NODE_RANGE = select(nodes.c.idx, nodes.c.hash).where(
    nodes.c.tenant == bindparam("tenant"),
    nodes.c.level == bindparam("level"),
    nodes.c.idx >= bindparam("first"),
    nodes.c.idx < bindparam("end"),
)


class TreeCorrupt(Exception):
    """The stored tree lacks a hash it must have: rows were lost or removed."""


def kept_level(level: int) -> bool:
    return level > 0 and level % STRIDE == 0


def _base_level(level: int) -> int:
    return level - level % STRIDE


class StoredTree:
    """Reads the hashes of complete subtrees of one tenant's tree."""

    def __init__(self, conn: Connection, tenant: str) -> None:
        self._conn = conn
        self._tenant = tenant

    def hashes(self, wanted: Iterable[NodeId]) -> dict[NodeId, bytes]:
        wanted = set(wanted)
        ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for node in wanted:
            # Read the node itself when kept (or a leaf), else the kept children it folds from.
            base = _base_level(node.level)
            span = node.level - base
            ranges[base].append((node.index << span, (node.index + 1) << span))
        found = {level: self._read_ranges(level, spans) for level, spans in ranges.items()}
        result = {}
        for node in wanted:
            base = _base_level(node.level)
            span = node.level - base
            first, end = node.index << span, (node.index + 1) << span
            try:
                children = [found[base][i] for i in range(first, end)]
            except KeyError as missing:
                raise TreeCorrupt(f"{self._tenant}: no stored hash at level {base} index {missing}") from None
            result[node] = children[0] if span == 0 else fold_complete(children)
        return result

    def _read_ranges(self, level: int, spans: list[tuple[int, int]]) -> dict[int, bytes]:
        # One indexed range scan per run of adjacent spans: a proof needs a dozen or so.
        found: dict[int, bytes] = {}
        for first, end in _merged(spans):
            params = {"tenant": self._tenant, "first": first, "end": end}
            if level == 0:
                found.update(self._conn.execute(_LEAF_RANGE, params).all())
            else:
                found.update(self._conn.execute(_NODE_RANGE, {**params, "level": level}).all())
        return found


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, end in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((first, end))
    return merged
