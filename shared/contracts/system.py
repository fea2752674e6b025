"""Operations every service serves, whatever its domain."""

from __future__ import annotations

from shared.contracts.base import Message, Operation


class PingRequest(Message):
    """Asks a service who it is; proves the caller's token and the allowlist work end to end."""

    nonce: str = ""


class PingReply(Message):
    service: str
    city: str | None
    principal: str
    caller: str
    nonce: str


def ping_operation(owner: str, callers: frozenset[str]) -> Operation:
    return Operation(
        owner=owner,
        name="ping",
        request=PingRequest,
        reply=PingReply,
        callers=callers,
        audited=False,
        summary="The service's identity, answered only to callers on its allowlist.",
    )
