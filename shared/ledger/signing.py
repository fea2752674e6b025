"""Signed tree heads: batch seals and checkpoints, each one Ed25519 signature over a text body.

Both bodies follow the C2SP checkpoint layout — an origin line, the tree size, the base64
root hash, then extension lines — and differ in their origin, so that a seal can never be
passed off as a checkpoint or a checkpoint of one tenant as another's:

    renkei.ledger/<tenant>            renkei.ledger.batch/<tenant>
    <tree size>                       <tree size>
    <base64 root>                     <base64 root>
    time <UTC time>                   first <first index of the batch>
                                      time <UTC time>

A batch seal is made in the transaction that appends a batch: with it, one record is
verifiable alone (its bytes, its inclusion proof at the seal's size, the seal, the key).
A checkpoint is made on demand or by a timer; auditors keep them and check that each is
consistent with the one before.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.ledger.records import format_utc


class SignatureError(ValueError):
    """A signature does not verify with the tenant's public key."""


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def unb64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not base64: {value!r}") from None


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text.removesuffix("Z") + "+00:00") if text.endswith("Z") else None
    if value is None or format_utc(value) != text:
        raise ValueError(f"not a canonical UTC time: {text!r}")
    return value.astimezone(UTC)


def _body(origin: str, tree_size: int, root_hash: bytes, *extensions: str) -> bytes:
    return "".join(f"{line}\n" for line in (origin, str(tree_size), b64(root_hash), *extensions)).encode()


def _verify(public_key: Ed25519PublicKey, signature: bytes, body: bytes, what: str) -> None:
    try:
        public_key.verify(signature, body)
    except InvalidSignature:
        raise SignatureError(f"the {what} signature does not verify with the public key") from None


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the tenant's log had ``tree_size`` records and this root."""

    seq: int
    tenant: str
    tree_size: int
    root_hash: bytes
    made_at: datetime
    signature: bytes

    @staticmethod
    def body_of(tenant: str, tree_size: int, root_hash: bytes, made_at: datetime) -> bytes:
        return _body(f"renkei.ledger/{tenant}", tree_size, root_hash, f"time {format_utc(made_at)}")

    @classmethod
    def sign(
        cls, key: Ed25519PrivateKey, seq: int, tenant: str, tree_size: int, root_hash: bytes, made_at: datetime
    ) -> Checkpoint:
        signature = key.sign(cls.body_of(tenant, tree_size, root_hash, made_at))
        return cls(seq, tenant, tree_size, root_hash, made_at, signature)

    def body(self) -> bytes:
        return self.body_of(self.tenant, self.tree_size, self.root_hash, self.made_at)

    def verify(self, public_key: Ed25519PublicKey) -> None:
        _verify(public_key, self.signature, self.body(), "checkpoint")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "checkpoint",
            "seq": self.seq,
            "tenant": self.tenant,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "time": format_utc(self.made_at),
            "body": self.body().decode(),
            "signature": b64(self.signature),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Checkpoint:
        """A checkpoint as ``to_json`` wrote it (the body is derived, not trusted)."""
        if document.get("kind") != "checkpoint":
            raise ValueError("not a checkpoint")
        return cls(
            seq=int(document["seq"]),
            tenant=str(document["tenant"]),
            tree_size=int(document["tree_size"]),
            root_hash=unb64(document["root_hash"]),
            made_at=_time(document["time"]),
            signature=unb64(document["signature"]),
        )


@dataclass(frozen=True)
class BatchSeal:
    """The signature over the tree head right after one appended batch (X-Road style)."""

    seq: int
    tenant: str
    first_index: int
    tree_size: int
    root_hash: bytes
    sealed_at: datetime
    signature: bytes

    @staticmethod
    def body_of(tenant: str, first_index: int, tree_size: int, root_hash: bytes, sealed_at: datetime) -> bytes:
        return _body(
            f"renkei.ledger.batch/{tenant}", tree_size, root_hash, f"first {first_index}", f"time {format_utc(sealed_at)}"
        )

    @classmethod
    def sign(
        cls,
        key: Ed25519PrivateKey,
        seq: int,
        tenant: str,
        first_index: int,
        tree_size: int,
        root_hash: bytes,
        sealed_at: datetime,
    ) -> BatchSeal:
        signature = key.sign(cls.body_of(tenant, first_index, tree_size, root_hash, sealed_at))
        return cls(seq, tenant, first_index, tree_size, root_hash, sealed_at, signature)

    def body(self) -> bytes:
        return self.body_of(self.tenant, self.first_index, self.tree_size, self.root_hash, self.sealed_at)

    def verify(self, public_key: Ed25519PublicKey) -> None:
        _verify(public_key, self.signature, self.body(), "batch seal")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "batch_seal",
            "seq": self.seq,
            "tenant": self.tenant,
            "first_index": self.first_index,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "time": format_utc(self.sealed_at),
            "body": self.body().decode(),
            "signature": b64(self.signature),
        }
