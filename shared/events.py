"""Events that must not be lost: a transactional outbox on one side, an idempotent inbox on the other.

A service writes an event into its ``outbox`` table in the same transaction as the change
the event announces; the relay publishes it to JetStream with ``Nats-Msg-Id`` set to the
row's id, so a re-publish after a crash is dropped by the stream's duplicate window. A
consumer processes each message and records its id in its ``inbox`` table in one
transaction, and only then acknowledges it: JetStream can redeliver a message whose ack
was lost (or even one acknowledged just before a hard crash), and the inbox turns that
redelivery into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.contracts import Event
from shared.db import Database
from shared.errors import Problem
from shared.group_commit import GroupCommit
from shared.models import InboxEntry, OutboxMessage, utcnow
from shared.observability import Metrics

log = structlog.get_logger("renkei.events")

MSG_ID_HEADER = "Nats-Msg-Id"
DUPLICATE_WINDOW = timedelta(minutes=10)


_OUTBOX_INSERT = insert(OutboxMessage.__table__)
_MARK_PUBLISHED = (
    update(OutboxMessage.__table__)
    .where(OutboxMessage.__table__.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("published_at"))
)


def enqueue(session: Session, event: Event, city: str | None, payload: BaseModel) -> str:
    """Add ``payload`` to the outbox inside the caller's transaction; returns its message id."""
    return enqueue_many(session, event, city, [payload])[0]


def enqueue_many(session: Session, event: Event, city: str | None, payloads: Sequence[BaseModel]) -> list[str]:
    """``enqueue`` of each payload, in order, in one statement; returns their message ids."""
    for payload in payloads:
        if not isinstance(payload, event.model):
            raise TypeError(f"{event.key} carries {event.model.__name__}, not {type(payload).__name__}")
    if not payloads:
        return []
    subject, stream, now = event.subject(city), event.stream(city), utcnow()
    rows = [{"msg_id": uuid.uuid4().hex, "subject": subject, "stream": stream, "payload": p.model_dump_json().encode(), "created_at": now} for p in payloads]
    # A plain insert: the rows need nothing of the ORM's unit of work, which would cost more than it.
    session.execute(_OUTBOX_INSERT, rows)
    return [row["msg_id"] for row in rows]


async def ensure_stream(js, owner: str, city: str | None, replicas: int = 1) -> str:
    """Create (or keep) the stream holding ``owner``'s events in ``city``; returns its name."""
    name = Event.stream_name(owner, city)
    config = StreamConfig(
        name=name,
        subjects=[f"renkei.{city or 'global'}.{owner}.events.>"],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        num_replicas=replicas,
    )
    try:
        await js.stream_info(name)
        await js.update_stream(config)
    except NotFoundError:
        await js.add_stream(config)
    return name


def outbox_backlog(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).where(OutboxMessage.published_at.is_(None))) or 0


