"""Registering and correcting welfare addressees, with their integrated address numbers.

Everyone registered with a My Number gets an integrated address number from the integrated
address system (``assign``, flow [03]) before anything is stored: if that system cannot
answer, the registration is refused as unavailable and nothing is kept, and the caller may
simply try again (registration is idempotent). A non-resident's items travel with the
request, so that the integrated address system knows them too (flow [02]).
"""

from __future__ import annotations

import asyncio

from services.welfare_address import addressees
from shared.contracts import REGISTRY
from shared.contracts.address import (
    AssignNumberRequest,
    NonResidentRegistration,
    PersonItems,
    WelfareAddressView,
    WelfareNumberReply,
)
from shared.service import ServiceContext

ASSIGN = REGISTRY.operation("integrated_address", "assign")
ITEM_NAMES = ("name", "name_kana", "sex", "birth_date", "address")


class IntegratedNumberUnavailable(RuntimeError):
    """The integrated address system did not give a number; the work is to be retried.

    Deliberately not a ``Problem``: an event whose application fails this way must be
    delivered again, not recorded as rejected.
    """


class Registrar:
    """The welfare address system's writes that need the integrated address system."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def integrated_number(self, my_number: str, items: PersonItems | None = None) -> str:
        reply = await self._ctx.bus.request(ASSIGN, self._ctx.settings.city, AssignNumberRequest(my_number=my_number, items=items))
        return reply.integrated_address_number

    async def register(self, registration: NonResidentRegistration) -> WelfareNumberReply:
        integrated = None
        if registration.my_number is not None:
            integrated = await self.integrated_number(registration.my_number, registration.items())
        return await asyncio.to_thread(self._store, registration, integrated)

    def _store(self, registration: NonResidentRegistration, integrated: str | None) -> WelfareNumberReply:
        with self._ctx.db.session() as session:
            row, registered = addressees.register_non_resident(session, registration, integrated)
            return WelfareNumberReply(
                welfare_address_number=row.welfare_address_number,
                integrated_address_number=row.integrated_address_number,
                registered=registered,
            )

    async def update(self, number: str, changes: dict) -> WelfareAddressView:
        """Correct a non-resident's items here and, for one with a My Number, at the integrated
        address system first (so that a refusal there leaves both as they were)."""
        current = await asyncio.to_thread(self._read, number)
        if current.my_number is not None:
            merged = PersonItems(**{**{name: getattr(current, name) for name in ITEM_NAMES}, **changes})
            await self.integrated_number(current.my_number, merged)
        return await asyncio.to_thread(self._write, number, changes)

    def _read(self, number: str):
        with self._ctx.db.session() as session:
            return addressees.editable_non_resident(session, number)

    def _write(self, number: str, changes: dict) -> WelfareAddressView:
        with self._ctx.db.session() as session:
            row = addressees.update_non_resident(session, number, changes)
            return addressees.view(row, (*ITEM_NAMES, "status"))

    def integrated_number_from_thread(self, my_number: str, loop: asyncio.AbstractEventLoop, timeout: float = 10) -> str:
        """``integrated_number`` for code running in a worker thread (the event consumer)."""
        future = asyncio.run_coroutine_threadsafe(self.integrated_number(my_number), loop)
        try:
            return future.result(timeout)
        except Exception as exc:
            future.cancel()
            raise IntegratedNumberUnavailable(f"no integrated address number: {exc}") from exc
