"""Calls from the hub to the intermediate servers' network listeners.

HTTPS with mutual TLS (the hub presents its certificate of the local CA and trusts only
that CA), and on every call the hub's service token and request proof for the server it
calls, so the receiver knows the call is the hub's and unchanged (``shared.mtls_client``).
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.auth import Credentials
from shared.contracts.network import intermediate_server
from shared.errors import Problem, Unavailable, problem_from_dict
from shared.http import http_target
from shared.mtls_client import MutualTlsClient, Unreachable
from shared.pki import TlsFiles


class PeerClient:
    def __init__(self, credentials: Credentials, tls: TlsFiles, timeout: float) -> None:
        self._credentials = credentials
        self._client = MutualTlsClient(tls.client_context, timeout)

    async def post(self, city: str, base_url: str, path: str, payload: BaseModel, reply: type[BaseModel]) -> BaseModel:
        """POST ``payload`` to ``city``'s intermediate server; its reply, or the problem it sent."""
        body = payload.model_dump_json().encode()
        headers = self._credentials.headers(intermediate_server(city), http_target("POST", path), body)
        headers["Content-Type"] = "application/json"
        try:
            response = await self._client.post(base_url + path, body, headers)
        except Unreachable as exc:
            raise Unavailable(f"the intermediate server of {city} cannot be reached: {exc}") from None
        if response.status_code >= 400:
            try:
                raise problem_from_dict(response.json())
            except ValueError:
                raise Problem(f"the intermediate server of {city} answered {response.status_code}") from None
        return reply.model_validate_json(response.content)

    async def close(self) -> None:
        await self._client.close()
