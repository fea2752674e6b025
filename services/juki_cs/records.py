"""The community server's own records: searches and lookups with their purpose, card checks.

The kernel's operation log says who called which operation on whose data (M08); these
records add what only the CS knows: the purpose given, which items were asked (by name,
never by value) and whom the answer showed, or why a card was not accepted.
"""

from __future__ import annotations

from services.juki_cs.card import CardCheck
from services.juki_cs.models import CardVerification, SearchRecord
from shared.contracts.juki import IdentityCandidates
from shared.db import Database


def record_search(
    db: Database,
    *,
    actor: str,
    channel: str,
    operation: str,
    purpose: str,
    items: list[str],
    reply: IdentityCandidates,
    request_id: str | None = None,
) -> None:
    with db.session() as session:
        session.add(
            SearchRecord(
                actor=actor,
                channel=channel,
                operation=operation,
                request_id=request_id,
                purpose=purpose,
                items=",".join(items),
                candidates=len(reply.candidates),
                shown=",".join(f"{c.city}:{c.resident_code}" for c in reply.candidates),
                prefecture_consulted=reply.prefecture_consulted,
            )
        )


def record_card_check(db: Database, *, actor: str, card_serial: str, check: CardCheck) -> int:
    """Keep the check; its id is what a business system's intake quotes (M01)."""
    with db.session() as session:
        row = CardVerification(
            actor=actor,
            card_serial=card_serial,
            resident_code=check.resident_code,
            verified=check.verified,
            reasons=",".join(check.reasons),
        )
        session.add(row)
        session.flush()
        return row.id
