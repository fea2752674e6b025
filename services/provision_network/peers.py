"""Calls from the hub to the intermediate servers' network listeners.

HTTPS with mutual TLS (the hub presents its certificate of the local CA and trusts only
that CA), and on every call the hub's service token and request proof for the server it
calls, so the receiver knows the call is the hub's and unchanged.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel

from shared.auth import Credentials
from shared.contracts.network import intermediate_server
from shared.errors import Problem, Unavailable, problem_from_dict
from shared.http import http_target
from shared.pki import TlsFiles

CONNECTIONS = 16


class PeerClient:
    def __init__(self, credentials: Credentials, tls: TlsFiles, timeout: float) -> None:
        self._credentials = credentials
        self._tls = tls
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Few connections, kept alive: the pool checks every idle connection on each request.
            limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
            self._client = httpx.AsyncClient(verify=self._tls.client_context(), timeout=self._timeout, limits=limits)
        return self._client

    async def post(self, city: str, base_url: str, path: str, payload: BaseModel, reply: type[BaseModel]) -> BaseModel:
        """POST ``payload`` to ``city``'s intermediate server; its reply, or the problem it sent."""
        body = payload.model_dump_json().encode()
        headers = self._credentials.headers(intermediate_server(city), http_target("POST", path), body)
        headers["Content-Type"] = "application/json"
        try:
            response = await self._http().post(base_url + path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"the intermediate server of {city} cannot be reached: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                raise problem_from_dict(response.json())
            except ValueError:
                raise Problem(f"the intermediate server of {city} answered {response.status_code}") from None
        return reply.model_validate_json(response.content)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
