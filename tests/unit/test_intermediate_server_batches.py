"""A batch's writes and reads at the intermediate server are one statement each, and each
query in it is still decided on its own (``querying._finish_many``, ``querying.results_of``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from services.intermediate_server import querying
from services.intermediate_server.models import Base, QueryRow
from shared.contracts import network as net
from shared.db import Database, schema_name
from shared.errors import NotFound
from shared.ids import integrated_address_number
from shared.models import KernelBase, OutboxMessage, utcnow

KOSHIGAYA, SOKA = "112224", "112216"
NUMBER = integrated_address_number(KOSHIGAYA, "000000001")


@pytest.fixture
def rt(database_url):
    db = Database(database_url, None if database_url.startswith("sqlite") else schema_name("intermediate_server", "batches"))
    KernelBase.metadata.create_all(db.engine)
    Base.metadata.create_all(db.engine)
    registry = SimpleNamespace(events={net.QUERY_ANSWERED.key: net.QUERY_ANSWERED})
    yield SimpleNamespace(ctx=SimpleNamespace(db=db, registry=registry), tenant=KOSHIGAYA)
    db.dispose()


def _query(tenant: str, query_id: str, status: str = "pending") -> QueryRow:
    now = utcnow()
    return QueryRow(
        tenant=tenant, query_id=query_id, integrated_address_number=NUMBER, requested_by="health_mgmt", provider=SOKA,
        affair_code=net.VACCINATION_AFFAIR, procedure_code=net.MOVE_IN_HISTORY_PROCEDURE, item_code=net.VACCINATION_RECORDS,
        consent="{}", status=status, requested_at=now, updated_at=now,
    )


def _end(rt, query_id: str, status: str, records: list | None = None):
    now = utcnow()
    end = {
        "tenant_": rt.tenant, "query_id_": query_id, "status": status, "serial_number": "s-" + query_id[:4],
        "records": json.dumps(records) if records is not None else None, "refusal_reason": None if status == "answered" else "no",
        "answered_at": now if status == "answered" else None, "finished_at": now, "updated_at": now,
    }
    return end, net.QueryAnswered(query_id=query_id, status=status, item_code=net.VACCINATION_RECORDS, provider=SOKA), None


def test_a_batch_of_ends_ends_each_open_query_once_with_its_event(rt):
    a, b, c, done, theirs = "a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32
    with rt.ctx.db.session() as session:
        session.add_all([_query(KOSHIGAYA, a), _query(KOSHIGAYA, b), _query(KOSHIGAYA, c), _query(KOSHIGAYA, done, "answered"), _query(SOKA, theirs)])
    ends = [_end(rt, a, "answered", [{"record_type": "bcg"}]), _end(rt, b, "refused"), _end(rt, a, "failed"), _end(rt, done, "failed"), _end(rt, theirs, "failed"), _end(rt, c, "answered", [])]
    with rt.ctx.db.session() as session:
        changed = querying._finish_many(rt, session, ends)
    # the second end of a, an ended query and another tenant's query change nothing
    assert changed == [True, True, False, False, False, True]
    with rt.ctx.db.session() as session:
        statuses = {query_id: status for query_id, status in session.execute(select(QueryRow.query_id, QueryRow.status))}
        announced = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert statuses == {a: "answered", b: "refused", c: "answered", done: "answered", theirs: "pending"}
    assert announced == 3  # one event per query ended, none for the others
    results = querying.results_of(rt, [(a, "health_mgmt"), (theirs, None), (c, "another_system"), (c, None)])
    assert results[0].records == [{"record_type": "bcg"}] and results[3].records == []
    assert [type(r) for r in results[1:3]] == [NotFound, NotFound]  # another tenant's; another asker's


@pytest.mark.parametrize("result", ["neither", "nulls", "both"])
def test_a_batch_reply_whose_result_holds_neither_or_both_is_refused_as_a_whole(result):
    from pydantic import ValidationError

    outcome = net.ProvisionOutcome(serial_number="20250401090000-" + "0" * 20, query_id="a" * 32, status="refused", refusal_reason="no").model_dump(mode="json")
    result = {"neither": {}, "nulls": {"value": None, "problem": None}, "both": {"value": outcome, "problem": {"status": 503}}}[result]
    assert net.OutcomeBatchReply.model_validate({"results": [{"value": outcome}]}).unpacked()[0].query_id == "a" * 32
    with pytest.raises(ValidationError, match="either a value or a problem"):
        net.OutcomeBatchReply.model_validate({"results": [result]})
