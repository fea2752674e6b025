"""実費徴収 from the tax and welfare systems over the bus (flow [06]): the health management asks
about everyone on its register, matches each answer with the register (突合) as it matches a
file, records every answer that says something new, redoes the determinations, and changes
nothing when asked again. Real nats-server, real databases, both services running."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from renkei.testkit import staff_headers
from services.health_mgmt.app import SPEC
from services.health_mgmt.models import FeeDetermination, IncomeMatch
from services.tax_welfare import records
from services.tax_welfare.app import SPEC as TAX_WELFARE_SPEC
from services.tax_welfare.models import AssistanceRecord, LocalTaxRecord
from shared.service import build_app
from tests.unit.test_health_fees import income_csv
from tests.unit.test_health_support import enrol, health_settings, new_number, open_register
from tests.unit.test_integrated_address import running
from tests.unit.test_tax_welfare import settings_for as tax_welfare_settings

YEAR = 2024
INQUIRIES = "/fee-determinations/inquiries"


@pytest.fixture
def register(tmp_path, stack_files, database_url):
    """Five elders on the register; the tax and welfare systems will know four of them."""
    db = open_register(stack_files.data_dir, database_url)
    keys = ("taxed", "exempt", "assisted", "other_birth", "unknown_there")
    people = {key: enrol(db, date(1950, 4, index + 2), name=f"越谷　{key}") for index, key in enumerate(keys)}
    yield db, people
    db.dispose()


def hold(client, people) -> None:
    """The tax and welfare systems' records of 2024, as a file would load them."""
    with client.app.state.context.db.session() as session:
        for key, status in (("taxed", "taxed"), ("exempt", "tax_exempt"), ("assisted", "tax_exempt")):
            session.add(LocalTaxRecord(integrated_address_number=people[key]["number"], fiscal_year=YEAR,
                                       birth_date=people[key]["birth_date"], status=status, origin="loaded"))
        session.add(LocalTaxRecord(integrated_address_number=people["other_birth"]["number"], fiscal_year=YEAR,
                                   birth_date=date(1949, 1, 1), status="tax_exempt", origin="loaded"))
        session.add(AssistanceRecord(integrated_address_number=people["assisted"]["number"], fiscal_year=YEAR,
                                     birth_date=people["assisted"]["birth_date"], origin="loaded"))


@pytest.fixture
def both(stack_files, nats_secured, database_url, register):
    _, people = register
    with (
        running(TAX_WELFARE_SPEC, tax_welfare_settings(stack_files, nats_secured, database_url)) as [tax_welfare],
        TestClient(build_app(SPEC, health_settings(stack_files, nats_secured, database_url))) as health,
    ):
        hold(tax_welfare, people)
        yield health, tax_welfare, people


def matches(db) -> list[IncomeMatch]:
    with db.session() as session:
        return list(session.scalars(select(IncomeMatch).order_by(IncomeMatch.id)))


def determinations(db, fiscal_year: int = YEAR) -> dict[str, tuple[str, bool, object]]:
    with db.session() as session:
        rows = session.scalars(select(FeeDetermination).where(FeeDetermination.fiscal_year == fiscal_year))
        return {r.subject_number: (r.category, r.exempt, r.decided_at) for r in rows}


def test_the_systems_answers_decide_who_pays_and_every_answer_is_recorded(both):
    health, _, p = both
    clerk = staff_headers(health, ["clerk"], user_id="c.ito")
    reply = health.post(INQUIRIES, json={"fiscal_year": YEAR}, headers=clerk)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    by_source = {s["source"]: s for s in body["sources"]}
    assert body["people"] == 5
    assert by_source["tax"] == {"source": "tax", "asked": 5, "recorded": 5, "matched": 3, "unchanged": 0,
                                "set_aside": {"birth_date_mismatch": 1, "not_held": 1}, "determined": 3}
    assert by_source["welfare"]["matched"] == 1 and by_source["welfare"]["set_aside"] == {"not_held": 4}
    db = health.app.state.context.db
    decided = determinations(db)
    category = {key: decided.get(p[key]["number"], ("unknown",))[0] for key in p}
    assert category == {"taxed": "taxed", "exempt": "tax_exempt", "assisted": "public_assistance",
                        "other_birth": "unknown", "unknown_there": "unknown"}
    rows = matches(db)
    assert len(rows) == 10 and {r.channel for r in rows} == {"bus"}
    mismatch = next(r for r in rows if r.person_number == p["other_birth"]["number"] and r.source == "tax")
    assert (mismatch.outcome, mismatch.subject_number, mismatch.status) == ("birth_date_mismatch", None, None)
    assert all(r.matched_by == "c.ito" for r in rows)
    read = health.get(f"/subjects/{p['assisted']['number']}/fee-determination", params={"fiscal_year": YEAR}, headers=clerk)
    assert read.json()["exempt"] is True and set(read.json()["copayment_yen"].values()) == {0}
    entries = [e for e in health.app.state.context.oplog.entries() if e.operation.startswith("health_mgmt.fee_determination.inquire")]
    assert [(e.actor, e.outcome) for e in entries] == [("c.ito", "ok")]
    assert f"fiscal_year={YEAR}" in entries[0].operation and "tax:asked=5,recorded=5,matched=3" in entries[0].operation


