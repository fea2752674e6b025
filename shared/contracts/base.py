"""The two kinds of contract: request/reply operations and JetStream events."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from shared.trust import GLOBAL_SCOPE


class Message(BaseModel):
    """Base of every message model: unknown fields are refused (take only what is needed, M04)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def operation_subject(scope: str, service: str, operation: str) -> str:
    return f"renkei.{scope}.{service}.{operation}"


def event_subject(scope: str, service: str, event: str) -> str:
    return f"renkei.{scope}.{service}.events.{event}"


@dataclass(frozen=True)
class Operation:
    """A request/reply operation served by ``owner`` on ``renkei.<scope>.<owner>.<name>``.

    ``callers`` is the allowlist of services that may call it (same city, or a global
    service); ``person_field`` names the field that says whose data it touches, for the
    operation log: a request field, or ``reply.<field>`` when only the answer knows;
    ``audited`` operations are logged on every call, the rest only when refused.
    """

    owner: str
    name: str
    request: type[BaseModel]
    reply: type[BaseModel]
    callers: frozenset[str]
    person_field: str | None = None
    audited: bool = True
    summary: str = ""

    def subject(self, city: str | None) -> str:
        return operation_subject(city or GLOBAL_SCOPE, self.owner, self.name)

    @property
    def key(self) -> str:
        return f"{self.owner}.{self.name}"

    def person_key(self, request: BaseModel, reply: BaseModel | None) -> str | None:
        """Whose data this call touched, as its ``person_field`` says."""
        if not self.person_field:
            return None
        source, name = (reply, self.person_field[6:]) if self.person_field.startswith("reply.") else (request, self.person_field)
        value = getattr(source, name, None) if source is not None else None
        return str(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Event:
    """A JetStream event published by ``owner`` (from its outbox) and read by ``consumers``."""

    owner: str
    name: str
    model: type[BaseModel]
    consumers: frozenset[str] = field(default_factory=frozenset)
    summary: str = ""

    def subject(self, city: str | None) -> str:
        return event_subject(city or GLOBAL_SCOPE, self.owner, self.name)

    @staticmethod
    def stream_name(owner: str, city: str | None) -> str:
        """The stream that holds every event of one owner in one city."""
        return f"EVT_{city or GLOBAL_SCOPE}_{owner}"

    def stream(self, city: str | None) -> str:
        return self.stream_name(self.owner, city)

    @property
    def key(self) -> str:
        return f"{self.owner}.events.{self.name}"
