"""The community server's terminal (CS 端末) over HTTP: card checks, 4-item searches, a person's
identity information; and for its administrator, consistency checks and the forwarding.

Every route needs a signed-in staff member holding the route's permission (M06) and goes to
the operation log (M08); searches and card checks also leave the CS's own records (the
purpose of each search, the outcome of each check).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from services.juki_cs import identity
from services.juki_cs.card import CardChip, check_card
from services.juki_cs.consistency import read_check, run_check
from services.juki_cs.lookup import Lookup, look_up
from services.juki_cs.records import record_card_check, record_search
from services.juki_cs.roles import CHECK, OPERATE, SEARCH, VERIFY
from services.juki_cs.runtime import JukiRuntime, runtime_of
from services.juki_cs.schemas import (
    CardCheckReply,
    CardCheckRequest,
    ConsistencyCheckRequest,
    ConsistencyReport,
    ForwardingStatus,
    FourItemSearch,
    IdentityView,
)
from shared.contracts.juki import IdentityCandidates
from shared.contracts.types import ResidentCode
from shared.errors import NotFound, Unavailable
from shared.http import Audited, audit_person
from shared.staff import SignedIn, StaffMember

CARD_CHECK = "juki_cs.card_check"
FOUR_ITEM_SEARCH = "juki_cs.four_item_search"
IDENTITY_READ = "juki_cs.identity_read"
CONSISTENCY_CHECK = "juki_cs.consistency_check"
FORWARDING_READ = "juki_cs.forwarding_read"

CodeInPath = Annotated[ResidentCode, Path(description="住民票コード, 11 digits")]


def _runtime(request: Request) -> JukiRuntime:
    return runtime_of(request.app.state.context)


def terminal_router() -> APIRouter:
    router = APIRouter(prefix="/identity", tags=["identity information (本人確認情報)"])

    @router.post(
        "/card-checks",
        dependencies=[Depends(Audited(CARD_CHECK))],
        summary="Verify a person from what their My Number card's chip yields (M01)",
    )
    async def card_check(body: CardCheckRequest, request: Request, staff: SignedIn = Depends(StaffMember(VERIFY))) -> CardCheckReply:
        runtime = _runtime(request)
        chip = CardChip(body.my_number, body.name, body.birth_date, body.sex, body.address, body.card_expires_on, body.card_serial)

        def check():
            with runtime.ctx.db.session() as session:
                on_file = identity.find(session, my_number=body.my_number)
                return check_card(chip, on_file, date.today(), runtime.municipality_prefixes)

        result = await asyncio.to_thread(check)
        audit_person(request, result.resident_code)
        verification_id = await asyncio.to_thread(record_card_check, runtime.ctx.db, actor=staff.user_id, card_serial=body.card_serial, check=result)
        return CardCheckReply(
            verification_id=verification_id,
            verified=result.verified,
            reasons=list(result.reasons),
            mismatched_items=list(result.mismatched_items),
            resident_code=result.resident_code,
            status=result.status,
        )

    @router.post(
        "/searches",
        dependencies=[Depends(Audited(FOUR_ITEM_SEARCH))],
        summary="Search by the four items (基本4情報検索): ranked candidates, each saying which items agree",
    )
    async def four_item_search(body: FourItemSearch, request: Request, staff: SignedIn = Depends(StaffMember(SEARCH))) -> IdentityCandidates:
        runtime = _runtime(request)
        query = Lookup(name=body.name, name_kana=body.name_kana, sex=body.sex, birth_date=body.birth_date, address=body.address)
        reply = await look_up(runtime, query, limit=body.limit, other_cities=body.other_cities)
        if reply.candidates:
            audit_person(request, reply.candidates[0].resident_code)
        await asyncio.to_thread(
            record_search,
            runtime.ctx.db,
            actor=staff.user_id,
            channel="http",
            operation=FOUR_ITEM_SEARCH,
            purpose=body.purpose,
            items=query.items_given,
            reply=reply,
            request_id=getattr(request.state, "request_id", None),
        )
        return reply

    @router.get(
        "/{resident_code}",
        dependencies=[Depends(Audited(IDENTITY_READ, person_param="resident_code"))],
        summary="One person's identity information, by resident code",
    )
    def read_identity(resident_code: CodeInPath, request: Request, staff: SignedIn = Depends(StaffMember(SEARCH))) -> IdentityView:
        with _runtime(request).ctx.db.session() as session:
            row = identity.find(session, resident_code=resident_code)
            if row is None:
                raise NotFound("no identity information under this resident code")
            record = identity.record_of(row)
        return IdentityView(
            resident_code=record.resident_code,
            name=record.name,
            name_kana=record.name_kana,
            sex=record.sex,
            birth_date=record.birth_date,
            address=record.address,
            status=record.status,
            updated_at=record.updated_at,
        )

    return router


def administration_router() -> APIRouter:
    router = APIRouter(tags=["prefecture server (都道府県サーバ)"])

    @router.post(
        "/consistency-checks",
        status_code=201,
        dependencies=[Depends(Audited(CONSISTENCY_CHECK))],
        summary="Compare identity information with the prefecture server by range digests (整合性確認)",
    )
    async def consistency_check(
        body: ConsistencyCheckRequest, request: Request, staff: SignedIn = Depends(StaffMember(CHECK))
    ) -> ConsistencyReport:
        runtime = _runtime(request)
        if runtime.prefecture is None:
            raise Unavailable("no prefecture server is configured")
        report = await run_check(runtime.ctx.db, runtime.prefecture, staff.user_id, repair=body.repair)
        if report.repaired:
            runtime.enqueued()
        return report

    @router.get(
        "/consistency-checks/{check_id}",
        dependencies=[Depends(Audited(CONSISTENCY_CHECK))],
        summary="A consistency check's outcome",
    )
    def read_consistency_check(check_id: int, request: Request, staff: SignedIn = Depends(StaffMember(CHECK))) -> ConsistencyReport:
        return read_check(_runtime(request).ctx.db, check_id)

    @router.get(
        "/forwarding",
        dependencies=[Depends(Audited(FORWARDING_READ))],
        summary="Changes waiting for the prefecture server, and the last error",
    )
    def forwarding(request: Request, staff: SignedIn = Depends(StaffMember(OPERATE))) -> ForwardingStatus:
        runtime = _runtime(request)
        backlog = runtime.forwarder.backlog()
        return ForwardingStatus(
            prefecture_url=runtime.settings.prefecture_url,
            pending=backlog.pending,
            forwarded=backlog.forwarded,
            oldest_pending_at=backlog.oldest_pending_at,
            last_error=backlog.last_error,
        )

    return router
