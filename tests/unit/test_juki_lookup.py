"""``juki_cs.identity_lookup`` on the bus: residents here first, then other cities' people at the
prefecture server (flow [04]); only the allowlisted business systems may ask."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import nats
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from renkei.processes import free_port
from renkei.testkit import identity, make_bus
from services.juki_cs.app import create_app
from services.juki_cs.models import SearchRecord
from services.juki_cs.runtime import runtime_of
from shared.bus import ERROR_HEADER, inbox_prefix
from shared.contracts import REGISTRY
from shared.contracts.juki import IDENTITIES_PATH, IdentityBatch, IdentityQuery
from shared.errors import Forbidden, InvalidRequest, Unavailable, problem_from_dict
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

LOOKUP = REGISTRY.operation("juki_cs", "identity_lookup")
HEALTH = Principal("health_mgmt", KOSHIGAYA)
WELFARE = Principal("welfare_address", KOSHIGAYA)
PURPOSE = "予防接種履歴の照会"


async def _ask(stack_files, nats, principal: Principal, query: IdentityQuery):
    bus = make_bus(stack_files.data_dir, stack_files.directory, principal)
    await bus.connect(nats.url, *stack_files.login(principal))
    try:
        return await bus.request(LOOKUP, KOSHIGAYA, query)
    except Exception as exc:
        return exc
    finally:
        await bus.close()


def ask(stack_files, nats, query: IdentityQuery, principal: Principal = HEALTH):
    return asyncio.run(_ask(stack_files, nats, principal, query))


@pytest.fixture
def city(stack_files, nats_secured, database_url):
    """Koshigaya's CS holding 30 residents (one moved to Soka), and Soka's records at the prefecture."""
    prepare_pki(stack_files)
    residents = people(30, seed=41)
    mover = residents[-1]
    soka_people = [living_elsewhere(p, f"埼玉県草加市高砂一丁目{i + 1}番1号") for i, p in enumerate(people(5, seed=42))]
    moved_in = living_elsewhere(mover, "埼玉県草加市住吉二丁目3番4号")
    with start_prefecture(stack_files, database_url) as prefecture:
        with mtls_client(stack_files, Principal("juki_cs", SOKA), prefecture.url) as soka:
            records = [identity_record(p) for p in soka_people] + [identity_record(moved_in, at=BASE_TIME + timedelta(days=5))]
            body = IdentityBatch(records=records).model_dump_json()
            assert soka.put(IDENTITIES_PATH.format(city=SOKA), content=body, headers={"Content-Type": "application/json"}).status_code == 200
        app = create_app(cs_settings(stack_files, nats_secured, database_url, prefecture_url=prefecture.url))
        with TestClient(app):
            publish(stack_files, nats_secured, [*arrivals(residents), change(mover, "move_out", at=BASE_TIME + timedelta(days=5))])
            wait_until(lambda: _count(app, InboxEntry) == 31, what="every change")
            wait_until(lambda: runtime_of(app.state.context).index.get(mover.resident_code) is None)
            yield app, residents[:-1], mover, soka_people


def _count(app, model) -> int:
    with app.state.context.db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_resident_is_found_here_by_my_number_and_confirmed_by_the_four_items(stack_files, nats_secured, city):
    _, residents, _, _ = city
    person = residents[4]
    plain = ask(stack_files, nats_secured, IdentityQuery(my_number=person.my_number, purpose=PURPOSE))
    confirmed = ask(
        stack_files,
        nats_secured,
        IdentityQuery(my_number=person.my_number, name=person.name_kanji, birth_date=person.birth_date, purpose=PURPOSE),
    )
    wrong_birth = ask(
        stack_files,
        nats_secured,
        IdentityQuery(
            my_number=person.my_number, name=person.name_kanji, birth_date=person.birth_date - timedelta(days=400), purpose=PURPOSE
        ),
    )
    assert plain.prefecture_consulted is False
    assert [(c.resident_code, c.city, c.status, c.score) for c in plain.candidates] == [(person.resident_code, KOSHIGAYA, "resident", 1.0)]
    assert confirmed.candidates[0].matched_items == ["birth_date", "name"] and confirmed.candidates[0].score == 1.0
    assert wrong_birth.candidates[0].matched_items == ["name"] and wrong_birth.candidates[0].score < 1.0  # not confirmed (M03)


def test_someone_who_moved_away_is_found_here_and_where_they_live_now(stack_files, nats_secured, city):
    _, _, mover, _ = city
    found = ask(stack_files, nats_secured, IdentityQuery(my_number=mover.my_number, purpose=PURPOSE))
    assert found.prefecture_consulted is True
    assert {(c.city, c.status, c.address) for c in found.candidates} == {
        (KOSHIGAYA, "moved_out", mover.address),
        (SOKA, "resident", "埼玉県草加市住吉二丁目3番4号"),
    }


def test_a_non_resident_is_found_at_the_prefecture_by_the_four_items(stack_files, nats_secured, city):
    _, _, _, soka_people = city
    person = soka_people[2]
    found = ask(
        stack_files,
        nats_secured,
        IdentityQuery(name=person.name_kana, birth_date=person.birth_date, sex=person.sex, purpose=PURPOSE),
        principal=WELFARE,
    )
    assert found.prefecture_consulted is True
    best = found.candidates[0]
    assert (best.resident_code, best.city, best.status) == (person.resident_code, SOKA, "resident")
    assert set(best.matched_items) == {"name", "birth_date", "sex"}


def test_a_resident_found_here_by_the_four_items_needs_no_prefecture(stack_files, nats_secured, city):
    _, residents, _, _ = city
    person = residents[9]
    found = ask(
        stack_files,
        nats_secured,
        IdentityQuery(name=person.name_kanji, birth_date=person.birth_date, address=person.address, purpose=PURPOSE),
    )
    assert found.prefecture_consulted is False
    assert found.candidates[0].resident_code == person.resident_code and found.candidates[0].city == KOSHIGAYA


def test_every_lookup_is_logged_with_caller_and_purpose(stack_files, nats_secured, city):
    app, residents, _, _ = city
    person = residents[1]
    ask(stack_files, nats_secured, IdentityQuery(resident_code=person.resident_code, purpose=PURPOSE))
    ask(stack_files, nats_secured, IdentityQuery(name=person.name_kanji, birth_date=person.birth_date, purpose="生活保護の資格確認"), principal=WELFARE)
    with app.state.context.db.session() as session:
        records = [(r.actor, r.channel, r.purpose, r.items) for r in session.scalars(select(SearchRecord).order_by(SearchRecord.id))]
    logged = [(e.actor, e.outcome, e.person_key) for e in reversed(app.state.context.oplog.entries("juki_cs.identity_lookup"))]
    assert records == [
        ("health_mgmt@112224", "bus", PURPOSE, "resident_code"),
        ("welfare_address@112224", "bus", "生活保護の資格確認", "name,birth_date"),
    ]
    assert logged == [("health_mgmt@112224", "ok", person.resident_code), ("welfare_address@112224", "ok", None)]


def test_an_outsider_is_refused(stack_files, nats_secured, city):
    """integrated_address may not ask: its own NATS login cannot even publish there, and its
    token on a login that can is refused by the CS."""
    app, residents, _, _ = city
    query = IdentityQuery(my_number=residents[0].my_number, purpose=PURPOSE)

    async def token_on_another_login():
        user, password = stack_files.login(HEALTH)
        nc = await nats.connect(nats_secured.url, user=user, password=password, inbox_prefix=inbox_prefix(user))
        credentials, _ = identity(stack_files.data_dir, stack_files.directory, Principal("integrated_address", KOSHIGAYA))
        body = query.model_dump_json().encode()
        headers = credentials.headers(Principal("juki_cs", KOSHIGAYA), LOOKUP.subject(KOSHIGAYA), body)
        try:
            msg = await nc.request(LOOKUP.subject(KOSHIGAYA), body, timeout=5, headers=headers)
        finally:
            await nc.close()
        return problem_from_dict(json.loads(msg.data)) if ERROR_HEADER in (msg.headers or {}) else msg

    refused = asyncio.run(token_on_another_login())
    own_login = ask(stack_files, nats_secured, query, principal=Principal("integrated_address", KOSHIGAYA))
    assert isinstance(refused, Forbidden) and "integrated_address@112224 may not call" in refused.detail
    assert isinstance(own_login, Unavailable)  # NATS dropped the publish: nobody answered
    with app.state.context.db.session() as session:
        assert session.scalars(select(SearchRecord)).first() is None
    assert ("integrated_address@112224", Forbidden.type) in {(e.actor, e.outcome) for e in app.state.context.oplog.entries()}


def test_a_lookup_that_cannot_be_read_is_refused(stack_files, nats_secured, city):
    async def raw():
        user, password = stack_files.login(HEALTH)
        nc = await nats.connect(nats_secured.url, user=user, password=password, inbox_prefix=inbox_prefix(user))
        credentials, _ = identity(stack_files.data_dir, stack_files.directory, HEALTH)
        body = json.dumps({"name": "佐藤　花子", "purpose": PURPOSE}).encode()  # no birth date, no number
        headers = credentials.headers(Principal("juki_cs", KOSHIGAYA), LOOKUP.subject(KOSHIGAYA), body)
        try:
            msg = await nc.request(LOOKUP.subject(KOSHIGAYA), body, timeout=5, headers=headers)
        finally:
            await nc.close()
        return problem_from_dict(json.loads(msg.data))

    problem = asyncio.run(raw())
    assert isinstance(problem, InvalidRequest)
    assert "give my_number, resident_code, or a name and birth_date" in json.dumps(problem.extensions["errors"], ensure_ascii=False)


def test_a_lookup_that_needs_an_unreachable_prefecture_server_says_so(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    person = people(1, seed=43)[0]
    unreachable = f"https://127.0.0.1:{free_port()}"
    for prefecture_url, expected in ((unreachable, f"the prefecture server at {unreachable} cannot be reached"), (None, "no prefecture server is configured")):
        app = create_app(cs_settings(stack_files, nats_secured, database_url, prefecture_url=prefecture_url))
        with TestClient(app):
            problem = ask(stack_files, nats_secured, IdentityQuery(my_number=person.my_number, purpose=PURPOSE))
        assert isinstance(problem, Unavailable) and expected in problem.detail
