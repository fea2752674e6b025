"""Calls from this intermediate server to the national hub.

HTTPS with mutual TLS (this server's certificate of the local CA; only that CA is trusted
for the hub's; ``shared.mtls_client``), and on every call this server's service token and request proof for the
hub. A refusal comes back as the typed problem the hub sent; an unreachable hub as
``Unavailable``.

Permits and queries are asked for one by one and travel in batches: whatever this server's
queries ask while a batch is on its way goes together in the next call (``GroupCall``), so
under load one round trip, one transaction and one operation-log entry at the hub serve
many queries. Each query still gets its own permit or refusal, and its own outcome. Queries
wait in one line per provider, so a slow provider holds up only the queries addressed to it.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.auth import Credentials
from shared.contracts.network import (
    ANSWERS_PATH,
    HUB_PRINCIPAL,
    MAX_BATCH,
    PERMITS_BATCH_PATH,
    PERMITTED_LIST_PATH,
    QUERIES_BATCH_PATH,
    REGISTRATION_PATH,
    SYMBOLS_PATH,
    OutcomeBatchReply,
    PermitBatch,
    PermitBatchReply,
    PermitRequest,
    ProvisionOutcome,
    Registration,
    RegistrationReply,
    SentQuery,
    SentQueryBatch,
    SignedPermit,
    SignedPermittedList,
    SymbolReply,
    SymbolRequest,
)
from shared.errors import Problem, Unavailable
from shared.group_commit import GroupCall
from shared.http import http_target
from shared.mtls_client import M, MutualTlsClient
from shared.pki import TlsFiles


class HubClient:
    def __init__(self, base_url: str | None, credentials: Credentials, tls: TlsFiles, timeout: float) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self._credentials = credentials
        self._client = MutualTlsClient(tls.client_context, timeout)
        self._permits = GroupCall(self._permit_many, MAX_BATCH)
        self._queries: dict[str, GroupCall[SentQuery, ProvisionOutcome]] = {}  # one line per provider

    @property
    def configured(self) -> bool:
        return self.base_url is not None

    async def _call(self, method: str, path: str, payload: BaseModel | None, reply: type[M]) -> M:
        if self.base_url is None:
            raise Unavailable("no hub is configured (RENKEI_HUB_URL)")
        target = http_target(method, path)
        return await self._client.call(
            method, self.base_url + path, payload, reply, peer="the hub", sign=lambda body: self._credentials.headers(HUB_PRINCIPAL, target, body)
        )

    async def register(self, city: str, registration: Registration) -> RegistrationReply:
        return await self._call("PUT", REGISTRATION_PATH.format(city=city), registration, RegistrationReply)

    async def permitted_list(self) -> SignedPermittedList:
        return await self._call("GET", PERMITTED_LIST_PATH, None, SignedPermittedList)

    async def symbols(self, request: SymbolRequest) -> SymbolReply:
        return await self._call("POST", SYMBOLS_PATH, request, SymbolReply)

    async def permit(self, request: PermitRequest) -> SignedPermit:
        """The hub's permit for ``request``, or the problem of its refusal."""
        return await self._permits.submit(request)

    async def send(self, query: SentQuery) -> ProvisionOutcome:
        """The provider's outcome of a query sent with its permit, or the problem why none came.
        Queries travel in batches per provider: a slow or unreachable provider holds up only
        the queries addressed to it."""
        provider = query.permit.permit.provider
        line = self._queries.get(provider)
        if line is None:
            line = self._queries[provider] = GroupCall(self._send_many, MAX_BATCH)
        return await line.submit(query)

    async def _permit_many(self, requests: list[PermitRequest]) -> list[SignedPermit | Problem]:
        reply = await self._call("POST", PERMITS_BATCH_PATH, PermitBatch(requests=requests), PermitBatchReply)
        return reply.unpacked()  # type: ignore[attr-defined]

    async def _send_many(self, queries: list[SentQuery]) -> list[ProvisionOutcome | Problem]:
        reply = await self._call("POST", QUERIES_BATCH_PATH, SentQueryBatch(queries=queries), OutcomeBatchReply)
        return reply.unpacked()  # type: ignore[attr-defined]

    async def deliver(self, outcome: ProvisionOutcome) -> None:
        await self._call("POST", ANSWERS_PATH, outcome, _Delivered)

    async def close(self) -> None:
        await self._client.close()


class _Delivered(BaseModel):
    delivered: bool
    serial_number: str
