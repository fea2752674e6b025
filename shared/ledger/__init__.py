"""The provision-record ledger (情報提供等記録, M28, M33): a signed, verifiable Merkle log per tenant.

Every query and provision is appended as a ``ProvisionRecord`` to its tenant's RFC 9162
Merkle tree. Each appended batch is sealed with one Ed25519 signature over the tree head
after it, so any single record is verifiable alone; checkpoints sign the tree head at an
interval; ``verify_ledger`` checks a whole log from the database and the public key alone.
See docs/ledger.md.
"""

from shared.ledger.checkpoints import CheckpointTimer
from shared.ledger.evidence import ConsistencyProof, InclusionProof, RecordProof
from shared.ledger.merkle import ProofError, verify_consistency, verify_inclusion
from shared.ledger.models import metadata
from shared.ledger.reader import LedgerError, LedgerReader, StoredRecord
from shared.ledger.records import HUB_TENANT, ProvisionRecord, RetentionPruning, looks_like_my_number, parse_entry
from shared.ledger.retention import RETENTION_YEARS, retention_cutoff
from shared.ledger.signing import BatchSeal, Checkpoint, SignatureError
from shared.ledger.store import AppendReceipt, Ledger, PruneResult, RetentionError
from shared.ledger.verify import Failure, VerificationReport, verify_ledger, verify_record_proof

__all__ = [
    "HUB_TENANT",
    "RETENTION_YEARS",
    "AppendReceipt",
    "BatchSeal",
    "Checkpoint",
    "CheckpointTimer",
    "ConsistencyProof",
    "Failure",
    "InclusionProof",
    "Ledger",
    "LedgerError",
    "LedgerReader",
    "ProofError",
    "ProvisionRecord",
    "PruneResult",
    "RecordProof",
    "RetentionError",
    "RetentionPruning",
    "SignatureError",
    "StoredRecord",
    "VerificationReport",
    "looks_like_my_number",
    "metadata",
    "parse_entry",
    "retention_cutoff",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
    "verify_record_proof",
]
