"""Verify a tenant's ledger from the database and the tenant's public key alone (M33).

``verify_ledger`` reads the log in index order in one snapshot and, for every record,
hashes the stored fields back into canonical bytes and compares them with the stored leaf
hash; it rebuilds the tree from the leaf hashes, and at the end of each batch checks that
the batch seal signed exactly the rebuilt root; it checks every stored subtree against the
rebuilt one (proofs are served from them) and every checkpoint's signature and root at its
size. A checkpoint whose root equals the rebuilt root at its size is consistent with every
earlier checkpoint that passed, which is what a consistency proof would show, and more: the
leaves themselves are at hand. It stops at the first failure, in log order, and names it.

``verify_record_proof`` checks one record alone: bytes, path, batch seal, public key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from shared.db import SQLITE_BEGIN
from shared.ledger.evidence import RecordProof
from shared.ledger.merkle import ProofError, leaf_hash, verify_inclusion
from shared.ledger.records import check_tenant, parse_entry
from shared.ledger.signing import Checkpoint
from shared.ledger.sweep import Failed, Failure, Sweep

__all__ = ["Failure", "VerificationReport", "verify_ledger", "verify_record_proof"]


@dataclass(frozen=True)
class VerificationReport:
    tenant: str
    tree_size: int
    records_checked: int
    records_pruned: int
    seals_checked: int
    checkpoints_checked: int
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def __str__(self) -> str:
        counts = (
            f"{self.tree_size} records ({self.records_checked} with contents, {self.records_pruned} pruned), "
            f"{self.seals_checked} batch seals, {self.checkpoints_checked} checkpoints"
        )
        if self.ok:
            return f"ledger {self.tenant}: all verified: {counts}"
        return f"ledger {self.tenant}: FAILED at {self.failure} (verified before it: {counts})"


def verify_ledger(
    engine: Engine,
    tenant: str,
    public_key: Ed25519PublicKey,
    *,
    trusted: Iterable[Checkpoint] = (),
    chunk_size: int = 20_000,
) -> VerificationReport:
    """Check a tenant's whole ledger; the report is all-ok or names the first failure.

    ``trusted`` are checkpoints the auditor kept from earlier (from ``renkei ledger proof``
    or a witness): the log must still contain each, which catches a log cut back together
    with its own checkpoints.
    """
    check_tenant(tenant)
    failure = None
    with engine.connect() as conn:
        # One snapshot for the whole run, so that appends made meanwhile do not show up halfway
        # (on SQLite a deferred BEGIN: a reader that does not block the writers).
        if conn.dialect.name == "sqlite":
            conn = conn.execution_options(**{SQLITE_BEGIN: "BEGIN"})
        else:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        verifier = Sweep(conn, tenant, public_key, chunk_size, list(trusted))
        try:
            verifier.run()
        except Failed as failed:
            failure = failed.failure
        finally:
            conn.rollback()
    return VerificationReport(
        tenant=tenant,
        tree_size=verifier.frontier.size,
        records_checked=verifier.records_checked,
        records_pruned=verifier.records_pruned,
        seals_checked=verifier.seals_checked,
        checkpoints_checked=verifier.checkpoints_checked,
        failure=failure,
    )


def verify_record_proof(proof: RecordProof, public_key: Ed25519PublicKey) -> None:
    """Check one record alone; raises ``SignatureError`` or ``ProofError``.

    The seal's signature must verify, the record's bytes (when not pruned) must hash to the
    leaf and belong to the seal's tenant, and the path must lead from the leaf to the root
    the seal signed.
    """
    proof.seal.verify(public_key)
    if proof.leaf_data is not None:
        if leaf_hash(proof.leaf_data) != proof.leaf_hash:
            raise ProofError("the record's bytes do not hash to its leaf")
        if parse_entry(proof.leaf_data).tenant != proof.seal.tenant:
            raise ProofError("the record belongs to another tenant than the seal")
    verify_inclusion(proof.leaf_hash, proof.index, proof.seal.tree_size, proof.path, proof.seal.root_hash)
