"""Calls from the hub to the intermediate servers' network listeners.

HTTPS with mutual TLS (the hub presents its certificate of the local CA and trusts only
that CA), and on every call the hub's service token and request proof for the server it
calls, so the receiver knows the call is the hub's and unchanged (``shared.mtls_client``).
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.auth import Credentials
from shared.contracts.network import intermediate_server
from shared.http import http_target
from shared.mtls_client import M, MutualTlsClient
from shared.pki import TlsFiles


class PeerClient:
    def __init__(self, credentials: Credentials, tls: TlsFiles, timeout: float) -> None:
        self._credentials = credentials
        self._client = MutualTlsClient(tls.client_context, timeout)

    async def post(self, city: str, base_url: str, path: str, payload: BaseModel, reply: type[M]) -> M:
        """POST ``payload`` to ``city``'s intermediate server; its reply, or the problem it sent."""
        target = http_target("POST", path)
        return await self._client.call(
            "POST", base_url + path, payload, reply,
            peer=f"the intermediate server of {city}", sign=lambda body: self._credentials.headers(intermediate_server(city), target, body),
        )

    async def close(self) -> None:
        await self._client.close()
