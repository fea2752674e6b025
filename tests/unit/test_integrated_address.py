"""The integrated address system (団体内統合宛名システム) as a service, on a real nats-server
and a real database: assignment once and only once, lookups cut to the items asked for,
every refusal, and the resident feed applied exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta

import nats
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from renkei.testkit import make_bus, staff_headers
from services.integrated_address.app import SPEC
from services.integrated_address.config import Settings
from services.integrated_address.models import Addressee, AppliedChange
from shared.bus import inbox_prefix
from shared.contracts import REGISTRY
from shared.contracts.address import AddressLookupRequest, AssignNumberRequest, PersonItems
from shared.contracts.residents import RESIDENT_CHANGED, ResidentChanged, ResidentRecord
from shared.errors import Forbidden, InvalidRequest, NotFound, Unavailable
from shared.events import EventConsumer, ensure_stream
from shared.ids import (
    generate_my_number,
    generate_resident_code,
    my_number_check_digit,
    validate_integrated_address_number,
)
from shared.models import InboxEntry
from shared.service import build_app, build_context
from shared.trust import Principal

CITY = "112224"
ASSIGN = REGISTRY.operation("integrated_address", "assign")
LOOKUP = REGISTRY.operation("integrated_address", "lookup")
HEALTH = Principal("health_mgmt", CITY)
WELFARE = Principal("welfare_address", CITY)
INTERMEDIATE = Principal("intermediate_server", CITY)
JUKI = Principal("juki_cs", CITY)
OPS = Principal("ops_console")
HUB = Principal("provision_network")
CONSUMER = "integrated_address__changed"


# --- the parts every test here uses (the welfare address tests use them too) -------------


def service_settings(settings_class, service: str, files, server, database_url: str):
    user, password = files.login(Principal(service, CITY))
    pg = None if database_url.startswith("sqlite") else database_url
    return settings_class(
        city=CITY, data_dir=files.data_dir, nats_url=server.url, nats_user=user, nats_password=password, database_url=pg
    )


@contextmanager
def running(spec, settings, replicas: int = 1):
    """``replicas`` apps of one service on the same database and queue group, started one after
    the other (so that only the first migrates); yields their test clients."""
    with ExitStack() as stack:
        clients = [stack.enter_context(TestClient(build_app(spec, settings))) for _ in range(replicas)]
        yield clients


def call(files, server, caller: Principal, operation, payload: BaseModel, nats_login: Principal | None = None, timeout: float = 5):
    """One request as ``caller`` (over ``nats_login``'s NATS user, the caller's own by default);
    returns the reply or the problem raised."""

    async def scenario():
        bus = make_bus(files.data_dir, files.directory, caller)
        await bus.connect(server.url, *files.login(nats_login or caller))
        try:
            return await bus.request(operation, CITY, payload, timeout=timeout)
        except Exception as exc:
            return exc
        finally:
            await bus.close()

    return asyncio.run(scenario())


def resident(rng: random.Random, **overrides) -> ResidentRecord:
    values = dict(
        resident_code=generate_resident_code(rng),
        my_number=generate_my_number(rng),
        family_name="越谷",
        given_name="花子",
        family_name_kana="コシガヤ",
        given_name_kana="ハナコ",
        sex="female",
        birth_date=date(1990, 4, 1),
        address="埼玉県越谷市越ヶ谷一丁目1番1号",
        town="越ヶ谷",
        household_id="H-0001",
        relation="head",
    )
    return ResidentRecord(**{**values, **overrides})


def change(kind: str, record: ResidentRecord, at: datetime, change_id: str | None = None) -> ResidentChanged:
    return ResidentChanged(
        change_id=change_id or f"chg-{random.getrandbits(48):012x}",
        kind=kind,
        effective_date=at.date(),
        recorded_at=at,
        resident=record,
    )


def publish_changes(files, server, messages: list[tuple[str, ResidentChanged]]) -> None:
    """Publish changes as the resident registry does: into its stream, each with its Nats-Msg-Id."""

    async def scenario():
        user, password = files.login(Principal("resident_registry", CITY))
        nc = await nats.connect(server.url, user=user, password=password, inbox_prefix=inbox_prefix(user))
        js = nc.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        for msg_id, event in messages:
            await js.publish(RESIDENT_CHANGED.subject(CITY), event.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
        await nc.close()

    asyncio.run(scenario())


def wait_for_inbox(db, consumer: str, count: int, seconds: float = 20) -> int:
    """Wait until ``consumer`` has taken ``count`` messages in (not a timing assertion: a wait)."""
    deadline = time.monotonic() + seconds
    while True:
        with db.session() as session:
            seen = session.scalar(select(func.count()).select_from(InboxEntry).where(InboxEntry.consumer == consumer))
        if seen >= count or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def bad_check_digit(my_number: str) -> str:
    return my_number[:11] + str((my_number_check_digit(my_number[:11]) + 1) % 10)


def settings_for(files, server, database_url):
    return service_settings(Settings, "integrated_address", files, server, database_url)


def addressees(client) -> list[Addressee]:
    with client.app.state.context.db.session() as session:
        return list(session.scalars(select(Addressee).order_by(Addressee.created_at)))


# --- assignment ---------------------------------------------------------------------


def test_assign_gives_one_checked_number_and_the_same_one_again(stack_files, nats_secured, database_url):
    rng = random.Random(1)
    my_number = generate_my_number(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        first = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=my_number))
        again = call(stack_files, nats_secured, WELFARE, ASSIGN, AssignNumberRequest(my_number=my_number))
        rows = addressees(client)
    assert first.assigned is True and again.assigned is False
    assert again.integrated_address_number == first.integrated_address_number
    assert validate_integrated_address_number(first.integrated_address_number).startswith(CITY[:5])
    assert [(r.my_number, r.status) for r in rows] == [(my_number, "non_resident")]


def test_concurrent_assign_requests_for_the_same_people_get_one_number_each(stack_files, nats_secured, database_url):
    rng = random.Random(2)
    people = [generate_my_number(rng) for _ in range(20)]
    requests_each = 8

    async def fire(caller: Principal):
        bus = make_bus(stack_files.data_dir, stack_files.directory, caller)
        await bus.connect(nats_secured.url, *stack_files.login(caller))
        try:
            calls = [
                bus.request(ASSIGN, CITY, AssignNumberRequest(my_number=person), timeout=30)
                for _ in range(requests_each // 2)
                for person in people
            ]
            return list(zip([p for _ in range(requests_each // 2) for p in people], await asyncio.gather(*calls)))
        finally:
            await bus.close()

    async def both():
        health, welfare = await asyncio.gather(fire(HEALTH), fire(WELFARE))
        return health + welfare

    # Two replicas on one database, in one queue group: the requests for one person meet in
    # different processes' handlers as well as in one's.
    with running(SPEC, settings_for(stack_files, nats_secured, database_url), replicas=2) as [client, _]:
        replies = asyncio.run(both())
        rows = addressees(client)

    assert len(replies) == len(people) * requests_each
    numbers: dict[str, set[str]] = {}
    newly: dict[str, int] = {}
    for person, reply in replies:
        numbers.setdefault(person, set()).add(reply.integrated_address_number)
        newly[person] = newly.get(person, 0) + reply.assigned
    assert all(len(found) == 1 for found in numbers.values()), numbers
    assert newly == {person: 1 for person in people}  # exactly one request assigned, the rest found it
    assert sorted(r.my_number for r in rows) == sorted(people)
    assert {r.my_number: r.integrated_address_number for r in rows} == {p: next(iter(n)) for p, n in numbers.items()}


def test_assign_keeps_a_non_residents_items_but_never_overwrites_a_residents(stack_files, nats_secured, database_url):
    rng = random.Random(3)
    outsider = generate_my_number(rng)
    items = PersonItems(name="草加　一郎", name_kana="ソウカ　イチロウ", sex="male", birth_date=date(1980, 1, 2), address="埼玉県草加市高砂一丁目1番1号")
    record = resident(rng)
    settings = settings_for(stack_files, nats_secured, database_url)
    with running(SPEC, settings) as [client]:
        publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, datetime(2024, 5, 1, tzinfo=UTC)))])
        assert wait_for_inbox(client.app.state.context.db, CONSUMER, 1) == 1
        call(stack_files, nats_secured, WELFARE, ASSIGN, AssignNumberRequest(my_number=outsider, items=items))
        call(stack_files, nats_secured, WELFARE, ASSIGN, AssignNumberRequest(my_number=record.my_number, items=items))
        rows = {r.my_number: r for r in addressees(client)}
    assert (rows[outsider].name, rows[outsider].address, rows[outsider].status) == (items.name, items.address, "non_resident")
    assert (rows[record.my_number].name, rows[record.my_number].address) == ("越谷　花子", record.address)


# --- lookups and their refusals -------------------------------------------------------


def test_lookups_answer_exactly_the_items_asked_for(stack_files, nats_secured, database_url):
    rng = random.Random(4)
    record = resident(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        publish_changes(stack_files, nats_secured, [("m-1", change("move_in", record, datetime(2024, 5, 1, tzinfo=UTC)))])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 1)
        number = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=record.my_number)).integrated_address_number
        by_my_number = call(stack_files, nats_secured, HEALTH, LOOKUP, AddressLookupRequest(my_number=record.my_number, items={"name", "address"}))
        by_number = call(stack_files, nats_secured, WELFARE, LOOKUP, AddressLookupRequest(integrated_address_number=number, items={"my_number", "birth_date"}))
        for_intermediate = call(stack_files, nats_secured, INTERMEDIATE, LOOKUP, AddressLookupRequest(integrated_address_number=number, items={"name_kana", "sex", "status"}))
    assert by_my_number.model_dump(exclude_unset=True) == {"integrated_address_number": number, "name": "越谷　花子", "address": record.address}
    assert by_number.model_dump(exclude_unset=True) == {"integrated_address_number": number, "my_number": record.my_number, "birth_date": record.birth_date}
    assert for_intermediate.model_dump(exclude_unset=True) == {"integrated_address_number": number, "name_kana": "コシガヤ　ハナコ", "sex": "female", "status": "resident"}


def test_unasked_items_are_absent_from_the_message_itself(stack_files, nats_secured, database_url):
    rng = random.Random(5)
    my_number = generate_my_number(rng)

    async def raw_lookup(number: str) -> bytes:
        bus = make_bus(stack_files.data_dir, stack_files.directory, INTERMEDIATE)
        await bus.connect(nats_secured.url, *stack_files.login(INTERMEDIATE))
        body = AddressLookupRequest(integrated_address_number=number, items={"status"}).model_dump_json().encode()
        headers = bus._credentials.headers(Principal("integrated_address", CITY), LOOKUP.subject(CITY), body)
        msg = await bus.nc.request(LOOKUP.subject(CITY), body, headers=headers, timeout=5)
        await bus.close()
        return msg.data

    with running(SPEC, settings_for(stack_files, nats_secured, database_url)):
        number = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=my_number)).integrated_address_number
        data = asyncio.run(raw_lookup(number))
    assert data.decode() == f'{{"integrated_address_number":"{number}","status":"non_resident"}}'


def test_the_intermediate_server_never_gets_or_uses_a_my_number(stack_files, nats_secured, database_url):
    rng = random.Random(6)
    my_number = generate_my_number(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        number = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=my_number)).integrated_address_number
        by_my_number = call(stack_files, nats_secured, INTERMEDIATE, LOOKUP, AddressLookupRequest(my_number=my_number, items={"name"}))
        asking_for_it = call(stack_files, nats_secured, INTERMEDIATE, LOOKUP, AddressLookupRequest(integrated_address_number=number, items={"name", "my_number"}))
        assigning = call(stack_files, nats_secured, INTERMEDIATE, ASSIGN, AssignNumberRequest(my_number=my_number), nats_login=HEALTH)
        entries = client.app.state.context.oplog.entries()
    assert isinstance(by_my_number, Forbidden) and "by one" in by_my_number.detail
    assert isinstance(asking_for_it, Forbidden) and "receive one" in asking_for_it.detail
    assert isinstance(assigning, Forbidden)  # not on the allowlist of assign at all
    assert all(e.person_key != my_number and my_number not in (e.detail or "") for e in entries)


@pytest.mark.parametrize("outsider", [JUKI, OPS, HUB], ids=str)
def test_callers_off_the_allowlist_are_refused(stack_files, nats_secured, database_url, outsider):
    rng = random.Random(7)
    my_number = generate_my_number(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        number = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=my_number)).integrated_address_number
        request = AddressLookupRequest(integrated_address_number=number, items={"name"})
        # Through a NATS login that may reach the subject: the service's allowlist refuses the token.
        refused = call(stack_files, nats_secured, outsider, LOOKUP, request, nats_login=HEALTH)
        refused_assign = call(stack_files, nats_secured, outsider, ASSIGN, AssignNumberRequest(my_number=my_number), nats_login=HEALTH)
        # Through its own login, when it has one for this city: NATS does not even carry the request.
        walled = call(stack_files, nats_secured, outsider, LOOKUP, request, timeout=1) if outsider.city else None
        entries = client.app.state.context.oplog.entries("integrated_address.lookup")
    assert isinstance(refused, Forbidden) and isinstance(refused_assign, Forbidden)
    assert walled is None or isinstance(walled, Unavailable)
    assert (str(outsider), "urn:renkei:problem:forbidden") in {(e.actor, e.outcome) for e in entries}


def test_another_citys_system_is_refused(stack_files, nats_secured, database_url):
    soka_health = Principal("health_mgmt", "112216")
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)):
        refused = call(stack_files, nats_secured, soka_health, ASSIGN, AssignNumberRequest(my_number=generate_my_number(random.Random(8))), nats_login=HEALTH)
    assert isinstance(refused, Forbidden) and "another city" in refused.detail


def test_an_unknown_person_is_not_found_and_every_lookup_is_logged(stack_files, nats_secured, database_url):
    rng = random.Random(9)
    known, unknown = generate_my_number(rng), generate_my_number(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        number = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=known)).integrated_address_number
        outcomes = [
            call(stack_files, nats_secured, HEALTH, LOOKUP, AddressLookupRequest(my_number=known, items={"status"})),
            call(stack_files, nats_secured, HEALTH, LOOKUP, AddressLookupRequest(my_number=unknown, items={"status"})),
            call(stack_files, nats_secured, INTERMEDIATE, LOOKUP, AddressLookupRequest(integrated_address_number=number, items={"status"})),
            call(stack_files, nats_secured, INTERMEDIATE, LOOKUP, AddressLookupRequest(my_number=known, items={"status"})),
            call(stack_files, nats_secured, JUKI, LOOKUP, AddressLookupRequest(integrated_address_number=number, items={"status"}), nats_login=HEALTH),
        ]
        entries = client.app.state.context.oplog.entries("integrated_address.lookup")
    assert isinstance(outcomes[1], NotFound)
    logged = [(e.actor, e.channel, e.person_key, e.outcome) for e in reversed(entries)]
    assert logged == [
        ("health_mgmt@112224", "bus", number, "ok"),
        ("health_mgmt@112224", "bus", None, "urn:renkei:problem:not-found"),
        ("intermediate_server@112224", "bus", number, "ok"),
        ("intermediate_server@112224", "bus", None, "urn:renkei:problem:forbidden"),
        ("juki_cs@112224", "bus", None, "urn:renkei:problem:forbidden"),
    ]


# --- input checks (M02, M04) ----------------------------------------------------------


class RawItems(BaseModel):
    """Items as a careless client might send them: no checks on this side."""

    name: str
    name_kana: str
    sex: str
    birth_date: str
    address: str


class RawAssign(BaseModel):
    my_number: str
    items: RawItems | None = None


class UnknownFieldAssign(BaseModel):
    my_number: str
    favourite_colour: str


def test_bad_input_on_the_bus_is_refused_and_nothing_is_stored(stack_files, nats_secured, database_url):
    rng = random.Random(10)
    good = generate_my_number(rng)
    items = dict(name="越谷　太郎", name_kana="コシガヤ　タロウ", sex="male", birth_date="1970-01-01", address="越谷市")
    bad_requests = {
        "check digit": RawAssign(my_number=bad_check_digit(good)),
        "impossible date": RawAssign(my_number=good, items=RawItems(**{**items, "birth_date": "2023-02-30"})),
        "empty name": RawAssign(my_number=good, items=RawItems(**{**items, "name": "　 "})),
        "unknown field": UnknownFieldAssign(my_number=good, favourite_colour="blue"),
    }
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        outcomes = {what: call(stack_files, nats_secured, HEALTH, ASSIGN, request) for what, request in bad_requests.items()}
        rows = addressees(client)
    assert all(isinstance(outcome, InvalidRequest) for outcome in outcomes.values()), outcomes
    errors = {what: outcome.extensions["errors"] for what, outcome in outcomes.items()}
    assert [e["loc"] for e in errors["check digit"]] == [["my_number"]] and "check digit" in errors["check digit"][0]["msg"]
    assert [e["loc"] for e in errors["impossible date"]] == [["items", "birth_date"]]
    assert [e["loc"] for e in errors["empty name"]] == [["items", "name"]] and "empty" in errors["empty name"][0]["msg"]
    assert [e["loc"] for e in errors["unknown field"]] == [["favourite_colour"]]
    assert rows == []


# --- the resident feed (M30, M31) -----------------------------------------------------


def test_the_feed_keeps_addressees_current_and_keeps_the_deceased(stack_files, nats_secured, database_url):
    rng = random.Random(11)
    record = resident(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    moved = record.model_copy(update={"address": "埼玉県越谷市南越谷二丁目2番2号", "town": "南越谷"})
    renamed = moved.model_copy(update={"family_name": "草加"})
    deceased = renamed.model_copy(update={"status": "deceased"})
    events = [
        ("m-1", change("birth", record, t0)),
        ("m-2", change("address_change", moved, t0 + timedelta(days=30))),
        ("m-3", change("correction", renamed, t0 + timedelta(days=60))),
        ("m-4", change("death", deceased, t0 + timedelta(days=90))),
    ]
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        publish_changes(stack_files, nats_secured, events[:1])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 1)
        [born] = addressees(client)
        publish_changes(stack_files, nats_secured, events[1:])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 4)
        [after] = addressees(client)
        again = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=record.my_number))
        seen = call(stack_files, nats_secured, INTERMEDIATE, LOOKUP, AddressLookupRequest(integrated_address_number=born.integrated_address_number, items={"name", "address", "status"}))
    assert (born.status, born.resident_code, born.address) == ("resident", record.resident_code, record.address)
    assert after.integrated_address_number == born.integrated_address_number
    assert (after.name, after.address, after.status) == ("草加　花子", moved.address, "deceased")
    assert again.integrated_address_number == born.integrated_address_number and again.assigned is False
    assert seen.status == "deceased" and seen.name == "草加　花子"


def test_a_move_out_keeps_the_person_and_a_return_keeps_the_number(stack_files, nats_secured, database_url):
    rng = random.Random(12)
    record = resident(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    away = record.model_copy(update={"status": "moved_out"})
    back = record.model_copy(update={"address": "埼玉県越谷市大沢三丁目3番3号", "town": "大沢"})
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        publish_changes(stack_files, nats_secured, [("m-1", change("move_in", record, t0)), ("m-2", change("move_out", away, t0 + timedelta(days=1)))])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 2)
        [gone] = addressees(client)
        publish_changes(stack_files, nats_secured, [("m-3", change("move_in", back, t0 + timedelta(days=400)))])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 3)
        [returned] = addressees(client)
    assert gone.status == "moved_out" and gone.address == record.address
    assert (returned.integrated_address_number, returned.status, returned.address) == (gone.integrated_address_number, "resident", back.address)


def test_the_same_change_under_two_message_ids_is_applied_once(stack_files, nats_secured, database_url):
    rng = random.Random(13)
    record = resident(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    moved = change("address_change", record.model_copy(update={"address": "埼玉県越谷市千間台東一丁目1番1号"}), t0 + timedelta(days=1))
    later = change("address_change", record.model_copy(update={"address": "埼玉県越谷市蒲生一丁目1番1号"}), t0 + timedelta(days=2))
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        db = client.app.state.context.db
        publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, t0)), ("m-2", moved), ("m-3", later)])
        wait_for_inbox(db, CONSUMER, 3)
        [before] = addressees(client)
        # The registry publishes the middle change again, under a new message id, after the later one.
        publish_changes(stack_files, nats_secured, [("m-2-republished", moved)])
        wait_for_inbox(db, CONSUMER, 4)
        [after] = addressees(client)
        with db.session() as session:
            applied = {c.change_id: c.outcome for c in session.scalars(select(AppliedChange))}
            inbox = {e.msg_id: e.outcome for e in session.scalars(select(InboxEntry).where(InboxEntry.consumer == CONSUMER))}
    assert before.address == "埼玉県越谷市蒲生一丁目1番1号"
    assert (after.address, after.updated_at, after.last_change_at) == (before.address, before.updated_at, before.last_change_at)
    assert len(applied) == 3 and set(applied.values()) == {"applied"}
    assert inbox == {"m-1": "processed", "m-2": "processed", "m-3": "processed", "m-2-republished": "processed"}


def test_an_older_change_arriving_late_does_not_undo_a_newer_one(stack_files, nats_secured, database_url):
    rng = random.Random(14)
    record = resident(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    newer = change("address_change", record.model_copy(update={"address": "埼玉県越谷市北越谷二丁目2番2号"}), t0 + timedelta(days=2))
    older = change("address_change", record.model_copy(update={"address": "埼玉県越谷市大袋一丁目1番1号"}), t0 + timedelta(days=1))
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, t0)), ("m-2", newer), ("m-3", older)])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 3)
        [row] = addressees(client)
        with client.app.state.context.db.session() as session:
            outcome = session.get(AppliedChange, older.change_id).outcome
    assert row.address == "埼玉県越谷市北越谷二丁目2番2号" and outcome == "stale"


def test_a_redelivered_change_changes_nothing(stack_files, nats_secured, database_url):
    """JetStream delivers a change again when its ack was lost: the inbox makes it a no-op."""
    rng = random.Random(15)
    record = resident(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    settings = settings_for(stack_files, nats_secured, database_url)
    ctx = build_context(settings, roles=SPEC.roles)  # the service's own handler, consumer run by hand

    async def scenario():
        from shared import migrate
        from shared.models import KernelBase

        await asyncio.to_thread(migrate.upgrade, ctx.db, SPEC.migrations, [KernelBase.metadata, *SPEC.metadata])
        nc = await nats.connect(nats_secured.url, user=settings.nats_user, password=settings.nats_password, inbox_prefix=inbox_prefix(settings.nats_user))
        handler = SPEC.consumed["resident_registry.events.changed"](ctx)
        consumer = EventConsumer(ctx.db, nc.jetstream(), "integrated_address", RESIDENT_CHANGED, CITY, handler, ack_wait_seconds=1)
        await consumer.subscribe()
        [msg] = await consumer._subscription.fetch(1, timeout=5)
        first = consumer._apply(msg.headers["Nats-Msg-Id"], msg.subject, msg.data)  # applied, then the ack is lost
        with ctx.db.session() as session:
            before = session.scalar(select(Addressee))
        await asyncio.sleep(1.5)  # past ack_wait: JetStream delivers the same message again
        [again] = await consumer._subscription.fetch(1, timeout=5)
        second = consumer._apply(again.headers["Nats-Msg-Id"], again.subject, again.data)
        await again.ack()
        await nc.close()
        return first, second, again.metadata.num_delivered, before

    publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, t0))])
    first, second, deliveries, before = asyncio.run(scenario())
    with ctx.db.session() as session:
        rows = list(session.scalars(select(Addressee)))
        inbox = session.scalar(select(func.count()).select_from(InboxEntry))
    ctx.db.dispose()
    assert (first, second, deliveries) == ("processed", "duplicate", 2)
    assert [(r.integrated_address_number, r.updated_at) for r in rows] == [(before.integrated_address_number, before.updated_at)]
    assert inbox == 1


# --- the counter (staff HTTP API) ------------------------------------------------------


def test_the_counter_reads_only_the_items_asked_and_is_logged(stack_files, nats_secured, database_url):
    rng = random.Random(16)
    record = resident(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        publish_changes(stack_files, nats_secured, [("m-1", change("birth", record, datetime(2024, 5, 1, tzinfo=UTC)))])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 1)
        [row] = addressees(client)
        number = row.integrated_address_number
        clerk = staff_headers(client, ["counter_clerk"], user_id="m.suzuki")
        officer = staff_headers(client, ["number_officer"], user_id="t.sato")
        visitor = staff_headers(client, ["visitor"], user_id="a.ito")
        read = client.get(f"/addressees/{number}", params={"items": ["name", "status"]}, headers=clerk)
        clerk_my_number = client.get(f"/addressees/{number}", params={"items": ["my_number"]}, headers=clerk)
        clerk_search = client.post("/addressees/search", json={"my_number": record.my_number, "items": ["name"]}, headers=clerk)
        officer_search = client.post("/addressees/search", json={"my_number": record.my_number, "items": ["my_number", "address"]}, headers=officer)
        no_role = client.get(f"/addressees/{number}", params={"items": ["name"]}, headers=visitor)
        anonymous = client.get(f"/addressees/{number}", params={"items": ["name"]})
        entries = client.app.state.context.oplog.entries()
    assert read.status_code == 200 and read.json() == {"integrated_address_number": number, "name": "越谷　花子", "status": "resident"}
    assert clerk_my_number.status_code == 403 and clerk_search.status_code == 403
    assert officer_search.status_code == 200
    assert officer_search.json() == {"integrated_address_number": number, "my_number": record.my_number, "address": record.address}
    assert no_role.status_code == 403 and anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    logged = {(e.actor, e.operation, e.person_key, e.outcome) for e in entries if e.operation.startswith("integrated_address.counter")}
    assert logged == {
        ("m.suzuki", "integrated_address.counter.lookup", number, "ok"),
        ("m.suzuki", "integrated_address.counter.lookup", number, "http-403"),
        ("m.suzuki", "integrated_address.counter.search", None, "http-403"),
        ("t.sato", "integrated_address.counter.search", number, "ok"),
        ("a.ito", "integrated_address.counter.lookup", number, "http-403"),
        ("anonymous", "integrated_address.counter.lookup", number, "http-401"),
    }


def test_the_counter_refuses_bad_input_with_problem_details(stack_files, nats_secured, database_url):
    rng = random.Random(17)
    my_number = generate_my_number(rng)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        number = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=my_number)).integrated_address_number
        officer = staff_headers(client, ["number_officer"])
        wrong_digit = number[:-1] + str((int(number[-1]) + 1) % 10)
        replies = {
            "number check digit": client.get(f"/addressees/{wrong_digit}", params={"items": ["name"]}, headers=officer),
            "my number check digit": client.post("/addressees/search", json={"my_number": bad_check_digit(my_number), "items": ["name"]}, headers=officer),
            "unknown item": client.get(f"/addressees/{number}", params={"items": ["income"]}, headers=officer),
            "no item": client.get(f"/addressees/{number}", headers=officer),
            "unknown field": client.post("/addressees/search", json={"my_number": my_number, "items": ["name"], "note": "x"}, headers=officer),
            "two keys": client.post("/addressees/search", json={"my_number": my_number, "integrated_address_number": number, "items": ["name"]}, headers=officer),
        }
        missing = client.post("/addressees/search", json={"my_number": generate_my_number(rng), "items": ["name"]}, headers=officer)
    for what, reply in replies.items():
        assert reply.status_code == 422, what
        assert reply.headers["content-type"] == "application/problem+json", what
        assert reply.json()["type"] == InvalidRequest.type, what
    assert "check digit" in str(replies["my number check digit"].json()["errors"])
    assert missing.status_code == 404 and missing.json()["type"] == NotFound.type


def test_each_new_number_and_each_resident_code_learnt_is_announced_once_without_a_my_number(stack_files, nats_secured, database_url):
    """``number_assigned`` (flow [03]): the intermediate server obtains symbols from it (M24)."""
    import json

    from shared.contracts.network import NUMBER_ASSIGNED
    from shared.models import OutboxMessage

    rng = random.Random(23)
    record = resident(rng)
    stranger = generate_my_number(rng)
    t0 = datetime(2024, 4, 1, 9, tzinfo=UTC)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        # First known as a non-resident through assign, then as a resident through the feed.
        first = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=record.my_number))
        call(stack_files, nats_secured, WELFARE, ASSIGN, AssignNumberRequest(my_number=record.my_number))
        other = call(stack_files, nats_secured, HEALTH, ASSIGN, AssignNumberRequest(my_number=stranger))
        publish_changes(stack_files, nats_secured, [("m-1", change("move_in", record, t0)), ("m-2", change("move_in", record, t0))])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 2)
        moved = record.model_copy(update={"address": "埼玉県越谷市南越谷二丁目2番2号", "town": "南越谷"})
        publish_changes(stack_files, nats_secured, [("m-3", change("address_change", moved, t0 + timedelta(days=3)))])
        wait_for_inbox(client.app.state.context.db, CONSUMER, 3)
        with client.app.state.context.db.session() as session:
            sent = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert {m.subject for m in sent} == {NUMBER_ASSIGNED.subject(CITY)}
    payloads = [json.loads(m.payload) for m in sent]
    assert payloads == [
        {"integrated_address_number": first.integrated_address_number, "resident_code": None},
        {"integrated_address_number": other.integrated_address_number, "resident_code": None},
        {"integrated_address_number": first.integrated_address_number, "resident_code": record.resident_code},
    ]  # the second assign, the duplicate change and the address change announce nothing
    assert not any(record.my_number in m.payload.decode() or stranger in m.payload.decode() for m in sent)
