"""What the hub does, one method per network call; the routes in ``api.py`` only translate.

- ``register``: an intermediate server tells the hub where to reach it and which key to
  seal its answers with (a key statement it signed itself: the hub can publish the key,
  not replace it);
- ``issue_symbols``: symbols of the calling institution's people, from their resident codes;
- ``permit``: a provision permit if the query matches the permitted-query list and both
  institutions know the person; otherwise a refusal. Either way a record in the hub's ledger;
- ``relay``: honours a permit once (signature, requester, expiry, first use), hands the
  provider its own symbol of the person, and carries the provider's sealed answer back;
- ``deliver``: carries an answer the provider released later (after review) to the requester.

The hub handles only sealed answers: it checks their shape, never their content.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from services.provision_network import permits, symbols
from services.provision_network.config import Settings
from services.provision_network.models import Institution, Permit
from services.provision_network.peers import PeerClient
from services.provision_network.permitted import match, permitted_list, signed_list
from services.provision_network.recorder import permit_record
from shared.contracts.network import (
    DELIVER_PATH,
    KEY_STATEMENT_LABEL,
    PROVIDE_BATCH_PATH,
    OutcomeBatchReply,
    PermitRequest,
    ProvisionOutcome,
    ProvisionPermit,
    Registration,
    RegistrationReply,
    RoutedQuery,
    RoutedQueryBatch,
    SentQuery,
    SignedKeyStatement,
    SignedPermit,
    SignedPermittedList,
    SymbolReply,
    SymbolRequest,
    institution_kind,
    intermediate_server,
)
from shared.crypto import SignatureMismatch, verify_document
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Problem, Unavailable, returned
from shared.group_commit import GroupCommit
from shared.ledger import ProvisionRecord
from shared.models import utcnow
from shared.pki import tls_files
from shared.service import ServiceContext
from shared.trust import signing_key

log = structlog.get_logger("renkei.provision_network")

_HUBS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
ROUTES_TTL = 30.0  # seconds a copy of the directory of institutions is used


@dataclass(frozen=True)
class Route:
    """A registered institution: where to reach it, and its signed answer key (JSON)."""

    code: str
    kind: str
    network_url: str
    answer_key: SignedKeyStatement


def hub_of(ctx: ServiceContext) -> Hub:
    hub = _HUBS.get(ctx.db)
    if hub is None:
        hub = _HUBS[ctx.db] = Hub(ctx)
    return hub


def _codes(asked: PermitRequest | ProvisionPermit) -> dict[str, str]:
    """What a permit's record repeats of the request or permit: provider, affair, procedure, item."""
    return {"provider": asked.provider, "affair_code": asked.affair_code, "procedure_code": asked.procedure_code, "item_code": asked.item_code}


class PermitDenied(Forbidden):
    """A permit refused, or a permit the hub will not honour; recorded in the hub's ledger."""


@dataclass(frozen=True)
class Decided:
    """A permit request decided: the permit, or None and the reason; the serial number either
    way, and the decision's record with its index in the hub's ledger."""

    signed: SignedPermit | None
    serial: str
    reason: str | None
    record: ProvisionRecord
    record_index: int = -1


@dataclass(frozen=True)
class Honoured:
    """A sent query's permit checked: the stored permit (if any) and the provider's address,
    or the reason it is not honoured and the refusal's record with its index in the hub's ledger."""

    stored: Row | None
    url: str | None
    reason: str | None = None
    record: ProvisionRecord | None = None
    record_index: int = -1


