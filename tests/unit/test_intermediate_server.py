"""The intermediate server and the hub together, over real sockets: symbols, the provision
database, a query answered end to end, the review queue, retention, statistics.

Each test runs the hub (mutual TLS, its own database and ledger), the intermediate servers
of Koshigaya and Soka (their apps, with their network listeners on real sockets) and a
real nats-server with the stack's users and permissions; the business systems' calls are
made on the bus under their own identities.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts import network as net
from shared.errors import Conflict, Forbidden, InvalidRequest
from tests.unit.test_intermediate_server_support import (
    HEALTH,
    KOSHIGAYA,
    OP,
    SOKA,
    announce,
    call,
    ledger_records,
    people,
    register_doses,
    symbol_count,
    two_cities,
    vaccination_query,
    wait_for_result,
    wait_until,
)


def scrape(client: TestClient) -> dict[tuple, float]:
    text = client.get("/metrics").text
    return {(m.name, tuple(sorted(m.labels.items()))): m.value for family in text_string_to_metric_families(text) for m in family.samples}


@pytest.fixture
def network(tmp_path, database_url):
    with two_cities(tmp_path, database_url) as (files, nats, hub, k, s):
        yield files, nats, hub, k, s


def test_a_move_in_query_is_answered_from_the_neighbours_copy_and_recorded_on_every_side(network):
    files, nats, hub, koshigaya, soka = network
    person, stranger = people(2)
    announce(files, nats, SOKA, [person, stranger])
    announce(files, nats, KOSHIGAYA, [person])
    wait_until(lambda: symbol_count(soka) == 2 and symbol_count(koshigaya) == 1, what="symbols")
    stored = register_doses(files, nats, SOKA, [person, stranger], per_person=4)
    assert stored == net.CopyImportReply(item_code=net.VACCINATION_RECORDS, people=2, records=8)

    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, vaccination_query(person))
    assert isinstance(accepted, net.QueryAccepted) and accepted.status == "pending"
    result = wait_for_result(files, nats, KOSHIGAYA, accepted.query_id)

    assert result.status == "answered", result.refusal_reason
    assert [r["lot_number"] for r in result.records] == ["LOT0X1000", "LOT0X1001", "LOT0X1002", "LOT0X1003"]
    assert result.integrated_address_number == person.numbers[KOSHIGAYA]
    asked = [(r.kind, r.outcome, r.person_key) for r in ledger_records(koshigaya)]
    assert asked == [("query", "requested", person.numbers[KOSHIGAYA]), ("answer_received", "provided", person.numbers[KOSHIGAYA])]
    provided = [(r.kind, r.outcome, r.person_key, r.requester) for r in ledger_records(soka)]
    assert provided == [("provision", "provided", person.numbers[SOKA], KOSHIGAYA)]
    permits = [(r.kind, r.outcome, r.requester, r.provider) for r in ledger_records(hub)]
    assert permits == [("permit", "permit_issued", KOSHIGAYA, SOKA)]
    serials = {r.serial_number for r in ledger_records(koshigaya) + ledger_records(soka) + ledger_records(hub)}
    assert serials == {result.serial_number}

    # What the operators see of it on /metrics: records by item, ledger size, consumer lag.
    scraped = scrape(koshigaya)
    item = net.VACCINATION_RECORDS
    assert scraped[("renkei_provision_records_total", (("item", item), ("kind", "query"), ("outcome", "requested")))] == 1
    assert scraped[("renkei_provision_records_total", (("item", item), ("kind", "answer_received"), ("outcome", "provided")))] == 1
    assert scraped[("renkei_ledger_records", ())] == 2
    assert scraped[("renkei_consumer_pending", (("event", "integrated_address.events.number_assigned"),))] == 0
    koshigaya.app.state.context.ledger.checkpoint()
    assert 0 <= scrape(koshigaya)[("renkei_ledger_checkpoint_age_seconds", ())] < 3600


def test_a_query_for_a_person_without_a_symbol_or_for_an_unentitled_affair_is_refused_and_recorded(network):
    files, nats, _hub, koshigaya, _soka = network
    (person,) = people(1, seed=11)
    no_symbol = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, vaccination_query(person))
    assert isinstance(no_symbol, Conflict)
    other_affair = vaccination_query(person, affair_code="JM00800000000001", procedure_code="JT00800000000101", item_code=net.LOCAL_TAX)
    unentitled = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, other_affair)
    assert isinstance(unentitled, Forbidden)
    records = ledger_records(koshigaya)
    assert [(r.kind, r.outcome) for r in records] == [("query", "refused"), ("query", "refused")]
    assert "no symbol" in records[0].refusal_reason and "not entitled" in records[1].refusal_reason


def test_a_malformed_import_is_refused_with_its_reasons_and_stores_nothing(network):
    files, nats, _hub, _koshigaya, _soka = network
    good, bad = people(2, seed=5)
    request = net.CopyImport(
        item_code=net.VACCINATION_RECORDS,
        people=[
            net.PersonCopy(integrated_address_number=good.numbers[SOKA], records=[{"record_type": "measles", "inoculation_date": "2020-01-10"}]),
            net.PersonCopy(
                integrated_address_number=bad.numbers[SOKA],
                records=[{"record_type": "measles", "inoculation_date": "2020-02-30"}, {"record_type": "bcg", "inoculation_date": "2020-03-01", "blood_type": "A"}],
            ),
        ],
    )
    refused = call(files, nats, HEALTH[SOKA], OP["intermediate_server.register_copies"], SOKA, request)
    assert isinstance(refused, InvalidRequest)
    locations = {tuple(e["loc"]) for e in refused.extensions["errors"]}
    assert locations == {("people", 1, "records", 0, "inoculation_date"), ("people", 1, "records", 1, "blood_type")}
    digests = call(files, nats, HEALTH[SOKA], OP["intermediate_server.copy_digests"], SOKA, net.CopyDigestRequest(item_code=net.VACCINATION_RECORDS))
    assert digests.digests == []
