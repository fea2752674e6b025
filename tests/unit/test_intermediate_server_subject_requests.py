"""A person's requests (M34): the counter takes them in, a privacy officer decides them, and an
accepted suspension of use stops the city providing the person's information — every query
refused and recorded as refused — until it is lifted. Real hub, real NATS, real HTTP."""

from __future__ import annotations

from renkei.testkit import staff_headers
from services.intermediate_server.subject_requests import SUSPENDED
from shared.ids import integrated_address_number
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
    runtime,
    symbol_count,
    two_cities,
    vaccination_query,
    wait_for_result,
    wait_until,
)


def _ask(files, nats, person):
    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, vaccination_query(person))
    return wait_for_result(files, nats, KOSHIGAYA, accepted.query_id)


def test_an_accepted_suspension_stops_provision_until_it_is_lifted(tmp_path, database_url):
    with two_cities(tmp_path, database_url) as (files, nats, _hub, koshigaya, soka):
        person, other = people(2, seed=71)
        announce(files, nats, SOKA, [person, other])
        announce(files, nats, KOSHIGAYA, [person, other])
        wait_until(lambda: symbol_count(soka) == 2 and symbol_count(koshigaya) == 2, what="symbols")
        register_doses(files, nats, SOKA, [person, other])
        number = person.numbers[SOKA]
        clerk, officer = staff_headers(soka, ["disclosure_clerk"]), staff_headers(soka, ["privacy_officer"])

        received = soka.post("/subject-requests", headers=clerk, json={
            "kind": "suspension", "integrated_address_number": number, "details": "転居先への情報提供を停止してほしい"})
        assert received.status_code == 201, received.text
        request_id = received.json()["id"]
        assert received.json()["state"] == "received" and not received.json()["suspends_provision"]
        assert _ask(files, nats, person).status == "answered"  # received is not decided: provision goes on

        assert soka.post(f"/subject-requests/{request_id}/decision", headers=clerk, json={"accept": True, "reason": "x"}).status_code == 403
        decided = soka.post(f"/subject-requests/{request_id}/decision", headers=officer, json={"accept": True, "reason": "法第30条による利用停止"})
        assert decided.status_code == 200 and decided.json()["suspends_provision"]
        again = soka.post(f"/subject-requests/{request_id}/decision", headers=officer, json={"accept": False, "reason": "twice"})
        assert again.status_code == 409

        refused = _ask(files, nats, person)
        assert refused.status == "refused" and refused.refusal_reason == f"refused by the provider: {SUSPENDED}" and not refused.records
        assert _ask(files, nats, other).status == "answered"  # only that person
        provided = [(r.outcome, r.refusal_reason) for r in ledger_records(soka) if r.kind == "provision"]
        assert provided[-2:] == [("refused", SUSPENDED), ("provided", None)]

        lifted = soka.post(f"/subject-requests/{request_id}/lift", headers=officer)
        assert lifted.status_code == 200 and not lifted.json()["suspends_provision"]
        assert _ask(files, nats, person).status == "answered"

        listed = soka.get("/subject-requests", headers=clerk, params={"integrated_address_number": number}).json()
        assert [(r["kind"], r["state"], r["decided_by"] is not None, r["lifted_by"] is not None) for r in listed] == [("suspension", "accepted", True, True)]
        assert koshigaya.get("/subject-requests", headers=staff_headers(koshigaya, ["privacy_officer"]),
                             params={"integrated_address_number": number}).json() == []  # another city's are not there
        logged = {(e.operation, e.person_key) for e in runtime(soka).ctx.oplog.entries() if "subject_requests" in e.operation}
    assert ("terminal.subject_requests.receive kind=suspension", number) in logged
    assert ("terminal.subject_requests.decide suspension accepted", number) in logged
    assert ("terminal.subject_requests.lift", number) in logged


def test_nobody_decides_a_request_they_received_and_outsiders_are_refused(tmp_path, database_url):
    with two_cities(tmp_path, database_url) as (_files, _nats, _hub, koshigaya, soka):
        both = staff_headers(soka, ["disclosure_clerk", "privacy_officer"])
        mistyped = {"kind": "correction", "integrated_address_number": "112216000000019", "details": "接種日の誤り"}
        assert soka.post("/subject-requests", headers=both, json=mistyped).status_code == 422
        body = {**mistyped, "integrated_address_number": integrated_address_number(SOKA, "000000001")}
        request_id = soka.post("/subject-requests", headers=both, json=body).json()["id"]
        own = soka.post(f"/subject-requests/{request_id}/decision", headers=both, json={"accept": True, "reason": "ok"})
        assert own.status_code == 403 and "received" in own.json()["detail"]
        refused = soka.post(f"/subject-requests/{request_id}/decision", headers=staff_headers(soka, ["privacy_officer"]),
                            json={"accept": False, "reason": "記録どおり"})
        assert refused.json()["state"] == "refused"
        assert soka.post(f"/subject-requests/{request_id}/lift", headers=staff_headers(soka, ["privacy_officer"])).status_code == 409

        assert soka.post("/subject-requests", json=body).status_code == 401
        for role in ("query_operator", "provision_reviewer", "administrator", "auditor"):
            assert soka.post("/subject-requests", headers=staff_headers(soka, [role]), json=body).status_code == 403
        elsewhere = koshigaya.post(f"/subject-requests/{request_id}/decision", headers=staff_headers(koshigaya, ["privacy_officer"]),
                                   json={"accept": True, "reason": "ok"})
        assert elsewhere.status_code == 404
