"""The tax and welfare systems (simulated, 庁内業務システム) as a service, on a real nats-server
and a real database: the people they know from the resident feed and the integrated address
numbers, whichever comes first; their records per fiscal year; the answers they give the
health management (a status only where number and birth date agree); and loading a file."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from renkei.cli import app as cli
from renkei.tax_welfare_cli import open_records
from renkei.testkit import make_bus, staff_headers
from services.tax_welfare import records
from services.tax_welfare.app import SPEC
from services.tax_welfare.assessment import assess, assessment_day, fiscal_year_of
from services.tax_welfare.config import Settings
from services.tax_welfare.models import AssistanceRecord, LocalTaxRecord, Taxpayer
from shared.contracts import REGISTRY
from shared.contracts import network as net
from shared.contracts.tax_welfare import PersonKey, StatusRequest
from shared.errors import InvalidRequest
from shared.events import MSG_ID_HEADER, ensure_stream
from shared.ids import generate_resident_code, integrated_address_number
from shared.trust import Principal
from tests.unit.test_integrated_address import (
    CITY,
    HEALTH,
    change,
    publish_changes,
    resident,
    running,
    service_settings,
    wait_for_inbox,
)

LOCAL_TAX = REGISTRY.operation("tax_welfare", "local_tax_status")
ASSISTANCE = REGISTRY.operation("tax_welfare", "public_assistance_status")
THIS_YEAR = fiscal_year_of(date.today())
LONG_AGO = datetime(2000, 4, 1, 9, tzinfo=UTC)


def settings_for(files, server, database_url) -> Settings:
    return service_settings(Settings, "tax_welfare", files, server, database_url)


def new_number(rng: random.Random) -> str:
    return integrated_address_number(CITY, f"{rng.randrange(10**9):09d}")


def announce(files, server, pairs: list[tuple[str, str | None]]) -> None:
    """Publish ``number_assigned`` (number, resident code) as the integrated address system's relay does."""

    async def scenario():
        principal = Principal("integrated_address", CITY)
        bus = make_bus(files.data_dir, files.directory, principal)
        await bus.connect(server.url, *files.login(principal))
        try:
            js = bus.jetstream()
            await ensure_stream(js, "integrated_address", CITY)
            for number, code in pairs:
                payload = net.NumberAssigned(integrated_address_number=number, resident_code=code)
                await js.publish(
                    net.NUMBER_ASSIGNED.subject(CITY), payload.model_dump_json().encode(),
                    stream=net.NUMBER_ASSIGNED.stream(CITY), headers={MSG_ID_HEADER: uuid.uuid4().hex},
                )
        finally:
            await bus.close()

    asyncio.run(scenario())


def ask(files, server, operation, fiscal_year: int, people: list[tuple[str, date]], caller: Principal = HEALTH, login: Principal | None = None):
    async def scenario():
        bus = make_bus(files.data_dir, files.directory, caller)
        await bus.connect(server.url, *files.login(login or caller))
        try:
            request = StatusRequest(fiscal_year=fiscal_year, people=[PersonKey(integrated_address_number=n, birth_date=b) for n, b in people])
            return await bus.request(operation, CITY, request, timeout=5)
        except Exception as exc:
            return exc
        finally:
            await bus.close()

    return asyncio.run(scenario())


def tax_rows(client) -> dict[tuple[str, int], LocalTaxRecord]:
    with client.app.state.context.db.session() as session:
        return {(r.integrated_address_number, r.fiscal_year): r for r in session.scalars(select(LocalTaxRecord))}


def people_for(rng: random.Random, count: int) -> list[tuple[object, str]]:
    """Residents (record, integrated address number): an elder, adults, a child, one who came this year."""
    births = [date(1948, 6, 1), date(1975, 2, 3), date(1988, 9, 9), date(2015, 5, 5)]
    found = []
    for index in range(count):
        record = resident(rng, birth_date=births[index % len(births)], household_id=f"H-{index:04d}")
        found.append((record, new_number(rng)))
    return found


