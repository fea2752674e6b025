"""The reminder batch: who is due in a period, one combined notice per person (CSV row and
PDF in Japanese with 和暦 dates), nothing sent twice, every run recorded."""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from renkei.cli import app as cli
from services.health_mgmt import register
from services.health_mgmt.models import ReminderNotice, ReminderRun, Subject
from services.health_mgmt.reminders import run_batch
from services.health_mgmt.wareki import wareki
from tests.unit.test_health_support import CITY, enrol, open_register, postgres_or_none

AS_OF = date(2025, 6, 1)
JUNE = (date(2025, 6, 1), date(2025, 6, 30))


def give(db, person, record_type, day, **items):
    with db.session() as session:
        subject = register.find_subject(session, person["number"])
        checked = register.check_record(record_type, {"inoculation_date": day, "examination_type": "inoculated", **items})
        register.record_dose(session, subject, checked, source="counter", recorded_by="n.sato")


@pytest.fixture
def town(tmp_path, database_url):
    db = open_register(tmp_path / "data", database_url)
    people = {
        "toddler": enrol(db, date(2024, 5, 10), name="越谷　一歳"),  # turns one in May: MR and varicella due
        "vaccinated": enrol(db, date(2024, 5, 12), name="越谷　済子"),
        "adult": enrol(db, date(1990, 1, 1), name="越谷　大人"),
        "moved": enrol(db, date(2024, 5, 11), name="越谷　転出", status="moved_out"),
    }
    give(db, people["vaccinated"], "mr", "2025-05-20")
    yield db, people
    db.dispose()


def batch(db, tmp_path, **overrides):
    options = {"period_start": JUNE[0], "period_end": JUNE[1], "as_of": AS_OF, "output": tmp_path / "out", "started_by": "k.tanaka"}
    return run_batch(db, CITY, **{**options, **overrides})


def test_everyone_due_gets_one_combined_notice_and_nobody_else(tmp_path, town):
    db, people = town
    summary = batch(db, tmp_path)
    rows = list(csv.DictReader((summary.output / "notices.csv").open(encoding="utf-8-sig")))
    by_name = {row["氏名"]: row for row in rows}
    assert set(by_name) == {"越谷　一歳", "越谷　済子"}  # not the adult, not the one who moved out
    assert summary.people_evaluated == 3 and summary.notices == 2
    toddler = by_name["越谷　一歳"]["予防接種"]
    assert "MR 第1期" in toddler.split("／") and "水痘 1回目" in toddler.split("／")
    assert "MR" not in by_name["越谷　済子"]["予防接種"] and "水痘" in by_name["越谷　済子"]["予防接種"]
    assert by_name["越谷　一歳"]["生年月日"] == "令和6年5月10日"
    assert sorted(p.name for p in summary.output.glob("*.pdf")) == sorted(row["PDF"] for row in rows)
    with db.session() as session:
        noticed = {(n.subject_number, n.series) for n in session.scalars(select(ReminderNotice))}
    assert (people["toddler"]["number"], "mr_1") in noticed and (people["vaccinated"]["number"], "mr_1") not in noticed


def test_running_again_sends_nothing_twice_and_each_run_is_recorded(tmp_path, town):
    db, people = town
    first = batch(db, tmp_path)
    second = batch(db, tmp_path)
    assert first.notices == 2 and second.notices == 0 and second.already_sent == first.items
    assert list(csv.reader((second.output / "notices.csv").open(encoding="utf-8-sig")))[1:] == []
    assert not list(second.output.glob("*.pdf"))
    give(db, people["toddler"], "mr", "2025-06-03")  # a dose given later changes nothing already sent
    july = batch(db, tmp_path, period_start=date(2025, 7, 1), period_end=date(2025, 7, 31), as_of=date(2025, 7, 1))
    with db.session() as session:
        runs = session.scalars(select(ReminderRun).order_by(ReminderRun.id)).all()
        duplicates = session.execute(select(ReminderNotice.subject_number, ReminderNotice.series, ReminderNotice.next_dose)).all()
    assert [(r.notices, r.finished_at is not None, r.started_by) for r in runs] == [(2, True, "k.tanaka"), (0, True, "k.tanaka"), (july.notices, True, "k.tanaka")]
    assert len(duplicates) == len(set(duplicates))


