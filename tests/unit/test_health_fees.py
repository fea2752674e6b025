"""実費徴収: tax and public-assistance information matched with the register (突合), every
row's outcome recorded, who pays decided from it, and the clinic reports' 自己負担額 with it."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from renkei.cli import app as cli
from renkei.testkit import staff_headers
from services.health_mgmt.app import SPEC
from services.health_mgmt.models import Dose, IncomeMatch
from shared.service import build_app
from tests.unit.test_health_support import (
    CITY,
    CLINIC,
    add_clinics,
    enrol,
    health_settings,
    new_number,
    open_register,
    postgres_or_none,
)

YEAR = 2024


def income_csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["統合宛名番号", "生年月日", "区分"])
    writer.writerows(rows)
    return buffer.getvalue().encode("cp932")


def cli_run(tmp_path, database_url, *args):
    extra = ["--data", str(tmp_path / "data"), "--city", CITY, "--by", "z.mori", "--json"]
    if postgres_or_none(database_url):
        extra += ["--database-url", database_url]
    result = CliRunner().invoke(cli, [*args, *extra])
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else result.output)


@pytest.fixture
def elders(tmp_path, database_url):
    db = open_register(tmp_path / "data", database_url)
    add_clinics(db)
    people = {key: enrol(db, date(1950, 4, index + 2), name=f"越谷　{key}") for index, key in enumerate(("taxed", "exempt", "assisted", "silent"))}
    yield db, people
    db.dispose()


def born(person) -> str:
    return person["birth_date"].strftime("%Y/%m/%d")


def test_every_row_is_matched_or_set_aside_with_its_reason_and_recorded(tmp_path, database_url, elders):
    db, p = elders
    tax = tmp_path / "tax.csv"
    tax.write_bytes(income_csv([
        [p["taxed"]["number"], born(p["taxed"]), "課税"],
        [p["exempt"]["number"], born(p["exempt"]), "非課税"],
        [p["assisted"]["number"], born(p["assisted"]), "課税"],
        [new_number(), "1950/01/01", "課税"],  # nobody in the register
        [p["silent"]["number"], "1950/12/31", "非課税"],  # someone else's birth date: not applied
        [p["silent"]["number"], born(p["silent"]), "免除"],  # not a status of the tax file
    ]))
    welfare = tmp_path / "welfare.csv"
    welfare.write_bytes(income_csv([[p["assisted"]["number"], born(p["assisted"]), "受給"]]))
    code, report = cli_run(tmp_path, database_url, "import", "income", str(tax), "--source", "tax", "--fiscal-year", str(YEAR))
    assert code == 0, report
    assert report["rows"] == 6 and report["matched"] == 3
    assert [(r["line"], r["outcome"]) for r in report["set_aside"]] == [(5, "unknown_person"), (6, "birth_date_mismatch"), (7, "invalid")]
    _, welfare_report = cli_run(tmp_path, database_url, "import", "income", str(welfare), "--source", "welfare", "--fiscal-year", str(YEAR))
    _, again = cli_run(tmp_path, database_url, "import", "income", str(tax), "--source", "tax", "--fiscal-year", str(YEAR))
    assert welfare_report["matched"] == 1 and again["already_matched"] is True
    with db.session() as session:
        outcomes = [(m.source, m.line, m.outcome) for m in session.scalars(select(IncomeMatch).order_by(IncomeMatch.id))]
        from services.health_mgmt.fees import determination

        decided = {key: determination(session, person["number"], YEAR) for key, person in p.items()}
    assert len(outcomes) == 7  # every row of both files, once
    assert {k: (d.category, d.exempt) for k, d in decided.items()} == {
        "taxed": ("taxed", False), "exempt": ("tax_exempt", True), "assisted": ("public_assistance", True), "silent": ("unknown", False),
    }
    assert decided["taxed"].copayment_yen == {"influenza_elderly": 1500, "pneumococcal_elderly": 4000}
    assert decided["assisted"].copayment_yen == {"influenza_elderly": 0, "pneumococcal_elderly": 0}


def test_clinic_reports_charge_the_copayment_only_to_those_who_pay(tmp_path, database_url, elders):
    db, p = elders
    tax = tmp_path / "tax.csv"
    tax.write_bytes(income_csv([[p["taxed"]["number"], born(p["taxed"]), "課税"], [p["exempt"]["number"], born(p["exempt"]), "非課税"]]))
    cli_run(tmp_path, database_url, "import", "income", str(tax), "--source", "tax", "--fiscal-year", str(YEAR))
    report = tmp_path / "flu.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["医療機関コード", "請求年月", "接種券番号", "生年月日", "予防接種の種類", "接種日", "診察区分", "ＬＯＴ－ＮＯ"])
    for key in ("taxed", "exempt"):
        writer.writerow([CLINIC, "202411", p[key]["voucher"], born(p[key]), "高齢者インフルエンザ", "2024/11/05", "接種", "FLU1"])
    report.write_bytes(buffer.getvalue().encode("cp932"))
    code, result = cli_run(tmp_path, database_url, "import", "clinic-report", str(report), "--commit", "--as-of", "2024-12-01")
    assert code == 0 and result["stored"] == 2, result
    with db.session() as session:
        paid = {d.subject_number: d.items for d in session.scalars(select(Dose))}
    assert paid[p["taxed"]["number"]]["copayment_yen"] == 1500 and paid[p["exempt"]["number"]]["copayment_yen"] == 0
    assert paid[p["taxed"]["number"]]["fiscal_year"] == 2024 and paid[p["taxed"]["number"]]["medical_institution_name"]


def test_the_determination_is_read_by_staff_and_logged(tmp_path, stack_files, nats_secured, database_url, elders):
    _, p = elders
    settings = health_settings(stack_files, nats_secured, database_url)
    settings.data_dir = tmp_path / "data"
    with TestClient(build_app(SPEC, settings)) as client:
        url = f"/subjects/{p['silent']['number']}/fee-determination"
        reply = client.get(url, params={"fiscal_year": YEAR}, headers=staff_headers(client, ["clerk"], user_id="c.ito"))
        anonymous = client.get(url, params={"fiscal_year": YEAR})
        entries = client.app.state.context.oplog.entries("health_mgmt.fee_determination.read")
    assert reply.status_code == 200 and reply.json()["category"] == "unknown" and reply.json()["exempt"] is False
    assert anonymous.status_code == 401
    assert ("c.ito", p["silent"]["number"]) in {(e.actor, e.person_key) for e in entries}
