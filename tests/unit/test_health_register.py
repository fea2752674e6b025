"""The register: enrolment through the integrated address system, doses checked by the
catalogue and judged by the schedule, roles, the operation log, and statistics that
identify nobody."""

from __future__ import annotations

import random
from datetime import date
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from renkei.testkit import staff_headers
from services.health_mgmt.app import SPEC
from services.health_mgmt.models import Dose, Subject
from services.health_mgmt.statistics import suppressed_table
from services.health_mgmt.vouchers import is_valid_voucher_number
from services.integrated_address.addressees import apply_resident_change
from services.integrated_address.app import SPEC as ADDRESS_SPEC
from services.integrated_address.config import Settings as AddressSettings
from shared.contracts.address import PersonItems
from shared.contracts.residents import ResidentChanged
from shared.ids import generate_resident_code
from shared.models import OperationLogEntry
from shared.service import build_app
from shared.trust import Principal
from tests.unit.test_health_support import CITY, add_clinics, enrol, health_settings, postgres_or_none

MY_NUMBER = "123456789018"
AS_OF = date(2025, 6, 1)


SHOWN = {"method": "notice_card_and_photo_id", "photo_id": "運転免許証"}  # M01, as the nurse saw it
ITEMS = {"name": "越谷　二郎", "name_kana": "コシガヤ　ジロウ", "sex": "male", "birth_date": "1990-01-01", "address": "埼玉県越谷市越ヶ谷一丁目1番1号"}


def mr_dose(day: str, **extra) -> dict:
    return {"record_type": "mr", "items": {"inoculation_date": day, "examination_type": "inoculated", **extra}}


@pytest.fixture
def health(stack_files, nats_secured, database_url):
    return build_app(SPEC, health_settings(stack_files, nats_secured, database_url, statistics_min_cell=3))


@pytest.fixture
def address_app(stack_files, nats_secured, database_url):
    user, password = stack_files.login(Principal("integrated_address", CITY))
    settings = AddressSettings(
        city=CITY, data_dir=stack_files.data_dir, nats_url=nats_secured.url, nats_user=user, nats_password=password,
        database_url=postgres_or_none(database_url),
    )
    return build_app(ADDRESS_SPEC, settings)


def test_enrolment_takes_the_number_and_items_from_the_integrated_address_system(health, address_app):
    items = PersonItems(name="越谷　一郎", name_kana="コシガヤ　イチロウ", sex="male", birth_date=date(2024, 3, 5), address="埼玉県越谷市越ヶ谷一丁目2番3号")
    with TestClient(address_app), TestClient(health) as client:
        nurse = staff_headers(client, ["nurse"], user_id="n.yamada")
        presented = items.model_dump(mode="json")
        first = client.post("/subjects", json={"my_number": MY_NUMBER, "items": presented, "identity": SHOWN}, headers=nurse)
        again = client.post("/subjects", json={"my_number": MY_NUMBER, "items": presented, "identity": SHOWN}, headers=nurse)
        entries = health.state.context.oplog.entries("health_mgmt.subject.enrol")
        with health.state.context.db.session() as session:
            columns = {c["name"] for c in inspect(session.connection()).get_columns("subjects")}
            logged = [e.person_key for e in session.scalars(select(OperationLogEntry))]
    assert first.status_code == 200, first.text
    subject = first.json()["subject"]
    assert first.json()["enrolled"] is True and again.json()["enrolled"] is False
    assert again.json()["subject"] == subject
    assert len(subject["integrated_address_number"]) == 15 and subject["integrated_address_number"].startswith(CITY[:5])
    assert is_valid_voucher_number(subject["voucher_number"])
    assert (subject["name"], subject["birth_date"], subject["sex"], subject["status"]) == ("越谷　一郎", "2024-03-05", "male", "non_resident")
    assert [(e.actor, e.person_key, e.outcome) for e in entries] == [("n.yamada", subject["integrated_address_number"], "ok")] * 2
    assert "my_number" not in columns and MY_NUMBER not in logged  # the My Number is used, not kept


