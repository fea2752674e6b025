"""The health management keeps its records in the intermediate server's provision database
(副本) by itself, and takes in the doses of answered move-in queries, once.

Real parts only: nats-server with the stack's users and permissions, the health
management app with its background jobs, the intermediate servers' apps (and for the
move-in, the hub on a real socket with mutual TLS); the copy is read back from the
intermediate server's own database.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.testkit import make_bus, staff_headers
from services.health_mgmt import register
from services.health_mgmt.app import create_app as create_health
from services.health_mgmt.models import CopyOutbox, Dose, MoveInReceipt
from services.intermediate_server import copies as copy_db
from shared.contracts import network as net
from shared.events import MSG_ID_HEADER
from shared.models import InboxEntry
from shared.trust import Principal
from tests.unit.test_health_support import health_settings
from tests.unit.test_intermediate_server_support import (
    HEALTH,
    KOSHIGAYA,
    OP,
    SOKA,
    HubThread,
    announce,
    call,
    hub_settings,
    intermediate_app,
    nats_for,
    network_files,
    people,
    register_doses,
    registered,
    runtime,
    symbol_count,
    vaccination_query,
    wait_until,
)

FAST = {"job_idle_seconds": 0.2, "job_retry_max_seconds": 0.5}


def health_app(files, nats, database_url):
    return create_health(health_settings(files, nats, database_url, **FAST))


def enrol(db, number: str, birth: date = date(2020, 4, 1)) -> str:
    with db.session() as session:
        register.enrol(session, number, {"name": "越谷　次郎", "name_kana": "コシガヤ　ジロウ", "sex": "male", "birth_date": birth,
                                         "address": "埼玉県越谷市越ヶ谷一丁目1番1号", "status": "resident"})
    return number


def copy_of(intermediate: TestClient, number: str) -> list[dict]:
    rt = runtime(intermediate)
    with rt.ctx.db.session() as session:
        return copy_db.records_of(session, rt.tenant, number, net.VACCINATION_RECORDS)


def pending(health: TestClient) -> int:
    with health.app.state.context.db.session() as session:
        return len(session.scalars(select(CopyOutbox).where(CopyOutbox.pending.is_(True))).all())


def dose(day: str, lot: str, kind: str = "mr") -> dict:
    return {"record_type": kind, "items": {"inoculation_date": day, "examination_type": "inoculated", "lot_number": lot, "manufacturer": "武田薬品工業"}}


def test_doses_reach_the_copy_as_they_change_and_wait_for_an_intermediate_server_that_is_away(tmp_path, database_url):
    files = network_files(tmp_path)
    (person,) = people(1, seed=21)
    number = person.numbers[KOSHIGAYA]
    with nats_for(files, tmp_path) as nats, TestClient(health_app(files, nats, database_url)) as health:
        enrol(health.app.state.context.db, number)
        nurse = staff_headers(health, ["nurse"])
        first = health.post(f"/subjects/{number}/doses", json=dose("2021-05-10", "MR100"), headers=nurse)
        second = health.post(f"/subjects/{number}/doses", json=dose("2022-04-11", "VZ200", "varicella"), headers=nurse)
        assert first.status_code == second.status_code == 201, first.text
        # Nobody serves register_copies: the person waits, the job keeps trying.
        admin = staff_headers(health, ["administrator"])
        wait_until(lambda: health.get("/copies/backlog", headers=admin).json()["failures"] >= 2, what="the job to retry")
        backlog = health.get("/copies/backlog", headers=admin).json()
        assert backlog["pending"] == 1 and backlog["sent"] == 0 and "register_copies" in backlog["last_error"]

        with TestClient(intermediate_app(files, nats, database_url, KOSHIGAYA, None)) as intermediate:
            wait_until(lambda: pending(health) == 0, what="the copy to be sent")
            assert [(r["record_type"], r["inoculation_date"], r["lot_number"]) for r in copy_of(intermediate, number)] == [
                ("mr", "2021-05-10", "MR100"),
                ("varicella", "2022-04-11", "VZ200"),
            ]
            assert copy_of(intermediate, number)[0]["manufacturer"] == "武田薬品工業"

            # A correction reaches the copy too.
            corrected = health.put(f"/subjects/{number}/doses/{first.json()['id']}", json={"items": dose("2021-05-12", "MR101")["items"]}, headers=nurse)
            assert corrected.status_code == 200, corrected.text
            wait_until(lambda: copy_of(intermediate, number)[0]["lot_number"] == "MR101", what="the correction in the copy")
            assert copy_of(intermediate, number)[0]["inoculation_date"] == "2021-05-12"
            # The copy is stored before the intermediate server replies; the row is marked sent after.
            wait_until(lambda: pending(health) == 0, what="the correction to be marked sent")
            assert health.get("/copies/backlog", headers=admin).json() | {"oldest_pending_at": None} == {
                "pending": 0, "sent": 1, "oldest_pending_at": None, "last_error": None, "failures": 0, "job_error": None,
            }


def test_reconciliation_finds_what_the_copy_lacks_or_holds_apart_from_the_register_and_sends_it_again(tmp_path, database_url):
    files = network_files(tmp_path)
    kept, drifted, unnoted, stranger = people(4, seed=22)
    with nats_for(files, tmp_path) as nats, TestClient(intermediate_app(files, nats, database_url, KOSHIGAYA, None)) as intermediate, \
            TestClient(health_app(files, nats, database_url)) as health:
        db = health.app.state.context.db
        nurse = staff_headers(health, ["nurse"])
        for person in (kept, drifted, unnoted):
            enrol(db, person.numbers[KOSHIGAYA])
        for person, lot in ((kept, "K1"), (drifted, "D1")):
            assert health.post(f"/subjects/{person.numbers[KOSHIGAYA]}/doses", json=dose("2021-06-01", lot), headers=nurse).status_code == 201
        wait_until(lambda: pending(health) == 0 and copy_of(intermediate, drifted.numbers[KOSHIGAYA]), what="the copy")
        # The copy drifts: another version of one person, a person the register does not hold,
        # and a dose that reached the register without its note.
        register_doses(files, nats, KOSHIGAYA, [drifted, stranger], per_person=2, lot_prefix="DRIFT")
        with db.session() as session:
            session.add(Dose(subject_number=unnoted.numbers[KOSHIGAYA], record_type="bcg", dose_date=date(2020, 6, 1), examination_type="inoculated",
                             source="counter", items={"inoculation_date": "2020-06-01", "examination_type": "inoculated"}, recorded_by="x"))
        admin = staff_headers(health, ["administrator"], user_id="a.suzuki")
        nurse_try = health.post("/copies/reconciliations", headers=nurse)
        found = health.post("/copies/reconciliations", headers=admin)
        assert nurse_try.status_code == 403
        assert found.status_code == 200, found.text
        assert found.json() == {"in_register": 3, "in_copy": 3, "missing": 1, "differing": 1, "extra": 1, "queued": 3}

        wait_until(lambda: pending(health) == 0, what="the differences to be sent")
        again = health.post("/copies/reconciliations", headers=admin).json()
        assert again == {"in_register": 3, "in_copy": 4, "missing": 0, "differing": 0, "extra": 0, "queued": 0}
        assert copy_of(intermediate, stranger.numbers[KOSHIGAYA]) == []
        assert [r["lot_number"] for r in copy_of(intermediate, drifted.numbers[KOSHIGAYA])] == ["D1"]
        assert [r["record_type"] for r in copy_of(intermediate, unnoted.numbers[KOSHIGAYA])] == ["bcg"]
        logged = [e for e in health.app.state.context.oplog.entries() if e.operation.startswith("health_mgmt.copies.reconcile")]
        assert sorted((e.actor, e.outcome, e.operation.split(" ", 1)[-1]) for e in logged if e.actor == "a.suzuki") == [
            ("a.suzuki", "ok", "missing=0 differing=0 extra=0"),
            ("a.suzuki", "ok", "missing=1 differing=1 extra=1"),
        ]


@pytest.fixture
def network(tmp_path, database_url):
    files = network_files(tmp_path)
    with nats_for(files, tmp_path) as nats, HubThread(hub_settings(files, nats, database_url)) as hub:
        koshigaya = intermediate_app(files, nats, database_url, KOSHIGAYA, hub.url)
        soka = intermediate_app(files, nats, database_url, SOKA, hub.url)
        with TestClient(koshigaya) as k, TestClient(soka) as s, TestClient(health_app(files, nats, database_url)) as health:
            wait_until(lambda: registered(k) and registered(s), what="both servers to register with the hub")
            yield files, nats, k, s, health


def republish(files, nats, event: net.QueryAnswered, msg_id: str) -> None:
    """Publish ``answered`` again, as a redelivery would bring it (under the server's own login)."""

    async def run() -> None:
        principal = Principal("intermediate_server", KOSHIGAYA)
        bus = make_bus(files.data_dir, files.directory, principal)
        await bus.connect(nats.url, *files.login(principal))
        try:
            js = bus.jetstream()
            await js.publish(net.QUERY_ANSWERED.subject(KOSHIGAYA), event.model_dump_json().encode(),
                             stream=net.QUERY_ANSWERED.stream(KOSHIGAYA), headers={MSG_ID_HEADER: msg_id})
        finally:
            await bus.close()

    asyncio.run(run())


def test_doses_of_an_answered_move_in_query_are_registered_once_as_vaccinated_before_move_in(network):
    files, nats, koshigaya, soka, health = network
    (person,) = people(1, seed=23)
    db = health.app.state.context.db
    number = enrol(db, person.numbers[KOSHIGAYA], birth=date(2019, 4, 1))
    with db.session() as session:  # one of the doses is in the register already
        subject = register.find_subject(session, number)
        register.record_dose(session, subject, register.check_record("rubella", {"inoculation_date": "2020-02-10", "examination_type": "inoculated"}),
                             source="counter", recorded_by="n.sato")
    announce(files, nats, SOKA, [person])
    announce(files, nats, KOSHIGAYA, [person])
    wait_until(lambda: symbol_count(soka) == 1 and symbol_count(koshigaya) == 1, what="symbols")
    register_doses(files, nats, SOKA, [person], per_person=4, lot_prefix="SK")  # measles, rubella, bcg, dpt_ipv in 2020

    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, vaccination_query(person))
    assert isinstance(accepted, net.QueryAccepted)

    def receipt() -> MoveInReceipt | None:
        with db.session() as session:
            found = session.get(MoveInReceipt, accepted.query_id)
            return found if found is not None and found.outcome != "pending" else None

    done = wait_until(receipt, what="the answer to be registered")
    assert (done.outcome, done.received, done.registered, done.subject_number) == ("registered", 4, 3, number)
    assert [(s["record_type"], s["reason"]) for s in done.skipped] == [("rubella", "already_recorded")]

    def transferred() -> list[tuple]:
        with db.session() as session:
            rows = session.scalars(select(Dose).where(Dose.subject_number == number, Dose.source == "transfer").order_by(Dose.dose_date))
            return [(d.record_type, d.dose_date.isoformat(), d.items.get("lot_number"), d.items.get("vaccinated_before_move_in")) for d in rows]

    expected = [("measles", "2020-01-10", "SK0X1000", True), ("bcg", "2020-03-10", "SK0X1002", True), ("dpt_ipv", "2020-04-10", "SK0X1003", True)]
    assert transferred() == expected
    record = health.get(f"/subjects/{number}", headers=staff_headers(health, ["nurse"])).json()
    assert sorted(d["source"] for d in record["doses"]) == ["counter", "transfer", "transfer", "transfer"]

    # The event again, as a redelivery (the same message id) and as a fresh message: nothing changes.
    event = net.QueryAnswered(query_id=accepted.query_id, status="answered", item_code=net.VACCINATION_RECORDS, provider=SOKA)
    with db.session() as session:
        (first_id,) = session.scalars(select(InboxEntry.msg_id).where(InboxEntry.consumer == "health_mgmt__answered"))
    republish(files, nats, event, first_id)
    republish(files, nats, event, uuid.uuid4().hex)

    def consumed() -> int:
        with db.session() as session:
            return len(session.scalars(select(InboxEntry.msg_id).where(InboxEntry.consumer == "health_mgmt__answered")).all())

    wait_until(lambda: consumed() == 2, what="the fresh message to be consumed")
    assert transferred() == expected and receipt().registered == 3

    # And Koshigaya's copy now holds the person's whole history, the doses from Soka included.
    wait_until(lambda: pending(health) == 0 and len(copy_of(koshigaya, number)) == 4, what="Koshigaya's copy")
