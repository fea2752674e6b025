"""Provision permits (情報提供許可証): issued only for a query on the list, used once, until expiry.

The permit is an Ed25519 signature of the hub (its key in the trust directory) over the
canonical JSON of what was allowed: serial number (処理通番), query, requester, provider,
affair, procedure, item, route (経路情報), the requester's answer key and the validity.
The hub keeps each permit's digest (SHA-256 of the signed bytes and the signature): a permit
presented to it is honoured only if it is exactly one it issued, unaltered in any field or
in its signature. Comparing costs a hash where checking the signature again would cost a
verification; the provider, which holds only the hub's public key, verifies the signature.

A query has one live permit at most: a permit issued for a query (requester and query id)
supersedes the unused permits issued for it before, as when the requester asks again
because the reply to its first request was lost.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Row, bindparam, insert, select, tuple_, update
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
from shared.crypto import b64encode, signed_message
from shared.db import rows_for


class PermitRefused(Exception):
    """The hub will not issue, or will not honour, a permit; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_serial_number(now: datetime) -> str:
    """処理通番: the day and time of issue and 80 random bits."""
    return f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(10)}"


def sign(key: Ed25519PrivateKey, permit: ProvisionPermit) -> tuple[SignedPermit, str]:
    """The signed permit and its digest."""
    message = signed_message(PERMIT_LABEL, permit.model_dump(mode="json"))
    signed = SignedPermit(permit=permit, signature=b64encode(key.sign(message)))
    return signed, _digest(message, signed.signature)


def digest(signed: SignedPermit) -> str:
    """SHA-256 of the permit's signed bytes and its signature (hex), as the hub keeps it."""
    return _digest(signed_message(PERMIT_LABEL, signed.permit.model_dump(mode="json")), signed.signature)


def _digest(message: bytes, signature: str) -> str:
    return hashlib.sha256(message + b"\n" + signature.encode("ascii")).hexdigest()


def issue(
    key: Ed25519PrivateKey,
    requester: str,
    requester_key: SignedKeyStatement,
    request: PermitRequest,
    provider_symbol: str,
    now: datetime,
    lifetime: timedelta,
) -> tuple[SignedPermit, dict]:
    """The signed permit and its row for ``store``."""
    permit = ProvisionPermit(
        serial_number=new_serial_number(now),
        query_id=request.query_id,
        requester=requester,
        provider=request.provider,
        affair_code=request.affair_code,
        procedure_code=request.procedure_code,
        item_code=request.item_code,
        route=[intermediate_server(requester), HUB_PRINCIPAL, intermediate_server(request.provider)],
        requester_key=requester_key,
        issued_at=now,
        expires_at=now + lifetime,
    )
    signed, permit_digest = sign(key, permit)
    row = {
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
        "digest": permit_digest,
        "state": "issued",
    }
    return signed, row


def store(session: Session, rows: list[dict], now: datetime) -> None:
    """The hub's copies of issued permits, in the caller's transaction (one statement), and the
    unused permits issued before for the same queries superseded (of two in ``rows`` for one
    query, the later stands)."""
    if not rows:
        return
    session.execute(_ISSUE, rows)
    newest = {(row["requester"], row["query_id"]): row["serial_number"] for row in rows}
    session.execute(_SUPERSEDE, {"queries": list(newest), "newest": list(newest.values()), "at": now})


def _refusal(signed: SignedPermit, caller_city: str, now: datetime) -> str | None:
    """Why ``signed``, if genuine, is not ``caller_city``'s to use now, or None."""
    permit = signed.permit
    if permit.requester != caller_city:
        return f"the permit was issued to {permit.requester}, not to {caller_city}"
    if now >= permit.expires_at:
        return "the permit has expired"
    return None


