"""The CS terminal over HTTP: card checks (M01), 4-item searches (logged with their purpose),
a person's identity information, consistency checks; every route for the right staff only."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from renkei.testkit import staff_headers
from services.juki_cs.app import create_app
from services.juki_cs.matching import DATA_DIR
from services.juki_cs.models import CardVerification, SearchRecord
from services.juki_cs.runtime import runtime_of
from services.juki_prefecture import store
from services.juki_prefecture.models import IdentityCopy
from services.resident_registry.population import Resident
from shared.contracts.juki import IDENTITIES_PATH, IdentityBatch
from shared.models import InboxEntry
from shared.trust import Principal
from tests.unit.test_juki_support import (
    BASE_TIME,
    KOSHIGAYA,
    SOKA,
    arrivals,
    change,
    cs_settings,
    identity_record,
    living_elsewhere,
    mtls_client,
    people,
    prepare_pki,
    publish,
    start_prefecture,
    wait_until,
)

PURPOSE = "予防接種の対象者確認"


@dataclass
class Counter:
    client: TestClient
    app: object
    residents: list[Resident]
    moved: Resident
    deceased: Resident
    prefecture: object
    clerk: dict
    admin: dict

    @property
    def db(self):
        return self.app.state.context.db


@pytest.fixture
def counter(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    residents = people(80, seed=31)
    moved, deceased = residents[-2:]
    with start_prefecture(stack_files, database_url) as prefecture:
        app = create_app(cs_settings(stack_files, nats_secured, database_url, prefecture_url=prefecture.url))
        with TestClient(app) as client:
            runtime = runtime_of(app.state.context)
            later = BASE_TIME + timedelta(days=10)
            publish(stack_files, nats_secured, [*arrivals(residents), change(moved, "move_out", at=later), change(deceased, "death", at=later)])
            wait_until(lambda: len(runtime.index) == 78, what="the residents")
            # Changes may be applied out of order (a retried message comes back later): an older
            # change then changes nothing, so wait for every message and an empty backlog.
            wait_until(lambda: _inbox_count(app) == 82, what="every change")
            wait_until(lambda: runtime.forwarder.backlog().pending == 0, what="the forwarding")
            clerk = staff_headers(client, roles=["counter_clerk"])
            admin = staff_headers(client, roles=["juki_admin"])
            yield Counter(client, app, residents[:-2], moved, deceased, prefecture, clerk, admin)


def _inbox_count(app) -> int:
    with app.state.context.db.session() as session:
        return session.scalar(select(func.count()).select_from(InboxEntry)) or 0


def _chip(person: Resident, **changes) -> dict:
    chip = {
        "my_number": person.my_number,
        "name": person.name_kanji,
        "birth_date": person.birth_date.isoformat(),
        "sex": person.sex,
        "address": person.address,
        "card_expires_on": (date.today() + timedelta(days=365)).isoformat(),
        "card_serial": "AB12CD34EF56",
    }
    chip.update(changes)
    return chip


def _variants() -> dict[str, str]:
    with open(DATA_DIR / "character_variants.json", encoding="utf-8") as handle:
        return {group[0]: group[1] for group in json.load(handle)["groups"]}


def _half_width(kana: str) -> str:
    """Full-width katakana → half-width (ガ → ｶﾞ), the inverse of NFKC on them."""
    table = {}
    for code in range(0xFF61, 0xFFA0):
        for mark in ("", "\uff9e", "\uff9f"):
            full = unicodedata.normalize("NFKC", chr(code) + mark)
            if len(full) == 1:
                table.setdefault(full, chr(code) + mark)
    return "".join(table.get(char, char) for char in kana.replace("\u3000", " "))


# --- card checks (M01) ------------------------------------------------------------------


def test_a_card_whose_items_agree_verifies_the_person(counter):
    person = counter.residents[3]
    written_otherwise = person.address.replace("埼玉県", "").translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    reply = counter.client.post(
        "/identity/card-checks",
        json=_chip(person, address=written_otherwise, sex="1" if person.sex == "male" else "2"),
        headers=counter.clerk,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["verification_id"] >= 1
    assert {k: v for k, v in reply.json().items() if k != "verification_id"} == {
        "verified": True,
        "reasons": [],
        "mismatched_items": [],
        "resident_code": person.resident_code,
        "status": "resident",
    }


@pytest.mark.parametrize(
    ("case", "expected_reasons", "expected_items"),
    [
        ("expired", ["card_expired"], []),
        ("unknown", ["unknown_person"], []),
        ("mismatch", ["item_mismatch"], ["birth_date", "sex"]),
        ("moved_out", ["moved_out"], []),
        ("deceased", ["deceased"], []),
        ("expired_and_mismatch", ["card_expired", "item_mismatch"], ["address"]),
    ],
)
def test_a_card_is_refused_with_the_reason(counter, case, expected_reasons, expected_items):
    person = counter.residents[5]
    other_sex = "female" if person.sex == "male" else "male"
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    chips = {
        "expired": _chip(person, card_expires_on=yesterday),
        "unknown": _chip(person, my_number="123456789018"),
        "mismatch": _chip(person, birth_date=(person.birth_date + timedelta(days=1)).isoformat(), sex=other_sex),
        "moved_out": _chip(counter.moved),
        "deceased": _chip(counter.deceased),
        "expired_and_mismatch": _chip(person, card_expires_on=yesterday, address="埼玉県越谷市越ヶ谷四丁目2番1号"),
    }
    reply = counter.client.post("/identity/card-checks", json=chips[case], headers=counter.clerk)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["verified"] is False
    assert body["reasons"] == expected_reasons
    assert body["mismatched_items"] == expected_items


def test_every_card_check_is_recorded(counter):
    person = counter.residents[6]
    counter.client.post("/identity/card-checks", json=_chip(person), headers=counter.clerk)
    counter.client.post("/identity/card-checks", json=_chip(counter.deceased, card_serial="ZZ99"), headers=counter.clerk)
    with counter.db.session() as session:
        rows = [(r.card_serial, r.resident_code, r.verified, r.reasons) for r in session.scalars(select(CardVerification).order_by(CardVerification.id))]
    logged = {(e.person_key, e.outcome) for e in counter.app.state.context.oplog.entries("juki_cs.card_check")}
    assert rows == [("AB12CD34EF56", person.resident_code, True, ""), ("ZZ99", counter.deceased.resident_code, False, "deceased")]
    assert logged == {(person.resident_code, "ok"), (counter.deceased.resident_code, "ok")}


def test_unreadable_chip_items_are_refused(counter):
    person = counter.residents[1]
    bad_date = counter.client.post("/identity/card-checks", json=_chip(person, birth_date="昭和99年13月1日"), headers=counter.clerk)
    bad_sex = counter.client.post("/identity/card-checks", json=_chip(person, sex="X"), headers=counter.clerk)
    bad_number = counter.client.post("/identity/card-checks", json=_chip(person, my_number="123456789010"), headers=counter.clerk)
    for refused in (bad_date, bad_sex, bad_number):
        assert refused.status_code == 422 and refused.json()["type"] == "urn:renkei:problem:invalid-request"


# --- 4-item search ----------------------------------------------------------------------


def _search(counter, **items) -> dict:
    reply = counter.client.post("/identity/searches", json={"purpose": PURPOSE, **items}, headers=counter.clerk)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_four_items_find_the_person_however_they_are_written(counter):
    variants = _variants()
    with_variant = next(r for r in counter.residents if any(c in variants for c in r.name_kanji))
    plain = counter.residents[10]
    era = f"{'昭和' if plain.birth_date.year < 1989 else '平成'}"
    era_year = plain.birth_date.year - (1925 if era == "昭和" else 1988)
    cases = {
        "old forms": (with_variant, {"name": "".join(variants.get(c, c) for c in with_variant.name_kanji), "birth_date": with_variant.birth_date.isoformat()}),
        "half-width kana": (plain, {"name": _half_width(plain.name_kana), "birth_date": plain.birth_date.isoformat(), "sex": plain.sex}),
        "hiragana": (plain, {"name": "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in plain.name_kana), "birth_date": plain.birth_date.isoformat()}),
        "wildcard": (plain, {"name": "＊" + plain.name_kanji[1:], "birth_date": plain.birth_date.strftime("%Y%m%d"), "address": plain.address}),
        "japanese calendar": (plain, {"name": plain.name_kanji, "birth_date": f"{era}{era_year}年{plain.birth_date.month}月{plain.birth_date.day}日"}),
    }
    for case, (person, items) in cases.items():
        if case == "japanese calendar" and plain.birth_date.year < 1927:
            continue
        found = _search(counter, **items)
        assert found["candidates"], case
        best = found["candidates"][0]
        assert best["resident_code"] == person.resident_code, case
        assert {"name", "birth_date"} <= set(best["matched_items"]), case
        assert best["city"] == KOSHIGAYA and best["status"] == "resident"
        assert found["prefecture_consulted"] is False


def test_every_search_is_logged_with_its_purpose(counter):
    person = counter.residents[12]
    found = _search(counter, name=person.name_kanji, birth_date=person.birth_date.isoformat())
    _search(counter, name="存在　しない", birth_date="1900-01-01")
    with counter.db.session() as session:
        records = [(r.purpose, r.items, r.candidates, r.channel, r.request_id) for r in session.scalars(select(SearchRecord).order_by(SearchRecord.id))]
    logged = counter.app.state.context.oplog.entries("juki_cs.four_item_search")
    assert [r[:4] for r in records] == [(PURPOSE, "name,birth_date", len(found["candidates"]), "http"), (PURPOSE, "name,birth_date", 0, "http")]
    assert len(logged) == 2 and {e.outcome for e in logged} == {"ok"}
    assert {e.request_id for e in logged} == {r[4] for r in records}  # the two records name each other
    assert person.resident_code in {e.person_key for e in logged}


def test_a_search_finds_non_residents_at_the_prefecture_when_asked(stack_files, counter):
    soka_person = living_elsewhere(people(1, seed=77)[0], "埼玉県草加市高砂二丁目7番3号")
    with mtls_client(stack_files, Principal("juki_cs", SOKA), counter.prefecture.url) as soka:
        body = IdentityBatch(records=[identity_record(soka_person)]).model_dump_json()
        assert soka.put(IDENTITIES_PATH.format(city=SOKA), content=body, headers={"Content-Type": "application/json"}).status_code == 200
    items = {"name": soka_person.name_kanji, "birth_date": soka_person.birth_date.isoformat(), "address": "草加市高砂2-7-3"}
    here_only = _search(counter, **items)
    everywhere = _search(counter, **items, other_cities=True)
    assert soka_person.resident_code not in {c["resident_code"] for c in here_only["candidates"]}
    best = everywhere["candidates"][0]
    assert everywhere["prefecture_consulted"] is True
    assert (best["resident_code"], best["city"]) == (soka_person.resident_code, SOKA)
    assert set(best["matched_items"]) == {"name", "birth_date", "address"}


def test_bad_searches_are_refused(counter):
    def post(body):
        return counter.client.post("/identity/searches", json=body, headers=counter.clerk)

    too_broad = post({"purpose": PURPOSE, "sex": "男"})
    no_purpose = post({"name": "佐藤"})
    bad_date = post({"purpose": PURPOSE, "name": "佐藤", "birth_date": "2020-02-30"})
    unknown_field = post({"purpose": PURPOSE, "name": "佐藤", "my_number": "123456789018"})
    for refused in (too_broad, no_purpose, bad_date, unknown_field):
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "urn:renkei:problem:invalid-request"
    assert "at least a name" in too_broad.json()["detail"]


# --- one person, and who may do what ---------------------------------------------------


def test_a_persons_identity_information_is_shown_without_the_my_number(counter):
    person = counter.residents[2]
    shown = counter.client.get(f"/identity/{person.resident_code}", headers=counter.clerk)
    moved = counter.client.get(f"/identity/{counter.moved.resident_code}", headers=counter.clerk)
    missing = counter.client.get("/identity/24727059608", headers=counter.clerk)
    malformed = counter.client.get("/identity/12345", headers=counter.clerk)
    assert shown.status_code == 200 and shown.json()["name"] == person.name_kanji
    assert "my_number" not in shown.json() and person.my_number not in shown.text
    assert moved.json()["status"] == "moved_out"
    assert missing.status_code == 404 and malformed.status_code == 422
    logged = {e.person_key for e in counter.app.state.context.oplog.entries("juki_cs.identity_read")}
    assert person.resident_code in logged


def test_staff_reach_only_what_their_role_needs(counter):
    person = counter.residents[0]
    search = {"purpose": PURPOSE, "name": person.name_kanji}
    anonymous = counter.client.post("/identity/searches", json=search)
    admin_checks_card = counter.client.post("/identity/card-checks", json=_chip(person), headers=counter.admin)
    clerk_runs_check = counter.client.post("/consistency-checks", json={}, headers=counter.clerk)
    clerk_reads_forwarding = counter.client.get("/forwarding", headers=counter.clerk)
    assert anonymous.status_code == 401 and anonymous.json()["type"] == "urn:renkei:problem:unauthenticated"
    for refused in (admin_checks_card, clerk_runs_check, clerk_reads_forwarding):
        assert refused.status_code == 403 and refused.json()["type"] == "urn:renkei:problem:forbidden"
    refusals = {(e.operation, e.outcome) for e in counter.app.state.context.oplog.entries()}
    assert ("juki_cs.four_item_search", "http-401") in refusals
    assert ("juki_cs.card_check", "http-403") in refusals and ("juki_cs.consistency_check", "http-403") in refusals
    with counter.db.session() as session:
        assert session.scalars(select(SearchRecord)).first() is None  # refused searches searched nothing


# --- consistency check and forwarding ---------------------------------------------------


def test_a_consistency_check_finds_a_difference_and_a_repair_removes_it(counter):
    assert counter.client.get("/forwarding", headers=counter.admin).json()["pending"] == 0
    first = counter.client.post("/consistency-checks", json={}, headers=counter.admin)
    assert first.status_code == 201, first.text
    assert first.json()["outcome"] == "consistent" and first.json()["records_here"] == first.json()["records_there"] == 80
    assert first.json()["digests_exchanged"] == 1 and first.json()["records_exchanged"] == 0
    assert first.json()["forwarding_pending"] == 0

    altered = counter.residents[20]
    with counter.prefecture.app.state.context.db.session() as session:
        row = session.get(IdentityCopy, (KOSHIGAYA, altered.resident_code))
        row.address = "埼玉県越谷市越ヶ谷一丁目1番1号"
        row.digest = store.record_of(row).digest()
    found = counter.client.post("/consistency-checks", json={"repair": True}, headers=counter.admin).json()
    assert found["outcome"] == "differences" and found["different"] == [altered.resident_code]
    assert found["only_here"] == found["only_there"] == [] and found["repaired"] == 1
    assert found["forwarding_pending"] == 1  # the repair itself, queued
    assert counter.client.get(f"/consistency-checks/{found['id']}", headers=counter.admin).json() == found

    runtime = runtime_of(counter.app.state.context)
    wait_until(lambda: runtime.forwarder.backlog().pending == 0, what="the repair to be forwarded")
    again = counter.client.post("/consistency-checks", json={}, headers=counter.admin).json()
    assert again["outcome"] == "consistent"
    assert counter.client.get("/consistency-checks/999", headers=counter.admin).status_code == 404
