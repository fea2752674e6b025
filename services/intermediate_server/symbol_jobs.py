"""The job that obtains queued symbols from the hub, a batch at a time."""

from __future__ import annotations

import asyncio

from services.intermediate_server import symbols
from shared.contracts.network import SymbolRequest
from shared.errors import Problem


async def fetch_batch(rt) -> int:
    """Obtain one batch of symbols; returns how many people it covered."""

    def take() -> list[tuple[str, str]]:
        with rt.ctx.db.session() as session:
            return symbols.pending(session, rt.tenant, rt.settings.symbol_batch)

    queued = await asyncio.to_thread(take)
    if not queued:
        return 0
    numbers = [number for number, _ in queued]
    try:
        reply = await rt.hub.symbols(SymbolRequest(resident_codes=[code for _, code in queued]))
    except Problem as problem:
        await asyncio.to_thread(_note_failure, rt, numbers, f"{problem.type}: {problem.detail}")
        raise
    if len(reply.symbols) != len(numbers):
        raise Problem("the hub answered a different number of symbols than asked")

    def keep() -> None:
        with rt.ctx.db.session() as session:
            symbols.link(session, rt.tenant, numbers, list(reply.symbols))

    await asyncio.to_thread(keep)
    return len(numbers)


def _note_failure(rt, numbers: list[str], error: str) -> None:
    with rt.ctx.db.session() as session:
        symbols.note_failure(session, rt.tenant, numbers, error)


async def fetch_all(rt) -> None:
    while await fetch_batch(rt) >= rt.settings.symbol_batch:
        pass
