"""The staff terminal's HTTP API (窓口): look a person up, every call in the operation log (M08).

A My Number never appears in a URL (URLs end up in logs): searching by one is a POST.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.integrated_address import addressees
from services.integrated_address.roles import READ, READ_MY_NUMBER
from shared.contracts.address import AddressItem, AddressLookupRequest, AddressView, IntegratedAddressNumber
from shared.errors import Forbidden
from shared.http import Audited, audit_person
from shared.staff import SignedIn, StaffMember, granted

LOOKUP = "integrated_address.counter.lookup"
SEARCH = "integrated_address.counter.search"


def require_my_number_permission(request: Request, member: SignedIn, lookup: AddressLookupRequest) -> None:
    if lookup.my_number is None and "my_number" not in lookup.items:
        return
    if READ_MY_NUMBER not in granted(request.app.state.context.roles, member.roles):
        raise Forbidden(f"{member.user_id} lacks the permission {READ_MY_NUMBER!r}")


def router() -> APIRouter:
    api = APIRouter(prefix="/addressees", tags=["counter"])

    @api.get(
        "/{integrated_address_number}",
        dependencies=[Depends(Audited(LOOKUP, person_param="integrated_address_number"))],
        response_model=AddressView,
        summary="One addressee's items, by integrated address number",
    )
    def read_addressee(
        integrated_address_number: IntegratedAddressNumber,
        request: Request,
        items: Annotated[list[AddressItem], Query(min_length=1, description="the items needed")],
        member: SignedIn = Depends(StaffMember(READ)),
    ) -> AddressView:
        lookup = AddressLookupRequest(integrated_address_number=integrated_address_number, items=frozenset(items))
        require_my_number_permission(request, member, lookup)
        with request.app.state.context.db.session() as session:
            return addressees.view(addressees.find(session, lookup), lookup.items)

    @api.post(
        "/search",
        dependencies=[Depends(Audited(SEARCH))],
        response_model=AddressView,
        summary="One addressee's items, by My Number or integrated address number",
    )
    def search_addressee(
        lookup: AddressLookupRequest, request: Request, member: SignedIn = Depends(StaffMember(READ))
    ) -> AddressView:
        require_my_number_permission(request, member, lookup)
        with request.app.state.context.db.session() as session:
            found = addressees.find(session, lookup)
            audit_person(request, found.integrated_address_number)
            return addressees.view(found, lookup.items)

    return api
