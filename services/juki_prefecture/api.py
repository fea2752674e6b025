"""The prefecture server's HTTPS API for the cities' community servers (mutual TLS, M17).

Only a city's ``juki_cs`` may forward identity information or compare ranges, and only
for its own city; any city's ``juki_cs`` may look people up in the other cities. Every
call goes to the operation log under the principal the client certificate names.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from services.juki_prefecture import store
from services.juki_prefecture.peers import peer_principal
from shared.contracts.juki import (
    CS_SERVICE,
    IDENTITIES_PATH,
    RANGE_DIGESTS_PATH,
    RANGE_ENTRIES_PATH,
    SEARCH_PATH,
    BatchReceipt,
    IdentityBatch,
    PrefectureMatches,
    PrefectureQuery,
    RangeDigests,
    RangeEntries,
    RangeRequest,
)
from shared.contracts.types import LocalGovernmentCode
from shared.errors import Forbidden
from shared.http import Audited, audit_person
from shared.trust import Principal

FORWARD = "juki_prefecture.identities.store"
LOOK_UP = "juki_prefecture.identities.look_up"
DIGESTS = "juki_prefecture.consistency.digests"
ENTRIES = "juki_prefecture.consistency.entries"

CityInPath = Annotated[LocalGovernmentCode, Path(description="the city's local-government code")]


def community_server(principal: Principal = Depends(peer_principal)) -> Principal:
    """Dependency: the peer must be a city's community server."""
    if principal.service != CS_SERVICE or principal.city is None:
        raise Forbidden(f"{principal} is not a community server")
    return principal


def own_city(city: CityInPath, principal: Principal = Depends(community_server)) -> str:
    """Dependency: the city in the path must be the peer's own."""
    if principal.city != city:
        raise Forbidden(f"{principal} may not act for city {city}")
    return city


def prefecture_router() -> APIRouter:
    router = APIRouter(tags=["community servers (CS)"])

    def _db(request: Request):
        return request.app.state.context.db

    @router.put(IDENTITIES_PATH, dependencies=[Depends(Audited(FORWARD))], summary="Store forwarded identity information")
    async def forward(body: IdentityBatch, request: Request, city: str = Depends(own_city)) -> BatchReceipt:
        def write() -> int:
            with _db(request).session() as session:
                return store.store(session, city, body.records)

        applied = await asyncio.to_thread(write)
        return BatchReceipt(received=len(body.records), applied=applied)

    @router.post(SEARCH_PATH, dependencies=[Depends(Audited(LOOK_UP))], summary="Identity information held for other cities")
    async def look_up(body: PrefectureQuery, request: Request, principal: Principal = Depends(community_server)) -> PrefectureMatches:
        limit = request.app.state.context.settings.lookup_limit

        def read() -> PrefectureMatches:
            with _db(request).session() as session:
                return store.look_up(session, principal.city, body, limit)

        found = await asyncio.to_thread(read)
        if found.records:
            audit_person(request, found.records[0].record.resident_code)
        return found

    @router.post(RANGE_DIGESTS_PATH, dependencies=[Depends(Audited(DIGESTS))], summary="Count and digest of ranges of resident codes")
    async def digests(body: RangeRequest, request: Request, city: str = Depends(own_city)) -> RangeDigests:
        def read() -> RangeDigests:
            with _db(request).session() as session:
                return RangeDigests(ranges=store.range_digests(session, city, body.prefixes))

        return await asyncio.to_thread(read)

    @router.post(RANGE_ENTRIES_PATH, dependencies=[Depends(Audited(ENTRIES))], summary="Record digests of small ranges")
    async def entries(body: RangeRequest, request: Request, city: str = Depends(own_city)) -> RangeEntries:
        def read() -> RangeEntries:
            with _db(request).session() as session:
                return RangeEntries(entries=store.range_entries(session, city, body.prefixes))

        return await asyncio.to_thread(read)

    return router
