"""Query results are deleted after their period, finished or abandoned, and each deletion is
recorded (M21, M32); the statistics count deletions, never whom they concerned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from services.intermediate_server.models import Base, QueryRow, ResultDeletion, ReviewItem
from services.intermediate_server.retention import sweep, sweep_once
from services.intermediate_server.statistics import deletion_figures
from shared.contracts import network as net
from shared.db import Database, schema_name

KOSHIGAYA, SOKA = "112224", "112216"
NOW = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
RETENTION, ABANDON = timedelta(hours=72), timedelta(hours=168)


@pytest.fixture
def db(database_url):
    database = Database(database_url, None if database_url.startswith("sqlite") else schema_name("intermediate_server", KOSHIGAYA))
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


def _query(tenant: str, query_id: str, status: str, asked: datetime, finished: datetime | None) -> QueryRow:
    return QueryRow(
        tenant=tenant, query_id=query_id, integrated_address_number="112224000000012", requested_by="health_mgmt", provider=SOKA,
        affair_code=net.VACCINATION_AFFAIR, procedure_code=net.MOVE_IN_HISTORY_PROCEDURE, item_code=net.VACCINATION_RECORDS,
        consent="{}", status=status, records='[{"lot_number": "X1"}]' if status == "answered" else None,
        requested_at=asked, updated_at=finished or asked, finished_at=finished,
    )


def test_finished_and_abandoned_results_are_deleted_and_each_deletion_recorded(db):
    day = timedelta(days=1)
    rows = [
        _query(KOSHIGAYA, "1" * 32, "answered", NOW - 5 * day, NOW - 4 * day),  # finished long ago: deleted
        _query(KOSHIGAYA, "2" * 32, "refused", NOW - 2 * day, NOW - 2 * day),  # finished lately: kept
        _query(KOSHIGAYA, "3" * 32, "held", NOW - 8 * day, None),  # never ended, past a week: abandoned
        _query(KOSHIGAYA, "4" * 32, "held", NOW - 3 * day, None),  # still waiting: kept
        _query(SOKA, "5" * 32, "answered", NOW - 9 * day, NOW - 9 * day),  # another tenant's: not this sweep's
    ]
    with db.session() as session:
        session.add_all(rows)
    result = sweep_once(db, KOSHIGAYA, RETENTION, ABANDON, NOW)
    assert (result.finished, result.abandoned) == (1, 1)
    with db.session() as session:
        left = set(session.scalars(select(QueryRow.query_id)))
        deletions = {(d.query_id, d.status, d.reason) for d in session.scalars(select(ResultDeletion))}
        figures = {(f.figure, f.count) for f in deletion_figures(session, KOSHIGAYA, NOW - 30 * day)}
    assert left == {"2" * 32, "4" * 32, "5" * 32}
    assert deletions == {("1" * 32, "answered", "finished"), ("3" * 32, "held", "abandoned")}
    assert figures == {("deleted.finished", 1), ("deleted.abandoned", 1)}
    again = sweep_once(db, KOSHIGAYA, RETENTION, ABANDON, NOW)  # nothing is deleted twice
    assert (again.finished, again.abandoned) == (0, 0)


def test_review_items_go_once_delivered_and_past_the_period(db):
    base = {"requester": KOSHIGAYA, "affair_code": net.VACCINATION_AFFAIR, "procedure_code": net.MOVE_IN_HISTORY_PROCEDURE,
            "item_code": net.VACCINATION_BENEFITS, "integrated_address_number": "112164000000011", "permit": "{}", "received_at": NOW - timedelta(days=9)}
    with db.session() as session:
        session.add(ReviewItem(tenant=SOKA, serial_number="old", query_id="6" * 32, state="released", delivered_at=NOW - timedelta(days=5), **base))
        session.add(ReviewItem(tenant=SOKA, serial_number="waiting", query_id="7" * 32, state="waiting", **base))
    assert sweep_once(db, SOKA, RETENTION, ABANDON, NOW).review_items == 1
    with db.session() as session:
        assert set(session.scalars(select(ReviewItem.serial_number))) == {"waiting"}


def test_the_sweep_runs_until_nothing_is_due(db):
    with db.session() as session:
        session.add(_query(KOSHIGAYA, "8" * 32, "failed", datetime.now(UTC) - timedelta(hours=3), datetime.now(UTC) - timedelta(hours=2)))
    rt = SimpleNamespace(ctx=SimpleNamespace(db=db), tenant=KOSHIGAYA, settings=SimpleNamespace(result_retention_hours=1, abandon_after_hours=24))
    total = asyncio.run(sweep(rt))
    assert total.finished == 1
