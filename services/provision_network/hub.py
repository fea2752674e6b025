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
import time
import weakref
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import Row, select

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
    SignedPermit,
    SignedPermittedList,
    SymbolReply,
    SymbolRequest,
    institution_kind,
    intermediate_server,
)
from shared.crypto import SignatureMismatch, verify_document
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Problem, Unavailable, returned
from shared.ledger.recorder import Recorder
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
    answer_key: str


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


class Hub:
    def __init__(self, ctx: ServiceContext) -> None:
        settings: Settings = ctx.settings  # type: ignore[assignment]
        self.ctx = ctx
        self.settings = settings
        self._key = signing_key(settings.data_dir, ctx.principal)
        self._public_key = self._key.public_key()
        self.issuer = symbols.SymbolIssuer(symbols.master_secret(settings.data_dir))
        self.peers = PeerClient(ctx.credentials, tls_files(settings.data_dir, ctx.principal), settings.provider_timeout_seconds)
        self._recorder: Recorder | None = None
        self._list: SignedPermittedList | None = None
        self._routes: dict[str, Route] = {}
        self._routes_read = 0.0

    @property
    def recorder(self) -> Recorder:
        if self._recorder is None:
            if self.ctx.ledger is None:
                raise Unavailable("the hub's ledger is not open yet")
            self._recorder = Recorder(self.ctx.ledger)
        return self._recorder

    async def close(self) -> None:
        await self.peers.close()

    # -- directory ---------------------------------------------------------------------

    def route(self, city: str) -> Route | None:
        """A registered institution, from a copy of the directory read at most ``ROUTES_TTL`` ago."""
        if time.monotonic() - self._routes_read > ROUTES_TTL or city not in self._routes:
            with self.ctx.db.reading() as session:  # a snapshot: callers may hold a write transaction
                rows = session.scalars(select(Institution)).all()
                self._routes = {r.code: Route(r.code, r.kind, r.network_url, r.answer_key) for r in rows}
            self._routes_read = time.monotonic()
        return self._routes.get(city)

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
        self._routes_read = 0.0  # read the directory again on next use
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

    def _decide(self, session, caller_city: str, requester: Route, request: PermitRequest) -> tuple[SignedPermit | None, str, str | None]:
        """The permit, or None and the reason; and the serial number either way."""
        now = utcnow()
        serial = permits.new_serial_number(now)
        if self.route(request.provider) is None:
            return None, serial, f"the provider {request.provider} is not on the network"
        if request.provider == caller_city:
            return None, serial, "an institution does not query itself through the network"
        found = match(permitted_list().rows, caller_city, request.provider, request.affair_code, request.procedure_code, request.item_code)
        if found.row is None:
            return None, serial, f"not on the permitted-query list: {found.reason}"
        provider_symbol = symbols.translate(session, caller_city, request.requester_symbol, request.provider)
        if provider_symbol is None:
            return None, serial, "the person has no symbol at both institutions"
        lifetime = timedelta(seconds=self.settings.permit_lifetime_seconds)
        signed = permits.issue(session, self._key, requester.code, requester.answer_key, request, provider_symbol, now, lifetime)
        return signed, signed.permit.serial_number, None

    def _decide_many(self, caller_city: str, requests: list[PermitRequest]) -> list[tuple[SignedPermit | None, str, str | None]]:
        """Each request decided on its own, the permits stored in one transaction."""
        requester = self.route(caller_city)
        if requester is None:
            raise Conflict(f"{caller_city} is not registered with the network")
        with self.ctx.db.session() as session:
            return [self._decide(session, caller_city, requester, request) for request in requests]

    async def permit(self, caller_city: str, request: PermitRequest) -> SignedPermit:
        (result,) = await self.permit_many(caller_city, [request])
        return returned(result)

    async def permit_many(self, caller_city: str, requests: list[PermitRequest]) -> list[SignedPermit | Problem]:
        """A permit or a refusal for each request, each with its record in the hub's ledger."""
        requested_at = utcnow()
        decisions = await asyncio.to_thread(self._decide_many, caller_city, requests)
        records = [
            permit_record(
                requester=caller_city,
                **_codes(request),
                serial_number=serial,
                requested_at=requested_at,
                person_key=request.requester_symbol,
                refusal_reason=reason,
            )
            for request, (_, serial, reason) in zip(requests, decisions, strict=True)
        ]
        receipts = await self.recorder.record_each(records)
        unrecorded = [serial for (signed, serial, _), receipt in zip(decisions, receipts, strict=True) if signed and isinstance(receipt, BaseException)]
        if unrecorded:  # a permit without its record must never be honoured
            await asyncio.to_thread(self._revoke, unrecorded)
        results: list[SignedPermit | Problem] = []
        for (signed, serial, reason), receipt in zip(decisions, receipts, strict=True):
            if isinstance(receipt, BaseException):
                log.error("permit record not written", serial_number=serial, error=repr(receipt))
                results.append(Unavailable("the hub could not record the permit: try again", serial_number=serial))
            elif signed is None:
                results.append(PermitDenied(reason or "refused", serial_number=serial, record_index=receipt.index))
            else:
                results.append(signed)
        return results

    def _revoke(self, serials: list[str]) -> None:
        with self.ctx.db.session() as session:
            for serial in serials:
                row = session.get(Permit, serial)
                if row is not None:
                    row.used_at, row.state, row.finished_at = utcnow(), "revoked", utcnow()

    # -- relaying ----------------------------------------------------------------------

    def _honour(self, session, caller_city: str, signed: SignedPermit) -> tuple[Row | None, str | None, str | None]:
        """(the permit, the provider's address, None), or (the stored permit if any, None, the reason)."""
        try:
            stored = permits.honour(session, self._public_key, signed, caller_city, utcnow())
        except permits.PermitRefused as refusal:
            return permits.stored_permit(session, signed.permit.serial_number), None, refusal.reason
        provider = self.route(stored.provider)
        if provider is None:
            return stored, None, f"the provider {stored.provider} is no longer on the network"
        return stored, provider.network_url, None

    def _honour_many(self, caller_city: str, sent: list[SentQuery]) -> list[tuple[Row | None, str | None, str | None]]:
        """Each permit checked and claimed on its own, the claims stored in one transaction."""
        with self.ctx.db.session() as session:
            return [self._honour(session, caller_city, query.permit) for query in sent]

    async def relay(self, caller_city: str, sent: SentQuery) -> ProvisionOutcome:
        (result,) = await self.relay_many(caller_city, [sent])
        return returned(result)

    async def relay_many(self, caller_city: str, sent: list[SentQuery]) -> list[ProvisionOutcome | Problem]:
        """Each query carried to its provider on the strength of its permit, and its outcome back
        (a refused permit recorded in the hub's ledger); the queries for one provider travel together."""
        honoured = await asyncio.to_thread(self._honour_many, caller_city, sent)
        results: list[ProvisionOutcome | Problem | None] = [None] * len(sent)
        refused, refusals = [], []
        by_provider: dict[tuple[str, str], list[int]] = {}
        for at, (query, (stored, url, reason)) in enumerate(zip(sent, honoured, strict=True)):
            permit = query.permit.permit
            if reason is None:
                by_provider.setdefault((permit.provider, url), []).append(at)
                continue
            refused.append(at)
            refusals.append(
                permit_record(
                    requester=caller_city,
                    **_codes(permit),
                    serial_number=permit.serial_number,
                    requested_at=utcnow(),
                    person_key=stored.requester_symbol if stored is not None and stored.requester == caller_city else "unidentified",
                    refusal_reason=reason,
                )
            )

        async def carry(provider: str, url: str, positions: list[int]) -> None:
            batch = RoutedQueryBatch(queries=[RoutedQuery(permit=sent[at].permit, provider_symbol=honoured[at][0].provider_symbol) for at in positions])
            try:
                reply = await self.peers.post(provider, url, PROVIDE_BATCH_PATH, batch, OutcomeBatchReply)
                if len(reply.results) != len(positions):
                    raise Unavailable(f"the provider {provider} answered {len(reply.results)} of {len(positions)} queries")
            except Problem as problem:
                for at in positions:
                    results[at] = problem
                return
            except Exception as exc:  # a reply that does not parse: these queries failed, not the others
                log.warning("provider reply unusable", provider=provider, error=repr(exc))
                for at in positions:
                    results[at] = Unavailable(f"the provider {provider} sent a reply that does not parse")
                return
            for at, result in zip(positions, reply.unpacked(), strict=True):
                permit = sent[at].permit.permit
                if isinstance(result, ProvisionOutcome) and (result.serial_number, result.query_id) != (permit.serial_number, permit.query_id):
                    result = Unavailable("the provider answered another query")
                results[at] = result

        async def record_refusals() -> None:
            receipts = await self.recorder.record_each(refusals)
            for at, receipt in zip(refused, receipts, strict=True):
                serial = sent[at].permit.permit.serial_number
                if isinstance(receipt, BaseException):
                    log.error("refusal record not written", serial_number=serial, error=repr(receipt))
                    results[at] = Unavailable("the hub could not record the refusal: try again", serial_number=serial)
                else:
                    results[at] = PermitDenied(honoured[at][2] or "refused", serial_number=serial)

        await asyncio.gather(record_refusals(), *(carry(provider, url, positions) for (provider, url), positions in by_provider.items()))
        # A provided answer leaves the permit "sent": one write fewer per query.
        ends = {}
        for at in (at for positions in by_provider.values() for at in positions):
            result = results[at]
            if isinstance(result, Unavailable):
                ends[sent[at].permit.permit.serial_number] = "undelivered"
            elif isinstance(result, ProvisionOutcome) and result.status != "provided":
                ends[result.serial_number] = result.status
        if ends:
            await asyncio.to_thread(self._finish_many, ends)
        return results  # type: ignore[return-value]

    def _finish(self, serial: str, state: str) -> None:
        self._finish_many({serial: state})

    def _finish_many(self, states: dict[str, str]) -> None:
        with self.ctx.db.session() as session:
            for serial, state in states.items():
                row = session.get(Permit, serial)
                if row is not None:
                    row.state = state
                    if state != "held":
                        row.finished_at = utcnow()

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
        await asyncio.to_thread(self._finish, outcome.serial_number, {"provided": "answered"}.get(outcome.status, outcome.status))

    # -- system management -------------------------------------------------------------

    def routes(self) -> list[dict]:
        with self.ctx.db.session() as session:
            rows = session.execute(select(Institution.code, Institution.kind, Institution.key_id, Institution.registered_at)).all()
        return [{"city": c, "kind": k, "key_id": key, "registered_at": at} for c, k, key, at in rows]
