"""The prefecture server (simulated), over real HTTPS with mutual TLS: it keeps the newest
record of each person of each city, looks people up in other cities, answers range
digests, and serves each city's CS for its own city only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.juki_prefecture import store
from services.juki_prefecture.models import IdentityCopy
from shared.contracts.juki import (
    IDENTITIES_PATH,
    RANGE_DIGESTS_PATH,
    RANGE_ENTRIES_PATH,
    SEARCH_PATH,
    IdentityBatch,
    range_digest,
)
from shared.errors import InvalidRequest
from shared.trust import Principal
from tests.unit.test_juki_support import (
    BASE_TIME,
    KOSHIGAYA,
    SOKA,
    identity_record,
    living_elsewhere,
    mtls_client,
    people,
    prepare_pki,
    start_prefecture,
)

CS_KOSHIGAYA = Principal("juki_cs", KOSHIGAYA)
CS_SOKA = Principal("juki_cs", SOKA)
JSON = {"Content-Type": "application/json"}


def _put(client, city: str, records) -> dict:
    response = client.put(IDENTITIES_PATH.format(city=city), content=IdentityBatch(records=records).model_dump_json(), headers=JSON)
    assert response.status_code == 200, response.text
    return response.json()


def _rows(prefecture, city: str) -> dict[str, IdentityCopy]:
    with prefecture.app.state.context.db.session() as session:
        return {r.resident_code: r for r in session.scalars(select(IdentityCopy).where(IdentityCopy.city == city))}


@pytest.fixture
def prefecture(stack_files, database_url):
    prepare_pki(stack_files)
    with start_prefecture(stack_files, database_url) as server:
        yield server


def test_the_newest_record_of_each_person_is_kept_and_repeats_change_nothing(stack_files, prefecture):
    person, other = people(2)
    older = identity_record(person, at=BASE_TIME)
    newer = identity_record(person, at=BASE_TIME + timedelta(days=1), address="埼玉県越谷市越ヶ谷四丁目2番1号")
    with mtls_client(stack_files, CS_KOSHIGAYA, prefecture.url) as client:
        first = _put(client, KOSHIGAYA, [older, identity_record(other), newer])
        repeat = _put(client, KOSHIGAYA, [older, newer])  # a batch sent again after a lost answer
    held = _rows(prefecture, KOSHIGAYA)
    assert first == {"received": 3, "applied": 3}
    assert repeat == {"received": 2, "applied": 1}  # the older one is refused, the same one is harmless
    assert held[person.resident_code].address == "埼玉県越谷市越ヶ谷四丁目2番1号"
    assert held[person.resident_code].digest == newer.digest()
    assert set(held) == {person.resident_code, other.resident_code}


def test_lookups_find_other_cities_people_and_never_the_asking_citys(stack_files, prefecture, database_url):
    mover, born_same_day, local = people(3, seed=21)
    twin = living_elsewhere(born_same_day, "埼玉県草加市高砂一丁目1番1号")
    with mtls_client(stack_files, CS_KOSHIGAYA, prefecture.url) as koshigaya, mtls_client(stack_files, CS_SOKA, prefecture.url) as soka:
        _put(koshigaya, KOSHIGAYA, [identity_record(mover, status="moved_out"), identity_record(local)])
        _put(soka, SOKA, [identity_record(living_elsewhere(mover, "埼玉県草加市住吉一丁目5番8号"), at=BASE_TIME + timedelta(days=2))])
        _put(soka, SOKA, [identity_record(twin)])
        by_number = koshigaya.post(SEARCH_PATH, json={"my_number": mover.my_number}).json()
        by_code = soka.post(SEARCH_PATH, json={"resident_code": mover.resident_code}).json()
        by_birth = koshigaya.post(SEARCH_PATH, json={"birth_date": born_same_day.birth_date.isoformat(), "sex": born_same_day.sex}).json()
        own_only = koshigaya.post(SEARCH_PATH, json={"resident_code": local.resident_code}).json()
    assert [(r["city"], r["record"]["address"]) for r in by_number["records"]] == [(SOKA, "埼玉県草加市住吉一丁目5番8号")]
    assert [(r["city"], r["record"]["status"]) for r in by_code["records"]] == [(KOSHIGAYA, "moved_out")]
    assert {r["record"]["resident_code"] for r in by_birth["records"]} >= {twin.resident_code}
    assert all(r["city"] == SOKA for r in by_birth["records"])
    assert own_only == {"records": [], "truncated": False}


def test_a_city_may_act_only_for_itself_and_only_a_cs_may_ask(stack_files, prefecture):
    person = people(1)[0]
    body = IdentityBatch(records=[identity_record(person)]).model_dump_json()
    with mtls_client(stack_files, CS_SOKA, prefecture.url) as soka:
        forged = soka.put(IDENTITIES_PATH.format(city=KOSHIGAYA), content=body, headers=JSON)
        peek = soka.post(RANGE_DIGESTS_PATH.format(city=KOSHIGAYA), json={"prefixes": [""]})
    with mtls_client(stack_files, Principal("health_mgmt", KOSHIGAYA), prefecture.url) as health:
        not_a_cs = health.post(SEARCH_PATH, json={"my_number": person.my_number})
    for refused in (forged, peek, not_a_cs):
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:renkei:problem:forbidden"
    assert _rows(prefecture, KOSHIGAYA) == {}
    logged = {(e.actor, e.outcome) for e in prefecture.app.state.context.oplog.entries()}
    assert ("juki_cs@112216", "http-403") in logged and ("health_mgmt@112224", "http-403") in logged


def test_bad_requests_are_refused_with_problem_details(stack_files, prefecture):
    with mtls_client(stack_files, CS_KOSHIGAYA, prefecture.url) as client:
        two_keys = client.post(SEARCH_PATH, json={"my_number": "123456789018", "resident_code": "24727059608"})
        bad_number = client.post(SEARCH_PATH, json={"my_number": "123456789010"})
        extra = client.post(RANGE_DIGESTS_PATH.format(city=KOSHIGAYA), json={"prefixes": ["1"], "all": True})
        bad_prefix = client.post(RANGE_DIGESTS_PATH.format(city=KOSHIGAYA), json={"prefixes": ["12a"]})
    for refused in (two_keys, bad_number, extra, bad_prefix):
        assert refused.status_code == 422
        assert refused.json()["type"] == "urn:renkei:problem:invalid-request"


def test_range_digests_and_entries_describe_what_is_held(stack_files, prefecture):
    residents = people(60, seed=4)
    records = [identity_record(r) for r in residents]
    with mtls_client(stack_files, CS_KOSHIGAYA, prefecture.url) as client:
        _put(client, KOSHIGAYA, records)
        digests = client.post(RANGE_DIGESTS_PATH.format(city=KOSHIGAYA), json={"prefixes": ["", "0", "00"]}).json()["ranges"]
        prefix = records[0].resident_code[:2]
        entries = client.post(RANGE_ENTRIES_PATH.format(city=KOSHIGAYA), json={"prefixes": [prefix]}).json()["entries"]
    pairs = [(r.resident_code, r.digest()) for r in records]
    expected = {p: [(c, d) for c, d in pairs if c.startswith(p)] for p in ("", "0", "00")}
    assert {d["prefix"]: (d["count"], d["digest"]) for d in digests} == {
        p: (len(e), range_digest(e)) for p, e in expected.items()
    }
    assert sorted((e["resident_code"], e["digest"]) for e in entries) == sorted((c, d) for c, d in pairs if c.startswith(prefix))


def test_entries_of_a_range_too_large_are_refused(stack_files, prefecture):
    records = [identity_record(r) for r in people(30, seed=8)]
    with mtls_client(stack_files, CS_KOSHIGAYA, prefecture.url) as client:
        _put(client, KOSHIGAYA, records)
    with prefecture.app.state.context.db.session() as session:
        with pytest.raises(InvalidRequest, match="more than 10 records"):
            store.range_entries(session, KOSHIGAYA, [""], max_entries=10)
        assert len(store.range_entries(session, KOSHIGAYA, [""], max_entries=30)) == 30


def test_health_and_metrics_answer_any_peer_of_the_local_ca(stack_files, prefecture):
    with mtls_client(stack_files, Principal("ops_console"), prefecture.url) as console:
        assert console.get("/readyz").json()["status"] == "ready"
        with mtls_client(stack_files, CS_KOSHIGAYA, prefecture.url) as cs:
            _put(cs, KOSHIGAYA, [identity_record(people(1)[0])])
        scrape = console.get("/metrics")
    assert scrape.status_code == 200
    assert 'renkei_http_requests_total{method="PUT"' in scrape.text