def test_the_notice_is_a_japanese_pdf_with_era_dates(tmp_path, town):
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.fail("poppler-utils (pdftotext, pdftoppm) is needed to check the notices")
    db, people = town
    summary = batch(db, tmp_path)
    pdf = next(p for p in summary.output.glob("*.pdf") if people["toddler"]["voucher"] in p.name)
    text = "".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "予防接種のお知らせ" in text and "越谷　一歳".replace("　", "") + "様" in text.replace("　", "")
    assert "令和6年5月10日" in text and "令和7年6月1日発行" in text
    assert "MR第1期" in text and "水痘" in text and people["toddler"]["voucher"] in text
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(pdf), str(tmp_path / "page")], check=True)
    assert (tmp_path / "page.png").stat().st_size > 5000  # a page with text on it, not blank


def test_the_cli_runs_the_batch_and_logs_it(tmp_path, database_url, town):
    db, _ = town
    args = ["reminders", "run", "--period", "2025-06", "--city", CITY, "--data", str(tmp_path / "data"), "--as-of", "2025-06-01",
            "--by", "k.tanaka", "--workers", "2", "--json"]
    if postgres_or_none(database_url):
        args += ["--database-url", database_url]
    first = CliRunner().invoke(cli, args)
    again = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["notices"] == 2 and json.loads(again.stdout)["notices"] == 0
    assert (tmp_path / "data" / "reminders" / CITY / f"run-{json.loads(first.stdout)['run_id']}" / "notices.csv").exists()
    from shared.oplog import OperationLog

    assert [e.operation for e in OperationLog(db).entries()][:2] == ["health_mgmt.reminders.run"] * 2
    bad = CliRunner().invoke(cli, ["reminders", "run", "--period", "2025-13", "--city", CITY, "--data", str(tmp_path / "data")])
    assert bad.exit_code == 2 and "--period" in bad.output


@pytest.mark.parametrize(("day", "text"), [(date(2019, 5, 1), "令和元年5月1日"), (date(2019, 4, 30), "平成31年4月30日"),
                                           (date(1989, 1, 7), "昭和64年1月7日"), (date(1926, 12, 25), "昭和元年12月25日")])
def test_era_dates(day, text):
    assert wareki(day) == text


def test_subjects_who_left_keep_their_records(town):
    db, people = town
    with db.session() as session:
        assert session.get(Subject, people["moved"]["number"]).status == "moved_out"


