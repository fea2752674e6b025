"""The register's rules on a real database: what each change does, what is refused, and that
a refused change stores nothing while an accepted one puts exactly one event in the outbox."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.resident_registry import register
from services.resident_registry.schemas import ChangeRequest, ChangeView
from shared.errors import Conflict, InvalidRequest, NotFound
from tests.unit.test_resident_registry_support import CITY, counts, open_register, outbox_events, person


@pytest.fixture
def db(database_url):
    db = open_register(database_url)
    yield db
    db.dispose()


def record(db, **fields) -> ChangeView:
    with db.session() as session:
        return register.record_change(session, CITY, ChangeRequest(**fields), "clerk-1")


def refused(db, problem: type[Exception], **fields) -> Exception:
    """Record a change that must be refused; checks that the register is left as it was."""
    before = counts(db)
    with pytest.raises(problem) as caught:
        record(db, **fields)
    assert counts(db) == before
    return caught.value


def moved_in(db, day: str = "2020-04-01", **overrides) -> ChangeView:
    return record(db, kind="move_in", effective_date=day, **person(**overrides))


def read(db, resident_code: str):
    with db.session() as session:
        return register.read_resident(session, resident_code)


def history(db, resident_code: str) -> list[ChangeView]:
    with db.session() as session:
        return register.list_changes(session, resident_code)


def test_a_birth_puts_a_new_person_on_the_register_with_codes_assigned(db):
    items = {k: v for k, v in person(relation="child").items() if k not in ("resident_code", "my_number")}
    born = record(db, kind="birth", effective_date="2024-05-01", **{**items, "birth_date": "2024-05-01"})

    entry = read(db, born.resident.resident_code)
    assert entry.status == "resident" and entry.birth_date == date(2024, 5, 1)
    assert len(entry.resident_code) == 11 and len(entry.my_number) == 12
    assert counts(db) == {"residents": 1, "changes": 1, "events": 1}
    (event,) = outbox_events(db)
    assert event.change_id == born.change_id and event.kind == "birth"
    assert event.resident == entry and event.effective_date == date(2024, 5, 1)


def test_a_birth_takes_effect_on_the_birth_date_and_keeps_given_numbers_unique(db):
    items = {**person(relation="child"), "birth_date": "2024-05-01"}
    error = refused(db, InvalidRequest, kind="birth", effective_date="2024-05-02", **items)
    assert error.extensions["errors"][0]["loc"] == ["body", "effective_date"]

    first = record(db, kind="birth", effective_date="2024-05-01", **items)
    assert first.resident.resident_code == items["resident_code"] and first.resident.my_number == items["my_number"]
    refused(db, Conflict, kind="birth", effective_date="2024-05-01", **items)  # the same resident code again
    twin = {**person(relation="child"), "birth_date": "2024-05-01", "my_number": items["my_number"]}
    assert "My Number" in str(refused(db, Conflict, kind="birth", effective_date="2024-05-01", **twin))


def test_move_out_keeps_the_person_and_a_second_move_out_is_refused(db):
    arrived = moved_in(db)
    code = arrived.resident.resident_code
    left = record(db, kind="move_out", effective_date="2023-03-31", resident_code=code)

    assert left.resident.status == "moved_out" and read(db, code).status == "moved_out"
    error = refused(db, Conflict, kind="move_out", effective_date="2023-04-01", resident_code=code)
    assert "moved_out" in str(error) and error.extensions["resident_code"] == code
    refused(db, Conflict, kind="address_change", effective_date="2023-04-01", resident_code=code,
            address="埼玉県越谷市北越谷二丁目3番4号", town="北越谷")
    refused(db, Conflict, kind="death", effective_date="2023-04-01", resident_code=code)
    assert [change.kind for change in history(db, code)] == ["move_in", "move_out"]


def test_a_move_in_takes_back_someone_who_had_moved_out_with_the_same_my_number(db):
    arrived = moved_in(db)
    code, number = arrived.resident.resident_code, arrived.resident.my_number
    record(db, kind="move_out", effective_date="2022-01-10", resident_code=code)

    other_number = person()["my_number"]
    returning = person(resident_code=code, my_number=other_number, address="埼玉県越谷市千間台東一丁目2番3号", town="千間台東")
    refused(db, Conflict, kind="special_move_in", effective_date="2023-06-01", **returning)
    back = record(db, kind="special_move_in", effective_date="2023-06-01", **{**returning, "my_number": number})

    assert back.resident.status == "resident" and back.resident.town == "千間台東"
    assert read(db, code).address == "埼玉県越谷市千間台東一丁目2番3号"
    assert [change.kind for change in history(db, code)] == ["move_in", "move_out", "special_move_in"]
    assert [event.kind for event in outbox_events(db)] == ["move_in", "move_out", "special_move_in"]


def test_a_move_in_of_someone_already_resident_or_deceased_is_refused(db):
    resident = moved_in(db)
    refused(db, Conflict, kind="move_in", effective_date="2021-01-01",
            **person(resident_code=resident.resident.resident_code, my_number=resident.resident.my_number))
    dead = moved_in(db)
    record(db, kind="death", effective_date="2021-01-01", resident_code=dead.resident.resident_code)
    refused(db, Conflict, kind="move_in", effective_date="2021-02-01",
            **person(resident_code=dead.resident.resident_code, my_number=dead.resident.my_number))
    # Someone new whose My Number another entry holds.
    refused(db, Conflict, kind="move_in", effective_date="2021-02-01", **person(my_number=resident.resident.my_number))


def test_the_deceased_stay_on_file_and_can_be_corrected_but_not_die_again(db):
    code = moved_in(db).resident.resident_code
    died = record(db, kind="death", effective_date="2024-01-15", resident_code=code)
    assert died.resident.status == "deceased"

    refused(db, Conflict, kind="death", effective_date="2024-01-16", resident_code=code)
    refused(db, Conflict, kind="move_out", effective_date="2024-01-16", resident_code=code)
    corrected = record(db, kind="correction", effective_date="2024-02-01", resident_code=code, given_name_kana="ハナ")
    assert corrected.resident.status == "deceased" and corrected.resident.given_name_kana == "ハナ"
    assert read(db, code).status == "deceased"  # M31: still on file, still readable


def test_address_change_and_correction_update_the_entry(db):
    code = moved_in(db).resident.resident_code
    moved = record(db, kind="address_change", effective_date="2021-07-01", resident_code=code,
                   address="埼玉県越谷市北越谷二丁目3番4号", town="北越谷", household_id="112224-0000009")
    assert (moved.resident.town, moved.resident.household_id, moved.resident.status) == ("北越谷", "112224-0000009", "resident")

    renumbered = person()["my_number"]
    fixed = record(db, kind="correction", effective_date="2021-08-01", resident_code=code, family_name="越ケ谷", my_number=renumbered)
    assert read(db, code).family_name == "越ケ谷" and read(db, code).my_number == renumbered
    assert fixed.resident.address == "埼玉県越谷市北越谷二丁目3番4号"
    refused(db, Conflict, kind="correction", effective_date="2021-08-02", resident_code=code, family_name="越ケ谷")


def test_a_correction_cannot_take_a_my_number_another_person_holds(db):
    first, second = moved_in(db), moved_in(db)
    refused(db, Conflict, kind="correction", effective_date="2021-01-01",
            resident_code=second.resident.resident_code, my_number=first.resident.my_number)


def test_changes_to_unknown_residents_are_conflicts(db):
    unknown = person()["resident_code"]
    for kind, extra in (
        ("move_out", {}),
        ("death", {}),
        ("address_change", {"address": "埼玉県越谷市北越谷二丁目3番4号", "town": "北越谷"}),
        ("correction", {"family_name": "越谷"}),
    ):
        error = refused(db, Conflict, kind=kind, effective_date="2024-01-01", resident_code=unknown, **extra)
        assert "no resident" in str(error)
    with pytest.raises(NotFound):
        read(db, unknown)
    with pytest.raises(NotFound):
        history(db, unknown)


def test_each_kind_takes_exactly_its_items(db):
    code = moved_in(db).resident.resident_code

    missing = refused(db, InvalidRequest, kind="move_in", effective_date="2024-01-01",
                      **{k: v for k, v in person().items() if k != "town"})
    assert missing.extensions["errors"] == [{"loc": ["body", "town"], "msg": "a move_in needs town", "type": "missing"}]
    extra = refused(db, InvalidRequest, kind="death", effective_date="2024-01-01", resident_code=code, address="埼玉県越谷市")
    assert extra.extensions["errors"][0]["loc"] == ["body", "address"]
    empty = refused(db, InvalidRequest, kind="correction", effective_date="2024-01-01", resident_code=code)
    assert empty.extensions["errors"] == [{"loc": ["body"], "msg": "a correction needs at least one item to correct", "type": "missing"}]
    no_code = refused(db, InvalidRequest, kind="move_out", effective_date="2024-01-01")
    assert no_code.extensions["errors"][0]["loc"] == ["body", "resident_code"]


def test_a_change_cannot_precede_the_birth_or_the_latest_change(db):
    before_birth = refused(db, InvalidRequest, kind="move_in", effective_date="1989-12-31", **person())
    assert before_birth.extensions["errors"][0]["loc"] == ["body", "effective_date"]

    code = moved_in(db, day="2020-04-01").resident.resident_code
    error = refused(db, Conflict, kind="move_out", effective_date="2020-03-31", resident_code=code)
    assert "2020-04-01" in str(error)
    record(db, kind="move_out", effective_date="2020-04-01", resident_code=code)  # the same day is fine


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("my_number", "123456789012"),  # wrong check digit
        ("resident_code", "1234567890"),  # ten digits
        ("resident_code", "12345678901"),  # wrong check digit
        ("birth_date", "2023-02-30"),  # no such day
        ("birth_date", "2999-01-01"),  # in the future
        ("family_name", "  "),  # empty
        ("given_name_kana", ""),
        ("sex", "unknown"),
        ("relation", "landlord"),
        ("household_id", "家族"),
    ],
)
def test_every_item_is_checked_on_entry(field, value):
    with pytest.raises(ValidationError) as caught:
        ChangeRequest(kind="move_in", effective_date="2024-01-01", **person(**{field: value}))
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_effective_dates_are_real_past_days_and_unknown_items_are_refused():
    for day in ("2024-13-01", "2999-01-01", "1869-12-31"):
        with pytest.raises(ValidationError) as caught:
            ChangeRequest(kind="move_out", effective_date=day, resident_code=person()["resident_code"])
        assert caught.value.errors()[0]["loc"] == ("effective_date",)
    with pytest.raises(ValidationError) as caught:
        ChangeRequest(kind="move_out", effective_date="2024-01-01", resident_code=person()["resident_code"], blood_type="A")
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_every_accepted_change_has_exactly_one_event_matching_the_register(db):
    codes = [moved_in(db).resident.resident_code for _ in range(3)]
    record(db, kind="address_change", effective_date="2021-01-01", resident_code=codes[0],
           address="埼玉県越谷市大沢一丁目1番1号", town="大沢")
    record(db, kind="death", effective_date="2021-01-02", resident_code=codes[1])
    refused(db, Conflict, kind="death", effective_date="2021-01-03", resident_code=codes[1])
    record(db, kind="move_out", effective_date="2021-01-04", resident_code=codes[2])

    events = outbox_events(db)
    changes = [change for code in codes for change in history(db, code)]
    assert len(events) == len(changes) == 6
    assert {event.change_id for event in events} == {change.change_id for change in changes}
    by_id = {change.change_id: change for change in changes}
    for event in events:
        assert by_id[event.change_id].resident == event.resident and by_id[event.change_id].kind == event.kind
    assert [read(db, code).status for code in codes] == ["resident", "deceased", "moved_out"]
