"""The NATS subjects the tax and welfare systems (simulated) serve, beyond the ``ping`` every
service answers, and the events they consume.

Each entry maps an operation of ``shared.contracts`` owned by this service to the factory
of its handler; the allowlist of callers (the health management alone) is part of the
contract, not of this module. Database work runs in a worker thread, so that the event loop
keeps answering.
"""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy.orm import Session

from services.tax_welfare import records
from services.tax_welfare.config import Settings
from shared.auth import Caller
from shared.contracts.network import NumberAssigned
from shared.contracts.residents import ResidentChanged
from shared.contracts.tax_welfare import LocalTaxReply, PublicAssistanceReply, StatusRequest
from shared.events import EventHandler
from shared.service import ConsumerFactory, HandlerFactory, ServiceContext


def _years(ctx: ServiceContext) -> list[int]:
    settings: Settings = ctx.settings  # type: ignore[assignment]
    return records.assessed_years(date.today(), settings.assessed_years)


def local_tax_status(ctx: ServiceContext):
    def answer(request: StatusRequest) -> LocalTaxReply:
        with ctx.db.session() as session:
            return records.local_tax_answers(session, request)

    async def handle(request: StatusRequest, caller: Caller) -> LocalTaxReply:
        return await asyncio.to_thread(answer, request)

    return handle


def public_assistance_status(ctx: ServiceContext):
    def answer(request: StatusRequest) -> PublicAssistanceReply:
        with ctx.db.session() as session:
            return records.assistance_answers(session, request)

    async def handle(request: StatusRequest, caller: Caller) -> PublicAssistanceReply:
        return await asyncio.to_thread(answer, request)

    return handle


def apply_resident_changes(ctx: ServiceContext) -> EventHandler:
    city = ctx.settings.city

    def apply(session: Session, change: ResidentChanged) -> None:
        records.apply_resident_change(session, city, change, _years(ctx))

    return apply


def apply_numbers_assigned(ctx: ServiceContext) -> EventHandler:
    city = ctx.settings.city

    def apply(session: Session, event: NumberAssigned) -> None:
        records.apply_number_assigned(session, city, event, _years(ctx))

    return apply


SERVED: dict[str, HandlerFactory] = {"local_tax_status": local_tax_status, "public_assistance_status": public_assistance_status}

CONSUMED: dict[str, ConsumerFactory] = {
    "resident_registry.events.changed": apply_resident_changes,
    "integrated_address.events.number_assigned": apply_numbers_assigned,
}
