"""The HTTP side of every service: problem details, service-token checks, the audited routes.

- Every error leaves as RFC 9457 problem details (``application/problem+json``).
- ``ServiceCaller(...)`` is the dependency that admits only allowlisted services (M20).
- ``Audited(...)`` is the dependency that puts a route into the operation log (M08):
  the route declares it once, and the middleware records who, whose data and the outcome
  after the response, whatever the handler did.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import AUTHORIZATION, Caller, TokenVerifier, check_allowed
from shared.errors import PROBLEM_JSON, InvalidRequest, Problem
from shared.oplog import Actor, Entry, OperationLog


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(problem.to_dict(instance=instance), status_code=problem.status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return problem_response(InvalidRequest("the request is not valid", errors=errors), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {
            "type": "about:blank",
            "title": HTTPStatus(exc.status_code).phrase,
            "status": exc.status_code,
            "detail": str(exc.detail),
            "instance": request.url.path,
        }
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=exc.headers)


def http_target(method: str, path: str) -> str:
    """What a request proof covers of an HTTP request besides its body."""
    return f"{method.upper()} {path}"


class ServiceCaller:
    """Dependency: the request must carry a valid service token from an allowlisted service."""

    def __init__(self, operation: str, allowed: Iterable[str]) -> None:
        self.operation = operation
        self.allowed = frozenset(allowed)

    async def __call__(self, request: Request) -> Caller:
        verifier: TokenVerifier = request.app.state.context.verifier
        target = http_target(request.method, request.url.path)
        caller = verifier.verify_authorization(request.headers.get(AUTHORIZATION), target, await request.body())
        request.state.actor = Actor(str(caller.principal), "service")
        check_allowed(caller, self.allowed, request.app.state.context.settings.city, self.operation)
        return caller


class Audited:
    """Dependency: record this route in the operation log; ``person_param`` names whose data."""

    def __init__(self, operation: str, person_param: str | None = None) -> None:
        self.operation = operation
        self.person_param = person_param

    async def __call__(self, request: Request) -> None:
        # A coroutine, so that FastAPI runs it in the request's task: a plain function
        # would be sent to a worker thread and back for every audited request.
        person = None
        if self.person_param:
            person = request.path_params.get(self.person_param) or request.query_params.get(self.person_param)
        request.state.audit = (self.operation, person)


def audit_person(request: Request, person_key: str | None, operation: str | None = None) -> None:
    """Name whose data an audited route touched, once the route knows it (and, if the
    outcome changes what was done, the operation too)."""
    declared, _ = request.state.audit
    request.state.audit = (operation or declared, person_key)


class OperationLogMiddleware:
    """Writes the operation-log row for every audited route once its status is known, and
    before the response starts: nothing leaves unlogged. A plain ASGI middleware: the
    request runs in the server's own task, with no extra task and stream per request."""

    def __init__(self, app: ASGIApp, oplog: OperationLog) -> None:
        self.app = app
        self._oplog = oplog

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        started = False

        async def log_then_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                await self._log(state, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, log_then_send)
        except Exception:
            if not started:  # the server answers 500 for what escaped: logged as such
                await self._log(state, 500)
            raise

    async def _log(self, state: dict, status: int) -> None:
        audit = state.get("audit")
        if audit is None:
            return
        operation, person = audit
        actor = state.get("actor") or Actor.anonymous()
        outcome = "ok" if status < 400 else f"http-{status}"
        await self._oplog.write(Entry(actor, "http", operation, outcome, person, state.get("request_id")))
