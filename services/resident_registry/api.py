"""The registry's counter (窓口) over HTTP: record a change, read a person, list their changes.

Every route needs a signed-in staff member holding the route's permission (M06), and every
route puts who read or changed whose entry into the operation log (M08).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from services.resident_registry import register
from services.resident_registry.roles import READ, RECORD
from services.resident_registry.schemas import ChangeRequest, ChangeView
from shared.contracts.residents import ResidentRecord
from shared.contracts.types import ResidentCode
from shared.http import Audited, audit_person
from shared.service import ServiceContext
from shared.staff import SignedIn, StaffMember

RECORD_CHANGE = "resident_registry.changes.record"
READ_RESIDENT = "resident_registry.residents.read"
LIST_CHANGES = "resident_registry.changes.list"

CodeInPath = Annotated[ResidentCode, Path(description="住民票コード, 11 digits")]


def _context(request: Request) -> ServiceContext:
    return request.app.state.context


def counter_router() -> APIRouter:
    router = APIRouter(tags=["register"])

    @router.post(
        "/changes",
        status_code=201,
        dependencies=[Depends(Audited(RECORD_CHANGE))],
        summary="Record a change (異動): birth, move-in, special move-in, move-out, change of address, death, correction",
        responses={409: {"description": "the change contradicts the register"}, 422: {"description": "an item fails its check"}},
    )
    async def record_change(
        body: ChangeRequest, request: Request, staff: SignedIn = Depends(StaffMember(RECORD))
    ) -> ChangeView:
        ctx = _context(request)
        audit_person(request, body.resident_code)

        def write() -> ChangeView:
            with ctx.db.session() as session:
                return register.record_change(session, ctx.settings.city, body, staff.user_id)

        recorded = await asyncio.to_thread(write)
        audit_person(request, recorded.resident.resident_code)  # a birth's code is known only now
        if ctx.relay is not None:
            ctx.relay.wake()
        return recorded

    @router.get(
        "/residents/{resident_code}",
        dependencies=[Depends(Audited(READ_RESIDENT, person_param="resident_code"))],
        summary="A person's entry on the register (住民票)",
    )
    def read_resident(
        resident_code: CodeInPath, request: Request, staff: SignedIn = Depends(StaffMember(READ))
    ) -> ResidentRecord:
        with _context(request).db.session() as session:
            return register.read_resident(session, resident_code)

    @router.get(
        "/residents/{resident_code}/changes",
        dependencies=[Depends(Audited(LIST_CHANGES, person_param="resident_code"))],
        summary="A person's changes, oldest first (異動履歴)",
    )
    def list_changes(
        resident_code: CodeInPath, request: Request, staff: SignedIn = Depends(StaffMember(READ))
    ) -> list[ChangeView]:
        with _context(request).db.session() as session:
            return register.list_changes(session, resident_code)

    return router
