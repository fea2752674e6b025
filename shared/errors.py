"""Errors that cross a boundary: RFC 9457 problem details over HTTP, typed replies on the bus.

One hierarchy serves both transports, so a refusal reads the same whichever way it came:
``type`` is a stable URN a client can branch on, ``status`` the HTTP status it maps to.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """A refusal or failure that is reported to the caller as problem details."""

    type: ClassVar[str] = "urn:renkei:problem:internal"
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500

    def __init__(self, detail: str = "", **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class InvalidRequest(Problem):
    type = "urn:renkei:problem:invalid-request"
    title = "The request is not valid"
    status = 422


class Unauthenticated(Problem):
    type = "urn:renkei:problem:unauthenticated"
    title = "The caller could not be authenticated"
    status = 401


class Forbidden(Problem):
    type = "urn:renkei:problem:forbidden"
    title = "The caller may not do this"
    status = 403


class NotFound(Problem):
    type = "urn:renkei:problem:not-found"
    title = "Not found"
    status = 404


class Conflict(Problem):
    type = "urn:renkei:problem:conflict"
    title = "Conflicts with the current state"
    status = 409


class Unavailable(Problem):
    type = "urn:renkei:problem:unavailable"
    title = "A service this needs is not available"
    status = 503


_BY_TYPE: dict[str, type[Problem]] = {
    cls.type: cls for cls in (Problem, InvalidRequest, Unauthenticated, Forbidden, NotFound, Conflict, Unavailable)
}


def returned(result: T | Problem) -> T:
    """``result``, unless it is a problem: then raised (one item taken out of a batch's results)."""
    if isinstance(result, Problem):
        raise result
    return result


def problem_from_dict(body: dict[str, Any]) -> Problem:
    """Rebuild the typed problem a peer sent (an unknown type becomes a plain Problem)."""
    cls = _BY_TYPE.get(str(body.get("type")), Problem)
    known = {"type", "title", "status", "detail", "instance"}
    problem = cls(str(body.get("detail", "")), **{k: v for k, v in body.items() if k not in known})
    return problem
