"""HTTPS with mutual TLS to other organisations' servers: one kept-alive pool per client.

The servers call each other a few times for every query (permit, relay, provision), so the
client's own cost per request counts: aiohttp's pool hands out a kept-alive connection in
constant time, where httpx's checks every idle connection on each request and costs about
ten times the CPU per call. The client presents its certificate and trusts only what its
SSL context trusts (``TlsFiles.client_context``), made on first use: a server that never
calls out needs no client certificate.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

CONNECTIONS = 16


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

    async def close(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None
