"""What a ledger reader hands out to be checked elsewhere: proofs, and one record's evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.ledger.merkle import verify_consistency, verify_inclusion
from shared.ledger.signing import BatchSeal, b64


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]
    root_hash: bytes

    def verify(self) -> None:
        verify_inclusion(self.leaf_hash, self.leaf_index, self.tree_size, self.path, self.root_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "proof": [b64(h) for h in self.path],
            "root_hash": b64(self.root_hash),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    path: tuple[bytes, ...]

    def verify(self) -> None:
        verify_consistency(self.old_size, self.new_size, self.old_root, self.new_root, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": b64(self.old_root),
            "new_root": b64(self.new_root),
            "proof": [b64(h) for h in self.path],
        }


@dataclass(frozen=True)
class RecordProof:
    """All it takes to check one record alone with the tenant's public key.

    ``leaf_data`` is the record's canonical bytes (None once pruned: the hash remains);
    ``path`` leads from its leaf to the root that ``seal`` signed.
    """

    index: int
    leaf_data: bytes | None
    leaf_hash: bytes
    path: tuple[bytes, ...]
    seal: BatchSeal

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.index,
            "leaf_data": self.leaf_data.decode() if self.leaf_data is not None else None,
            "leaf_hash": b64(self.leaf_hash),
            "proof": [b64(h) for h in self.path],
            "seal": self.seal.to_json(),
        }
