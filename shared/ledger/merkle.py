"""RFC 9162 (Certificate Transparency v2) Merkle trees over SHA-256.

Leaf hash ``H(0x00 || data)``, node hash ``H(0x01 || left || right)``; the tree head of
``n`` leaves is MTH (§2.1.1). Proofs are generated as *plans*: lists of complete, aligned
subtrees (``NodeId``) whose hashes a store looks up, so that a proof over a million
stored leaves costs a few lookups instead of a walk over every leaf. Verification follows
§2.1.3.2 and §2.1.4.2 step by step, after checking the proof has exactly the length the
sizes call for; anything malformed raises ``ProofError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A proof is malformed or does not prove what it claims."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


@dataclass(frozen=True, order=True)
class NodeId:
    """The complete subtree of ``2**level`` leaves starting at leaf ``index << level``."""

    level: int
    index: int

    @property
    def first_leaf(self) -> int:
        return self.index << self.level

    @property
    def end_leaf(self) -> int:
        return (self.index + 1) << self.level


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (RFC 9162 §2.1.1), for n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_cover(start: int, end: int) -> list[NodeId]:
    """The complete aligned subtrees that make up leaves [start, end), left to right."""
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def fold_cover(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its cover: the pieces nest to the right."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def fold_complete(hashes: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree from its 2**k children at one level."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError("a complete subtree needs a power-of-two number of children")
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# A proof plan: one entry per proof hash, each the cover of the range whose MTH it is.
ProofPlan = list[list[NodeId]]


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, as the subtrees each hash is made of."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    top_down: ProofPlan = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            top_down.append(subtree_cover(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(subtree_cover(lo, lo + k))
            lo += k
    return top_down[::-1]


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true)."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    top_down: ProofPlan = []
    lo, hi, m, known = 0, new_size, old_size, True
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            top_down.append(subtree_cover(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(subtree_cover(lo, lo + k))
            lo, m, known = lo + k, m - k, False
    if not known:
        top_down.append(subtree_cover(lo, hi))
    return top_down[::-1]


def plan_nodes(plan: ProofPlan) -> set[NodeId]:
    return {node for element in plan for node in element}


def assemble(plan: ProofPlan, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
    """The proof hashes of ``plan`` from the hashes of the subtrees it names."""
    return [fold_cover([hashes[node] for node in element]) for element in plan]


def root_plan(size: int) -> list[NodeId]:
    return subtree_cover(0, size)


class MemoryTree:
    """Every node of a tree held in memory: for tests, tools and small trees."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for value in leaf_hashes:
            self.append(value)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, value: bytes) -> None:
        self._levels[0].append(value)
        level, index = 0, len(self._levels[0]) - 1
        while index & 1:
            parent = node_hash(self._levels[level][index - 1], self._levels[level][index])
            if len(self._levels) == level + 1:
                self._levels.append([])
            self._levels[level + 1].append(parent)
            level, index = level + 1, index >> 1

    def node(self, node: NodeId) -> bytes:
        return self._levels[node.level][node.index]

    def hashes(self, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
        return {node: self.node(node) for node in nodes}

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == 0:
            return EMPTY_ROOT
        return fold_cover([self.node(n) for n in root_plan(size)])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        plan = inclusion_plan(index, self.size if size is None else size)
        return assemble(plan, self.hashes(plan_nodes(plan)))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        plan = consistency_plan(old_size, self.size if new_size is None else new_size)
        return assemble(plan, self.hashes(plan_nodes(plan)))


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the definition of RFC 9162 §2.1.1."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _largest_power_of_two_below(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


class TreeFrontier:
    """The right edge of a growing tree: the hashes of the cover of [0, size).

    Appending a leaf merges equal-sized subtrees as a binary counter carries; each merge
    completes one subtree, which ``append`` reports so that a store can keep it.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def append(self, value: bytes, keep: Callable[[int], bool] = lambda level: False) -> list[tuple[NodeId, bytes]]:
        """Add a leaf; return the completed subtrees at the levels ``keep`` asks for."""
        completed: list[tuple[NodeId, bytes]] = []
        carry, level, index = self.size, 0, self.size
        while carry & 1:
            value = node_hash(self.hashes.pop(), value)
            carry, level, index = carry >> 1, level + 1, index >> 1
            if keep(level):
                completed.append((NodeId(level, index), value))
        self.hashes.append(value)
        self.size += 1
        return completed

    def root(self) -> bytes:
        return fold_cover(self.hashes) if self.hashes else EMPTY_ROOT

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> TreeFrontier:
        if len(blob) != HASH_SIZE * size.bit_count():
            raise ValueError(f"a frontier of size {size} takes {HASH_SIZE * size.bit_count()} bytes, not {len(blob)}")
        return cls(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])

    def copy(self) -> TreeFrontier:
        return TreeFrontier(self.size, self.hashes)


def inclusion_proof_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """For 0 < old_size < new_size; the old root itself is left out when old_size is 2**k."""
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    shift = (old_size & -old_size).bit_length() - 1
    seed = 0 if old_size == 1 << shift else 1
    return seed + inner - shift + border


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for position, value in enumerate(proof):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofError(f"{what} hash {position} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raise ``ProofError`` unless ``proof`` puts ``leaf`` at ``index``."""
    if size <= 0:
        raise ProofError(f"no leaf is included in a tree of size {size}")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
        raise ProofError(f"the leaf hash is not a {HASH_SIZE}-byte hash")
    proof = list(proof or ())
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofError(f"inclusion proof has {len(proof)} hashes; leaf {index} of {size} needs {expected}")
    _check_hashes(proof, "inclusion proof")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if r != root:
        raise ProofError(f"inclusion proof does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise ``ProofError`` unless the tree of ``old_size`` is a prefix of the new."""
    proof = list(proof or ())
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes cannot be negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof")
        if old_root != new_root:
            raise ProofError(f"two roots for the same tree size {old_size}")
        return
    expected = consistency_proof_length(old_size, new_size)
    if len(proof) != expected:
        raise ProofError(f"consistency proof has {len(proof)} hashes; {old_size} to {new_size} needs {expected}")
    _check_hashes(proof, "consistency proof")
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else proof
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the new root")
    if fr != old_root:
        raise ProofError(f"consistency proof does not rebuild the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not rebuild the new root of size {new_size}")