def test_a_resident_is_enrolled_only_when_the_four_items_match_the_register(health, address_app):
    """M03: the My Number and the four items must name the same person; width and spacing aside."""
    resident = ResidentChanged.model_validate({
        "change_id": "c-1", "kind": "birth", "effective_date": "1980-03-05", "recorded_at": "1980-03-06T00:00:00+00:00",
        "resident": {"resident_code": generate_resident_code(random.Random(3)), "my_number": MY_NUMBER, "family_name": "越谷",
                     "given_name": "一郎", "family_name_kana": "コシガヤ", "given_name_kana": "イチロウ", "sex": "male",
                     "birth_date": "1980-03-05", "address": "埼玉県越谷市越ヶ谷一丁目2番3号", "town": "越ヶ谷一丁目",
                     "household_id": "H1", "relation": "head"},
    })
    matching = {"name": "越谷 一郎", "name_kana": "コシガヤ　イチロウ", "sex": "male", "birth_date": "1980-03-05", "address": "埼玉県越谷市越ヶ谷一丁目２番３号"}
    with TestClient(address_app), TestClient(health) as client:
        with address_app.state.context.db.session() as session:
            assert apply_resident_change(session, CITY, resident) == "created"
        nurse = staff_headers(client, ["nurse"])
        wrong = client.post("/subjects", json={"my_number": MY_NUMBER, "items": {**matching, "birth_date": "1980-03-06", "address": "埼玉県越谷市越ヶ谷1-2-3"}, "identity": SHOWN}, headers=nurse)
        with health.state.context.db.session() as session:
            anyone = session.execute(select(Subject)).first()
        entries = health.state.context.oplog.entries("health_mgmt.subject.enrol")
        right = client.post("/subjects", json={"my_number": MY_NUMBER, "items": matching, "identity": SHOWN}, headers=nurse)
    assert wrong.status_code == 409 and wrong.json()["mismatched"] == ["birth_date", "address"]
    assert anyone is None  # nothing stored
    assert entries[-1].outcome == "http-409" and entries[-1].person_key is not None
    assert right.status_code == 200, right.text
    assert (right.json()["subject"]["address"], right.json()["subject"]["status"]) == ("埼玉県越谷市越ヶ谷一丁目2番3号", "resident")


def test_enrolment_without_the_address_system_is_unavailable_not_half_done(health):
    with TestClient(health) as client:
        reply = client.post("/subjects", json={"my_number": MY_NUMBER, "items": ITEMS, "identity": SHOWN}, headers=staff_headers(client, ["nurse"]))
        with health.state.context.db.session() as session:
            anyone = session.execute(select(Subject)).first()
    assert reply.status_code == 503 and reply.headers["content-type"] == "application/problem+json"
    assert anyone is None


def test_a_nurse_records_a_dose_and_the_schedule_judges_it(health):
    with TestClient(health) as client:
        person = enrol(health.state.context.db, date(2023, 1, 10))
        nurse = staff_headers(client, ["nurse"], user_id="n.sato")
        url = f"/subjects/{person['number']}/doses"
        valid = client.post(url, json=mr_dose("2024-01-20", lot_number="MR123", body_temperature_c="36.5"), headers=nurse)
        early = client.post(url, json={"record_type": "varicella", "items": {"inoculation_date": "2023-11-01", "examination_type": "inoculated"}}, headers=nurse)
        duplicate = client.post(url, json=mr_dose("2024-01-20"), headers=nurse)
        record = client.get(f"/subjects/{person['number']}", params={"as_of": "2025-06-01"}, headers=nurse)
    assert valid.status_code == 201, valid.text
    assert valid.json()["verdict"]["valid"] is True and valid.json()["verdict"]["target"]
    assert valid.json()["items"]["body_temperature_c"] == "36.5" and valid.json()["items"]["inoculation_date"] == "2024-01-20"
    assert early.status_code == 201 and early.json()["verdict"]["valid"] is False
    assert early.json()["verdict"]["voluntary"] is True and early.json()["verdict"]["reasons"][0]["code"] == "too_early"
    assert duplicate.status_code == 409 and duplicate.json()["type"].endswith("duplicate-dose")
    body = record.json()
    assert [d["record_type"] for d in body["doses"]] == ["varicella", "mr"]
    assert {f["series"]: f["status"] for f in body["forecasts"]}["mr_1"] == "complete"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (mr_dose("2024-02-30"), {"inoculation_date"}),
        (mr_dose("2024-01-20", shoe_size="23"), {"shoe_size"}),  # not an item of the type (M04)
        (mr_dose("2024-01-20", body_temperature_c="38.0"), {"body_temperature_c"}),  # fever and inoculated
        ({"record_type": "mr", "items": {"inoculation_date": "2024-01-20"}}, {"examination_type"}),
    ],
)
def test_a_bad_record_is_refused_field_by_field_and_nothing_is_stored(health, body, fields):
    with TestClient(health) as client:
        person = enrol(health.state.context.db, date(2023, 1, 10))
        reply = client.post(f"/subjects/{person['number']}/doses", json=body, headers=staff_headers(client, ["nurse"]))
        with health.state.context.db.session() as session:
            stored = session.scalars(select(Dose)).all()
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in reply.json()["errors"]} == fields
    assert stored == []


