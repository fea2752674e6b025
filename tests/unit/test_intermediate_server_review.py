"""Items flagged no-auto-response (自動応答不可, M26) wait for a reviewer at the provider, and
the answer travels only once released; a refusal travels instead when refused."""

from __future__ import annotations

import pytest

from renkei.testkit import staff_headers
from shared.contracts import network as net
from tests.unit.test_intermediate_server_support import (
    HEALTH,
    KOSHIGAYA,
    OP,
    SOKA,
    announce,
    call,
    ledger_records,
    people,
    symbol_count,
    two_cities,
    vaccination_query,
    wait_for_result,
    wait_until,
)

BENEFIT = {"benefit_kind": "medical_expenses", "decided_on": "2021-06-01", "amount_yen": 48000}


@pytest.fixture
def network(tmp_path, database_url):
    with two_cities(tmp_path, database_url) as (files, nats, _hub, k, s):
        persons = people(2, seed=61)
        announce(files, nats, SOKA, persons)
        announce(files, nats, KOSHIGAYA, persons)
        wait_until(lambda: symbol_count(s) == 2 and symbol_count(k) == 2, what="symbols")
        copy = net.CopyImport(item_code=net.VACCINATION_BENEFITS, people=[net.PersonCopy(integrated_address_number=p.numbers[SOKA], records=[BENEFIT]) for p in persons])
        assert call(files, nats, HEALTH[SOKA], OP["intermediate_server.register_copies"], SOKA, copy).records == 2
        yield files, nats, k, s, persons


def _ask_benefits(files, nats, person) -> net.QueryResult:
    query = vaccination_query(person, affair_code="JM01400000000002", procedure_code="JT01400000002701", item_code=net.VACCINATION_BENEFITS)
    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, query)
    return wait_for_result(files, nats, KOSHIGAYA, accepted.query_id, final=False)


def test_a_held_answer_travels_only_once_a_reviewer_releases_it(network):
    files, nats, koshigaya, soka, (person, _) = network
    held = _ask_benefits(files, nats, person)
    assert held.status == "held" and held.records is None
    reviewer = staff_headers(soka, ["provision_reviewer"])
    (waiting,) = soka.get("/review", headers=reviewer).json()
    assert waiting["serial_number"] == held.serial_number and waiting["integrated_address_number"] == person.numbers[SOKA]
    assert soka.get(f"/copies/{person.numbers[SOKA]}", headers=reviewer).json()["items"][0]["records"] == [BENEFIT]
    operator = staff_headers(soka, ["query_operator"])
    assert soka.post(f"/review/{held.serial_number}/release", headers=operator).status_code == 403
    released = soka.post(f"/review/{held.serial_number}/release", headers=reviewer)
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert soka.post(f"/review/{held.serial_number}/release", headers=reviewer).status_code == 409  # decided once
    result = wait_for_result(files, nats, KOSHIGAYA, held.query_id)
    assert result.status == "answered" and result.records == [BENEFIT]
    assert [r.outcome for r in ledger_records(soka)] == ["held_for_review", "released"]
    assert [(r.kind, r.outcome) for r in ledger_records(koshigaya)] == [("query", "requested"), ("answer_received", "provided")]
    assert soka.get("/review", headers=reviewer).json() == []


def test_a_refused_review_reaches_the_requester_as_a_refusal_with_its_reason(network):
    files, nats, koshigaya, soka, (_, person) = network
    held = _ask_benefits(files, nats, person)
    reviewer = staff_headers(soka, ["provision_reviewer"])
    assert soka.post(f"/review/{held.serial_number}/refuse", headers=reviewer, json={}).status_code == 422  # a refusal needs its reason
    refused = soka.post(f"/review/{held.serial_number}/refuse", headers=reviewer, json={"reason": "本人確認中のため回答保留"})
    assert refused.status_code == 200
    result = wait_for_result(files, nats, KOSHIGAYA, held.query_id)
    assert result.status == "refused" and "本人確認中のため回答保留" in result.refusal_reason and result.records is None
    assert [(r.outcome, r.refusal_reason) for r in ledger_records(soka)] == [("held_for_review", None), ("refused", "本人確認中のため回答保留")]
    assert ledger_records(koshigaya)[-1].outcome == "refused"


def test_a_release_whose_record_cannot_be_written_leaves_the_item_waiting_and_nothing_delivered(network, monkeypatch):
    """M28: a decision and its record stand or fall together; the reviewer can try again."""
    files, nats, _koshigaya, soka, (person, _) = network
    held = _ask_benefits(files, nats, person)
    reviewer = staff_headers(soka, ["provision_reviewer"])

    def refuse(*_args, **_kwargs):
        raise RuntimeError("the ledger cannot be written")

    monkeypatch.setattr(soka.app.state.context.ledger, "append_in", refuse)
    refused = soka.post(f"/review/{held.serial_number}/release", headers=reviewer)
    assert refused.status_code == 503 and "nothing changed" in refused.json()["detail"]
    (waiting,) = soka.get("/review", headers=reviewer).json()
    assert waiting["serial_number"] == held.serial_number and waiting["state"] == "waiting"
    assert [r.outcome for r in ledger_records(soka)] == ["held_for_review"]
    monkeypatch.undo()
    assert soka.post(f"/review/{held.serial_number}/release", headers=reviewer).json()["status"] == "released"
    assert wait_for_result(files, nats, KOSHIGAYA, held.query_id).records == [BENEFIT]
    assert [r.outcome for r in ledger_records(soka)] == ["held_for_review", "released"]


def test_an_unknown_item_is_not_found_and_a_decided_one_cannot_be_decided_again(network):
    files, nats, _koshigaya, soka, (person, _) = network
    held = _ask_benefits(files, nats, person)
    reviewer = staff_headers(soka, ["provision_reviewer"])
    assert soka.post(f"/review/{'0' * 40}/release", headers=reviewer).status_code == 404
    assert soka.post(f"/review/{held.serial_number}/refuse", headers=reviewer, json={"reason": "確認中"}).status_code == 200
    again = soka.post(f"/review/{held.serial_number}/release", headers=reviewer)
    assert again.status_code == 409 and "refused" in again.json()["detail"]
    assert [r.outcome for r in ledger_records(soka)] == ["held_for_review", "refused"]
