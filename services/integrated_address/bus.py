"""The NATS subjects the integrated address serves, beyond the ``ping`` every service answers,
and the resident changes it consumes.

Each entry maps an operation of ``shared.contracts`` owned by this service to the factory
of its handler; the allowlist of callers is part of the contract, not of this module.
Database work runs in a worker thread, so that the event loop keeps answering.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

from services.integrated_address import addressees
from shared.auth import Caller
from shared.contracts.address import AddressLookupRequest, AddressView, AssignNumberReply, AssignNumberRequest
from shared.contracts.residents import ResidentChanged
from shared.events import EventHandler
from shared.service import ConsumerFactory, HandlerFactory, ServiceContext


def assign_number(ctx: ServiceContext):
    city = ctx.settings.city

    def assign(request: AssignNumberRequest) -> AssignNumberReply:
        with ctx.db.session() as session:
            row, assigned = addressees.assign(session, city, request.my_number, request.items)
            return AssignNumberReply(integrated_address_number=row.integrated_address_number, assigned=assigned)

    async def handle(request: AssignNumberRequest, caller: Caller) -> AssignNumberReply:
        return await asyncio.to_thread(assign, request)

    return handle


def look_up(ctx: ServiceContext):
    def lookup(request: AddressLookupRequest, service: str) -> AddressView:
        with ctx.db.session() as session:
            return addressees.lookup(session, service, request)

    async def handle(request: AddressLookupRequest, caller: Caller) -> AddressView:
        addressees.check_entitled(caller.principal.service, request)  # refuse before touching the data
        return await asyncio.to_thread(lookup, request, caller.principal.service)

    return handle


def apply_resident_changes(ctx: ServiceContext) -> EventHandler:
    city = ctx.settings.city

    def apply(session: Session, change: ResidentChanged) -> None:
        addressees.apply_resident_change(session, city, change)

    return apply


SERVED: dict[str, HandlerFactory] = {"assign": assign_number, "lookup": look_up}

CONSUMED: dict[str, ConsumerFactory] = {"resident_registry.events.changed": apply_resident_changes}
