"""Symbol management (符号管理, function 1): the link between a person's symbol and their
integrated address number, and nothing else (no My Number, and the resident code only
until the symbol is in).

The integrated address system announces each number it assigns (``number_assigned``);
the event handler queues the person in ``symbol_requests`` in the inbox's transaction, and
the fetcher asks the hub for the symbols of everyone queued, in batches, storing each link
and dropping the request in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from services.intermediate_server.models import SymbolLink, SymbolRequestRow
from shared.contracts.network import NumberAssigned
from shared.db import insert_ignoring_conflicts, rows_for
from shared.models import utcnow


def queue(session: Session, tenant: str, event: NumberAssigned) -> bool:
    """Queue a person for their symbol; false when there is nothing to do (no resident code,
    a symbol already linked, or already queued)."""
    if event.resident_code is None:
        return False
    linked = session.get(SymbolLink, (tenant, event.integrated_address_number))
    if linked is not None:
        return False
    return insert_ignoring_conflicts(
        session,
        SymbolRequestRow.__table__,
        {
            "tenant": tenant,
            "integrated_address_number": event.integrated_address_number,
            "resident_code": event.resident_code,
            "requested_at": utcnow(),
            "attempts": 0,
        },
    )


def pending(session: Session, tenant: str, limit: int) -> list[tuple[str, str]]:
    """(integrated address number, resident code) of people still without a symbol, oldest first."""
    rows = session.execute(
        select(SymbolRequestRow.integrated_address_number, SymbolRequestRow.resident_code)
        .where(SymbolRequestRow.tenant == tenant)
        .order_by(SymbolRequestRow.requested_at)
        .limit(limit)
    )
    return [tuple(row) for row in rows]


def pending_count(session: Session, tenant: str) -> int:
    return session.scalar(select(func.count()).select_from(SymbolRequestRow).where(SymbolRequestRow.tenant == tenant)) or 0


def link(session: Session, tenant: str, numbers: list[str], symbols: list[str]) -> int:
    """Store the links obtained and drop their requests; returns how many were new."""
    now = utcnow()
    added = 0
    for number, symbol in zip(numbers, symbols, strict=True):
        added += insert_ignoring_conflicts(
            session,
            SymbolLink.__table__,
            {"tenant": tenant, "integrated_address_number": number, "symbol": symbol, "obtained_at": now},
        )
    session.execute(
        delete(SymbolRequestRow).where(SymbolRequestRow.tenant == tenant, SymbolRequestRow.integrated_address_number.in_(numbers))
    )
    return added


def note_failure(session: Session, tenant: str, numbers: list[str], error: str) -> None:
    session.execute(
        update(SymbolRequestRow)
        .where(SymbolRequestRow.tenant == tenant, SymbolRequestRow.integrated_address_number.in_(numbers))
        .values(attempts=SymbolRequestRow.attempts + 1, last_error=error[:2000])
    )


# Built once: every query and every provision looks a symbol up.
_links = SymbolLink.__table__
_SYMBOLS_OF = select(_links.c.integrated_address_number, _links.c.symbol).where(
    _links.c.tenant == bindparam("tenant"), _links.c.integrated_address_number.in_(bindparam("keys", expanding=True))
)
_PERSONS_OF = select(_links.c.symbol, _links.c.integrated_address_number).where(
    _links.c.tenant == bindparam("tenant"), _links.c.symbol.in_(bindparam("keys", expanding=True))
)


def symbol_of(session: Session, tenant: str, integrated_address_number: str) -> str | None:
    return symbols_of(session, tenant, [integrated_address_number]).get(integrated_address_number)


def symbols_of(session: Session, tenant: str, numbers: Iterable[str]) -> dict[str, str]:
    """``symbol_of`` each person, in one statement: the numbers linked here, with their symbols."""
    return dict(rows_for(session, _SYMBOLS_OF, numbers, tenant=tenant))


def person_of(session: Session, tenant: str, symbol: str) -> str | None:
    """The integrated address number this tenant links to ``symbol``."""
    return persons_of(session, tenant, [symbol]).get(symbol)


def persons_of(session: Session, tenant: str, symbols: Iterable[str]) -> dict[str, str]:
    """``person_of`` each symbol, in one statement: the symbols linked here, with their numbers."""
    return dict(rows_for(session, _PERSONS_OF, symbols, tenant=tenant))