def test_unknown_types_people_and_malformed_numbers_are_typed_errors(health):
    with TestClient(health) as client:
        person = enrol(health.state.context.db, date(2023, 1, 10))
        nurse = staff_headers(client, ["nurse"])
        unknown_type = client.post(f"/subjects/{person['number']}/doses", json={"record_type": "smallpox", "items": {}}, headers=nurse)
        typo = person["number"][:-1] + str((int(person["number"][-1]) + 1) % 10)
        malformed = client.get(f"/subjects/{typo}", headers=nurse)
        nobody = client.get(f"/subjects/{enrol.__globals__['new_number']()}", headers=nurse)
        before_birth = client.post(f"/subjects/{person['number']}/doses", json=mr_dose("2022-12-01"), headers=nurse)
    assert unknown_type.status_code == 404 and unknown_type.json()["type"].endswith("unknown-record-type")
    assert malformed.status_code == 422
    assert nobody.status_code == 404 and nobody.json()["type"].endswith("unknown-subject")
    assert before_birth.status_code == 422


ROUTES = [
    ("post", "/subjects", {"json": {"my_number": MY_NUMBER, "items": ITEMS, "identity": SHOWN}}, "register.enrol"),
    ("get", "/subjects/{number}", {}, "register.read"),
    ("post", "/subjects/{number}/doses", {"json": mr_dose("2024-01-20")}, "register.record"),
    ("get", "/clinics", {}, "register.read"),
    ("put", "/clinics/1110000011", {"json": {"name": "x"}}, "register.clinics"),
    ("get", "/fees", {"params": {"billing_month": "2024-01"}}, "register.fees"),
    ("get", "/statistics/doses", {"params": {"fiscal_year": 2024}}, "register.statistics"),
    ("get", "/exports/doses.csv", {"params": {"billing_month": "2024-01"}}, "register.export"),
    ("put", "/subjects/{number}/doses/1", {"json": {"items": {"inoculation_date": "2024-01-20"}}}, "register.record"),
    ("get", "/copies/backlog", {}, "register.copies"),
    ("post", "/copies/reconciliations", {}, "register.copies"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "permission"), ROUTES)
def test_every_route_refuses_outsiders_and_roles_without_the_permission(health, method, path, kwargs, permission):
    with TestClient(health) as client:
        person = enrol(health.state.context.db, date(2023, 1, 10))
        url = path.format(number=person["number"])
        anonymous = getattr(client, method)(url, **kwargs)
        service_token = getattr(client, method)(url, headers={"Authorization": "Bearer eyJhbGciOiJFZERTQSJ9.e30.x"}, **kwargs)
        lacking = [role for role, granted in SPEC.roles.items() if permission not in granted]
        refused = [getattr(client, method)(url, headers=staff_headers(client, [role]), **kwargs) for role in lacking]
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
    assert service_token.status_code == 401
    assert all(r.status_code == 403 for r in refused), [r.text for r in refused]
    assert permission == "register.read" or lacking  # every write or export is denied to someone


def test_fees_exports_and_clinics_are_for_supervisors_and_exports_are_logged(health):
    with TestClient(health) as client:
        db = health.state.context.db
        add_clinics(db)
        person = enrol(db, date(2023, 1, 10))
        client.post(f"/subjects/{person['number']}/doses", json=mr_dose("2024-01-20", billing_month="2024-01", commission_fee_yen=10900),
                    headers=staff_headers(client, ["nurse"]))
        boss = staff_headers(client, ["supervisor"], user_id="s.kobayashi")
        export = client.get("/exports/doses.csv", params={"billing_month": "2024-01"}, headers=boss)
        clinics = client.get("/clinics", headers=boss).json()
        entries = health.state.context.oplog.entries()
    assert export.status_code == 200 and export.text.splitlines()[0].startswith("統合宛名番号")
    assert len(export.text.splitlines()) == 2 and person["number"] in export.text
    assert any(e.actor == "s.kobayashi" and e.operation.startswith("health_mgmt.register.export") and "rows=1" in e.operation for e in entries)
    assert [c["code"] for c in clinics] == ["1110000011", "1110000029"]


