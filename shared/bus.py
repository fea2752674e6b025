"""The in-house bus (庁内連携): authenticated request/reply over NATS.

A request carries the caller's service token and its per-request proof (``shared.auth``) in
its ``Authorization`` header. The server side verifies both, checks the caller against the
operation's allowlist, validates the request against the operation's model, and answers
with the reply model or with a typed error: problem details (see ``shared.errors``)
flagged by the ``Renkei-Error`` header. Each connection gets its own inbox prefix, so that NATS permissions can keep one
service from reading the replies meant for another.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ValidationError

from shared.auth import AUTHORIZATION, Caller, Credentials, TokenVerifier, check_allowed
from shared.contracts import Operation
from shared.errors import PROBLEM_JSON, InvalidRequest, Problem, Unavailable, problem_from_dict
from shared.oplog import Actor, Entry, OperationLog
from shared.trust import Principal, principal_name

log = structlog.get_logger("renkei.bus")

ERROR_HEADER = "Renkei-Error"
REQUEST_ID_HEADER = "Renkei-Request-Id"

Handler = Callable[[Any, Caller], Awaitable[BaseModel]]
Observer = Callable[[str, str, float], None]


def inbox_prefix(user: str) -> str:
    """Replies to a user arrive under this prefix, which only that user may subscribe to."""
    return f"_INBOX_{user}"


class Bus:
    """One service's connection to NATS, as caller and as server."""

    def __init__(
        self,
        principal: Principal,
        credentials: Credentials,
        verifier: TokenVerifier,
        oplog: OperationLog | None = None,
        observe: Observer | None = None,
        concurrency: int = 8,
    ) -> None:
        self.principal = principal
        self._credentials = credentials
        self._verifier = verifier
        self._oplog = oplog
        self._observe = observe or (lambda subject, outcome, seconds: None)
        self._nc: NatsClient | None = None
        self._concurrency = concurrency
        self._closing = False

    async def connect(self, url: str, user: str | None, password: str | None, **options: Any) -> None:
        self._nc = await nats.connect(
            servers=[url],
            user=user,
            password=password,
            name=str(self.principal),
            inbox_prefix=inbox_prefix(user) if user else "_INBOX",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            **options,
        )

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise Unavailable("not connected to NATS")
        return self._nc

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def jetstream(self):
        return self.nc.jetstream()

    async def close(self, drain_seconds: float = 10.0) -> None:
        """Let in-flight requests finish (at most ``drain_seconds``), then close."""
        if self._nc is None or self._nc.is_closed:
            return
        self._closing = True
        if self._nc.is_connected:
            try:
                await asyncio.wait_for(self._nc.drain(), drain_seconds)
                return
            except Exception as exc:  # drain timed out or failed: close all the same
                log.warning("nats drain did not finish; closing", error=repr(exc))
        await self._nc.close()

    # -- caller side -------------------------------------------------------------------

    async def request(
        self, operation: Operation, city: str | None, payload: BaseModel, timeout: float = 5.0, request_id: str | None = None
    ) -> Any:
        """Call ``operation`` of ``city``; returns its reply model or raises the typed problem."""
        subject = operation.subject(city)
        body = payload.__pydantic_serializer__.to_json(payload)  # what model_dump_json gives, as bytes
        headers = self._credentials.headers(principal_name(operation.owner, city), subject, body)
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        try:
            msg = await self.nc.request(subject, body, timeout=timeout, headers=headers)
        except NoRespondersError:
            raise Unavailable(f"nobody serves {subject}") from None
        except NatsTimeout:
            raise Unavailable(f"{subject} did not answer within {timeout} s") from None
        if msg.headers and ERROR_HEADER in msg.headers:
            raise problem_from_dict(json.loads(msg.data))
        return operation.reply.__pydantic_validator__.validate_json(msg.data)  # model_validate_json, minus the wrapper

    # -- server side -------------------------------------------------------------------

    async def serve(self, operation: Operation, handler: Handler, city: str | None) -> None:
        """Answer ``operation`` for ``city``.

        Each subscription answers its messages one after the other; ``concurrency``
        subscriptions in one queue group (shared with the service's other replicas) let that
        many requests be answered at once, without a task per message.
        """
        answer = self._answerer(operation, handler, city)
        for _ in range(self._concurrency):
            await self.nc.subscribe(operation.subject(city), queue=operation.owner, cb=answer)

    def _answerer(self, operation: Operation, handler: Handler, city: str | None) -> Callable[[Msg], Awaitable[None]]:
        """The callback that answers each message of ``operation`` (what can be is looked up once)."""
        verify, key, callers = self._verifier.verify_authorization, operation.key, operation.callers
        validate = operation.request.__pydantic_validator__.validate_json  # model_validate_json, minus the wrapper
        person_key = operation.person_key if operation.person_field else None

        async def answer(msg: Msg) -> None:
            started = time.perf_counter()
            headers = msg.headers or {}
            request_id = headers.get(REQUEST_ID_HEADER)
            caller: Caller | None = None
            person: str | None = None
            try:
                caller = verify(headers.get(AUTHORIZATION), msg.subject, msg.data)
                check_allowed(caller, callers, city, key)
                try:
                    request = validate(msg.data)
                except ValidationError as exc:
                    raise InvalidRequest(
                        f"the request does not match {operation.request.__name__}",
                        errors=json.loads(exc.json(include_url=False, include_context=False)),
                    ) from None
                if person_key is not None:
                    person = person_key(request, None)
                reply = await handler(request, caller)
                if person_key is not None:
                    person = person_key(request, reply)
                body, reply_headers, outcome = reply.__pydantic_serializer__.to_json(reply), None, "ok"
            except Problem as problem:
                body = json.dumps(problem.to_dict(instance=msg.subject)).encode()
                reply_headers, outcome = {ERROR_HEADER: problem.type, "Content-Type": PROBLEM_JSON}, problem.type
            except Exception:  # a bug must still answer, or the caller waits for nothing
                log.exception("bus handler failed", subject=msg.subject)
                problem = Problem("the service failed to answer")
                body = json.dumps(problem.to_dict(instance=msg.subject)).encode()
                reply_headers, outcome = {ERROR_HEADER: problem.type, "Content-Type": PROBLEM_JSON}, problem.type
            # The record is written before the caller learns the outcome: nothing answered goes unlogged.
            if self._oplog is not None and (operation.audited or outcome != "ok"):
                actor = Actor(str(caller.principal), "service") if caller else Actor.anonymous()
                await self._oplog.write(Entry(actor, "bus", key, outcome, person, request_id))
            self._observe(key, "ok" if outcome == "ok" else outcome.rsplit(":", 1)[-1], time.perf_counter() - started)
            if msg.reply:
                await self.nc.publish(msg.reply, body, headers=reply_headers)

        return answer

    # -- connection events -------------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error", error=str(exc))

    async def _on_disconnected(self) -> None:
        if self._closing:  # our own close: nothing an operator needs to look at
            log.info("nats connection closed")
        else:
            log.warning("nats disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats reconnected")

