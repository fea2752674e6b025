"""The CS's side of the link to the prefecture server (都道府県サーバ): HTTPS with mutual TLS (M17).

The CS presents its own certificate from the local CA and trusts no server certificate
but one the same CA issued for the address it dials; either failing, no byte of identity
information leaves. Transport failures become ``PrefectureUnavailable``; refusals come
back as the typed problem the prefecture server sent.
"""

from __future__ import annotations

import json

import httpx
from pydantic import BaseModel

from shared.contracts.juki import (
    IDENTITIES_PATH,
    RANGE_DIGESTS_PATH,
    RANGE_ENTRIES_PATH,
    SEARCH_PATH,
    BatchReceipt,
    IdentityBatch,
    IdentityRecord,
    PrefectureMatches,
    PrefectureQuery,
    RangeDigests,
    RangeEntries,
    RangeRequest,
)
from shared.errors import PROBLEM_JSON, Problem, Unavailable, problem_from_dict
from shared.pki import TlsFiles


class PrefectureUnavailable(Unavailable):
    title = "The prefecture server is not reachable"


class PrefectureClient:
    """Calls to the prefecture server on behalf of one city's CS."""

    def __init__(self, base_url: str, tls: TlsFiles, city: str, timeout: float = 10.0) -> None:
        if not base_url.startswith("https://"):
            raise ValueError("the prefecture server is reached over https only")
        self.base_url = base_url.rstrip("/")
        self.city = city
        self._tls = tls
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            try:
                context = self._tls.client_context()
            except (FileNotFoundError, OSError) as exc:
                raise PrefectureUnavailable(f"no client certificate for mutual TLS: {exc}") from None
            self._client = httpx.AsyncClient(base_url=self.base_url, verify=context, timeout=self._timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, method: str, path: str, body: BaseModel, reply: type[BaseModel]):
        try:
            response = await self._http().request(
                method, path, content=body.model_dump_json(), headers={"Content-Type": "application/json"}
            )
        except httpx.TransportError as exc:
            raise PrefectureUnavailable(f"prefecture server at {self.base_url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise _problem(response)
        return reply.model_validate_json(response.content)

    async def forward(self, records: list[IdentityRecord]) -> BatchReceipt:
        return await self._call("PUT", IDENTITIES_PATH.format(city=self.city), IdentityBatch(records=records), BatchReceipt)

    async def search(self, query: PrefectureQuery) -> PrefectureMatches:
        return await self._call("POST", SEARCH_PATH, query, PrefectureMatches)

    async def range_digests(self, prefixes: list[str]) -> RangeDigests:
        return await self._call("POST", RANGE_DIGESTS_PATH.format(city=self.city), RangeRequest(prefixes=prefixes), RangeDigests)

    async def range_entries(self, prefixes: list[str]) -> RangeEntries:
        return await self._call("POST", RANGE_ENTRIES_PATH.format(city=self.city), RangeRequest(prefixes=prefixes), RangeEntries)


def _problem(response: httpx.Response) -> Problem:
    if response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        try:
            return problem_from_dict(response.json())
        except (json.JSONDecodeError, ValueError):
            pass
    if response.status_code >= 500:
        return PrefectureUnavailable(f"prefecture server answered {response.status_code}")
    return Problem(f"prefecture server answered {response.status_code}")
