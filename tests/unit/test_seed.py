"""Seeding the register with the synthetic population: the same seed gives the same people,
a second run changes nothing, each new person has exactly one event in the outbox, and a
running registry's relay publishes them whether they were seeded before or during its run."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from renkei.seed_cli import app as seed_app
from services.resident_registry import register, seeding
from services.resident_registry.models import ResidentChange, ResidentEntry
from services.resident_registry.population import REFERENCE_DATE, generate
from services.resident_registry.schemas import ChangeRequest
from shared.contracts.residents import ResidentChanged, ResidentRecord
from shared.models import OutboxMessage
from tests.unit.test_resident_registry_support import (
    CITY,
    consume_changes,
    counts,
    open_register,
    outbox_events,
    running_registry,
)


@pytest.fixture
def db(database_url):
    db = open_register(database_url)
    yield db
    db.dispose()


def register_rows(db) -> list[tuple]:
    with db.session() as session:
        entries = session.scalars(select(ResidentEntry).order_by(ResidentEntry.resident_code)).all()
        return [tuple(getattr(e, name) for name in ResidentRecord.model_fields) for e in entries]


def change_rows(db) -> list[tuple]:
    with db.session() as session:
        rows = session.execute(
            select(ResidentChange.change_id, ResidentChange.resident_code, ResidentChange.kind, ResidentChange.effective_date)
            .order_by(ResidentChange.change_id)
        ).all()
    return [tuple(row) for row in rows]


def test_the_same_seed_gives_the_same_register_and_another_seed_other_people(db, tmp_path):
    report = seeding.seed(db, CITY, 800, seed=7, batch=300)
    twin = open_register(f"sqlite:///{tmp_path / 'twin.sqlite3'}")
    other = open_register(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        seeding.seed(twin, CITY, 800, seed=7)
        seeding.seed(other, CITY, 800, seed=8)

        assert report.added == 800 and report.births + report.move_ins == 800
        assert register_rows(db) == register_rows(twin)
        assert change_rows(db) == change_rows(twin)
        expected = sorted(tuple(getattr(p, name) for name in ResidentRecord.model_fields) for p in generate(CITY, 800, 7))
        assert register_rows(db) == expected
        assert not {row[0] for row in register_rows(db)} & {row[0] for row in register_rows(other)}
    finally:
        twin.dispose()
        other.dispose()


def test_seeding_twice_changes_nothing(db):
    first = seeding.seed(db, CITY, 500, seed=3)
    after_first = (counts(db), register_rows(db), change_rows(db))
    second = seeding.seed(db, CITY, 500, seed=3)

    assert (first.added, first.events) == (500, 500)
    assert (second.added, second.events, second.already_present) == (0, 0, 500)
    assert (counts(db), register_rows(db), change_rows(db)) == after_first


def test_an_interrupted_seed_leaves_whole_people_and_a_rerun_completes_it(db):
    class Interrupted(Exception):
        pass

    def interrupt(_n: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        seeding.seed(db, CITY, 2500, seed=5, batch=500, progress=interrupt)
    partial = counts(db)
    assert partial["residents"] == partial["changes"] == partial["events"] == 1000

    rerun = seeding.seed(db, CITY, 2500, seed=5, batch=500)
    assert (rerun.added, rerun.already_present) == (1500, 1000)
    assert counts(db) == {"residents": 2500, "changes": 2500, "events": 2500}


def test_each_new_person_has_one_valid_event_matching_their_change(db):
    seeding.seed(db, CITY, 700, seed=11)
    events = outbox_events(db)
    with db.session() as session:
        payloads = session.scalars(select(OutboxMessage.payload)).all()
        changes = {c.change_id: c for c in session.scalars(select(ResidentChange))}
        entries = {e.resident_code: e for e in session.scalars(select(ResidentEntry))}

    assert len(events) == len(changes) == len(entries) == 700
    # Byte for byte what pydantic writes for the contract's model (the seed builds the JSON itself).
    assert all(p == ResidentChanged.model_validate_json(p).model_dump_json().encode() for p in payloads)
    for event in events:
        change = changes[event.change_id]
        assert (change.kind, change.effective_date, change.resident_code) == (event.kind, event.effective_date, event.resident.resident_code)
        assert ResidentRecord.model_validate_json(change.record) == event.resident == register.resident_record(entries[change.resident_code])
        assert change.recorded_by == "seed"


def test_people_born_after_their_household_arrived_are_registered_by_birth(db):
    report = seeding.seed(db, CITY, 1500, seed=2)
    arrivals: dict[str, set] = defaultdict(set)
    kinds = set()
    for event in outbox_events(db):
        person = event.resident
        kinds.add(event.kind)
        assert event.effective_date <= REFERENCE_DATE
        if event.kind == "birth":
            assert event.effective_date == person.birth_date
        else:
            assert event.kind == "move_in" and event.effective_date >= person.birth_date
            arrivals[person.household_id].add(event.effective_date)
    assert kinds == {"birth", "move_in"} and report.births > 0 and report.move_ins > report.births
    assert all(len(days) == 1 for days in arrivals.values())  # a household arrives together
    for event in outbox_events(db):
        if event.kind == "birth" and event.resident.household_id in arrivals:
            assert event.effective_date > next(iter(arrivals[event.resident.household_id]))


def test_seeded_people_follow_the_registers_rules_afterwards(db):
    seeding.seed(db, CITY, 200, seed=4)
    someone = outbox_events(db)[0].resident
    with db.session() as session:
        left = register.record_change(
            session, CITY, ChangeRequest(kind="move_out", effective_date="2024-05-01", resident_code=someone.resident_code), "clerk-1"
        )
    assert left.resident.status == "moved_out"
    with db.session() as session:
        history = register.list_changes(session, someone.resident_code)
    assert [change.kind for change in history][-1] == "move_out" and len(history) == 2
    assert seeding.seed(db, CITY, 200, seed=4).added == 0  # the moved-out person is not put back


def _cli_args(tmp_path, database_url: str, *extra: str) -> list[str]:
    args = ["--data", str(tmp_path / "data"), "--city", CITY, *extra]
    if not database_url.startswith("sqlite"):
        args += ["--database-url", database_url]
    return args


def test_the_command_seeds_the_stacks_register_once(tmp_path, database_url):
    runner = CliRunner()
    first = runner.invoke(seed_app, _cli_args(tmp_path, database_url, "--people", "400", "--seed", "9", "--json"))
    second = runner.invoke(seed_app, _cli_args(tmp_path, database_url, "--people", "400", "--seed", "9"))

    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["added"], report["events"], report["people"]) == (400, 400, 400)
    assert second.exit_code == 0, second.output
    assert "0 people added" in second.output and "400 already on the register" in second.output


def test_the_command_refuses_a_city_it_cannot_seed(tmp_path, database_url):
    runner = CliRunner()
    wrong_check_digit = runner.invoke(seed_app, ["--data", str(tmp_path), "--city", "112225", "--people", "3"])
    no_town_data = runner.invoke(seed_app, ["--data", str(tmp_path), "--city", "112216", "--people", "3"])
    assert wrong_check_digit.exit_code == 2 and "check digit" in wrong_check_digit.output
    assert no_town_data.exit_code == 2 and "no town data" in no_town_data.output
    assert not (tmp_path / "db").exists()  # refused before any database was touched


def test_seeded_people_reach_jetstream_whether_seeded_before_or_while_the_registry_runs(
    stack_files, nats_secured, database_url, tmp_path
):
    runner = CliRunner()
    data = ["--data", str(stack_files.data_dir), "--city", CITY, "--json"]
    if not database_url.startswith("sqlite"):
        data += ["--database-url", database_url]

    before = runner.invoke(seed_app, [*data, "--people", "300", "--seed", "21"])  # the stack is down
    assert before.exit_code == 0, before.output
    with running_registry(stack_files, nats_secured, database_url):
        during = runner.invoke(seed_app, [*data, "--people", "200", "--seed", "22"])  # the stack is up
        assert during.exit_code == 0, during.output
        received = consume_changes(stack_files, nats_secured, tmp_path, expected=500)

    seeded = json.loads(before.stdout)["added"] + json.loads(during.stdout)["added"]
    assert seeded == 500
    assert len(received) == 500 and len({event.change_id for event in received}) == 500
    assert {event.kind for event in received} == {"birth", "move_in"}
