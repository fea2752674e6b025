"""The NATS subjects the Juki-net community server serves, beyond the ``ping`` every service
answers, and the resident changes it consumes.

Each entry maps an operation of ``shared.contracts`` owned by this service to the factory
of its handler; the allowlist of callers (health_mgmt, welfare_address) is part of the
contract, not of this module.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.orm import Session

from services.juki_cs import identity
from services.juki_cs.card import vouches_for
from services.juki_cs.lookup import Lookup, look_up
from services.juki_cs.models import CardVerification
from services.juki_cs.records import record_search
from services.juki_cs.runtime import runtime_of
from shared.auth import Caller
from shared.contracts.juki import CardVerificationQuery, CardVerificationStatus, IdentityCandidates, IdentityQuery
from shared.contracts.residents import ResidentChanged
from shared.errors import NotFound
from shared.events import EventHandler
from shared.models import as_utc, utcnow
from shared.service import ConsumerFactory, HandlerFactory, ServiceContext

IDENTITY_LOOKUP = "juki_cs.identity_lookup"


def identity_lookup(ctx: ServiceContext):
    runtime = runtime_of(ctx)

    async def handle(request: IdentityQuery, caller: Caller) -> IdentityCandidates:
        query = Lookup(
            my_number=request.my_number,
            resident_code=request.resident_code,
            name=request.name,
            name_kana=request.name_kana,
            sex=request.sex,
            birth_date=request.birth_date,
            address=request.address,
        )
        reply = await look_up(runtime, query, limit=runtime.settings.search_limit, other_cities=True)
        await asyncio.to_thread(
            record_search,
            ctx.db,
            actor=str(caller.principal),
            channel="bus",
            operation=IDENTITY_LOOKUP,
            purpose=request.purpose,
            items=query.items_given,
            reply=reply,
        )
        return reply

    return handle


def apply_resident_changes(ctx: ServiceContext) -> EventHandler:
    runtime = runtime_of(ctx)

    def apply(session: Session, change: ResidentChanged) -> None:
        runtime.apply_change(session, change)

    return apply


def card_verification(ctx: ServiceContext):
    """``juki_cs.card_verification``: whether a card check at this CS vouches for a person (M01)."""
    valid_for = timedelta(minutes=ctx.settings.card_check_valid_minutes)

    def answer(request: CardVerificationQuery) -> CardVerificationStatus:
        with ctx.db.session() as session:
            verification = session.get(CardVerification, request.verification_id)
            if verification is None:
                raise NotFound(f"no card check {request.verification_id}")
            holder = identity.find(session, my_number=request.my_number)
            reason = vouches_for(verification, holder, utcnow(), valid_for)
            return CardVerificationStatus(
                verified=reason is None, checked_at=as_utc(verification.at), max_age_minutes=int(valid_for.total_seconds() // 60), reason=reason
            )

    async def handle(request: CardVerificationQuery, caller: Caller) -> CardVerificationStatus:
        return await asyncio.to_thread(answer, request)

    return handle


SERVED: dict[str, HandlerFactory] = {"identity_lookup": identity_lookup, "card_verification": card_verification}

CONSUMED: dict[str, ConsumerFactory] = {"resident_registry.events.changed": apply_resident_changes}
