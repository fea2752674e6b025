"""Calls from this intermediate server to the national hub.

HTTPS with mutual TLS (this server's certificate of the local CA; only that CA is trusted
for the hub's; ``shared.mtls_client``), and on every call this server's service token and request proof for the
hub. A refusal comes back as the typed problem the hub sent; an unreachable hub as
``Unavailable``.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.auth import Credentials
from shared.contracts.network import (
    ANSWERS_PATH,
    HUB_PRINCIPAL,
    PERMITS_PATH,
    PERMITTED_LIST_PATH,
    QUERIES_PATH,
    REGISTRATION_PATH,
    SYMBOLS_PATH,
    PermitRequest,
    ProvisionOutcome,
    Registration,
    RegistrationReply,
    SentQuery,
    SignedPermit,
    SignedPermittedList,
    SymbolReply,
    SymbolRequest,
)
from shared.errors import Problem, Unavailable, problem_from_dict
from shared.http import http_target
from shared.mtls_client import MutualTlsClient, Unreachable
from shared.pki import TlsFiles


class HubClient:
    def __init__(self, base_url: str | None, credentials: Credentials, tls: TlsFiles, timeout: float) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self._credentials = credentials
        self._client = MutualTlsClient(tls.client_context, timeout)

    @property
    def configured(self) -> bool:
        return self.base_url is not None

    async def _call(self, method: str, path: str, payload: BaseModel | None, reply: type[BaseModel]) -> BaseModel:
        if self.base_url is None:
            raise Unavailable("no hub is configured (RENKEI_HUB_URL)")
        body = payload.model_dump_json().encode() if payload is not None else b""
        headers = self._credentials.headers(HUB_PRINCIPAL, http_target(method, path), body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._client.request(method, self.base_url + path, body, headers)
        except Unreachable as exc:
            raise Unavailable(f"the hub cannot be reached: {exc}") from None
        if response.status_code >= 400:
            try:
                problem = problem_from_dict(response.json())
            except ValueError:
                problem = Problem(f"the hub answered {response.status_code}")
            raise problem
        return reply.model_validate_json(response.content)

    async def register(self, city: str, registration: Registration) -> RegistrationReply:
        return await self._call("PUT", REGISTRATION_PATH.format(city=city), registration, RegistrationReply)

    async def permitted_list(self) -> SignedPermittedList:
        return await self._call("GET", PERMITTED_LIST_PATH, None, SignedPermittedList)

    async def symbols(self, request: SymbolRequest) -> SymbolReply:
        return await self._call("POST", SYMBOLS_PATH, request, SymbolReply)

    async def permit(self, request: PermitRequest) -> SignedPermit:
        return await self._call("POST", PERMITS_PATH, request, SignedPermit)

    async def send(self, query: SentQuery) -> ProvisionOutcome:
        return await self._call("POST", QUERIES_PATH, query, ProvisionOutcome)

    async def deliver(self, outcome: ProvisionOutcome) -> None:
        await self._call("POST", ANSWERS_PATH, outcome, _Delivered)

    async def close(self) -> None:
        await self._client.close()


class _Delivered(BaseModel):
    delivered: bool
    serial_number: str