def test_asking_again_changes_nothing_and_a_change_there_is_taken_once(both):
    health, tax_welfare, p = both
    clerk = staff_headers(health, ["clerk"])
    assert health.post(INQUIRIES, json={"fiscal_year": YEAR}, headers=clerk).status_code == 200
    db = health.app.state.context.db
    before_rows, before = matches(db), determinations(db)
    again = health.post(INQUIRIES, json={"fiscal_year": YEAR}, headers=clerk).json()
    assert [(s["recorded"], s["unchanged"], s["determined"]) for s in again["sources"]] == [(0, 5, 0), (0, 5, 0)]
    assert [r.id for r in matches(db)] == [r.id for r in before_rows] and determinations(db) == before
    # The tax system corrects one person: only that answer is recorded and only they are decided again.
    with tax_welfare.app.state.context.db.session() as session:
        report = records.load_file(session, income_csv([[p["taxed"]["number"], p["taxed"]["birth_date"].strftime("%Y/%m/%d"), "非課税"]]).decode("cp932"), "tax", YEAR)
    assert report.loaded == 1
    third = health.post(INQUIRIES, json={"fiscal_year": YEAR}, headers=clerk).json()
    assert [(s["source"], s["recorded"], s["determined"]) for s in third["sources"]] == [("tax", 1, 1), ("welfare", 0, 0)]
    after = determinations(db)
    assert after[p["taxed"]["number"]][:2] == ("tax_exempt", True)
    assert {k: v for k, v in after.items() if k != p["taxed"]["number"]} == {k: v for k, v in before.items() if k != p["taxed"]["number"]}


def test_the_file_import_stays_for_cities_without_the_systems(tmp_path, stack_files, nats_secured, database_url, register):
    """Without the tax and welfare systems the inquiry is refused as unavailable (RFC 9457) and
    nothing is recorded; the file import still decides."""
    db, p = register
    with TestClient(build_app(SPEC, health_settings(stack_files, nats_secured, database_url))) as health:
        clerk = staff_headers(health, ["clerk"])
        refused = health.post(INQUIRIES, json={"fiscal_year": YEAR}, headers=clerk)
        with health.app.state.context.db.session() as session:
            from services.health_mgmt import fees

            raw = income_csv([[p["exempt"]["number"], p["exempt"]["birth_date"].strftime("%Y/%m/%d"), "非課税"]])
            fees.match_file(session, raw, raw.decode("cp932"), "tax", YEAR, "z.mori")
    assert refused.status_code == 503 and refused.headers["content-type"].startswith("application/problem+json")
    assert "tax_welfare" in refused.json()["detail"]
    rows = matches(db)
    assert [(r.channel, r.outcome) for r in rows] == [("file", "matched")]
    assert determinations(db)[p["exempt"]["number"]][:2] == ("tax_exempt", True)


@pytest.mark.parametrize("roles, status", [(["nurse"], 403), (["administrator"], 403), ([], 401)])
def test_only_clerks_and_supervisors_may_ask(both, roles, status):
    health, _, _ = both
    headers = staff_headers(health, roles) if roles else {}
    reply = health.post(INQUIRIES, json={"fiscal_year": YEAR}, headers=headers)
    assert reply.status_code == status and reply.headers["content-type"].startswith("application/problem+json")
    with health.app.state.context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(IncomeMatch)) == 0


@pytest.mark.parametrize("body", [{"fiscal_year": 1800}, {"fiscal_year": YEAR, "extra": 1}, {}])
def test_a_bad_inquiry_is_refused_with_problem_details(both, body):
    health, _, _ = both
    reply = health.post(INQUIRIES, json=body, headers=staff_headers(health, ["supervisor"]))
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("application/problem+json")


def test_an_answer_about_a_number_not_asked_is_set_aside_as_unknown(register):
    """The matching does not trust the answer: a number it did not ask about applies to nobody."""
    from services.health_mgmt import fees

    db, p = register
    stranger = new_number()
    answers = [fees.Answer(stranger, date(1950, 1, 1), "held", "tax_exempt"),
               fees.Answer(p["taxed"]["number"], date(1977, 7, 7), "held", "tax_exempt")]
    with db.session() as session:
        report = fees.match_answers(session, "tax", YEAR, {p["taxed"]["number"]: p["taxed"]["birth_date"]}, answers, "0" * 64, "z.mori")
    assert report.matched == 0 and [r["outcome"] for r in report.set_aside] == ["unknown_person", "birth_date_mismatch"]
    assert determinations(db) == {}