def varied_people(size: int, seed: int) -> list:
    """The schedule benchmark's people, with flags drawn for some, and adults around the ages at
    which the elderly ranges open and close (60, 65, 66, the shingles cohorts, 100 and over),
    born on any day (29 February included), some with influenza and pneumococcal doses."""
    from dataclasses import replace

    from bench.schedule import population
    from services.health_mgmt.schedule import Person, RecordedDose

    rng = random.Random(seed)
    people = []
    for person, history in population(size, seed=seed):
        flags = {"heart_kidney_respiratory_disability": rng.random() < 0.05, "hiv_immune_disability": rng.random() < 0.03,
                 "hbv_perinatal_prophylaxis": rng.random() < 0.05}
        people.append((replace(person, **flags), history))
    for _ in range(size // 2):
        born = date(1920, 1, 1) + timedelta(days=rng.randint(0, 365 * 47))
        flag = rng.random() < 0.3
        person = Person(born, rng.choice("FM"), heart_kidney_respiratory_disability=flag and rng.random() < 0.5,
                        hiv_immune_disability=flag and rng.random() < 0.5)
        history = [RecordedDose("influenza_elderly", date(2024, 10, 1) + timedelta(days=rng.randint(0, 90)))] if rng.random() < 0.5 else []
        if rng.random() < 0.2:
            history.append(RecordedDose("pneumococcal_elderly", born + timedelta(days=365 * 65 + rng.randint(-200, 200))))
        people.append((person, [d for d in history if born <= d.date <= date(2025, 6, 1)]))
    people.append((Person(date(1960, 2, 29), "F", heart_kidney_respiratory_disability=True), []))
    return people


PERIODS = [
    (date(2025, 6, 1), date(2025, 6, 30)),  # outside the influenza season
    (date(2025, 10, 1), date(2025, 10, 31)),  # its first month
    (date(2025, 9, 15), date(2025, 10, 15)),  # across its recommended day
    (date(2026, 3, 1), date(2026, 3, 31)),  # the last month of the fiscal year
    (date(2026, 3, 20), date(2026, 4, 10)),  # across the turn of the fiscal year
    (date(2025, 4, 1), date(2026, 3, 31)),  # a whole fiscal year
    (date(2024, 6, 1), date(2024, 6, 30)),  # before the shingles programme
    (date(2025, 7, 14), date(2025, 7, 14)),  # one day
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_forecasting_only_what_can_fall_due_changes_no_answer(start, end):
    from services.health_mgmt.reminders import due_in, may_be_due

    people = varied_people(500, seed=11)
    as_of = min(start, date(2025, 6, 1))
    fast = [due_in(person, history, start, end, as_of) for person, history in people]
    full = [due_in(person, history, start, end, as_of, prefilter=False) for person, history in people]
    assert fast == full and sum(map(bool, full)) > 20  # the period finds people, and the same ones
    ruled_out = [person for person, _ in people if not may_be_due(start, end)(person)]
    assert len(ruled_out) > len(people) / 10 or end - start > timedelta(days=300)  # most adults are never evaluated


def test_the_elderly_are_evaluated_in_the_influenza_season_only_if_nothing_else_can_be_due():
    from services.health_mgmt.schedule import Person, series_due_within

    seventy_one = Person(date(1954, 1, 10), "M")  # no shingles cohort this year, pneumococcal long past
    assert series_due_within(seventy_one, date(2025, 6, 1), date(2025, 6, 30)) == frozenset()
    assert series_due_within(seventy_one, date(2025, 10, 1), date(2025, 10, 31)) == {"influenza_elderly"}
    turning_65 = Person(date(1960, 6, 20), "F", heart_kidney_respiratory_disability=True)  # the 60–64 range ends in June
    assert "influenza_elderly" in series_due_within(turning_65, date(2025, 6, 1), date(2025, 6, 30))
    assert "hpv" not in series_due_within(Person(date(2010, 5, 1), "M"), date(2025, 6, 1), date(2025, 6, 30))


@pytest.mark.parametrize("workers", [1, 2])
def test_the_batch_finds_what_evaluating_everyone_in_full_finds(tmp_path, database_url, workers):
    from bench.reminders import fill
    from services.health_mgmt.reminders import due_in, residents

    db = open_register(tmp_path / "data", database_url)
    fill(db, varied_people(400, seed=5))
    sent: set[tuple] = set()
    try:
        for start, end in (PERIODS[0], PERIODS[1]):
            due = {
                (candidate.number, item.series, item.dose)
                for _, chunk in residents(db)
                for candidate in chunk
                for item in due_in(candidate.person, candidate.doses, start, end, start, prefilter=False)
            }
            summary = batch(db, tmp_path, period_start=start, period_end=end, as_of=start, workers=workers, pdf=False)
            with db.session() as session:
                noticed = {tuple(row) for row in session.execute(
                    select(ReminderNotice.subject_number, ReminderNotice.series, ReminderNotice.next_dose)
                    .where(ReminderNotice.run_id == summary.run_id)
                )}
            assert noticed == due - sent and len(noticed) > 30
            assert summary.people_evaluated == 601 and summary.already_sent == len(due & sent)
            sent |= noticed
    finally:
        db.dispose()


def test_residents_are_read_as_the_register_holds_them(tmp_path, database_url):
    from dataclasses import astuple

    from bench.reminders import fill
    from services.health_mgmt.models import Dose
    from services.health_mgmt.register import vaccine_of
    from services.health_mgmt.reminders import residents
    from services.health_mgmt.schedule import Person, RecordedDose

    db = open_register(tmp_path / "data", database_url)
    fill(db, varied_people(300, seed=7))
    try:
        with db.session() as session:
            subjects = session.scalars(select(Subject).where(Subject.status == "resident")).all()
            doses = session.scalars(select(Dose).where(Dose.examination_type == "inoculated").order_by(Dose.id)).all()
            expected = {}
            for s in subjects:
                person = Person(s.birth_date, {"male": "M", "female": "F"}[s.sex], s.heart_kidney_respiratory_disability,
                                s.hiv_immune_disability, s.hbv_perinatal_prophylaxis)
                given = [d for d in doses if d.subject_number == s.integrated_address_number]
                history = sorted((RecordedDose(vaccine_of(d.record_type), d.dose_date, d.product) for d in given
                                  if vaccine_of(d.record_type) is not None), key=repr)
                expected[s.integrated_address_number] = person, history
        read = {c.number: (c.person, sorted(c.doses, key=repr)) for _, chunk in residents(db, chunk=50) for c in chunk}
        assert read == expected and any(person.hiv_immune_disability for person, _ in read.values())
        typed = lambda value: [(type(v), v) for v in value]  # noqa: E731 - a Boolean read as 1 equals True
        assert {n: (typed(astuple(p)), [typed(astuple(d)) for d in h]) for n, (p, h) in read.items()} == {
            n: (typed(astuple(p)), [typed(astuple(d)) for d in h]) for n, (p, h) in expected.items()
        }
    finally:
        db.dispose()
