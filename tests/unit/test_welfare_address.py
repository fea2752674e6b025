"""The welfare address system (福祉宛名システム) as a service, beside a real integrated address
system, on a real nats-server and a real database: non-residents registered once with their
numbers, residents kept current from the feed, lookups cut to the items asked for, and
every refusal."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from renkei.testkit import make_bus, staff_headers
from services.integrated_address.app import SPEC as INTEGRATED_SPEC
from services.integrated_address.config import Settings as IntegratedSettings
from services.integrated_address.models import Addressee
from services.welfare_address.app import SPEC
from services.welfare_address.config import Settings
from services.welfare_address.models import AppliedChange, WelfareAddressee
from shared.contracts import REGISTRY
from shared.contracts.address import NonResidentRegistration, WelfareLookupRequest
from shared.contracts.residents import RESIDENT_CHANGED
from shared.errors import Forbidden, InvalidRequest, NotFound, Unavailable
from shared.events import EventConsumer
from shared.ids import generate_my_number, validate_welfare_address_number
from shared.models import InboxEntry
from shared.service import build_context
from shared.trust import Principal
from tests.unit.test_integrated_address import (
    CITY,
    HEALTH,
    HUB,
    INTERMEDIATE,
    JUKI,
    OPS,
    WELFARE,
    UnknownFieldAssign,
    bad_check_digit,
    call,
    change,
    publish_changes,
    resident,
    running,
    service_settings,
    wait_for_inbox,
)

LOOKUP = REGISTRY.operation("welfare_address", "lookup")
REGISTER = REGISTRY.operation("welfare_address", "register_non_resident")
CONSUMER = "welfare_address__changed"
INTEGRATED = Principal("integrated_address", CITY)

VISITOR = dict(name="草加　一郎", name_kana="ソウカ　イチロウ", sex="male", birth_date=date(1980, 1, 2), address="埼玉県草加市高砂一丁目1番1号")


def welfare_settings(files, server, database_url):
    return service_settings(Settings, "welfare_address", files, server, database_url)


def integrated_settings(files, server, database_url):
    return service_settings(IntegratedSettings, "integrated_address", files, server, database_url)


def welfare_rows(client) -> list[WelfareAddressee]:
    with client.app.state.context.db.session() as session:
        return list(session.scalars(select(WelfareAddressee).order_by(WelfareAddressee.created_at)))


def integrated_rows(client) -> dict[str, Addressee]:
    with client.app.state.context.db.session() as session:
        return {row.my_number: row for row in session.scalars(select(Addressee))}


@pytest.fixture
def both(stack_files, nats_secured, database_url):
    """The integrated address and the welfare address systems, running."""
    with (
        running(INTEGRATED_SPEC, integrated_settings(stack_files, nats_secured, database_url)) as [integrated],
        running(SPEC, welfare_settings(stack_files, nats_secured, database_url)) as [welfare],
    ):
        yield integrated, welfare


# --- registering non-residents (住登外者) -----------------------------------------------


def test_a_non_resident_with_a_my_number_is_registered_once_with_both_numbers(stack_files, nats_secured, both):
    integrated, welfare = both
    my_number = generate_my_number(random.Random(21))
    registration = NonResidentRegistration(my_number=my_number, **VISITOR)
    first = call(stack_files, nats_secured, HEALTH, REGISTER, registration)
    again = call(stack_files, nats_secured, HEALTH, REGISTER, registration)
    [row] = welfare_rows(welfare)
    known = integrated_rows(integrated)[my_number]
    assert first.registered is True and again.registered is False
    assert (again.welfare_address_number, again.integrated_address_number) == (first.welfare_address_number, first.integrated_address_number)
    assert validate_welfare_address_number(first.welfare_address_number)
    assert first.integrated_address_number == known.integrated_address_number == row.integrated_address_number
    # The integrated address system knows the non-resident's items too (flow [02]).
    assert (known.status, known.name, known.address, known.birth_date) == ("non_resident", "草加　一郎", VISITOR["address"], VISITOR["birth_date"])


def test_a_non_resident_without_a_my_number_gets_a_welfare_number_only(stack_files, nats_secured, both):
    integrated, welfare = both
    first = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(**VISITOR))
    again = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(**{**VISITOR, "name": "草加 一郎"}))
    elsewhere = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(**{**VISITOR, "address": "東京都千代田区1番"}))
    assert first.integrated_address_number is None and first.registered is True
    assert again.welfare_address_number == first.welfare_address_number and again.registered is False  # same, once tidied
    assert elsewhere.welfare_address_number != first.welfare_address_number
    assert len(welfare_rows(welfare)) == 2 and integrated_rows(integrated) == {}


def test_simultaneous_registrations_of_one_person_give_one_number(stack_files, nats_secured, both):
    integrated, welfare = both
    people = [NonResidentRegistration(my_number=generate_my_number(random.Random(22 + i)), **VISITOR) for i in range(5)]
    people.append(NonResidentRegistration(**{**VISITOR, "name": "越谷　次郎"}))

    async def fire():
        bus = make_bus(stack_files.data_dir, stack_files.directory, HEALTH)
        await bus.connect(nats_secured.url, *stack_files.login(HEALTH))
        try:
            calls = [bus.request(REGISTER, CITY, person, timeout=30) for _ in range(6) for person in people]
            return await asyncio.gather(*calls)
        finally:
            await bus.close()

    replies = asyncio.run(fire())
    by_person: dict[str, set[str]] = {}
    for person, reply in zip([p for _ in range(6) for p in people], replies):
        by_person.setdefault(person.name + str(person.my_number), set()).add(reply.welfare_address_number)
    assert all(len(numbers) == 1 for numbers in by_person.values())
    assert sum(reply.registered for reply in replies) == len(people)
    assert len(welfare_rows(welfare)) == len(people) and len(integrated_rows(integrated)) == 5


def test_without_the_integrated_address_system_a_my_number_registration_is_refused_and_nothing_kept(stack_files, nats_secured, database_url):
    my_number = generate_my_number(random.Random(30))
    with running(SPEC, welfare_settings(stack_files, nats_secured, database_url)) as [welfare]:
        refused = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(my_number=my_number, **VISITOR))
        rows = welfare_rows(welfare)
        without = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(**VISITOR))
    assert isinstance(refused, Unavailable) and rows == []
    assert without.registered is True


# --- lookups and refusals -------------------------------------------------------------


def test_lookups_answer_exactly_the_items_asked_for_by_any_of_the_three_keys(stack_files, nats_secured, both):
    _, welfare = both
    my_number = generate_my_number(random.Random(31))
    numbers = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(my_number=my_number, **VISITOR))
    wan, ian = numbers.welfare_address_number, numbers.integrated_address_number
    by_welfare = call(stack_files, nats_secured, HEALTH, LOOKUP, WelfareLookupRequest(welfare_address_number=wan, items={"name", "status"}))
    by_my_number = call(stack_files, nats_secured, HEALTH, LOOKUP, WelfareLookupRequest(my_number=my_number, items={"birth_date"}))
    by_integrated = call(stack_files, nats_secured, HEALTH, LOOKUP, WelfareLookupRequest(integrated_address_number=ian, items={"my_number", "address"}))
    unknown = call(stack_files, nats_secured, HEALTH, LOOKUP, WelfareLookupRequest(my_number=generate_my_number(random.Random(32)), items={"name"}))
    keys = {"welfare_address_number": wan, "integrated_address_number": ian}
    assert by_welfare.model_dump(exclude_unset=True) == {**keys, "name": "草加　一郎", "status": "non_resident"}
    assert by_my_number.model_dump(exclude_unset=True) == {**keys, "birth_date": VISITOR["birth_date"]}
    assert by_integrated.model_dump(exclude_unset=True) == {**keys, "my_number": my_number, "address": VISITOR["address"]}
    assert isinstance(unknown, NotFound)
    entries = welfare.app.state.context.oplog.entries("welfare_address.lookup")
    assert [(e.actor, e.person_key, e.outcome) for e in reversed(entries)] == [
        ("health_mgmt@112224", wan, "ok"),
        ("health_mgmt@112224", wan, "ok"),
        ("health_mgmt@112224", wan, "ok"),
        ("health_mgmt@112224", None, "urn:renkei:problem:not-found"),
    ]


@pytest.mark.parametrize("outsider", [JUKI, OPS, HUB, INTERMEDIATE, WELFARE, INTEGRATED], ids=str)
def test_callers_off_the_allowlist_are_refused(stack_files, nats_secured, database_url, outsider):
    with running(SPEC, welfare_settings(stack_files, nats_secured, database_url)) as [welfare]:
        registered = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(**VISITOR))
        lookup = WelfareLookupRequest(welfare_address_number=registered.welfare_address_number, items={"name"})
        refused_lookup = call(stack_files, nats_secured, outsider, LOOKUP, lookup, nats_login=HEALTH)
        refused_register = call(stack_files, nats_secured, outsider, REGISTER, NonResidentRegistration(**VISITOR), nats_login=HEALTH)
        walled = call(stack_files, nats_secured, outsider, LOOKUP, lookup, timeout=1) if outsider.city else None
        entries = welfare.app.state.context.oplog.entries()
    assert isinstance(refused_lookup, Forbidden) and isinstance(refused_register, Forbidden)
    assert walled is None or isinstance(walled, Unavailable)  # its own NATS user may not even publish there
    refusals = {(e.actor, e.operation) for e in entries if e.outcome == Forbidden.type}
    assert refusals == {(str(outsider), "welfare_address.lookup"), (str(outsider), "welfare_address.register_non_resident")}


def test_bad_input_on_the_bus_is_refused_and_nothing_is_stored(stack_files, nats_secured, both):
    integrated, welfare = both
    good = generate_my_number(random.Random(33))
    items = dict(name="越谷　太郎", name_kana="コシガヤ　タロウ", sex="male", birth_date="1970-01-01", address="越谷市")

    class RawRegistration(BaseModel):
        my_number: str | None = None
        name: str
        name_kana: str
        sex: str
        birth_date: str
        address: str

    bad = {
        "check digit": RawRegistration(my_number=bad_check_digit(good), **items),
        "impossible date": RawRegistration(my_number=good, **{**items, "birth_date": "1999-13-01"}),
        "empty name": RawRegistration(**{**items, "name": ""}),
        "empty address": RawRegistration(**{**items, "address": "　"}),
        "unknown field": UnknownFieldAssign(my_number=good, favourite_colour="red"),
    }
    outcomes = {what: call(stack_files, nats_secured, HEALTH, REGISTER, request) for what, request in bad.items()}
    assert all(isinstance(o, InvalidRequest) for o in outcomes.values()), outcomes
    locations = {what: [e["loc"] for e in o.extensions["errors"]] for what, o in outcomes.items()}
    assert locations["check digit"] == [["my_number"]]
    assert locations["impossible date"] == [["birth_date"]]
    assert locations["empty name"] == [["name"]] and locations["empty address"] == [["address"]]
    assert ["favourite_colour"] in locations["unknown field"]
    assert welfare_rows(welfare) == [] and integrated_rows(integrated) == {}


# --- the resident feed ----------------------------------------------------------------


def test_residents_are_kept_current_with_their_integrated_numbers_and_the_deceased_kept(stack_files, nats_secured, both):
    integrated, welfare = both
    rng = random.Random(34)
    record = resident(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    moved = record.model_copy(update={"address": "埼玉県越谷市七左町一丁目1番1号", "town": "七左町"})
    dead = moved.model_copy(update={"status": "deceased"})
    publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, t0))])
    wait_for_inbox(welfare.app.state.context.db, CONSUMER, 1)
    [born] = welfare_rows(welfare)
    publish_changes(stack_files, nats_secured, [("m-2", change("address_change", moved, t0 + timedelta(days=3))), ("m-3", change("death", dead, t0 + timedelta(days=9)))])
    wait_for_inbox(welfare.app.state.context.db, CONSUMER, 3)
    [after] = welfare_rows(welfare)
    seen = call(stack_files, nats_secured, HEALTH, LOOKUP, WelfareLookupRequest(my_number=record.my_number, items={"status", "address"}))
    assert born.integrated_address_number == integrated_rows(integrated)[record.my_number].integrated_address_number
    assert (born.status, born.resident_code, born.name) == ("resident", record.resident_code, "越谷　花子")
    assert (after.welfare_address_number, after.address, after.status) == (born.welfare_address_number, moved.address, "deceased")
    assert (seen.status, seen.address) == ("deceased", moved.address)


def test_a_registered_non_resident_who_moves_in_keeps_their_numbers(stack_files, nats_secured, both):
    integrated, welfare = both
    record = resident(random.Random(35))
    registered = call(stack_files, nats_secured, HEALTH, REGISTER, NonResidentRegistration(my_number=record.my_number, **VISITOR))
    publish_changes(stack_files, nats_secured, [("m-1", change("move_in", record, datetime(2024, 6, 1, tzinfo=UTC)))])
    wait_for_inbox(welfare.app.state.context.db, CONSUMER, 1)
    wait_for_inbox(integrated.app.state.context.db, "integrated_address__changed", 1)
    [row] = welfare_rows(welfare)
    known = integrated_rows(integrated)[record.my_number]
    assert (row.welfare_address_number, row.integrated_address_number) == (registered.welfare_address_number, registered.integrated_address_number)
    assert (row.status, row.name, row.resident_code) == ("resident", "越谷　花子", record.resident_code)
    assert (known.integrated_address_number, known.status, known.name) == (registered.integrated_address_number, "resident", "越谷　花子")


def test_the_same_change_twice_changes_nothing(stack_files, nats_secured, both):
    _, welfare = both
    record = resident(random.Random(36))
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    moved = change("address_change", record.model_copy(update={"address": "埼玉県越谷市花田一丁目1番1号"}), t0 + timedelta(days=1))
    later = change("address_change", record.model_copy(update={"address": "埼玉県越谷市東越谷一丁目1番1号"}), t0 + timedelta(days=2))
    db = welfare.app.state.context.db
    publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, t0)), ("m-2", moved), ("m-3", later)])
    wait_for_inbox(db, CONSUMER, 3)
    [before] = welfare_rows(welfare)
    publish_changes(stack_files, nats_secured, [("m-2-again", moved), ("m-3-again", later)])
    wait_for_inbox(db, CONSUMER, 5)
    [after] = welfare_rows(welfare)
    with db.session() as session:
        applied = session.scalar(select(func.count()).select_from(AppliedChange))
    assert before.address == "埼玉県越谷市東越谷一丁目1番1号"
    assert (after.address, after.updated_at, after.last_change_at) == (before.address, before.updated_at, before.last_change_at)
    assert applied == 3


def test_a_redelivered_change_changes_nothing(stack_files, nats_secured, database_url):
    record = resident(random.Random(37))
    settings = welfare_settings(stack_files, nats_secured, database_url)
    ctx = build_context(settings, roles=SPEC.roles)

    async def scenario():
        from shared import migrate
        from shared.models import KernelBase

        await asyncio.to_thread(migrate.upgrade, ctx.db, SPEC.migrations, [KernelBase.metadata, *SPEC.metadata])
        await ctx.bus.connect(nats_secured.url, settings.nats_user, settings.nats_password)  # asks integrated_address
        handler = SPEC.consumed["resident_registry.events.changed"](ctx)
        consumer = EventConsumer(ctx.db, ctx.bus.jetstream(), "welfare_address", RESIDENT_CHANGED, CITY, handler, ack_wait_seconds=1)
        await consumer.subscribe()
        [msg] = await consumer._subscription.fetch(1, timeout=5)
        first = await asyncio.to_thread(consumer._apply, msg.headers["Nats-Msg-Id"], msg.subject, msg.data)
        with ctx.db.session() as session:
            before = session.scalar(select(WelfareAddressee))
        await asyncio.sleep(1.5)  # the ack was lost: past ack_wait JetStream delivers it again
        [again] = await consumer._subscription.fetch(1, timeout=5)
        second = await asyncio.to_thread(consumer._apply, again.headers["Nats-Msg-Id"], again.subject, again.data)
        await again.ack()
        await consumer._subscription.unsubscribe()  # else the connection's drain waits on the pull subscription
        await ctx.bus.close()
        return first, second, again.metadata.num_delivered, before

    with running(INTEGRATED_SPEC, integrated_settings(stack_files, nats_secured, database_url)):
        publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, datetime(2024, 4, 1, tzinfo=UTC)))])
        first, second, deliveries, before = asyncio.run(scenario())
    with ctx.db.session() as session:
        rows = list(session.scalars(select(WelfareAddressee)))
        inbox = session.scalar(select(func.count()).select_from(InboxEntry))
    ctx.db.dispose()
    assert (first, second, deliveries) == ("processed", "duplicate", 2)
    assert [(r.welfare_address_number, r.updated_at) for r in rows] == [(before.welfare_address_number, before.updated_at)]
    assert before.integrated_address_number is not None and inbox == 1


def test_changes_wait_for_the_integrated_address_system_rather_than_go_without_a_number(stack_files, nats_secured, database_url):
    record = resident(random.Random(38))
    publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, datetime(2024, 4, 1, tzinfo=UTC)))])
    with running(SPEC, welfare_settings(stack_files, nats_secured, database_url)) as [welfare]:
        # The change arrives while nobody can give an integrated address number: it is not
        # recorded as processed or rejected, and comes again once the system is there.
        early = wait_for_inbox(welfare.app.state.context.db, CONSUMER, 1, seconds=2)
        with running(INTEGRATED_SPEC, integrated_settings(stack_files, nats_secured, database_url)) as [integrated]:
            wait_for_inbox(welfare.app.state.context.db, CONSUMER, 1)
            [row] = welfare_rows(welfare)
            number = integrated_rows(integrated)[record.my_number].integrated_address_number
    assert early == 0
    assert row.integrated_address_number == number and row.status == "resident"


# --- the counter (staff HTTP API) ------------------------------------------------------


def test_the_counter_registers_reads_and_corrects_non_residents(stack_files, nats_secured, both):
    integrated, welfare = both
    client = welfare
    my_number = generate_my_number(random.Random(39))
    clerk = staff_headers(client, ["counter_clerk"], user_id="y.kato")
    officer = staff_headers(client, ["welfare_officer"], user_id="h.kobayashi")
    body = {**VISITOR, "birth_date": VISITOR["birth_date"].isoformat(), "my_number": my_number}
    created = client.post("/non-residents", json=body, headers=clerk)
    repeated = client.post("/non-residents", json=body, headers=clerk)
    wan = created.json()["welfare_address_number"]
    read = client.get(f"/addressees/{wan}", params={"items": ["name", "address"]}, headers=clerk)
    clerk_my_number = client.get(f"/addressees/{wan}", params={"items": ["my_number"]}, headers=clerk)
    officer_search = client.post("/addressees/search", json={"my_number": my_number, "items": ["my_number", "status"]}, headers=officer)
    clerk_correct = client.patch(f"/addressees/{wan}", json={"address": "埼玉県草加市松原一丁目1番1号"}, headers=clerk)
    corrected = client.patch(f"/addressees/{wan}", json={"address": "埼玉県草加市松原一丁目1番1号"}, headers=officer)
    anonymous = client.post("/non-residents", json=body)
    visitor = staff_headers(client, ["visitor"], user_id="s.watanabe")  # signed in, but no role of this system
    outsider = [
        client.post("/non-residents", json=body, headers=visitor),
        client.get(f"/addressees/{wan}", params={"items": ["name"]}, headers=visitor),
        client.post("/addressees/search", json={"welfare_address_number": wan, "items": ["name"]}, headers=visitor),
        client.patch(f"/addressees/{wan}", json={"address": "x"}, headers=visitor),
    ]
    unsigned = [
        client.get(f"/addressees/{wan}", params={"items": ["name"]}),
        client.post("/addressees/search", json={"welfare_address_number": wan, "items": ["name"]}),
        client.patch(f"/addressees/{wan}", json={"address": "x"}),
    ]
    entries = client.app.state.context.oplog.entries()
    ian = created.json()["integrated_address_number"]
    assert created.status_code == 201 and repeated.status_code == 200 and repeated.json()["welfare_address_number"] == wan
    assert read.json() == {"welfare_address_number": wan, "integrated_address_number": ian, "name": "草加　一郎", "address": VISITOR["address"]}
    assert clerk_my_number.status_code == 403 and clerk_correct.status_code == 403 and anonymous.status_code == 401
    assert [r.status_code for r in outsider] == [403] * 4 and [r.status_code for r in unsigned] == [401] * 3
    assert officer_search.json() == {"welfare_address_number": wan, "integrated_address_number": ian, "my_number": my_number, "status": "non_resident"}
    assert corrected.status_code == 200 and corrected.json()["address"] == "埼玉県草加市松原一丁目1番1号"
    assert integrated_rows(integrated)[my_number].address == "埼玉県草加市松原一丁目1番1号"  # kept in step (flow [02])
    logged = {
        (e.actor, e.operation, e.person_key, e.outcome)
        for e in entries
        if e.operation.startswith("welfare_address.counter") and e.actor not in ("s.watanabe", "anonymous")
    }
    assert ("s.watanabe", "welfare_address.counter.correct", wan, "http-403") in {(e.actor, e.operation, e.person_key, e.outcome) for e in entries}
    assert logged == {
        ("y.kato", "welfare_address.counter.register", wan, "ok"),
        ("y.kato", "welfare_address.counter.lookup", wan, "ok"),
        ("y.kato", "welfare_address.counter.lookup", wan, "http-403"),
        ("h.kobayashi", "welfare_address.counter.search", wan, "ok"),
        ("y.kato", "welfare_address.counter.correct", wan, "http-403"),
        ("h.kobayashi", "welfare_address.counter.correct", wan, "ok"),
    }
    assert ("anonymous", "welfare_address.counter.register", None, "http-401") in {(e.actor, e.operation, e.person_key, e.outcome) for e in entries}


def test_the_counter_cannot_correct_a_resident_and_refuses_bad_input(stack_files, nats_secured, both):
    integrated, welfare = both
    client = welfare
    record = resident(random.Random(40))
    publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, datetime(2024, 4, 1, tzinfo=UTC)))])
    wait_for_inbox(client.app.state.context.db, CONSUMER, 1)
    [row] = welfare_rows(client)
    officer = staff_headers(client, ["welfare_officer"])
    good = {**VISITOR, "birth_date": "1980-01-02"}
    resident_correction = client.patch(f"/addressees/{row.welfare_address_number}", json={"address": "どこか"}, headers=officer)
    bad = {
        "my number check digit": client.post("/non-residents", json={**good, "my_number": bad_check_digit(record.my_number)}, headers=officer),
        "impossible date": client.post("/non-residents", json={**good, "birth_date": "2023-02-29"}, headers=officer),
        "future date": client.post("/non-residents", json={**good, "birth_date": "2999-01-01"}, headers=officer),
        "empty name": client.post("/non-residents", json={**good, "name": " "}, headers=officer),
        "unknown field": client.post("/non-residents", json={**good, "income": 1}, headers=officer),
        "empty correction": client.patch(f"/addressees/{row.welfare_address_number}", json={}, headers=officer),
        "emptying an item": client.patch(f"/addressees/{row.welfare_address_number}", json={"name": None}, headers=officer),
        "number check digit": client.get(f"/addressees/{row.welfare_address_number[:-1]}{(int(row.welfare_address_number[-1]) + 1) % 10}", params={"items": ["name"]}, headers=officer),
    }
    assert resident_correction.status_code == 409 and resident_correction.json()["type"] == "urn:renkei:problem:conflict"
    for what, reply in bad.items():
        assert reply.status_code == 422, what
        assert reply.json()["type"] == InvalidRequest.type, what
    assert [r.welfare_address_number for r in welfare_rows(client)] == [row.welfare_address_number]
    assert list(integrated_rows(integrated)) == [record.my_number]
