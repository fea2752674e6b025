"""Outbox, JetStream and inbox: an event is published once it is committed and applied exactly once."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from sqlalchemy import Integer, String, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from renkei.testkit import NatsServer, SecuredStackFiles
from shared import migrate
from shared.bus import inbox_prefix
from shared.contracts import Event, Registry
from shared.contracts.base import Message
from shared.db import Database
from shared.errors import InvalidRequest
from shared.events import EventConsumer, OutboxRelay, enqueue, ensure_stream, outbox_backlog
from shared.models import InboxEntry, OutboxMessage
from shared.trust import Principal

CITY = "112224"


class ResidentMoved(Message):
    resident: str
    town: str


MOVED = Event(owner="resident_registry", name="moved", model=ResidentMoved, consumers=frozenset({"integrated_address"}))


class Base(DeclarativeBase):
    pass


class Address(Base):
    """What the consuming service keeps: the town of each resident, and how often it changed."""

    __tablename__ = "test_address"
    resident: Mapped[str] = mapped_column(String(16), primary_key=True)
    town: Mapped[str] = mapped_column(String(64))
    changes: Mapped[int] = mapped_column(Integer, default=0)


def apply_move(session, event: ResidentMoved) -> None:
    if event.town == "":
        raise InvalidRequest("a move needs a town")
    row = session.get(Address, event.resident)
    if row is None:
        session.add(Address(resident=event.resident, town=event.town, changes=1))
    else:
        row.town, row.changes = event.town, row.changes + 1


def make_db(url: str) -> Database:
    db = Database(url)
    migrate.upgrade(db, None, [])
    Base.metadata.create_all(db.engine)
    return db


def changes(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {row.resident: row.changes for row in session.scalars(select(Address))}


def publish_moves(db: Database, moves: list[tuple[str, str]]) -> None:
    with db.session() as session:
        for resident, town in moves:
            enqueue(session, MOVED, CITY, ResidentMoved(resident=resident, town=town))


async def stream_count(js) -> int:
    return (await js.stream_info(MOVED.stream(CITY))).state.messages


def test_committed_events_are_applied_once_even_if_published_twice(nats_plain, database_url):
    db = make_db(database_url)

    async def scenario():
        nc = await nats.connect(nats_plain.url)
        js = nc.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        publish_moves(db, [("r1", "越ヶ谷"), ("r2", "南越谷"), ("r1", "大沢")])
        relay = OutboxRelay(db, js)
        assert await relay.publish_pending() == 3
        # A relay that crashed after JetStream stored the messages but before it marked them
        # published sends them again: the stream's duplicate window drops them.
        with db.session() as session:
            session.execute(update(OutboxMessage).values(published_at=None))
        assert await relay.publish_pending() == 3
        stored = await stream_count(js)
        consumer = EventConsumer(db, js, "integrated_address", MOVED, CITY, apply_move)
        assert await consumer.process_batch() == 3
        assert await consumer.process_batch(timeout=0.3) == 0
        await nc.close()
        return stored

    assert asyncio.run(scenario()) == 3
    assert changes(db) == {"r1": 2, "r2": 1}


def test_a_redelivered_event_changes_nothing(nats_plain, database_url):
    db = make_db(database_url)

    async def scenario():
        nc = await nats.connect(nats_plain.url)
        js = nc.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        publish_moves(db, [("r1", "蒲生")])
        await OutboxRelay(db, js).publish_pending()
        consumer = EventConsumer(db, js, "integrated_address", MOVED, CITY, apply_move, ack_wait_seconds=1)
        await consumer.subscribe()
        # The consumer applies the event, then dies before its ack reaches the server.
        [msg] = await consumer._subscription.fetch(1, timeout=2)
        assert consumer._apply(msg.headers["Nats-Msg-Id"], msg.subject, msg.data) == "processed"
        await asyncio.sleep(1.5)  # past ack_wait: JetStream delivers it again
        redelivered = await consumer.process_batch(timeout=2)
        await nc.close()
        return redelivered

    assert asyncio.run(scenario()) == 1
    assert changes(db) == {"r1": 1}
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1


def test_a_bad_event_is_recorded_as_rejected_and_not_redelivered(nats_plain, database_url):
    db = make_db(database_url)

    async def scenario():
        nc = await nats.connect(nats_plain.url)
        js = nc.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        publish_moves(db, [("r1", ""), ("r2", "北越谷")])
        await OutboxRelay(db, js).publish_pending()
        await js.publish(MOVED.subject(CITY), b'{"resident": "r3"}', headers={"Nats-Msg-Id": "malformed-1"})
        consumer = EventConsumer(db, js, "integrated_address", MOVED, CITY, apply_move, ack_wait_seconds=1)
        first = 0
        for _ in range(10):  # a loaded machine may hand the three over in more than one fetch
            first += await consumer.process_batch(timeout=2)
            if first >= 3:
                break
        await asyncio.sleep(1.5)
        again = await consumer.process_batch(timeout=0.5)
        await nc.close()
        return first, again

    assert asyncio.run(scenario()) == (3, 0)
    assert changes(db) == {"r2": 1}
    with db.session() as session:
        rejected = {e.msg_id: e.reason for e in session.scalars(select(InboxEntry).where(InboxEntry.outcome == "rejected"))}
    assert len(rejected) == 2
    assert "malformed-1" in rejected and "town" in rejected["malformed-1"]
    assert any("needs a town" in reason for reason in rejected.values())


def test_a_failing_consumer_gets_the_event_again(nats_plain, database_url):
    db = make_db(database_url)
    failures = [RuntimeError("database briefly away")]

    def flaky(session, event):
        if failures:
            raise failures.pop()
        apply_move(session, event)

    async def scenario():
        nc = await nats.connect(nats_plain.url)
        js = nc.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        publish_moves(db, [("r1", "千間台東")])
        await OutboxRelay(db, js).publish_pending()
        consumer = EventConsumer(db, js, "integrated_address", MOVED, CITY, flaky)
        await consumer.process_batch(timeout=2)
        assert changes(db) == {}
        await asyncio.sleep(1.2)  # the nak asked for a 1 s delay
        await consumer.process_batch(timeout=2)
        await nc.close()

    asyncio.run(scenario())
    assert changes(db) == {"r1": 1}


def test_the_outbox_keeps_what_nats_did_not_store(nats_plain, database_url):
    db = make_db(database_url)

    async def scenario():
        nc = await nats.connect(nats_plain.url, allow_reconnect=False)
        js = nc.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        publish_moves(db, [("r1", "越ヶ谷"), ("r2", "越ヶ谷")])
        nats_plain.kill()
        published = await OutboxRelay(db, js).publish_pending()
        await nc.close()
        return published

    assert asyncio.run(scenario()) == 0
    assert outbox_backlog(db) == 2


def test_enqueue_refuses_a_payload_of_another_model(database_url):
    db = make_db(database_url)
    with pytest.raises(TypeError, match="carries ResidentMoved"), db.session() as session:
        enqueue(session, MOVED, CITY, Message())


def test_derived_permissions_let_producer_and_consumer_through_and_no_one_else(tmp_path, database_url):
    files = SecuredStackFiles(tmp_path / "data", [CITY], registry=Registry(operations=[], events=[MOVED]))
    folder = tmp_path / "nats"
    folder.mkdir()
    server = NatsServer(folder, files.nats_config()).start()
    db = make_db(database_url)

    async def login(service: str):
        errors: list[str] = []

        async def on_error(exc):
            errors.append(str(exc).lower())

        user, password = files.login(Principal(service, CITY))
        nc = await nats.connect(server.url, user=user, password=password, inbox_prefix=inbox_prefix(user), error_cb=on_error)
        return nc, errors

    async def scenario():
        producer, _ = await login("resident_registry")
        js = producer.jetstream()
        await ensure_stream(js, "resident_registry", CITY)
        publish_moves(db, [("r1", "大袋")])
        assert await OutboxRelay(db, js).publish_pending() == 1
        consumer_nc, _ = await login("integrated_address")
        consumer = EventConsumer(db, consumer_nc.jetstream(), "integrated_address", MOVED, CITY, apply_move)
        assert await consumer.process_batch(timeout=3) == 1
        outsider, outsider_errors = await login("juki_cs")
        with pytest.raises((NatsTimeout, NoRespondersError)):  # the server drops the request
            await outsider.jetstream().pull_subscribe(MOVED.subject(CITY), durable="integrated_address__moved", stream=MOVED.stream(CITY))
        await outsider.publish(MOVED.subject(CITY), b'{"resident": "r9", "town": "forged"}')
        await outsider.flush()
        await asyncio.sleep(0.2)
        for nc in (producer, consumer_nc, outsider):
            await nc.close()
        return outsider_errors

    try:
        errors = asyncio.run(scenario())
    finally:
        server.kill()
    assert changes(db) == {"r1": 1}
    assert any("permissions violation for publish" in e and MOVED.subject(CITY).lower() in e for e in errors), errors
    assert any("permissions violation for publish" in e and "$js.api.consumer" in e for e in errors), errors