class OutboxRelay:
    """Publishes what the outbox holds, in order, until each is stored by JetStream."""

    def __init__(self, db: Database, js, batch: int = 500, idle_seconds: float = 0.5) -> None:
        self._db = db
        self._js = js
        self._batch = batch
        self._idle = idle_seconds
        self._wake = asyncio.Event()
        self._marks: GroupCommit[list[int], None] = GroupCommit(db.engine, self._mark_published)

    def wake(self) -> None:
        """Call after committing an outbox row to publish it without waiting for the next poll."""
        self._wake.set()

    def _pending(self) -> list[tuple[int, str, str, str, bytes]]:
        query = (
            select(OutboxMessage.id, OutboxMessage.msg_id, OutboxMessage.subject, OutboxMessage.stream, OutboxMessage.payload)
            .where(OutboxMessage.published_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(self._batch)
        )
        with self._db.reading() as session:  # a snapshot: it waits for no writer
            return [tuple(row) for row in session.execute(query)]

    @staticmethod
    def _mark_published(session: Session, batches: Sequence[list[int]]) -> list[None]:
        session.execute(_MARK_PUBLISHED, {"published_at": utcnow(), "ids": [row_id for ids in batches for row_id in ids]})
        return [None] * len(batches)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many were stored.

        The batch goes out in order without waiting for each acknowledgement, then the
        acknowledgements are collected; rows are marked published up to the first that
        was not stored, so what follows a failure is sent again (and dropped by the
        stream's duplicate window if it had been stored after all).
        """
        rows = await self._db.read(self._pending)
        pending: list[tuple[int, asyncio.Future]] = []
        try:
            for row_id, msg_id, subject, stream, payload in rows:
                future = await self._js.publish_async(subject, payload, stream=stream, headers={MSG_ID_HEADER: msg_id})
                pending.append((row_id, future))
        except Exception as exc:  # NATS away: what was not sent stays in the outbox
            log.warning("outbox publish paused", error=str(exc))
        acks = await asyncio.gather(*(asyncio.wait_for(f, 5) for _, f in pending), return_exceptions=True)
        done: list[int] = []
        for (row_id, _), ack in zip(pending, acks, strict=True):
            if isinstance(ack, BaseException):
                log.warning("outbox publish not acknowledged", error=str(ack) or type(ack).__name__, published=len(done))
                break
            done.append(row_id)
        if done:
            await self._marks.submit(done)
        return len(done)

    async def run(self) -> None:
        while True:
            published = await self.publish_pending()
            if published < self._batch:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle)
                except TimeoutError:
                    pass
                self._wake.clear()


EventHandler = Callable[[Session, BaseModel], None]


class EventConsumer:
    """A durable pull consumer that applies each event exactly once to the service's database."""

    def __init__(
        self,
        db: Database,
        js,
        consumer: str,
        event: Event,
        city: str | None,
        handler: EventHandler,
        batch: int = 100,
        ack_wait_seconds: float = 30,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._js = js
        self.name = f"{consumer}__{event.name}"
        self._event = event
        self._city = city
        self._handler = handler
        self._batch = batch
        self._ack_wait = ack_wait_seconds
        self._subscription = None

    async def subscribe(self) -> None:
        self._subscription = await self._js.pull_subscribe(
            self._event.subject(self._city),
            durable=self.name,
            stream=self._event.stream(self._city),
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=self._ack_wait, max_deliver=-1
            ),
        )

    def _apply(self, msg_id: str, subject: str, data: bytes) -> str:
        """Process one message in one transaction with its inbox entry; returns the outcome."""
        outcome, reason = "processed", None
        try:
            with self._db.session() as session:
                if session.get(InboxEntry, (self.name, msg_id)) is not None:
                    return "duplicate"
                try:
                    payload = self._event.model.model_validate_json(data)
                    with session.begin_nested():
                        self._handler(session, payload)
                except (ValidationError, Problem) as exc:
                    outcome, reason = "rejected", str(exc)
                session.add(InboxEntry(consumer=self.name, msg_id=msg_id, subject=subject, outcome=outcome, reason=reason))
        except IntegrityError:
            return "duplicate"  # another replica recorded it first
        if reason:
            log.warning("event rejected", consumer=self.name, msg_id=msg_id, reason=reason)
        return outcome

    async def process_batch(self, timeout: float = 1.0) -> int:
        """Fetch and apply up to one batch; returns how many messages came."""
        if self._subscription is None:
            await self.subscribe()
        try:
            messages = await self._subscription.fetch(self._batch, timeout=timeout)
        except NatsTimeout:
            return 0
        if self._metrics is not None and messages:
            self._metrics.consumer_pending.labels(self._event.key).set(messages[-1].metadata.num_pending)
            redelivered = sum(1 for msg in messages if msg.metadata.num_delivered > 1)
            if redelivered:
                self._metrics.consumer_redeliveries.labels(self._event.key).inc(redelivered)
        for msg in messages:
            msg_id = (msg.headers or {}).get(MSG_ID_HEADER) or f"{msg.metadata.stream}:{msg.metadata.sequence.stream}"
            try:
                await asyncio.to_thread(self._apply, msg_id, msg.subject, msg.data)
            except Exception as exc:  # database away: let JetStream deliver it again
                log.warning("event will be retried", consumer=self.name, msg_id=msg_id, error=str(exc))
                await msg.nak(delay=1)
                continue
            await msg.ack()
        return len(messages)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.process_batch()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS away or restarting: try again shortly
                    log.warning("consumer paused", consumer=self.name, error=str(exc))
                    await asyncio.sleep(0.5)
        finally:
            # An open pull request would otherwise hold the connection's drain for its timeout.
            if self._subscription is not None:
                with contextlib.suppress(Exception):
                    await self._subscription.unsubscribe()