def test_people_are_known_from_both_feeds_in_either_order_and_assessed_once(stack_files, nats_secured, database_url):
    rng = random.Random(41)
    people = people_for(rng, 8)
    newcomer = resident(rng, birth_date=date(1950, 1, 1), household_id="H-NEW")
    newcomer_number = new_number(rng)
    arrived = assessment_day(THIS_YEAR) + timedelta(days=1)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        db = client.app.state.context.db
        # Half the numbers come before the residents' changes, half after; one number twice.
        announce(stack_files, nats_secured, [(n, r.resident_code) for r, n in people[:4]] + [(people[0][1], people[0][0].resident_code)])
        publish_changes(stack_files, nats_secured, [(uuid.uuid4().hex, change("move_in", r, LONG_AGO)) for r, _ in people])
        moved_in = change("move_in", newcomer, datetime.combine(arrived, datetime.min.time(), UTC))
        publish_changes(stack_files, nats_secured, [(uuid.uuid4().hex, moved_in)])
        announce(stack_files, nats_secured, [(n, r.resident_code) for r, n in people[4:]] + [(newcomer_number, newcomer.resident_code)])
        announce(stack_files, nats_secured, [(new_number(rng), None)])  # a non-resident: not assessed here
        assert wait_for_inbox(db, "tax_welfare__changed", 9) == 9
        assert wait_for_inbox(db, "tax_welfare__number_assigned", 11) == 11
        rows = tax_rows(client)
        with db.session() as session:
            known = {t.resident_code: t for t in session.scalars(select(Taxpayer))}
            assisted = {(r.integrated_address_number, r.fiscal_year) for r in session.scalars(select(AssistanceRecord))}
    years = records.assessed_years(date.today(), Settings.model_fields["assessed_years"].default)
    assert len(known) == 9 and all(t.integrated_address_number for t in known.values())
    for record, number in people:
        for year in years:
            row = rows[(number, year)]
            assert row.birth_date == record.birth_date and row.origin == "seeded"
            expected = assess(CITY, record.resident_code, record.household_id, record.birth_date, LONG_AGO.date(), year)
            assert (row.status, (number, year) in assisted) == (expected.local_tax, expected.public_assistance)
        if record.birth_date == date(2015, 5, 5):  # a child has no income of their own
            assert {rows[(number, y)].status for y in years} == {"tax_exempt"}
    # Came after 1 January: no local tax here for this fiscal year, but for none before either.
    assert [y for y in years if (newcomer_number, y) in rows] == []
    assert len(rows) == len(people) * len(years)


def test_the_assessment_does_not_depend_on_the_order_of_the_feeds(tmp_path, database_url):
    """The same people, fed in opposite orders into two databases, get the same records."""
    from shared.config import ServiceSettings
    from shared.service import migrate_database, open_database

    rng = random.Random(43)
    people = people_for(rng, 40)
    years = [THIS_YEAR - 1, THIS_YEAR]
    outcomes = []
    for index, order in enumerate(("changes first", "numbers first")):
        # Two databases (or schemas) side by side, named after two cities; the people are CITY's in both.
        settings = ServiceSettings(service="tax_welfare", city=("112224", "112216")[index], data_dir=tmp_path / "data", database_url=_pg(database_url))
        db = open_database(settings)
        migrate_database(db, SPEC)
        with db.session() as session:
            steps = [lambda r=r: records.apply_resident_change(session, CITY, change("move_in", r, LONG_AGO), years) for r, _ in people]
            numbers = [
                lambda r=r, n=n: records.apply_number_assigned(session, CITY, net.NumberAssigned(integrated_address_number=n, resident_code=r.resident_code), years)
                for r, n in people
            ]
            for step in (steps + numbers if order == "changes first" else numbers + steps):
                step()
        with db.session() as session:
            outcomes.append(sorted((r.integrated_address_number, r.fiscal_year, r.status) for r in session.scalars(select(LocalTaxRecord))))
        db.dispose()
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) == 80
    assert {status for _, _, status in outcomes[0]} == {"taxed", "tax_exempt"}


def _pg(database_url: str) -> str | None:
    return None if database_url.startswith("sqlite") else database_url


@pytest.fixture
def holding(stack_files, nats_secured, database_url):
    """The systems running, with three people on file: one taxed, one exempt and assisted, one known by another birth date."""
    rng = random.Random(47)
    with running(SPEC, settings_for(stack_files, nats_secured, database_url)) as [client]:
        numbers = [new_number(rng) for _ in range(4)]
        with client.app.state.context.db.session() as session:
            for number, born, status in ((numbers[0], date(1950, 4, 2), "taxed"), (numbers[1], date(1951, 4, 3), "tax_exempt"), (numbers[2], date(1952, 4, 4), "taxed")):
                session.add(LocalTaxRecord(integrated_address_number=number, fiscal_year=2024, birth_date=born, status=status, origin="loaded"))
            session.add(AssistanceRecord(integrated_address_number=numbers[1], fiscal_year=2024, birth_date=date(1951, 4, 3), origin="loaded"))
        yield client, numbers


