"""HTTPS with mutual TLS to other organisations' servers: one kept-alive pool per client.

The servers call each other a few times for every query (permit, relay, provision), so the
client's own cost per request counts: aiohttp's pool hands out a kept-alive connection in
constant time, where httpx's checks every idle connection on each request and costs about
ten times the CPU per call. The client presents its certificate and trusts only what its
SSL context trusts (``TlsFiles.client_context``), made on first use: a server that never
calls out needs no client certificate.

``call`` is the one way the services call a peer with a contract: a pydantic body out, a
pydantic reply back, and whatever goes wrong on the way a typed problem naming the peer.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from shared.errors import Problem, Unavailable, problem_from_dict

CONNECTIONS = 16
M = TypeVar("M", bound=BaseModel)


class Unreachable(Exception):
    """The peer could not be reached, or did not answer in time."""


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class MutualTlsClient:
    def __init__(self, context: Callable[[], ssl.SSLContext], timeout: float, connections: int = CONNECTIONS) -> None:
        self._context = context
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A session belongs to the loop it was made on; a new loop gets its own.
            connector = aiohttp.TCPConnector(ssl=self._context(), limit=self._connections, limit_per_host=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._loop = loop
        return self._session

    async def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
        try:
            async with self._http().request(method, url, data=body or None, headers=headers) as response:
                return Reply(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None

    async def post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("POST", url, body, headers)

    async def call(
        self,
        method: str,
        url: str,
        payload: BaseModel | None,
        reply: type[M],
        *,
        peer: str,
        sign: Callable[[bytes], dict[str, str]] | None = None,
        unavailable: type[Unavailable] = Unavailable,
    ) -> M:
        """``payload`` as JSON to ``url``, with the headers ``sign`` makes for its bytes, and the
        answer parsed as ``reply``. Whatever goes wrong is a typed problem naming ``peer``: the
        peer unreachable, an error without problem details from a failing peer (5xx), or a
        success that does not parse, is ``unavailable``; a refusal is the problem the peer
        sent; any other error without problem details is a plain ``Problem``."""
        body = payload.model_dump_json().encode() if payload is not None else b""
        headers = sign(body) if sign is not None else {}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self.request(method, url, body, headers)
        except Unreachable as exc:
            raise unavailable(f"{peer} cannot be reached: {exc}") from None
        if response.status_code >= 400:
            raise _problem(response, peer, unavailable)
        try:
            return reply.model_validate_json(response.content)
        except ValueError:  # pydantic's ValidationError too: the caller learns it as the peer's failure
            raise unavailable(f"{peer} sent a reply that does not parse as {reply.__name__}") from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None


def _problem(response: Reply, peer: str, unavailable: type[Unavailable]) -> Problem:
    """The problem a peer's error reply stands for: the one it sent, if it sent problem details."""
    try:
        sent = response.json()
    except ValueError:
        sent = None
    if isinstance(sent, dict) and ("type" in sent or "title" in sent):  # RFC 9457 problem details
        problem = problem_from_dict(sent)
        if type(problem) is not Problem or response.status_code < 500:
            return problem
        return unavailable(f"{peer} answered {response.status_code}: {problem.detail}")  # a failure of a kind not ours
    if response.status_code >= 500:
        return unavailable(f"{peer} answered {response.status_code}")
    return Problem(f"{peer} answered {response.status_code}")