def test_statistics_are_counts_with_small_cells_withheld(health):
    with TestClient(health) as client:
        db = health.state.context.db
        nurse = staff_headers(client, ["nurse"])
        for index in range(5):  # five 1-year-olds get MR in fiscal 2024
            person = enrol(db, date(2023, 1, 10 + index))
            client.post(f"/subjects/{person['number']}/doses", json=mr_dose("2024-05-20"), headers=nurse)
        lone = enrol(db, date(2017, 6, 1))  # one 6-year-old: a cell of one
        client.post(f"/subjects/{lone['number']}/doses", json=mr_dose("2024-05-20"), headers=nurse)
        reply = client.get("/statistics/doses", params={"fiscal_year": 2024}, headers=staff_headers(client, ["supervisor"]))
    body = reply.json()
    mr = next(row for row in body["rows"] if row["row"] == "ＭＲ")
    assert body["min_cell"] == 3
    assert mr["cells"]["2–6歳"] is None  # one person: withheld
    assert mr["cells"]["1歳"] is None  # and the only other cell of the row, else the total would tell
    assert mr["total"] == 6
    assert person["number"] not in reply.text and "越谷" not in reply.text


def fixed_by_what_is_published(table) -> set[tuple]:
    """The withheld cells and totals that the published values fix, by exact linear algebra:
    each row's cells add up to its total, each column's to its total, the row totals and the
    column totals each to the grand total; a withheld value is fixed when the system, with
    the published values known, leaves it one value (reduced row echelon form, fractions)."""
    rows, columns = table.rows, table.columns
    values = {("cell", r, c): v for (r, c), v in table.cells.items()}
    values |= {("row", r): v for r, v in table.row_totals.items()} | {("column", c): v for c, v in table.column_totals.items()}
    values[("total",)] = table.total
    equations = [{**{("cell", r, c): 1 for c in columns}, ("row", r): -1} for r in rows]
    equations += [{**{("cell", r, c): 1 for r in rows}, ("column", c): -1} for c in columns]
    equations += [{**{("row", r): 1 for r in rows}, ("total",): -1}, {**{("column", c): 1 for c in columns}, ("total",): -1}]
    unknown = sorted((k for k, v in values.items() if v is None), key=repr)
    matrix = [[Fraction(e.get(k, 0)) for k in unknown] for e in equations]
    pivots, lead = [], 0
    for col in range(len(unknown)):
        found = next((i for i in range(lead, len(matrix)) if matrix[i][col]), None)
        if found is None:
            continue
        matrix[lead], matrix[found] = matrix[found], matrix[lead]
        matrix[lead] = [x / matrix[lead][col] for x in matrix[lead]]
        for i in range(len(matrix)):
            if i != lead and matrix[i][col]:
                matrix[i] = [a - matrix[i][col] * b for a, b in zip(matrix[i], matrix[lead], strict=True)]
        pivots.append((lead, col))
        lead += 1
    return {unknown[col] for row, col in pivots if not any(x for j, x in enumerate(matrix[row]) if j != col)}


@pytest.mark.parametrize(
    ("counts", "rows", "columns", "min_cell", "small"),
    [
        ({("a", "x"): 1, ("a", "y"): 20, ("a", "z"): 30, ("b", "x"): 40, ("b", "y"): 2, ("b", "z"): 50}, "ab", "xyz", 5,
         {("a", "x"), ("b", "y")}),
        # Row a's total (1) is small and withheld; the grand total 51 less row b's 50 would give it back.
        ({("a", "x"): 1, ("b", "x"): 20, ("b", "y"): 30}, "ab", "xy", 10, {("a", "x")}),
        ({("a", "x"): 3, ("a", "y"): 4, ("b", "y"): 25, ("c", "x"): 12, ("c", "z"): 2, ("d", "z"): 40}, "abcd", "xyz", 5,
         {("a", "x"), ("a", "y"), ("c", "z")}),
    ],
)
def test_suppression_leaves_no_withheld_cell_derivable(counts, rows, columns, min_cell, small):
    table = suppressed_table(counts, list(rows), list(columns), min_cell=min_cell)
    hidden = {key for key, value in table.cells.items() if value is None}
    assert small <= hidden
    assert fixed_by_what_is_published(table) == set()
    published = [v for v in [*table.cells.values(), *table.row_totals.values(), *table.column_totals.values(), table.total] if v is not None]
    assert all(not 0 < v < min_cell for v in published)
    assert sum(v is not None for v in table.cells.values()) >= 1  # not everything withheld


@given(st.lists(st.sampled_from([0, 0, 1, 2, 4, 9, 13, 30, 200]), min_size=16, max_size=16), st.integers(2, 4), st.integers(2, 4))
def test_no_suppressed_table_leaves_a_withheld_value_derivable(numbers, n_rows, n_columns):
    rows, columns = "abcd"[:n_rows], "wxyz"[:n_columns]
    counts = {(r, c): numbers[i * 4 + j] for i, r in enumerate(rows) for j, c in enumerate(columns)}
    table = suppressed_table(counts, list(rows), list(columns), min_cell=10)
    assert fixed_by_what_is_published(table) == set()
    assert all(table.cells[key] in (None, count) for key, count in counts.items())