def test_a_status_is_answered_only_where_number_and_birth_date_agree(stack_files, nats_secured, holding):
    client, numbers = holding
    asked = [(numbers[0], date(1950, 4, 2)), (numbers[1], date(1951, 4, 3)), (numbers[2], date(1952, 12, 31)), (numbers[3], date(1960, 1, 1))]
    tax = ask(stack_files, nats_secured, LOCAL_TAX, 2024, asked)
    assistance = ask(stack_files, nats_secured, ASSISTANCE, 2024, asked)
    other_year = ask(stack_files, nats_secured, LOCAL_TAX, 2023, asked[:1])
    assert [(a.integrated_address_number, a.birth_date) for a in tax.answers] == asked  # in the order asked
    assert [(a.outcome, a.status) for a in tax.answers] == [("held", "taxed"), ("held", "tax_exempt"), ("birth_date_mismatch", None), ("not_held", None)]
    assert [(a.outcome, a.status) for a in assistance.answers] == [("not_held", None), ("held", "public_assistance"), ("not_held", None), ("not_held", None)]
    assert [(a.outcome, a.status) for a in other_year.answers] == [("not_held", None)]
    entries = client.app.state.context.oplog.entries("tax_welfare.local_tax_status")
    assert [(e.actor, e.outcome) for e in entries] == [(str(HEALTH), "ok")] * 2


@pytest.mark.parametrize(
    "people, fiscal_year",
    [("nobody", 2024), ("twice", 2024), ("check digit", 2024), ("future", 2024), ("one", 1800)],
)
def test_a_request_that_breaks_the_contract_is_refused(stack_files, nats_secured, holding, people, fiscal_year):
    _, numbers = holding
    body = {
        "nobody": [],
        "twice": [{"integrated_address_number": numbers[0], "birth_date": "1950-04-02"}] * 2,
        "check digit": [{"integrated_address_number": numbers[0][:14] + str((int(numbers[0][14]) + 1) % 10), "birth_date": "1950-04-02"}],
        "future": [{"integrated_address_number": numbers[0], "birth_date": (date.today() + timedelta(days=2)).isoformat()}],
        "one": [{"integrated_address_number": numbers[0], "birth_date": "1950-04-02"}],
    }[people]
    refused = raw_ask(stack_files, nats_secured, {"fiscal_year": fiscal_year, "people": body})
    assert isinstance(refused, InvalidRequest), refused


def raw_ask(files, server, payload: dict):
    """A request the contract model would not even build, sent as bytes by the health management."""
    from pydantic import BaseModel, ConfigDict

    class Raw(BaseModel):
        model_config = ConfigDict(extra="allow")

    async def scenario():
        bus = make_bus(files.data_dir, files.directory, HEALTH)
        await bus.connect(server.url, *files.login(HEALTH))
        try:
            return await bus.request(LOCAL_TAX, CITY, Raw(**json.loads(json.dumps(payload))), timeout=5)
        except Exception as exc:
            return exc
        finally:
            await bus.close()

    return asyncio.run(scenario())


def test_staff_read_what_their_role_allows_and_every_read_is_logged(stack_files, nats_secured, holding):
    client, numbers = holding
    clerk = staff_headers(client, ["tax_clerk"], user_id="t.sato")
    tax = client.get(f"/people/{numbers[1]}/local-tax", headers=clerk)
    refused = client.get(f"/people/{numbers[1]}/public-assistance", headers=clerk)
    caseworker = client.get(f"/people/{numbers[1]}/public-assistance", headers=staff_headers(client, ["caseworker"], user_id="k.abe"))
    bad = client.get("/people/112224000000000/local-tax", headers=clerk)
    assert tax.status_code == 200 and [(r["fiscal_year"], r["status"]) for r in tax.json()["records"]] == [(2024, "tax_exempt")]
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert caseworker.status_code == 200 and [r["fiscal_year"] for r in caseworker.json()["records"]] == [2024]
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    entries = client.app.state.context.oplog.entries("tax_welfare.local_tax.read")
    assert ("t.sato", numbers[1]) in {(e.actor, e.person_key) for e in entries}


