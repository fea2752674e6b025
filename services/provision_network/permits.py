"""Provision permits (情報提供許可証): issued only for a query on the list, used once, until expiry.

The permit is an Ed25519 signature of the hub (its key in the trust directory) over the
canonical JSON of what was allowed: serial number (処理通番), query, requester, provider,
affair, procedure, item, route (経路情報), the requester's answer key and the validity.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from services.provision_network.models import Permit
from shared.contracts.network import (
    HUB_PRINCIPAL,
    PERMIT_LABEL,
    PermitRequest,
    ProvisionPermit,
    SignedKeyStatement,
    SignedPermit,
    intermediate_server,
)
from shared.crypto import SignatureMismatch, sign_document, verify_document


class PermitRefused(Exception):
    """The hub will not issue, or will not honour, a permit; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_serial_number(now: datetime) -> str:
    """処理通番: the day and time of issue and 80 random bits."""
    return f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(10)}"


def sign(key: Ed25519PrivateKey, permit: ProvisionPermit) -> SignedPermit:
    return SignedPermit(permit=permit, signature=sign_document(key, PERMIT_LABEL, permit.model_dump(mode="json")))


def verify(public_key: Ed25519PublicKey, signed: SignedPermit) -> None:
    verify_document(public_key, PERMIT_LABEL, signed.permit.model_dump(mode="json"), signed.signature)


def issue(
    session: Session,
    key: Ed25519PrivateKey,
    requester: str,
    requester_key: str,
    request: PermitRequest,
    provider_symbol: str,
    now: datetime,
    lifetime: timedelta,
) -> SignedPermit:
    permit = ProvisionPermit(
        serial_number=new_serial_number(now),
        query_id=request.query_id,
        requester=requester,
        provider=request.provider,
        affair_code=request.affair_code,
        procedure_code=request.procedure_code,
        item_code=request.item_code,
        route=[intermediate_server(requester), HUB_PRINCIPAL, intermediate_server(request.provider)],
        requester_key=SignedKeyStatement.model_validate_json(requester_key),
        issued_at=now,
        expires_at=now + lifetime,
    )
    session.execute(
        _ISSUE,
        {
            "serial_number": permit.serial_number,
            "query_id": permit.query_id,
            "requester": permit.requester,
            "provider": permit.provider,
            "affair_code": permit.affair_code,
            "procedure_code": permit.procedure_code,
            "item_code": permit.item_code,
            "requester_symbol": request.requester_symbol,
            "provider_symbol": provider_symbol,
            "issued_at": now,
            "expires_at": permit.expires_at,
            "state": "issued",
        },
    )
    return sign(key, permit)


def honour(session: Session, public_key: Ed25519PublicKey, signed: SignedPermit, caller_city: str, now: datetime) -> Row:
    """The stored permit, marked used, if ``signed`` is a genuine, unexpired, unused permit of
    ``caller_city``'s; ``PermitRefused`` otherwise."""
    try:
        verify(public_key, signed)
    except SignatureMismatch:
        raise PermitRefused("the permit's signature does not verify") from None
    permit = signed.permit
    if permit.requester != caller_city:
        raise PermitRefused(f"the permit was issued to {permit.requester}, not to {caller_city}")
    if now >= permit.expires_at:
        raise PermitRefused("the permit has expired")
    # The update is the claim: of two requests with the same permit, one changes the row.
    claimed = session.execute(_CLAIM, {"serial": permit.serial_number, "query": permit.query_id, "claimed_at": now}).first()
    if claimed is not None:
        return claimed
    stored = stored_permit(session, permit.serial_number)
    if stored is None or stored.query_id != permit.query_id:
        raise PermitRefused("the hub issued no such permit")
    raise PermitRefused("the permit has already been used")


# Built once: issuing and honouring run for every query, and only the parameters change.
_permits = Permit.__table__
_ISSUE = insert(_permits)
_STORED = select(_permits).where(_permits.c.serial_number == bindparam("serial"))
_CLAIM = (
    update(_permits)
    .where(_permits.c.serial_number == bindparam("serial"), _permits.c.query_id == bindparam("query"), _permits.c.used_at.is_(None))
    .values(used_at=bindparam("claimed_at"), state="sent")
    .returning(*_permits.c)
)


def stored_permit(session: Session, serial_number: str) -> Row | None:
    """The hub's row of a permit (its columns as attributes), if it issued one with that number."""
    return session.execute(_STORED, {"serial": serial_number}).first()
