"""The NATS subjects the health management serves, beyond the ``ping`` every service answers,
and the events it consumes.

Each entry maps an operation of ``shared.contracts`` owned by this service to the factory
of its handler; the allowlist of callers is part of the contract, not of this module.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from services.health_mgmt import move_in
from services.health_mgmt.resident_feed import apply_resident_change
from services.health_mgmt.runtime import runtime_of
from shared.contracts.network import QueryAnswered
from shared.contracts.residents import ResidentChanged
from shared.events import EventHandler
from shared.service import ConsumerFactory, HandlerFactory, ServiceContext

SERVED: dict[str, HandlerFactory] = {}


def answered(ctx: ServiceContext) -> EventHandler:
    """``intermediate_server.events.answered``: note the query; the ``move_in`` job takes its doses."""
    rt = runtime_of(ctx)

    def apply(session: Session, payload: QueryAnswered) -> None:
        if move_in.note_answered(session, payload):
            event.listen(session, "after_commit", lambda _s: rt.move_in.wake(), once=True)

    return apply


def resident_changed(ctx: ServiceContext) -> EventHandler:
    """``resident_registry.events.changed``: bring an enrolled person's items up to date (M30)."""

    def apply(session: Session, payload: ResidentChanged) -> None:
        apply_resident_change(session, payload)

    return apply


CONSUMED: dict[str, ConsumerFactory] = {
    "intermediate_server.events.answered": answered,
    "resident_registry.events.changed": resident_changed,
}