def test_a_file_loads_over_the_assessment_and_bad_lines_are_refused(tmp_path, database_url):
    rng = random.Random(53)
    number, other = new_number(rng), new_number(rng)
    extra = ["--data", str(tmp_path / "data"), "--city", CITY, "--by", "z.mori", "--json"]
    if not database_url.startswith("sqlite"):
        extra += ["--database-url", database_url]
    db = open_records(tmp_path / "data", CITY, _pg(database_url))
    with db.session() as session:
        session.add(LocalTaxRecord(integrated_address_number=number, fiscal_year=2024, birth_date=date(1950, 4, 2), status="taxed", origin="seeded"))
    tax = tmp_path / "tax.csv"
    tax.write_bytes(
        "統合宛名番号,生年月日,区分\r\n".encode("cp932")
        + f"{number},1950/04/02,非課税\r\n{other},1951/01/01,課税\r\n{number[:14]}0,1950/04/02,課税\r\n{other},1951/01/01,免除\r\n".encode("cp932")
    )
    result = CliRunner().invoke(cli, ["tax-welfare", "load", str(tax), "--source", "tax", "--fiscal-year", "2024", *extra])
    report = json.loads(result.stdout)
    again = CliRunner().invoke(cli, ["tax-welfare", "load", str(tax), "--source", "tax", "--fiscal-year", "2024", *extra])
    with db.session() as session:
        rows = {r.integrated_address_number: (r.status, r.origin) for r in session.scalars(select(LocalTaxRecord))}
    db.dispose()
    assert result.exit_code == 1 and again.exit_code == 1
    assert (report["rows"], report["loaded"], [r["line"] for r in report["refused"]]) == (4, 2, [4, 5])
    assert rows == {number: ("tax_exempt", "loaded"), other: ("taxed", "loaded")}


def test_a_number_follows_a_new_resident_code(tmp_path, database_url):
    """住民票コードの変更: the integrated address system announces the same number with the new code."""
    from shared.config import ServiceSettings
    from shared.service import migrate_database, open_database

    rng = random.Random(59)
    [(record, number)] = people_for(rng, 1)
    new_code = generate_resident_code(rng)
    db = open_database(ServiceSettings(service="tax_welfare", city=CITY, data_dir=tmp_path / "data", database_url=_pg(database_url)))
    migrate_database(db, SPEC)
    years = [THIS_YEAR]
    with db.session() as session:
        records.apply_resident_change(session, CITY, change("move_in", record, LONG_AGO), years)
        records.apply_number_assigned(session, CITY, net.NumberAssigned(integrated_address_number=number, resident_code=record.resident_code), years)
    with db.session() as session:
        renamed = record.model_copy(update={"resident_code": new_code})
        records.apply_resident_change(session, CITY, change("correction", renamed, LONG_AGO + timedelta(days=1)), years)
        records.apply_number_assigned(session, CITY, net.NumberAssigned(integrated_address_number=number, resident_code=new_code), years)
    with db.session() as session:
        holders = {t.resident_code: t.integrated_address_number for t in session.scalars(select(Taxpayer))}
        tax = [(r.integrated_address_number, r.fiscal_year) for r in session.scalars(select(LocalTaxRecord))]
    db.dispose()
    assert holders == {record.resident_code: None, new_code: number}
    assert tax == [(number, THIS_YEAR)]


def test_a_new_fiscal_year_is_assessed_for_everyone_known_and_loaded_records_are_kept(tmp_path, database_url):
    """年度更新: people known before the year began are assessed by the yearly job's step, once."""
    from shared.config import ServiceSettings
    from shared.service import migrate_database, open_database

    rng = random.Random(61)
    people = people_for(rng, 6)
    db = open_database(ServiceSettings(service="tax_welfare", city=CITY, data_dir=tmp_path / "data", database_url=_pg(database_url)))
    migrate_database(db, SPEC)
    with db.session() as session:
        for record, number in people:  # known while only last year was assessed
            records.apply_resident_change(session, CITY, change("move_in", record, LONG_AGO), [THIS_YEAR - 1])
            records.apply_number_assigned(session, CITY, net.NumberAssigned(integrated_address_number=number, resident_code=record.resident_code), [THIS_YEAR - 1])
        session.add(LocalTaxRecord(integrated_address_number=people[0][1], fiscal_year=THIS_YEAR, birth_date=people[0][0].birth_date, status="taxed", origin="loaded"))
    with db.session() as session:
        pending = records.years_not_assessed(session, [THIS_YEAR - 1, THIS_YEAR])
    looked_at = records.assess_everyone(db, CITY, THIS_YEAR, batch=4)  # two batches
    with db.session() as session:
        after = records.years_not_assessed(session, [THIS_YEAR])
        this_year = {r.integrated_address_number: (r.status, r.origin) for r in session.scalars(select(LocalTaxRecord).where(LocalTaxRecord.fiscal_year == THIS_YEAR))}
    db.dispose()
    assert pending == [THIS_YEAR - 1, THIS_YEAR] and after == [] and looked_at == 6
    assert set(this_year) == {number for _, number in people}
    assert this_year[people[0][1]] == ("taxed", "loaded")
    assert all(origin == "seeded" for number, (_, origin) in this_year.items() if number != people[0][1])
