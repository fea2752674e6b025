"""The operation log (操作ログ, M08): who, when, which operation, whose data, and the outcome.

Services never write it by hand in a handler: the bus records every audited operation and
every refusal, and the HTTP layer records every route that declares itself audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from shared.db import Database
from shared.models import OperationLogEntry


@dataclass(frozen=True)
class Actor:
    """Who did it: a service principal, a staff member, or nobody we could identify."""

    name: str
    kind: str  # service | staff | anonymous

    @classmethod
    def anonymous(cls) -> Actor:
        return cls("anonymous", "anonymous")


class OperationLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        actor: Actor,
        channel: str,
        operation: str,
        outcome: str,
        person_key: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self._db.session() as session:
            session.add(
                OperationLogEntry(
                    actor=actor.name,
                    actor_kind=actor.kind,
                    channel=channel,
                    operation=operation,
                    person_key=person_key,
                    outcome=outcome,
                    request_id=request_id,
                    detail=detail,
                )
            )

    def entries(self, operation: str | None = None, limit: int = 1000) -> list[OperationLogEntry]:
        query = select(OperationLogEntry).order_by(OperationLogEntry.id.desc()).limit(limit)
        if operation:
            query = query.where(OperationLogEntry.operation == operation)
        with self._db.session() as session:
            return list(session.scalars(query))
