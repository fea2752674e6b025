"""The staff terminal's HTTP API (窓口): register non-residents, look people up, correct a
non-resident's items; every call in the operation log (M08).

A My Number never appears in a URL (URLs end up in logs): searching by one is a POST.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.welfare_address import addressees
from services.welfare_address.registration import Registrar
from services.welfare_address.roles import READ, READ_MY_NUMBER, REGISTER, UPDATE
from services.welfare_address.schemas import NonResidentCorrection
from shared.contracts.address import (
    AddressItem,
    NonResidentRegistration,
    WelfareAddressNumber,
    WelfareAddressView,
    WelfareLookupRequest,
    WelfareNumberReply,
)
from shared.errors import Forbidden
from shared.http import Audited, audit_person
from shared.staff import SignedIn, StaffMember, granted

REGISTER_OPERATION = "welfare_address.counter.register"
LOOKUP_OPERATION = "welfare_address.counter.lookup"
SEARCH_OPERATION = "welfare_address.counter.search"
CORRECT_OPERATION = "welfare_address.counter.correct"


def require_my_number_permission(request: Request, member: SignedIn, lookup: WelfareLookupRequest) -> None:
    if lookup.my_number is None and "my_number" not in lookup.items:
        return
    if READ_MY_NUMBER not in granted(request.app.state.context.roles, member.roles):
        raise Forbidden(f"{member.user_id} lacks the permission {READ_MY_NUMBER!r}")


def router() -> APIRouter:
    api = APIRouter(tags=["counter"])

    @api.post(
        "/non-residents",
        dependencies=[Depends(Audited(REGISTER_OPERATION))],
        response_model=WelfareNumberReply,
        status_code=201,
        responses={200: {"description": "The person was already registered and keeps their number"}},
        summary="Register a non-resident (住登外者); the same person again keeps their number",
    )
    async def register(
        registration: NonResidentRegistration,
        request: Request,
        response: Response,
        member: SignedIn = Depends(StaffMember(REGISTER)),
    ) -> WelfareNumberReply:
        reply = await Registrar(request.app.state.context).register(registration)
        audit_person(request, reply.welfare_address_number)
        response.status_code = 201 if reply.registered else 200
        return reply

    @api.get(
        "/addressees/{welfare_address_number}",
        dependencies=[Depends(Audited(LOOKUP_OPERATION, person_param="welfare_address_number"))],
        response_model=WelfareAddressView,
        summary="One addressee's items, by welfare address number",
    )
    def read_addressee(
        welfare_address_number: WelfareAddressNumber,
        request: Request,
        items: Annotated[list[AddressItem], Query(min_length=1, description="the items needed")],
        member: SignedIn = Depends(StaffMember(READ)),
    ) -> WelfareAddressView:
        lookup = WelfareLookupRequest(welfare_address_number=welfare_address_number, items=frozenset(items))
        require_my_number_permission(request, member, lookup)
        with request.app.state.context.db.session() as session:
            return addressees.view(addressees.find(session, lookup), lookup.items)

    @api.post(
        "/addressees/search",
        dependencies=[Depends(Audited(SEARCH_OPERATION))],
        response_model=WelfareAddressView,
        summary="One addressee's items, by My Number, integrated or welfare address number",
    )
    def search_addressee(
        lookup: WelfareLookupRequest, request: Request, member: SignedIn = Depends(StaffMember(READ))
    ) -> WelfareAddressView:
        require_my_number_permission(request, member, lookup)
        with request.app.state.context.db.session() as session:
            found = addressees.find(session, lookup)
            audit_person(request, found.welfare_address_number)
            return addressees.view(found, lookup.items)

    @api.patch(
        "/addressees/{welfare_address_number}",
        dependencies=[Depends(Audited(CORRECT_OPERATION, person_param="welfare_address_number"))],
        response_model=WelfareAddressView,
        summary="Correct a non-resident's items (a resident's change through the resident register)",
    )
    async def correct_addressee(
        welfare_address_number: WelfareAddressNumber,
        correction: NonResidentCorrection,
        request: Request,
        member: SignedIn = Depends(StaffMember(UPDATE)),
    ) -> WelfareAddressView:
        return await Registrar(request.app.state.context).update(welfare_address_number, correction.changes())

    return api
