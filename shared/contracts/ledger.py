"""What the ops console may read of a ledger over the bus: its latest signed checkpoint,
as ``shared.ledger.signing.Checkpoint.to_json`` writes it; the reader checks the signature
with the keeper's public key from the trust directory and trusts nothing else in it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import Message, Operation


class CheckpointQuery(Message):
    """Asks for the latest signed checkpoint of the tenant's provision-record ledger."""


class SignedCheckpoint(Message):
    kind: Literal["checkpoint"]
    seq: int = Field(ge=0)
    tenant: str = Field(min_length=1, max_length=32)
    tree_size: int = Field(ge=0)
    root_hash: str
    time: str
    body: str
    signature: str


class LatestCheckpoint(Message):
    checkpoint: SignedCheckpoint | None  # None: no checkpoint yet


def _checkpoint_operation(owner: str, summary: str) -> Operation:
    """Served by the kernel for every service that keeps a ledger (``shared.service``)."""
    return Operation(
        owner=owner,
        name="ledger_checkpoint",
        request=CheckpointQuery,
        reply=LatestCheckpoint,
        callers=frozenset({"ops_console"}),
        audited=False,  # polled every round, no personal data; refusals are still logged
        summary=summary,
    )


OPERATIONS = [
    _checkpoint_operation("intermediate_server", "The latest signed checkpoint of the city's provision records (情報提供等記録), for the ops console."),
    _checkpoint_operation("provision_network", "The latest signed checkpoint of the hub's permit records, for the ops console."),
]