def honour(session: Session, signed: SignedPermit, caller_city: str, now: datetime) -> Row:
    """The stored permit, marked used, if ``signed`` is exactly a permit the hub issued to
    ``caller_city``, unexpired and unused; ``PermitRefused`` otherwise."""
    ((row, reason),) = honour_many(session, [(signed, caller_city)], now)
    if reason is not None:
        raise PermitRefused(reason)
    return row


def honour_many(session: Session, asked: Sequence[tuple[SignedPermit, str]], now: datetime) -> list[tuple[Row | None, str | None]]:
    """``honour`` of each (permit, caller city), each checked on its own: (the stored permit,
    now marked used, None), or (the stored permit if there is one, the reason it is refused).
    The batch's claims are one statement; of two copies of one permit, the first is its use."""
    reasons = [_refusal(signed, caller, now) for signed, caller in asked]
    digests = [digest(signed) if reason is None else None for (signed, _), reason in zip(asked, reasons, strict=True)]
    # The update is the claim: only the permit as issued matches its digest, and of two
    # requests with the same permit, one changes the row.
    keys = list({(signed.permit.serial_number, found) for (signed, _), found, reason in zip(asked, digests, reasons, strict=True) if reason is None})
    rows = {row.serial_number: row for row in rows_for(session, _CLAIM, keys, claimed_at=now)}
    claimed = set(rows)
    rows.update((row.serial_number, row) for row in rows_for(session, _STORED, {signed.permit.serial_number for signed, _ in asked} - claimed))
    honoured: list[tuple[Row | None, str | None]] = []
    for (signed, _), found, reason in zip(asked, digests, reasons, strict=True):
        serial = signed.permit.serial_number
        row = rows.get(serial)
        if reason is None and serial in claimed and row.digest == found:
            claimed.discard(serial)  # a later copy finds it used
        elif reason is None:
            if row is None:
                reason = "the hub issued no such permit"
            elif not row.digest:
                reason = "the permit was issued before the hub kept permits' digests: ask for a new one"
            elif row.digest != found:
                reason = "the permit is not as the hub issued it: its contents or its signature were altered"
            elif row.state == SUPERSEDED:
                reason = "a newer permit was issued for the same query: this one may not be used"
            else:
                reason = "the permit has already been used"
        honoured.append((row, reason))
    return honoured


def end_many(session: Session, ends: Sequence[tuple[str, str]], now: datetime) -> None:
    """Each permit's query ended as (serial number, state), in the caller's transaction (one
    statement per kind); a "held" query is not finished: it waits for its answer."""
    held = [{"serial": serial, "state_": state} for serial, state in ends if state == "held"]
    finished = [{"serial": serial, "state_": state, "finished": now} for serial, state in ends if state != "held"]
    if held:
        session.execute(_HOLD, held)
    if finished:
        session.execute(_FINISH, finished)


# Built once: issuing and honouring run for every batch, and only the parameters change.
_permits = Permit.__table__
_ISSUE = insert(_permits)
_STORED = select(_permits).where(_permits.c.serial_number.in_(bindparam("keys", expanding=True)))
SUPERSEDED = "superseded"
_SUPERSEDE = (
    update(_permits)
    .where(
        tuple_(_permits.c.requester, _permits.c.query_id).in_(bindparam("queries", expanding=True)),
        _permits.c.serial_number.not_in(bindparam("newest", expanding=True)),
        _permits.c.used_at.is_(None),
    )
    .values(used_at=bindparam("at"), finished_at=bindparam("at"), state=SUPERSEDED)
)
_CLAIM = (
    update(_permits)
    .where(tuple_(_permits.c.serial_number, _permits.c.digest).in_(bindparam("keys", expanding=True)), _permits.c.used_at.is_(None))
    .values(used_at=bindparam("claimed_at"), state="sent")
    .returning(*_permits.c)
)
_HOLD = update(_permits).where(_permits.c.serial_number == bindparam("serial")).values(state=bindparam("state_"))
_FINISH = _HOLD.values(finished_at=bindparam("finished"))
