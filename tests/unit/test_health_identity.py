"""M01: a person proves who they are before the health management takes anything in. A My
Number card is checked at the Juki-net CS terminal and the enrolment quotes that check, which
the CS confirms over the bus for this My Number; the notice card with a photo ID is the
nurse's own check. Either way the proof is recorded with the enrolment."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from renkei.testkit import staff_headers
from services.health_mgmt.app import SPEC
from services.health_mgmt.models import IdentityConfirmation, Subject
from services.integrated_address.app import SPEC as ADDRESS_SPEC
from services.integrated_address.config import Settings as AddressSettings
from services.juki_cs.app import create_app as create_cs
from services.juki_cs.models import CardVerification
from services.juki_cs.runtime import runtime_of
from shared.contracts import REGISTRY
from shared.contracts.juki import CardVerificationQuery
from shared.errors import Forbidden
from shared.models import utcnow
from shared.service import build_app
from shared.trust import Principal
from tests.unit.test_health_support import health_settings
from tests.unit.test_integrated_address import CITY, call, service_settings, wait_for_inbox
from tests.unit.test_juki_support import arrivals, cs_settings, people, publish, wait_until


def _items(person) -> dict:
    return {"name": person.name_kanji, "name_kana": person.name_kana, "sex": person.sex,
            "birth_date": person.birth_date.isoformat(), "address": person.address}


def _chip(person, **changes) -> dict:
    return {"my_number": person.my_number, "name": person.name_kanji, "birth_date": person.birth_date.isoformat(), "sex": person.sex,
            "address": person.address, "card_expires_on": (date.today() + timedelta(days=365)).isoformat(), "card_serial": "AB12CD34EF56",
            **changes}


@pytest.fixture
def counter(stack_files, nats_secured, database_url):
    residents = people(4, seed=41)
    cs = create_cs(cs_settings(stack_files, nats_secured, database_url))
    address = build_app(ADDRESS_SPEC, service_settings(AddressSettings, "integrated_address", stack_files, nats_secured, database_url))
    health = build_app(SPEC, health_settings(stack_files, nats_secured, database_url))
    with TestClient(cs) as cs_client, TestClient(address) as address_client, TestClient(health) as health_client:
        publish(stack_files, nats_secured, arrivals(residents))
        wait_until(lambda: len(runtime_of(cs.state.context).index) == len(residents), what="the CS's residents")
        assert wait_for_inbox(address_client.app.state.context.db, "integrated_address__changed", len(residents)) == len(residents)
        yield residents, cs_client, health_client, staff_headers(cs_client, ["counter_clerk"]), staff_headers(health_client, ["nurse"], user_id="n.kudo")


def test_a_card_checked_at_the_cs_vouches_for_its_holder_only_and_only_for_a_while(counter):
    residents, cs, health, clerk, nurse = counter
    holder, other, unchecked, by_notice = residents
    check = cs.post("/identity/card-checks", json=_chip(holder), headers=clerk).json()
    assert check["verified"]

    def enrol(person, identity):
        return health.post("/subjects", json={"my_number": person.my_number, "items": _items(person), "identity": identity}, headers=nurse)

    card = {"method": "my_number_card", "card_check_id": check["verification_id"]}
    borrowed = enrol(other, card)  # someone else's check
    assert borrowed.status_code == 409 and borrowed.json()["reason"] == "another_person"
    failed = cs.post("/identity/card-checks", json=_chip(unchecked, address="埼玉県越谷市どこか1番"), headers=clerk).json()
    assert not failed["verified"]
    refused = enrol(unchecked, {"method": "my_number_card", "card_check_id": failed["verification_id"]})
    assert refused.status_code == 409 and refused.json()["reason"] == "not_verified"
    assert enrol(unchecked, {"method": "my_number_card", "card_check_id": 10**9}).status_code == 404

    with cs.app.state.context.db.session() as session:  # the check was made three hours ago
        session.execute(update(CardVerification).where(CardVerification.id == check["verification_id"]).values(at=utcnow() - timedelta(hours=3)))
    stale = enrol(holder, card)
    assert stale.status_code == 409 and stale.json()["reason"] == "too_old"
    with cs.app.state.context.db.session() as session:
        session.execute(update(CardVerification).where(CardVerification.id == check["verification_id"]).values(at=utcnow()))

    accepted = enrol(holder, card)
    assert accepted.status_code == 200, accepted.text
    shown = enrol(by_notice, {"method": "notice_card_and_photo_id", "photo_id": "運転免許証"})
    assert shown.status_code == 200, shown.text

    with health.app.state.context.db.session() as session:
        subjects = {s.resident_code for s in session.scalars(select(Subject))}
        proofs = {(p.subject_number, p.method, p.card_check_id, p.photo_id, p.confirmed_by) for p in session.scalars(select(IdentityConfirmation))}
    assert subjects == {holder.resident_code, by_notice.resident_code}  # nothing taken in for the refused
    assert proofs == {
        (accepted.json()["subject"]["integrated_address_number"], "my_number_card", check["verification_id"], None, "n.kudo"),
        (shown.json()["subject"]["integrated_address_number"], "notice_card_and_photo_id", None, "運転免許証", "n.kudo"),
    }


def test_an_enrolment_without_proof_of_identity_is_refused(counter):
    residents, _cs, health, _clerk, nurse = counter
    person = residents[0]
    reply = health.post("/subjects", json={"my_number": person.my_number, "items": _items(person)}, headers=nurse)
    assert reply.status_code == 422 and "identity" in reply.text


def test_only_the_systems_that_take_people_in_may_ask_the_cs_about_a_card_check(counter, stack_files, nats_secured):
    residents, cs, _health, clerk, _nurse = counter
    check = cs.post("/identity/card-checks", json=_chip(residents[0]), headers=clerk).json()
    operation = REGISTRY.operation("juki_cs", "card_verification")
    query = CardVerificationQuery(verification_id=check["verification_id"], my_number=residents[0].my_number)
    asked_by_health = call(stack_files, nats_secured, Principal("health_mgmt", CITY), operation, query)
    assert asked_by_health.verified
    for outsider in ("intermediate_server", "resident_registry"):
        # Its own token over health management's NATS login: past NATS, refused by the allowlist.
        refused = call(stack_files, nats_secured, Principal(outsider, CITY), operation, query, nats_login=Principal("health_mgmt", CITY))
        assert isinstance(refused, Forbidden), refused
