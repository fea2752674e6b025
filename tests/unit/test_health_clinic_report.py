"""Monthly clinic reports: every bad row reported with its line and reason, the good rows
committed once, the same file twice changing nothing, fees totalled from what was stored."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from renkei.cli import app as cli
from renkei.testkit import staff_headers
from services.health_mgmt import register
from services.health_mgmt.app import SPEC
from services.health_mgmt.models import ClinicReportImport, CopyOutbox, Dose
from services.health_mgmt.vouchers import voucher_number
from shared.service import build_app
from tests.unit.test_health_support import (
    CITY,
    CLINIC,
    OTHER_CLINIC,
    add_clinics,
    enrol,
    health_settings,
    open_register,
    postgres_or_none,
)

HEADER = ["医療機関コード", "請求年月", "接種券番号", "生年月日", "予防接種の種類", "接種日", "診察区分", "ワクチン",
          "ＬＯＴ－ＮＯ", "接種量", "体温", "予診医師名", "接種医師名", "製薬会社", "備考"]
AS_OF = "2024-02-10"


def row(clinic, month, person, kind, day, exam="接種", product="", lot="AB123", volume="0.5", temperature="36.6", remarks=""):
    voucher, born = (person["voucher"], person["birth_date"].strftime("%Y/%m/%d")) if isinstance(person, dict) else person
    return [clinic, month, voucher, born, kind, day, exam, product, lot, volume, temperature, "予診　一郎", "接種　花子", "第一三共", remarks]


def to_csv(rows, header=HEADER) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def run(tmp_path, database_url, path, *extra):
    args = ["import", "clinic-report", str(path), "--data", str(tmp_path / "data"), "--city", CITY, "--as-of", AS_OF, "--by", "k.tanaka", "--json", *extra]
    if postgres_or_none(database_url):
        args += ["--database-url", database_url]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else result.output)


@pytest.fixture
def people(tmp_path, database_url):
    db = open_register(tmp_path / "data", database_url)
    add_clinics(db)
    found = {
        "toddler": enrol(db, date(2023, 1, 10)),
        "second": enrol(db, date(2023, 1, 5)),
        "baby": enrol(db, date(2023, 7, 1)),
        "counter": enrol(db, date(2022, 12, 1)),
        "girl": enrol(db, date(2010, 5, 1)),
    }
    with db.session() as session:  # a dose already recorded at the counter
        subject = register.find_subject(session, found["counter"]["number"])
        checked = register.check_record("mr", {"inoculation_date": "2024-01-08", "examination_type": "inoculated"})
        register.record_dose(session, subject, checked, source="counter", recorded_by="n.sato")
    yield db, found
    db.dispose()


def mixed_report(p) -> list[list[str]]:
    toddler, second, baby, counter, girl = p["toddler"], p["second"], p["baby"], p["counter"], p["girl"]
    return [
        row(CLINIC, "202401", toddler, "ＭＲ", "2024/01/20"),  # 2 good
        row(CLINIC, "202401", second, "ＭＲ", "2024/01/22", exam="予診のみ", lot="", volume=""),  # 3 good: screening only
        row("1319999999", "202401", toddler, "水痘", "2024/01/20"),  # 4 unknown clinic
        row(CLINIC, "202401", (voucher_number("123456789"), "2023/01/10"), "ＭＲ", "2024/01/20"),  # 5 unknown person
        row(CLINIC, "202401", (toddler["voucher"][:-1] + str((int(toddler["voucher"][-1]) + 1) % 10), "2023/01/10"), "ＭＲ", "2024/01/20"),  # 6 typo
        row(CLINIC, "202401", (toddler["voucher"], "2023/01/11"), "水痘", "2024/01/20"),  # 7 someone else's voucher
        row(CLINIC, "202401", baby, "ＢＣＧ", "2024/02/30"),  # 8 impossible date
        row(CLINIC, "202401", baby, "水痘", "2024/01/05"),  # 9 too early for the schedule
        row(CLINIC, "202401", toddler, "ＭＲ", "2024/01/20"),  # 10 duplicate in file
        row(CLINIC, "202401", second, "水痘", "2024/01/22", temperature="38.0"),  # 11 fever and inoculated
        row(CLINIC, "202401", second, "天然痘", "2024/01/22"),  # 12 unknown type
        row(CLINIC, "202413", second, "日本脳炎", "2024/01/22"),  # 13 no such month
        row(CLINIC, "202401", counter, "ＭＲ", "2024/01/08"),  # 14 recorded at the counter already
        row(CLINIC, "202402", toddler, "水痘", "2024/03/01"),  # 15 in the future
        row(OTHER_CLINIC, "202401", girl, "子宮頸がん予防", "2024/01/15", product="9価（シルガード9）"),  # 16 good
        row(CLINIC, "202401", toddler, "水痘", "2024/01/20", product="rota1"),  # 17 ワクチン is not an item of 水痘
    ]


EXPECTED = {
    4: "unknown_clinic", 5: "unknown_person", 6: "wrong_voucher_number", 7: "wrong_voucher_number", 8: "impossible_date",
    9: "not_valid_by_schedule", 10: "duplicate_in_file", 11: "invalid_item", 12: "unknown_vaccine_type",
    13: "bad_billing_month", 14: "duplicate_dose", 15: "impossible_date", 17: "invalid_item",
}


def dose_count(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Dose.id)))


def test_a_draft_reports_every_bad_row_with_its_line_and_stores_nothing(tmp_path, database_url, people):
    db, found = people
    path = tmp_path / "report.csv"
    path.write_bytes(to_csv(mixed_report(found)).encode("cp932"))
    code, report = run(tmp_path, database_url, path)
    assert code == 1
    assert report["encoding"] == "cp932" and report["rows"] == 16 and report["good"] == 3 and report["committed"] is False
    assert {p["line"]: p["reason"] for p in report["problems"]} == EXPECTED
    reasons = {p["line"]: p["detail"] for p in report["problems"]}
    assert "varicella.eligible_age" in reasons[9] and "体温" in reasons[11] and "line 2" in reasons[10]
    assert dose_count(db) == 1  # the counter's dose only


def test_commit_stores_the_good_rows_once_and_totals_the_fees(tmp_path, database_url, people):
    db, found = people
    path = tmp_path / "report.csv"
    path.write_bytes(to_csv(mixed_report(found)).encode("cp932"))
    code, report = run(tmp_path, database_url, path, "--commit")
    assert code == 1 and report["committed"] is True and report["stored"] == 3
    assert {(f["clinic_code"], f["billing_month"], f["records"], f["fee_yen"]) for f in report["fees"]} == {
        (CLINIC, "2024-01", 2, 10900 + 3300),
        (OTHER_CLINIC, "2024-01", 1, 16600),
    }
    with db.session() as session:
        stored = {(d.record_type, d.examination_type): d for d in session.scalars(select(Dose).where(Dose.source == "clinic_report"))}
        imports = session.scalars(select(ClinicReportImport)).all()
    hpv, mr, screened = stored[("hpv", "inoculated")], stored[("mr", "inoculated")], stored[("mr", "screening_only")]
    assert hpv.product == "hpv9" and hpv.items["inoculation_place"] == "草加内科医院"
    assert hpv.items["age_at_inoculation"] == "13歳8か月" and hpv.items["commission_fee_yen"] == 16600
    assert mr.items["lot_number"] == "AB123" and mr.items["body_temperature_c"] == "36.6" and mr.clinic_code == CLINIC
    assert screened.commission_fee_yen == 3300 and "lot_number" not in screened.items
    assert len(imports) == 1 and imports[0].refused == len(EXPECTED) and imports[0].committed_by == "k.tanaka"
    assert dose_count(db) == 4
    with db.session() as session:  # each person whose doses changed waits for the 副本, noted with the doses
        noted = {(o.subject_number, o.version) for o in session.scalars(select(CopyOutbox).where(CopyOutbox.pending.is_(True)))}
    assert noted == {(found[k]["number"], 1) for k in ("toddler", "second", "girl", "counter")}

    again_code, again = run(tmp_path, database_url, path, "--commit")
    assert again_code == 0 and again["already_imported"] is True and again["stored"] == 0
    assert dose_count(db) == 4

    # The same rows in another file (re-exported, another encoding): every one is a duplicate.
    copy = tmp_path / "again-utf8.csv"
    copy.write_text(to_csv(mixed_report(found)[:2]), encoding="utf-8")
    code, report = run(tmp_path, database_url, copy, "--commit")
    assert code == 1 and report["stored"] == 0 and {p["reason"] for p in report["problems"]} == {"duplicate_dose"}
    assert dose_count(db) == 4


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_utf8_with_or_without_bom_and_shift_jis_read_the_same(tmp_path, database_url, people, encoding):
    _, found = people
    path = tmp_path / "r.csv"
    rows = [row(CLINIC, "２０２４０１", found["toddler"], "ＭＲ", "２０２４/０１/２０", remarks="複数行の\n備考"),
            row(CLINIC, "202401", found["toddler"], "ＭＲ", "2024-01-20")]
    path.write_bytes(to_csv(rows).encode(encoding))
    code, report = run(tmp_path, database_url, path)
    assert code == 1 and report["encoding"] == encoding and report["good"] == 1
    assert report["problems"] == [{"line": 4, "reason": "duplicate_in_file", "detail": "the same dose is on line 2"}]


def test_an_unreadable_file_or_a_foreign_header_is_refused_whole(tmp_path, database_url, people):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(to_csv([]).encode("cp932") + b"\x81\x20\xff\xfe\n")
    code, output = run(tmp_path, database_url, garbage)
    assert code == 2 and "neither UTF-8 nor Shift_JIS" in output
    foreign = tmp_path / "foreign.csv"
    foreign.write_text(to_csv([], header=["氏名", *HEADER[1:]]), encoding="utf-8")
    code, output = run(tmp_path, database_url, foreign)
    assert code == 2 and "missing columns: 医療機関コード" in output and "unknown columns: 氏名" in output


def test_every_run_is_in_the_operation_log(tmp_path, database_url, people):
    db, found = people
    path = tmp_path / "report.csv"
    path.write_bytes(to_csv(mixed_report(found)[:1]).encode("cp932"))
    run(tmp_path, database_url, path)
    run(tmp_path, database_url, path, "--commit")
    from shared.oplog import OperationLog

    entries = OperationLog(db).entries()
    assert [(e.actor, e.operation) for e in entries[:2]] == [
        ("k.tanaka", "health_mgmt.clinic_report.commit"), ("k.tanaka", "health_mgmt.clinic_report.check"),
    ]
    assert json.loads(entries[0].detail)["stored"] == 1


def test_the_fees_api_totals_committed_rows(tmp_path, stack_files, nats_secured, database_url, people):
    _, found = people
    path = tmp_path / "report.csv"
    path.write_bytes(to_csv(mixed_report(found)).encode("cp932"))
    run(tmp_path, database_url, path, "--commit")
    settings = health_settings(stack_files, nats_secured, database_url)
    settings.data_dir = tmp_path / "data"
    with TestClient(build_app(SPEC, settings)) as client:
        reply = client.get("/fees", params={"billing_month": "2024-01"}, headers=staff_headers(client, ["supervisor"]))
        nurse = client.get("/fees", params={"billing_month": "2024-01"}, headers=staff_headers(client, ["nurse"]))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["total_yen"] == 10900 + 3300 + 16600
    assert {(c["clinic_code"], c["records"]) for c in body["clinics"]} == {(CLINIC, 2), (OTHER_CLINIC, 1)}
    assert nurse.status_code == 403
