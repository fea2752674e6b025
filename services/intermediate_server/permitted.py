"""This server's own copy of the permitted-query list (照会許可用照合リスト, function 8).

The hub distributes the list signed with its key; the copy is kept only if the signature
verifies with the hub's key from the trust directory, and a provision re-checks each
request against it (M25), independently of the permit: a permit for a query the copy does
not allow is refused. The copy also says which items are answered only after review
(自動応答不可, M26).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from services.intermediate_server.models import PermittedListCopy
from shared.contracts.network import LIST_LABEL, PermittedQuery, SignedPermittedList, institution_kind
from shared.crypto import verify_document
from shared.models import utcnow


def verified(document: SignedPermittedList, hub_key: Ed25519PublicKey) -> SignedPermittedList:
    """The list, if the hub signed it (``SignatureMismatch`` otherwise)."""
    verify_document(hub_key, LIST_LABEL, document.document.model_dump(mode="json"), document.signature)
    return document


def store(session: Session, tenant: str, document: SignedPermittedList) -> bool:
    """Keep a verified list as this tenant's copy; true when it is a new version."""
    row = session.get(PermittedListCopy, tenant)
    if row is not None and row.version == document.document.version:
        return False
    session.merge(PermittedListCopy(tenant=tenant, version=document.document.version, document=document.model_dump_json(), received_at=utcnow()))
    return True


def load(session: Session, tenant: str) -> SignedPermittedList | None:
    row = session.get(PermittedListCopy, tenant)
    return SignedPermittedList.model_validate_json(row.document) if row else None


def find(rows: list[PermittedQuery], requester: str, provider: str, affair: str, procedure: str, item: str) -> PermittedQuery | None:
    kinds = institution_kind(requester), institution_kind(provider)
    for row in rows:
        if (row.affair_code, row.procedure_code, row.item_code, row.requester_kind, row.provider_kind) == (affair, procedure, item, *kinds):
            return row
    return None
