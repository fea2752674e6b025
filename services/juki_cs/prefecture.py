"""The CS's side of the link to the prefecture server (都道府県サーバ): HTTPS with mutual TLS (M17).

The CS presents its own certificate from the local CA and trusts no server certificate
but one the same CA issued for the address it dials; either failing, no byte of identity
information leaves. Transport failures become ``PrefectureUnavailable``; refusals come
back as the typed problem the prefecture server sent (``MutualTlsClient.call``).
"""

from __future__ import annotations

import ssl

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
from shared.errors import Unavailable
from shared.mtls_client import M, MutualTlsClient
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
        self._client = MutualTlsClient(self._context, timeout)

    def _context(self) -> ssl.SSLContext:
        try:
            return self._tls.client_context()
        except OSError as exc:
            raise PrefectureUnavailable(f"no client certificate for mutual TLS: {exc}") from None

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, method: str, path: str, body: BaseModel, reply: type[M]) -> M:
        peer = f"the prefecture server at {self.base_url}"
        return await self._client.call(method, self.base_url + path, body, reply, peer=peer, unavailable=PrefectureUnavailable)

    async def forward(self, records: list[IdentityRecord]) -> BatchReceipt:
        return await self._call("PUT", IDENTITIES_PATH.format(city=self.city), IdentityBatch(records=records), BatchReceipt)

    async def search(self, query: PrefectureQuery) -> PrefectureMatches:
        return await self._call("POST", SEARCH_PATH, query, PrefectureMatches)

    async def range_digests(self, prefixes: list[str]) -> RangeDigests:
        return await self._call("POST", RANGE_DIGESTS_PATH.format(city=self.city), RangeRequest(prefixes=prefixes), RangeDigests)

    async def range_entries(self, prefixes: list[str]) -> RangeEntries:
        return await self._call("POST", RANGE_ENTRIES_PATH.format(city=self.city), RangeRequest(prefixes=prefixes), RangeEntries)
