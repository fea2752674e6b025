"""The operation log (操作ログ, M08): who, when, which operation, whose data, and the outcome.

Services never write it by hand in a handler: the bus records every audited operation and
every refusal, and the HTTP layer records every route that declares itself audited.

``write`` is what request handling uses: the entries of concurrent requests go into the
database together, one transaction per batch, and each call returns once its entry is
committed, so the answer it precedes still leaves only after its record exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shared.db import Database
from shared.group_commit import GroupCommit
from shared.models import OperationLogEntry, utcnow

_INSERT = insert(OperationLogEntry.__table__)  # a plain insert: the ORM adds nothing here but cost


@dataclass(frozen=True)
class Actor:
    """Who did it: a service principal, a staff member, or nobody we could identify."""

    name: str
    kind: str  # service | staff | anonymous

    @classmethod
    def anonymous(cls) -> Actor:
        return cls("anonymous", "anonymous")


@dataclass(frozen=True)
class Entry:
    """One line of the operation log: who did which operation on whose data, and the outcome."""

    actor: Actor
    channel: str  # http | bus | cli
    operation: str
    outcome: str
    person_key: str | None = None
    request_id: str | None = None
    detail: str | None = None

    def row(self) -> dict:
        return {
            "at": utcnow(),
            "actor": self.actor.name,
            "actor_kind": self.actor.kind,
            "channel": self.channel,
            "operation": self.operation,
            "person_key": self.person_key,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "detail": self.detail,
        }


class OperationLog:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._batches: GroupCommit[dict, None] = GroupCommit(db.engine, self._insert_in)

    @staticmethod
    def _insert_in(session: Session, rows: Sequence[dict]) -> list[None]:
        session.execute(_INSERT, list(rows))
        return [None] * len(rows)

    def record(self, entry: Entry) -> None:
        """Write one entry now, in its own transaction (for callers outside an event loop)."""
        with self._db.session() as session:
            self._insert_in(session, [entry.row()])

    async def write(self, entry: Entry) -> None:
        """Write one entry with those of concurrent requests; returns once it is committed."""
        await self._batches.submit(entry.row())

    def entries(self, operation: str | None = None, limit: int = 1000) -> list[OperationLogEntry]:
        query = select(OperationLogEntry).order_by(OperationLogEntry.id.desc()).limit(limit)
        if operation:
            query = query.where(OperationLogEntry.operation == operation)
        with self._db.session() as session:
            return list(session.scalars(query))
