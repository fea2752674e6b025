"""The vaccination register follows the resident change feed (M30, M31): the real registry
publishes through its outbox and JetStream, the health management applies each change to
the people it holds, once, and never lets an older change undo a newer one."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select

from services.health_mgmt import register
from services.health_mgmt.app import SPEC as HEALTH_SPEC
from services.health_mgmt.config import Settings as HealthSettings
from services.health_mgmt.models import Subject
from services.health_mgmt.resident_feed import apply_resident_change
from services.resident_registry.app import SPEC as REGISTRY_SPEC
from services.resident_registry.config import Settings as RegistrySettings
from services.resident_registry.models import ResidentEntry
from services.resident_registry.register import read_resident, record_change, resident_record
from services.resident_registry.schemas import ChangeRequest
from services.resident_registry.seeding import seed
from shared.contracts.residents import ResidentChanged
from shared.ids import generate_my_number, generate_resident_code
from shared.models import utcnow
from tests.unit.test_health_support import new_number, open_register
from tests.unit.test_integrated_address import CITY, running, service_settings, wait_for_inbox


def read_resident_items(entry: ResidentEntry) -> dict:
    return resident_record(entry).address_items(entry.status)


def _enrol_from_register(health_db, entry: ResidentEntry) -> str:
    """Enrol a resident with the items the integrated address system would give (flow [03])."""
    number = new_number()
    with health_db.session() as session:
        register.enrol(session, number, read_resident_items(entry))
    return number


def test_changes_on_the_resident_register_reach_the_people_the_register_holds(stack_files, nats_secured, database_url):
    settings = {
        "resident_registry": service_settings(RegistrySettings, "resident_registry", stack_files, nats_secured, database_url),
        "health_mgmt": service_settings(HealthSettings, "health_mgmt", stack_files, nats_secured, database_url),
    }
    with (
        running(REGISTRY_SPEC, settings["resident_registry"]) as [registry],
        running(HEALTH_SPEC, settings["health_mgmt"]) as [health],
    ):
        registry_db, health_db = registry.app.state.context.db, health.app.state.context.db
        report = seed(registry_db, CITY, 6, seed=11)
        assert wait_for_inbox(health_db, "health_mgmt__changed", report.events, seconds=60) == report.events
        with health_db.session() as session:
            assert session.scalar(select(func.count()).select_from(Subject)) == 0  # nobody is enrolled by the feed

        with registry_db.session() as session:
            moving, dying, untouched = session.scalars(select(ResidentEntry).order_by(ResidentEntry.resident_code).limit(3))
            numbers = {e.resident_code: _enrol_from_register(health_db, e) for e in (moving, dying, untouched)}
            untouched_items = read_resident_items(untouched)
        with registry_db.session() as session:
            day = date.today()
            record_change(session, CITY, ChangeRequest(kind="address_change", effective_date=day, resident_code=moving.resident_code,
                                                       address="埼玉県越谷市越ヶ谷二丁目3番4号", town="越ヶ谷二丁目"), "clerk-1")
            record_change(session, CITY, ChangeRequest(kind="death", effective_date=day, resident_code=dying.resident_code), "clerk-1")
        assert wait_for_inbox(health_db, "health_mgmt__changed", report.events + 2, seconds=60) == report.events + 2

        with health_db.session() as session:
            moved = session.get(Subject, numbers[moving.resident_code])
            dead = session.get(Subject, numbers[dying.resident_code])
            still = session.get(Subject, numbers[untouched.resident_code])
            assert (moved.address, moved.status) == ("埼玉県越谷市越ヶ谷二丁目3番4号", "resident")
            assert dead.status == "deceased"  # kept, with the doses it has (M31)
            assert {k: getattr(still, k) for k in untouched_items} == untouched_items
            assert session.scalar(select(func.count()).select_from(Subject)) == 3
        with registry_db.session() as session:
            assert read_resident(session, moving.resident_code).address == moved.address


def test_a_change_applies_once_and_an_older_one_never_undoes_a_newer(tmp_path, database_url):
    db = open_register(tmp_path, database_url)
    codes = random.Random(5)
    base = {"resident_code": generate_resident_code(codes), "family_name": "越谷", "given_name": "一郎", "family_name_kana": "コシガヤ",
            "given_name_kana": "イチロウ", "sex": "male", "birth_date": date(1950, 4, 1), "my_number": generate_my_number(codes),
            "household_id": "H1", "relation": "head", "town": "越ヶ谷一丁目"}

    def change(kind: str, address: str, minutes: int) -> ResidentChanged:
        return ResidentChanged.model_validate({
            "change_id": f"{kind}-{minutes}", "kind": kind, "effective_date": date(2025, 6, 1),
            "recorded_at": utcnow() + timedelta(minutes=minutes), "resident": {**base, "address": address},
        })

    with db.session() as session:
        number = new_number()
        register.enrol(session, number, change("correction", "埼玉県越谷市越ヶ谷一丁目1番1号", 0).resident.address_items("resident"))
    newer = change("address_change", "埼玉県越谷市大沢三丁目1番1号", 10)
    older = change("address_change", "埼玉県越谷市蒲生一丁目1番1号", 5)
    death = change("death", "埼玉県越谷市大沢三丁目1番1号", 20)
    with db.session() as session:
        assert apply_resident_change(session, newer) == "updated"
    with db.session() as session:
        assert apply_resident_change(session, newer) == "unchanged"  # redelivered under another message id
        assert apply_resident_change(session, older) == "stale"
        assert session.get(Subject, number).address == "埼玉県越谷市大沢三丁目1番1号"
    stranger = ResidentChanged.model_validate({**newer.model_dump(), "resident": {**newer.resident.model_dump(), "resident_code": generate_resident_code(codes)}})
    with db.session() as session:
        assert apply_resident_change(session, stranger) == "not_enrolled"

    with db.session() as session:
        assert apply_resident_change(session, death) == "updated"
        subject = session.get(Subject, number)
        assert (subject.status, subject.address) == ("deceased", "埼玉県越谷市大沢三丁目1番1号")  # kept (M31)
    db.dispose()
