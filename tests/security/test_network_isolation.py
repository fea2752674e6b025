"""Tenants and callers of the network (M20, M23): no city reaches another's data, and only
the systems on an operation's allowlist may call it.

- on the bus, a business system of one city cannot read the queries of another, whichever
  NATS login it uses; systems off the allowlists are refused every operation;
- a staff session of one city's intermediate server is nobody at another's;
- where two cities share one database (one platform, many tenants), every read is scoped:
  the same calls with the other tenant find nothing;
- at the hub, a server registers only itself and delivers answers only to its own permits.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from renkei.testkit import identity, staff_headers
from services.intermediate_server import copies, providing, querying, symbols
from services.intermediate_server.models import Base, QueryRow, ReviewItem
from shared.contracts import network as net
from shared.contracts.ledger import CheckpointQuery
from shared.db import Database, schema_name
from shared.errors import Forbidden, NotFound, Problem
from shared.http import http_target
from shared.models import utcnow
from shared.trust import Principal
from tests.unit.test_intermediate_server_support import (
    HEALTH,
    KOSHIGAYA,
    OP,
    OPS,
    SOKA,
    announce,
    call,
    mtls_client,
    people,
    register_doses,
    runtime,
    signed_post,
    symbol_count,
    two_cities,
    vaccination_query,
    wait_for_result,
    wait_until,
)


@pytest.fixture
def network(tmp_path, database_url):
    with two_cities(tmp_path, database_url) as (files, nats, hub, k, s):
        yield files, nats, hub, k, s


def _answered_query(files, nats, koshigaya, soka):
    person = people(1, seed=31)[0]
    announce(files, nats, SOKA, [person])
    announce(files, nats, KOSHIGAYA, [person])
    wait_until(lambda: symbol_count(soka) == 1 and symbol_count(koshigaya) == 1, what="symbols")
    register_doses(files, nats, SOKA, [person])
    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, vaccination_query(person))
    return person, wait_for_result(files, nats, KOSHIGAYA, accepted.query_id)


def test_another_citys_business_system_cannot_read_a_query_on_the_bus(network):
    files, nats, _hub, koshigaya, soka = network
    _person, result = _answered_query(files, nats, koshigaya, soka)
    assert result.status == "answered"
    ask = net.QueryResultRequest(query_id=result.query_id)
    # Soka's health management, with its own token, through Koshigaya's NATS login: the server refuses it.
    refused = call(files, nats, HEALTH[SOKA], OP["intermediate_server.query_result"], KOSHIGAYA, ask, login=HEALTH[KOSHIGAYA])
    assert isinstance(refused, Forbidden)
    # Through its own login it cannot even publish on Koshigaya's subject.
    blocked = call(files, nats, HEALTH[SOKA], OP["intermediate_server.query_result"], KOSHIGAYA, ask)
    assert isinstance(blocked, Problem) and not isinstance(blocked, net.QueryResult)
    # Its own city's server has no such query.
    assert isinstance(call(files, nats, HEALTH[SOKA], OP["intermediate_server.query_result"], SOKA, ask), NotFound)


@pytest.mark.parametrize("service", ["juki_cs", "welfare_address", "integrated_address", "resident_registry"])
def test_systems_off_the_allowlists_are_refused_every_operation(network, service):
    files, nats, _hub, koshigaya, _soka = network
    person = people(1, seed=41)[0]
    outsider = Principal(service, KOSHIGAYA)
    requests = {
        "query": vaccination_query(person),
        "query_result": net.QueryResultRequest(query_id="b" * 32),
        "register_copies": net.CopyImport(item_code=net.VACCINATION_RECORDS, people=[net.PersonCopy(integrated_address_number=person.numbers[KOSHIGAYA], records=[])]),
        "copy_digests": net.CopyDigestRequest(item_code=net.VACCINATION_RECORDS),
        "system_status": net.SystemStatusRequest(),
        "ledger_checkpoint": CheckpointQuery(),
    }
    for name, request in requests.items():
        reply = call(files, nats, outsider, OP[f"intermediate_server.{name}"], KOSHIGAYA, request, login=HEALTH[KOSHIGAYA] if name != "system_status" and name != "ledger_checkpoint" else OPS)
        assert isinstance(reply, Forbidden), (name, reply)
    refusals = runtime(koshigaya).ctx.oplog.entries()
    assert {e.operation for e in refusals if e.actor == str(outsider)} == {f"intermediate_server.{name}" for name in requests}


def test_the_ops_console_alone_reads_the_system_status_and_it_names_nobody(network):
    files, nats, _hub, koshigaya, soka = network
    person, result = _answered_query(files, nats, koshigaya, soka)
    status = call(files, nats, OPS, OP["intermediate_server.system_status"], KOSHIGAYA, net.SystemStatusRequest())
    assert isinstance(status, net.SystemStatus)
    figures = {(f.figure, f.item_code): f.count for f in status.figures}
    assert figures[("query.requested", net.VACCINATION_RECORDS)] == 1
    assert figures[("answer_received.provided", net.VACCINATION_RECORDS)] == 1
    text = status.model_dump_json()
    assert person.numbers[KOSHIGAYA] not in text and person.resident_code not in text and result.query_id not in text
    hub_status = call(files, nats, OPS, OP["provision_network.system_status"], None, net.SystemStatusRequest())
    assert {(f.figure, f.count) for f in hub_status.figures} == {("permit.permit_issued", 1)}
    assert isinstance(call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.system_status"], KOSHIGAYA, net.SystemStatusRequest(), login=OPS), Forbidden)


def test_a_staff_session_of_one_city_is_nobody_at_another(network):
    files, nats, _hub, koshigaya, soka = network
    person, _ = _answered_query(files, nats, koshigaya, soka)
    soka_admin = staff_headers(soka, ["administrator"])
    assert soka.get(f"/copies/{person.numbers[SOKA]}", headers=soka_admin).status_code == 200
    elsewhere = koshigaya.get(f"/copies/{person.numbers[KOSHIGAYA]}", headers=soka_admin)
    assert elsewhere.status_code == 401


def test_each_role_reaches_only_what_it_needs(network):
    files, nats, _hub, koshigaya, soka = network
    person, result = _answered_query(files, nats, koshigaya, soka)
    operator, reviewer, admin, auditor = (staff_headers(soka, [role]) for role in ("query_operator", "provision_reviewer", "administrator", "auditor"))
    export = f"/copies?item_code={net.VACCINATION_RECORDS}"
    assert [soka.get(export, headers=h).status_code for h in (operator, reviewer, auditor)] == [403, 403, 403]
    exported = soka.get(export, headers=admin)
    assert exported.status_code == 200 and exported.json()["people"][0]["integrated_address_number"] == person.numbers[SOKA]
    assert soka.get("/review", headers=operator).status_code == 403 and soka.get("/review", headers=reviewer).status_code == 200
    assert soka.get("/system/status", headers=operator).status_code == 403 and soka.get("/system/status", headers=auditor).status_code == 200
    assert koshigaya.get(f"/queries/{result.query_id}").status_code == 401
    logged = {(e.operation, e.outcome) for e in runtime(soka).ctx.oplog.entries() if e.operation.startswith("terminal.copies.export")}
    people = len(exported.json()["people"])
    assert (f"terminal.copies.export item_code={net.VACCINATION_RECORDS} after=- people={people}", "ok") in logged  # what left (M10)
    assert ("terminal.copies.export", "http-403") in logged


def hub_route(hub, city: str) -> str:
    from services.provision_network.models import Institution

    with hub.context.db.session() as session:
        return session.get(Institution, city).network_url


def test_at_the_hub_a_server_registers_only_itself_and_answers_only_its_own_permits(network):
    files, _nats, hub, koshigaya, soka = network
    rt = runtime(koshigaya)
    as_soka = net.Registration(network_url="https://127.0.0.1:1", answer_key=rt.key_statement)
    credentials, _ = identity(files.data_dir, files.directory, Principal("intermediate_server", KOSHIGAYA))
    body = as_soka.model_dump_json().encode()
    path = net.REGISTRATION_PATH.format(city=SOKA)
    headers = {**credentials.headers("provision_network", http_target("PUT", path), body), "Content-Type": "application/json"}
    with mtls_client(files, Principal("intermediate_server", KOSHIGAYA), hub.url) as client:
        refused = client.put(path, content=body, headers=headers)
    assert refused.status_code == 403
    assert hub_route(hub, SOKA) == runtime(soka).listener.url  # Soka's route is still Soka's
    answer = net.ProvisionOutcome(serial_number="20250401090000-" + "0" * 20, query_id="c" * 32, status="refused", refusal_reason="x")
    unknown = signed_post(files, Principal("intermediate_server", KOSHIGAYA), "provision_network", hub.url, net.ANSWERS_PATH, answer)
    assert unknown.status_code == 404


def test_where_tenants_share_a_database_every_read_is_their_own(tmp_path, database_url):
    schema = None if database_url.startswith("sqlite") else schema_name("intermediate_server", "shared")
    db = Database(database_url, schema)
    try:
        Base.metadata.create_all(db.engine)
        views = {city: SimpleNamespace(ctx=SimpleNamespace(db=db), tenant=city) for city in (KOSHIGAYA, SOKA)}
        person = people(1, seed=51)[0]
        number = person.numbers[SOKA]
        imported = net.CopyImport(item_code=net.VACCINATION_RECORDS, people=[net.PersonCopy(integrated_address_number=number, records=[{"record_type": "bcg", "inoculation_date": "2020-01-01"}])])
        with db.session() as session:
            copies.register(session, SOKA, imported, "health_mgmt@112216")
            symbols.link(session, SOKA, [number], ["a" * 40])
            session.add(QueryRow(tenant=SOKA, query_id="d" * 32, integrated_address_number=number, requested_by="health_mgmt", provider=KOSHIGAYA,
                                 affair_code=net.VACCINATION_AFFAIR, procedure_code=net.MOVE_IN_HISTORY_PROCEDURE, item_code=net.VACCINATION_RECORDS,
                                 consent="{}", status="pending", requested_at=utcnow(), updated_at=utcnow()))
            session.add(ReviewItem(tenant=SOKA, serial_number="s1", query_id="e" * 32, requester=KOSHIGAYA, affair_code=net.VACCINATION_AFFAIR,
                                   procedure_code=net.MOVE_IN_HISTORY_PROCEDURE, item_code=net.VACCINATION_RECORDS, integrated_address_number=number,
                                   permit="{}", state="waiting", received_at=utcnow()))
        with db.session() as session:
            assert len(copies.records_of(session, SOKA, number, net.VACCINATION_RECORDS)) == 1
            assert copies.records_of(session, KOSHIGAYA, number, net.VACCINATION_RECORDS) == []
            assert copies.person_copy(session, KOSHIGAYA, number) == [] and copies.export(session, KOSHIGAYA, net.VACCINATION_RECORDS, None, 10) == []
            assert copies.digests(session, KOSHIGAYA, net.VACCINATION_RECORDS, None, 10) == []
            assert symbols.person_of(session, SOKA, "a" * 40) == number and symbols.person_of(session, KOSHIGAYA, "a" * 40) is None
        assert querying.result(views[SOKA], "d" * 32, None).status == "pending"
        with pytest.raises(NotFound):
            querying.result(views[KOSHIGAYA], "d" * 32, None)
        assert len(providing.waiting(views[SOKA])) == 1 and providing.waiting(views[KOSHIGAYA]) == []
        with db.session() as session:
            (decided,) = providing._decide_reviews_in(views[KOSHIGAYA], session, [providing.Verdict("s1", "reviewer-1", release=False, reason="x")])
        assert isinstance(decided, NotFound)
        assert [item["state"] for item in providing.waiting(views[SOKA])] == ["waiting"]
    finally:
        db.dispose()
