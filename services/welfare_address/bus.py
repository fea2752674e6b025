"""The NATS subjects the welfare address serves, beyond the ``ping`` every service answers,
and the resident changes it consumes.

Each entry maps an operation of ``shared.contracts`` owned by this service to the factory
of its handler; the allowlist of callers is part of the contract, not of this module.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

from services.welfare_address import addressees
from services.welfare_address.registration import Registrar
from shared.auth import Caller
from shared.contracts.address import (
    NonResidentRegistration,
    WelfareAddressView,
    WelfareLookupRequest,
    WelfareNumberReply,
)
from shared.contracts.residents import ResidentChanged
from shared.events import EventHandler
from shared.service import ConsumerFactory, HandlerFactory, ServiceContext


def look_up(ctx: ServiceContext):
    def lookup(request: WelfareLookupRequest) -> WelfareAddressView:
        with ctx.db.session() as session:
            return addressees.view(addressees.find(session, request), request.items)

    async def handle(request: WelfareLookupRequest, caller: Caller) -> WelfareAddressView:
        addressees.check_entitled(caller.principal.service, request)
        return await asyncio.to_thread(lookup, request)

    return handle


def register_non_resident(ctx: ServiceContext):
    registrar = Registrar(ctx)

    async def handle(request: NonResidentRegistration, caller: Caller) -> WelfareNumberReply:
        return await registrar.register(request)

    return handle


def apply_resident_changes(ctx: ServiceContext) -> EventHandler:
    """Each resident's integrated address number is asked for before the change is applied;
    if it cannot be had, the change is delivered again later rather than applied without it."""
    registrar = Registrar(ctx)
    loop = asyncio.get_running_loop()  # the factory runs at start-up, on the service's loop

    def apply(session: Session, change: ResidentChanged) -> None:
        integrated = registrar.integrated_number_from_thread(change.resident.my_number, loop)
        addressees.apply_resident_change(session, change, integrated)

    return apply


SERVED: dict[str, HandlerFactory] = {"lookup": look_up, "register_non_resident": register_non_resident}

CONSUMED: dict[str, ConsumerFactory] = {"resident_registry.events.changed": apply_resident_changes}