def test_the_command_asks_as_the_health_management_and_again_changes_nothing(stack_files, nats_secured, database_url, register):
    """``renkei fees determine``: the same inquiry from the command line, with the city's keys and NATS login."""
    import json

    from typer.testing import CliRunner

    from renkei.cli import app as cli

    db, p = register
    args = ["fees", "determine", "--fiscal-year", str(YEAR), "--city", "112224", "--data", str(stack_files.data_dir),
            "--nats-url", nats_secured.url, "--by", "z.mori", "--json"]
    if not database_url.startswith("sqlite"):
        args += ["--database-url", database_url]
    unanswered = CliRunner().invoke(cli, args)
    with running(TAX_WELFARE_SPEC, tax_welfare_settings(stack_files, nats_secured, database_url)) as [tax_welfare]:
        hold(tax_welfare, p)
        first = CliRunner().invoke(cli, args)
        second = CliRunner().invoke(cli, args)
    assert unanswered.exit_code == 2 and "tax_welfare" in unanswered.output
    assert first.exit_code == 0, first.output
    assert [(s["source"], s["recorded"], s["matched"]) for s in json.loads(first.stdout)["sources"]] == [("tax", 5, 3), ("welfare", 5, 1)]
    assert [(s["recorded"], s["unchanged"]) for s in json.loads(second.stdout)["sources"]] == [(0, 5), (0, 5)]
    assert determinations(db)[p["assisted"]["number"]][:2] == ("public_assistance", True)
    logged = [e for e in health_oplog(db) if e.operation == "health_mgmt.fee_determination.inquire"]
    assert [(e.actor, e.outcome) for e in logged] == [("z.mori", "ok"), ("z.mori", "ok"), ("z.mori", "refused")]


def health_oplog(db):
    from shared.oplog import OperationLog

    return OperationLog(db).entries()


def test_a_seeded_population_is_answered_for_through_the_real_feeds(stack_files, nats_secured, database_url):
    """The resident registry seeds people; the integrated address system numbers them; the tax
    and welfare systems learn both and assess them; the health management enrols some and
    asks: every answer is about the register's own people, with the register's birth dates."""
    from services.integrated_address.app import SPEC as INTEGRATED_SPEC
    from services.integrated_address.config import Settings as IntegratedSettings
    from services.resident_registry.app import SPEC as REGISTRY_SPEC
    from services.resident_registry.config import Settings as RegistrySettings
    from services.resident_registry.models import ResidentEntry
    from services.resident_registry.register import resident_record
    from services.resident_registry.seeding import seed
    from services.tax_welfare.assessment import fiscal_year_of
    from shared.contracts.address import PersonItems
    from tests.unit.test_integrated_address import service_settings, wait_for_inbox

    year = fiscal_year_of(date.today())
    with (
        running(REGISTRY_SPEC, service_settings(RegistrySettings, "resident_registry", stack_files, nats_secured, database_url)) as [registry],
        running(INTEGRATED_SPEC, service_settings(IntegratedSettings, "integrated_address", stack_files, nats_secured, database_url)),
        running(TAX_WELFARE_SPEC, tax_welfare_settings(stack_files, nats_secured, database_url)) as [tax_welfare],
        TestClient(build_app(SPEC, health_settings(stack_files, nats_secured, database_url))) as health,
    ):
        report = seed(registry.app.state.context.db, "112224", 120, seed=7)
        tax_db = tax_welfare.app.state.context.db
        assert wait_for_inbox(tax_db, "tax_welfare__changed", report.events, seconds=120) == report.events
        assert wait_for_inbox(tax_db, "tax_welfare__number_assigned", report.events, seconds=120) >= report.events
        with registry.app.state.context.db.session() as session:
            chosen = list(session.scalars(select(ResidentEntry).order_by(ResidentEntry.birth_date).limit(12)))  # the eldest
        nurse = staff_headers(health, ["nurse"])
        presented = [{k: str(v) for k, v in resident_record(r).address_items(r.status).items() if k in PersonItems.model_fields} for r in chosen]
        enrolled = [health.post("/subjects", json={"my_number": r.my_number, "items": items, "identity": {"method": "notice_card_and_photo_id", "photo_id": "運転免許証"}}, headers=nurse) for r, items in zip(chosen, presented)]
        assert all(reply.status_code == 200 for reply in enrolled), [r.text for r in enrolled]
        inquiry = health.post(INQUIRIES, json={"fiscal_year": year}, headers=staff_headers(health, ["clerk"])).json()
        with tax_db.session() as session:
            taxed = {r.integrated_address_number: r.status for r in session.scalars(select(LocalTaxRecord).where(LocalTaxRecord.fiscal_year == year))}
            assisted = set(session.scalars(select(AssistanceRecord.integrated_address_number).where(AssistanceRecord.fiscal_year == year)))
        decided = determinations(health.app.state.context.db, year)
    numbers = [reply.json()["subject"]["integrated_address_number"] for reply in enrolled]
    tax = next(s for s in inquiry["sources"] if s["source"] == "tax")
    assert inquiry["people"] == 12 and tax["matched"] == 12 and tax["set_aside"] == {}  # all came before 2024-04-01
    for number in numbers:
        expected = "public_assistance" if number in assisted else taxed[number]
        assert decided[number][0] == expected