class Hub:
    def __init__(self, ctx: ServiceContext) -> None:
        settings: Settings = ctx.settings  # type: ignore[assignment]
        self.ctx = ctx
        self.settings = settings
        self._key = signing_key(settings.data_dir, ctx.principal)
        self.issuer = symbols.SymbolIssuer(symbols.master_secret(settings.data_dir))
        self.peers = PeerClient(ctx.credentials, tls_files(settings.data_dir, ctx.principal), settings.provider_timeout_seconds)
        # Decisions and claims share the transactions of the hub's other writes (``GroupCommit``).
        self._decisions: GroupCommit[tuple[Route, PermitRequest, Route | None, datetime], Decided] = GroupCommit(ctx.db.engine, self._decide_in)
        self._claims: GroupCommit[tuple[str, SentQuery, Route | None, datetime], Honoured] = GroupCommit(ctx.db.engine, self._honour_in)
        self._ends: GroupCommit[tuple[str, str], None] = GroupCommit(ctx.db.engine, self._end_in)
        self._list: SignedPermittedList | None = None
        self._routes: dict[str, Route] = {}
        self._routes_read: float | None = None  # when the copy was read (monotonic); None: read it
        self._registrations = 0  # counted, so that a copy read before a registration is not taken as fresh

    async def close(self) -> None:
        await self.peers.close()

    # -- directory ---------------------------------------------------------------------

    def route(self, city: str) -> Route | None:
        """A registered institution, from a copy of the directory read at most ``ROUTES_TTL`` ago
        and since the last registration. A city the copy does not name does not make the
        directory be read again: a caller cannot make the hub read it at will."""
        if self._directory_stale():
            self._read_directory()
        return self._routes.get(city)

    async def routes_of(self, cities: set[str]) -> dict[str, Route | None]:
        """``route`` of each city, the directory read (off the loop) at most once. Batches take
        their routes from here before their transaction, so that none reads in it."""
        if self._directory_stale():
            await asyncio.to_thread(self._read_directory)
        return {city: self._routes.get(city) for city in cities}

    def _directory_stale(self) -> bool:
        return self._routes_read is None or time.monotonic() - self._routes_read > ROUTES_TTL

    def _read_directory(self) -> None:
        registrations = self._registrations
        with self.ctx.db.reading() as session:
            rows = session.scalars(select(Institution)).all()
            self._routes = {r.code: Route(r.code, r.kind, r.network_url, SignedKeyStatement.model_validate_json(r.answer_key)) for r in rows}
        if registrations == self._registrations:  # else a registration may be missing: read again next time
            self._routes_read = time.monotonic()

    def register(self, caller_city: str, city: str, registration: Registration) -> RegistrationReply:
        if caller_city != city:
            raise Forbidden(f"intermediate_server@{caller_city} may register only itself, not {city}")
        statement = registration.answer_key.statement
        if statement.principal != intermediate_server(city):
            raise InvalidRequest(f"the key statement is of {statement.principal}, not of {intermediate_server(city)}")
        try:
            verify_document(
                self.ctx.directory.public_key(statement.principal),
                KEY_STATEMENT_LABEL,
                statement.model_dump(mode="json"),
                registration.answer_key.signature,
            )
        except (SignatureMismatch, KeyError):
            raise InvalidRequest("the key statement is not signed by the intermediate server's own key") from None
        with self.ctx.db.session() as session:
            row = session.get(Institution, city) or Institution(code=city)
            row.kind = institution_kind(city)
            row.network_url = registration.network_url
            row.answer_key = registration.answer_key.model_dump_json()
            row.key_id = statement.key_id
            row.registered_at = utcnow()
            session.merge(row)
        self._registrations += 1
        self._routes_read = None  # read the directory again on next use
        log.info("institution registered", city=city, key_id=statement.key_id)
        return RegistrationReply(city=city, kind=institution_kind(city), list_version=permitted_list().version)

    def permitted_list(self) -> SignedPermittedList:
        if self._list is None:
            self._list = signed_list(self._key)
        return self._list

    # -- symbols -----------------------------------------------------------------------

    def issue_symbols(self, caller_city: str, request: SymbolRequest) -> SymbolReply:
        if self.route(caller_city) is None:
            raise Conflict(f"{caller_city} is not registered with the network")
        with self.ctx.db.session() as session:
            return SymbolReply(symbols=self.issuer.issue(session, caller_city, list(request.resident_codes)))

    # -- permits -----------------------------------------------------------------------

    @staticmethod
    def _refusal(caller_city: str, request: PermitRequest, provider: Route | None) -> str | None:
        """Why the request gets no permit before the symbols are looked at, or None."""
        if provider is None:
            return f"the provider {request.provider} is not on the network"
        if request.provider == caller_city:
            return "an institution does not query itself through the network"
        found = match(permitted_list().rows, caller_city, request.provider, request.affair_code, request.procedure_code, request.item_code)
        return None if found.row is not None else f"not on the permitted-query list: {found.reason}"

    def _decide_in(self, session: Session, asked: Sequence[tuple[Route, PermitRequest, Route | None, datetime]]) -> list[Decided]:
        """Each request decided on its own, the permits stored and every decision recorded in
        the hub's ledger, in one transaction: a permit and its record stand or fall together."""
        now = utcnow()
        lifetime = timedelta(seconds=self.settings.permit_lifetime_seconds)
        refusals = [self._refusal(requester.code, request, provider) for requester, request, provider, _ in asked]
        wanted: dict[tuple[str, str], set[str]] = {}
        for (requester, request, _, _), refusal in zip(asked, refusals, strict=True):
            if refusal is None:
                wanted.setdefault((requester.code, request.provider), set()).add(request.requester_symbol)
        translated = {pair: symbols.translate_many(session, *pair, found) for pair, found in wanted.items()}
        decided, issued = [], []
        for (requester, request, _, requested_at), reason in zip(asked, refusals, strict=True):
            signed = None
            if reason is None:
                provider_symbol = translated[(requester.code, request.provider)].get(request.requester_symbol)
                if provider_symbol is None:
                    reason = "the person has no symbol at both institutions"
                else:
                    signed, row = permits.issue(self._key, requester.code, requester.answer_key, request, provider_symbol, now, lifetime)
                    issued.append(row)
            serial = signed.permit.serial_number if signed else permits.new_serial_number(now)
            record = permit_record(
                requester=requester.code,
                **_codes(request),
                serial_number=serial,
                requested_at=requested_at,
                person_key=request.requester_symbol,
                refusal_reason=reason,
            )
            decided.append(Decided(signed, serial, reason, record))
        permits.store(session, issued, now)
        receipts = self.ctx.require_ledger().append_in(session, [d.record for d in decided])
        return [dataclasses.replace(d, record_index=receipt.index) for d, receipt in zip(decided, receipts, strict=True)]

    async def permit(self, caller_city: str, request: PermitRequest) -> SignedPermit:
        (result,) = await self.permit_many(caller_city, [request])
        return returned(result)

    async def permit_many(self, caller_city: str, requests: list[PermitRequest]) -> list[SignedPermit | Problem]:
        """A permit or a refusal for each request, each with its record in the hub's ledger."""
        routes = await self.routes_of({caller_city, *(request.provider for request in requests)})
        requester = routes[caller_city]
        if requester is None:
            raise Conflict(f"{caller_city} is not registered with the network")
        requested_at = utcnow()
        decided = await self._decisions.submit_many([(requester, request, routes[request.provider], requested_at) for request in requests])
        self.ctx.require_ledger().observed([d.record for d in decided if isinstance(d, Decided)])
        results: list[SignedPermit | Problem] = []
        for d in decided:
            if isinstance(d, BaseException):
                log.error("permit not decided or not recorded", error=repr(d))
                results.append(Unavailable("the hub could not decide or record the permit: try again"))
            elif d.signed is None:
                results.append(PermitDenied(d.reason or "refused", serial_number=d.serial, record_index=d.record_index))
            else:
                results.append(d.signed)
        return results

    # -- relaying ----------------------------------------------------------------------

    def _honour_in(self, session: Session, sent: Sequence[tuple[str, SentQuery, Route | None, datetime]]) -> list[Honoured]:
        """Each permit checked and claimed on its own (the claims in one statement), and each
        refusal recorded in the hub's ledger, in one transaction. The route is of the provider
        the permit names: a permit honoured is exactly as issued, so it is the stored one's."""
        checked = permits.honour_many(session, [(query.permit, caller) for caller, query, _, _ in sent], utcnow())
        honoured, refusals = [], []
        for (caller_city, query, provider, received_at), (stored, reason) in zip(sent, checked, strict=True):
            if reason is None and provider is None:
                reason = f"the provider {stored.provider} is no longer on the network"
            if reason is None:
                honoured.append(Honoured(stored, provider.network_url))
                continue
            permit = query.permit.permit
            record = permit_record(
                requester=caller_city,
                **_codes(permit),
                serial_number=permit.serial_number,
                requested_at=received_at,
                person_key=stored.requester_symbol if stored is not None and stored.requester == caller_city else "unidentified",
                refusal_reason=reason,
            )
            refusals.append(len(honoured))
            honoured.append(Honoured(stored, None, reason, record))
        receipts = self.ctx.require_ledger().append_in(session, [honoured[at].record for at in refusals])
        for at, receipt in zip(refusals, receipts, strict=True):
            honoured[at] = dataclasses.replace(honoured[at], record_index=receipt.index)
        return honoured

    async def relay(self, caller_city: str, sent: SentQuery) -> ProvisionOutcome:
        (result,) = await self.relay_many(caller_city, [sent])
        return returned(result)

    async def relay_many(self, caller_city: str, sent: list[SentQuery]) -> list[ProvisionOutcome | Problem]:
        """Each query carried to its provider on the strength of its permit, and its outcome back
        (a refused permit recorded in the hub's ledger); the queries for one provider travel together."""
        routes = await self.routes_of({query.permit.permit.provider for query in sent})
        received_at = utcnow()
        honoured = await self._claims.submit_many([(caller_city, query, routes[query.permit.permit.provider], received_at) for query in sent])
        self.ctx.require_ledger().observed([h.record for h in honoured if isinstance(h, Honoured) and h.record is not None])
        results: list[ProvisionOutcome | Problem | None] = [None] * len(sent)
        by_provider: dict[tuple[str, str], list[int]] = {}
        for at, (query, h) in enumerate(zip(sent, honoured, strict=True)):
            serial = query.permit.permit.serial_number
            if isinstance(h, BaseException):
                log.error("permit not checked or refusal not recorded", serial_number=serial, error=repr(h))
                results[at] = Unavailable("the hub could not check or record the permit: try again", serial_number=serial)
            elif h.reason is not None:
                results[at] = PermitDenied(h.reason, serial_number=serial, record_index=h.record_index)
            else:
                by_provider.setdefault((query.permit.permit.provider, h.url), []).append(at)

        async def carry(provider: str, url: str, positions: list[int]) -> None:
            batch = RoutedQueryBatch(queries=[RoutedQuery(permit=sent[at].permit, provider_symbol=honoured[at].stored.provider_symbol) for at in positions])
            try:
                reply = await self.peers.post(provider, url, PROVIDE_BATCH_PATH, batch, OutcomeBatchReply)
                if len(reply.results) != len(positions):
                    raise Unavailable(f"the provider {provider} answered {len(reply.results)} of {len(positions)} queries")
            except Problem as problem:
                for at in positions:
                    results[at] = problem
                return
            except Exception as exc:  # a fault of this hub's own (a reply that does not parse is a Problem): these queries failed, not the others
                log.exception("relay to a provider failed", provider=provider, error=repr(exc))
                for at in positions:
                    results[at] = Unavailable(f"the hub could not relay the queries to {provider}")
                return
            for at, result in zip(positions, reply.unpacked(), strict=True):
                permit = sent[at].permit.permit
                if isinstance(result, ProvisionOutcome) and (result.serial_number, result.query_id) != (permit.serial_number, permit.query_id):
                    result = Unavailable("the provider answered another query")
                results[at] = result

        await asyncio.gather(*(carry(provider, url, positions) for (provider, url), positions in by_provider.items()))
        # A provided answer leaves the permit "sent": one write fewer per query.
        ends = {}
        for at in (at for positions in by_provider.values() for at in positions):
            result = results[at]
            if isinstance(result, Unavailable):
                ends[sent[at].permit.permit.serial_number] = "undelivered"
            elif isinstance(result, ProvisionOutcome) and result.status != "provided":
                ends[result.serial_number] = result.status
        for (serial, state), ended in zip(ends.items(), await self._ends.submit_many(list(ends.items())), strict=True):
            if isinstance(ended, BaseException):  # the outcome stands; only the permit's state lags
                log.error("permit end not stored", serial_number=serial, state=state, error=repr(ended))
        return results  # type: ignore[return-value]

    @staticmethod
    def _end_in(session: Session, ends: Sequence[tuple[str, str]]) -> list[None]:
        """Each permit's query ended as (serial number, state); "held" waits for its answer."""
        permits.end_many(session, ends, utcnow())
        return [None] * len(ends)

    def _awaiting(self, caller_city: str, outcome: ProvisionOutcome) -> tuple[str, str]:
        with self.ctx.db.session() as session:
            row = session.get(Permit, outcome.serial_number)
            if row is None or row.query_id != outcome.query_id:
                raise NotFound("no such permit")
            if row.provider != caller_city:
                raise Forbidden(f"the permit's provider is {row.provider}, not {caller_city}")
            if row.state != "held":
                raise Conflict(f"the permit's query is {row.state}, not waiting for an answer")
            requester_code = row.requester
        requester = self.route(requester_code)
        if requester is None:
            raise Unavailable(f"the requester {requester_code} is no longer on the network")
        return requester_code, requester.network_url

    async def deliver(self, caller_city: str, outcome: ProvisionOutcome) -> None:
        if outcome.status == "held":
            raise InvalidRequest("deliver an answer or a refusal, not another hold")
        requester, url = await asyncio.to_thread(self._awaiting, caller_city, outcome)
        await self.peers.post(requester, url, DELIVER_PATH, outcome, ProvisionOutcome)
        await self._ends.submit((outcome.serial_number, {"provided": "answered"}.get(outcome.status, outcome.status)))

    # -- system management -------------------------------------------------------------

    def routes(self) -> list[dict]:
        with self.ctx.db.session() as session:
            rows = session.execute(select(Institution.code, Institution.kind, Institution.key_id, Institution.registered_at)).all()
        return [{"city": c, "kind": k, "key_id": key, "registered_at": at} for c, k, key, at in rows]
