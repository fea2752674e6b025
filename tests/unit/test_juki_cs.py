"""The community server keeps identity information current from the registry's changes, in its
database and its 4-item index, and forwards every applied change to the prefecture server."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from renkei.processes import free_port
from services.juki_cs.app import create_app
from services.juki_cs.matching import FourItemQuery
from services.juki_cs.models import IdentityInfo, PrefectureForwarding
from services.juki_cs.runtime import runtime_of
from services.juki_prefecture.models import IdentityCopy
from shared.models import InboxEntry
from tests.unit.test_juki_support import (
    BASE_TIME,
    KOSHIGAYA,
    arrivals,
    change,
    cs_settings,
    people,
    prepare_pki,
    publish,
    start_prefecture,
    wait_until,
)


def _count(db, statement) -> int:
    with db.session() as session:
        return session.scalar(statement) or 0


def _inbox(db) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(select(InboxEntry.outcome, func.count()).group_by(InboxEntry.outcome)).all()
    return dict(rows)


def _row(db, code: str) -> IdentityInfo | None:
    with db.session() as session:
        return session.get(IdentityInfo, code)


def _prefecture_rows(prefecture) -> dict[str, IdentityCopy]:
    with prefecture.app.state.context.db.session() as session:
        return {row.resident_code: row for row in session.scalars(select(IdentityCopy).where(IdentityCopy.city == KOSHIGAYA))}


def test_changes_are_held_indexed_and_forwarded(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    residents = people(40)
    with start_prefecture(stack_files, database_url) as prefecture:
        app = create_app(cs_settings(stack_files, nats_secured, database_url, prefecture_url=prefecture.url))
        with TestClient(app):
            runtime = runtime_of(app.state.context)
            db = app.state.context.db
            publish(stack_files, nats_secured, arrivals(residents))
            wait_until(lambda: len(runtime.index) == 40, what="the index to hold every resident")
            wait_until(lambda: runtime.forwarder.backlog().forwarded == 40, what="every change to be forwarded")
            held = _prefecture_rows(prefecture)
            target = residents[17]
            found = runtime.search(
                FourItemQuery(name=target.name_kanji, birth_date=target.birth_date, sex=target.sex, address=target.address), 5
            )
    assert set(held) == {r.resident_code for r in residents}
    row = _row(db, target.resident_code)
    assert row.status == "resident" and row.my_number == target.my_number and row.address == target.address
    assert held[target.resident_code].digest == row.digest  # both sides hold the same record
    assert found[0].key == target.resident_code and found[0].all_items_matched


def test_applying_the_same_change_twice_or_an_older_one_changes_nothing(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    person = people(1)[0]
    first = change(person, "move_in", at=BASE_TIME)
    moved = change(person, "address_change", at=BASE_TIME + timedelta(days=3), address="埼玉県越谷市越ヶ谷四丁目2番1号")
    app = create_app(cs_settings(stack_files, nats_secured, database_url))
    with TestClient(app):
        db = app.state.context.db
        # Distinct message ids: the kernel's inbox does not see these as redeliveries, the CS must.
        publish(stack_files, nats_secured, [first, moved, moved, first])
        wait_until(lambda: sum(_inbox(db).values()) == 4, what="all four messages")
        row = _row(db, person.resident_code)
        forwarded = _count(db, select(func.count()).select_from(PrefectureForwarding))
        index = runtime_of(app.state.context).index
        indexed = index.get(person.resident_code)
    assert _inbox(db) == {"processed": 4}
    assert row.change_id == moved.change_id and row.address == "埼玉県越谷市越ヶ谷四丁目2番1号"
    assert forwarded == 2  # one forwarding per change that took effect
    assert indexed.address == "埼玉県越谷市越ヶ谷四丁目2番1号"


def test_moving_out_and_dying_leave_the_index_but_stay_on_file(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    leaver, deceased, stayer = people(3, seed=11)
    app = create_app(cs_settings(stack_files, nats_secured, database_url))
    with TestClient(app):
        runtime = runtime_of(app.state.context)
        db = app.state.context.db
        publish(stack_files, nats_secured, arrivals([leaver, deceased, stayer]))
        wait_until(lambda: len(runtime.index) == 3, what="three residents")
        later = BASE_TIME + timedelta(days=30)
        publish(stack_files, nats_secured, [change(leaver, "move_out", at=later), change(deceased, "death", at=later)])
        wait_until(lambda: len(runtime.index) == 1, what="two people to leave the index")
        query = FourItemQuery(name=leaver.name_kanji, birth_date=leaver.birth_date)
        leaver_found = [c.key for c in runtime.search(query, 5)]
    assert runtime.index.get(stayer.resident_code) is not None
    assert leaver.resident_code not in leaver_found
    assert _row(db, leaver.resident_code).status == "moved_out"
    assert _row(db, deceased.resident_code).status == "deceased"


def test_a_contradictory_change_is_rejected_and_changes_nothing(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    person, other = people(2, seed=5)
    not_dead = change(person, "death", status="resident")  # a death that leaves a resident
    stolen_number = change(other, "move_in", my_number=person.my_number, at=BASE_TIME + timedelta(hours=1))
    app = create_app(cs_settings(stack_files, nats_secured, database_url))
    with TestClient(app):
        db = app.state.context.db
        publish(stack_files, nats_secured, [change(person, "move_in"), not_dead, stolen_number])
        wait_until(lambda: sum(_inbox(db).values()) == 3, what="three messages")
        with db.session() as session:
            reasons = sorted(session.scalars(select(InboxEntry.reason).where(InboxEntry.outcome == "rejected")))
    assert _inbox(db) == {"processed": 1, "rejected": 2}
    assert "leaves the person deceased" in reasons[0]
    assert "belongs to another resident code" in reasons[1]
    assert _row(db, person.resident_code).status == "resident"
    assert _row(db, other.resident_code) is None


def test_a_prefecture_server_that_is_down_loses_nothing(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    residents = people(25, seed=3)
    port = free_port()
    app = create_app(cs_settings(stack_files, nats_secured, database_url, prefecture_url=f"https://127.0.0.1:{port}"))
    with TestClient(app):
        runtime = runtime_of(app.state.context)
        db = app.state.context.db
        publish(stack_files, nats_secured, arrivals(residents))
        wait_until(lambda: len(runtime.index) == 25, what="every change applied")
        attempts = select(func.min(PrefectureForwarding.attempts))
        wait_until(lambda: _count(db, attempts) >= 2, what="every row to be tried twice")
        down = runtime.forwarder.backlog()
        with start_prefecture(stack_files, database_url, port=port) as prefecture:
            wait_until(lambda: runtime.forwarder.backlog().pending == 0, what="the backlog to drain")
            held = _prefecture_rows(prefecture)
    assert down.pending == 25 and down.forwarded == 0
    assert "unavailable" in down.last_error and "cannot be reached" in down.last_error
    assert set(held) == {r.resident_code for r in residents}


def test_the_index_is_rebuilt_from_the_database_at_start(stack_files, nats_secured, database_url):
    prepare_pki(stack_files)
    residents = people(20, seed=9)
    settings = cs_settings(stack_files, nats_secured, database_url)
    app = create_app(settings)
    with TestClient(app):
        publish(stack_files, nats_secured, arrivals(residents))
        wait_until(lambda: len(runtime_of(app.state.context).index) == 20, what="twenty residents")
    again = create_app(settings)
    with TestClient(again):
        runtime = runtime_of(again.state.context)
        assert runtime.ready and len(runtime.index) == 20
        target = residents[4]
        assert runtime.search(FourItemQuery(name=target.name_kana, birth_date=target.birth_date), 3)[0].key == target.resident_code
