"""The consistency check finds exactly the records that differ between the CS and the prefecture
server, over real mutual TLS, exchanging range digests instead of records."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, insert

from services.juki_cs.app import MIGRATIONS
from services.juki_cs.config import Settings as CsSettings
from services.juki_cs.consistency import LEAF_SIZE, LocalRanges, compare
from services.juki_cs.models import Base, IdentityInfo
from services.juki_cs.prefecture import PrefectureClient
from services.juki_prefecture import store
from services.juki_prefecture.models import IdentityCopy
from shared import migrate
from shared.contracts.juki import IdentityRecord
from shared.models import KernelBase
from shared.pki import tls_files
from shared.service import open_database
from shared.trust import Principal
from tests.unit.test_juki_support import (
    KOSHIGAYA,
    identity_record,
    people,
    postgres_or_none,
    prepare_pki,
    start_prefecture,
)

CS = Principal("juki_cs", KOSHIGAYA)
POPULATION = 3000


def _row(record: IdentityRecord) -> dict:
    return {
        **record.model_dump(exclude={"updated_at"}),
        "updated_at": record.updated_at,
        "change_id": "seed",
        "change_kind": "move_in",
        "digest": record.digest(),
    }


@pytest.fixture
def both_sides(stack_files, database_url):
    """3,000 people held alike by the CS's database and the prefecture server."""
    prepare_pki(stack_files)
    records = [identity_record(p) for p in people(POPULATION, seed=51)]
    cs_db = open_database(CsSettings(city=KOSHIGAYA, data_dir=stack_files.data_dir, database_url=postgres_or_none(database_url)))
    migrate.upgrade(cs_db, [MIGRATIONS], [KernelBase.metadata, Base.metadata])
    with cs_db.session() as session:
        session.execute(insert(IdentityInfo), [_row(r) for r in records])
    with start_prefecture(stack_files, database_url) as prefecture:
        with prefecture.app.state.context.db.session() as session:
            store.store(session, KOSHIGAYA, records)
        yield cs_db, prefecture, records
    cs_db.dispose()


def _check(stack_files, cs_db, prefecture):
    async def run():
        client = PrefectureClient(prefecture.url, tls_files(stack_files.data_dir, CS), KOSHIGAYA)
        try:
            return await compare(LocalRanges.load(cs_db), client)
        finally:
            await client.close()

    return asyncio.run(run())


def test_identical_copies_cost_one_digest(stack_files, both_sides):
    cs_db, prefecture, _ = both_sides
    found = _check(stack_files, cs_db, prefecture)
    assert found.differing == []
    assert (found.records_here, found.records_there) == (POPULATION, POPULATION)
    assert (found.rounds, found.digests_exchanged, found.records_exchanged) == (1, 1, 0)


def test_a_few_differences_are_found_exactly_and_cheaply(stack_files, both_sides):
    cs_db, prefecture, records = both_sides
    missing_there, changed_there, changed_there_too, changed_here = records[10], records[700], records[1500], records[2999]
    extra_there = identity_record(people(1, seed=999)[0])
    with prefecture.app.state.context.db.session() as session:
        session.execute(delete(IdentityCopy).where(IdentityCopy.resident_code == missing_there.resident_code))
        store.store(session, KOSHIGAYA, [extra_there])
        for record, address in ((changed_there, "埼玉県越谷市越ヶ谷一丁目1番1号"), (changed_there_too, "埼玉県越谷市大沢三丁目3番3号")):
            row = session.get(IdentityCopy, (KOSHIGAYA, record.resident_code))
            row.address = address
            row.digest = store.record_of(row).digest()
    with cs_db.session() as session:
        row = session.get(IdentityInfo, changed_here.resident_code)
        row.status, row.digest = "deceased", changed_here.model_copy(update={"status": "deceased"}).digest()

    found = _check(stack_files, cs_db, prefecture)

    assert found.only_here == [missing_there.resident_code]
    assert found.only_there == [extra_there.resident_code]
    assert found.different == sorted([changed_there.resident_code, changed_there_too.resident_code, changed_here.resident_code])
    assert (found.records_here, found.records_there) == (POPULATION, POPULATION)
    # Five differences among 3,000 people: at most ten digests per level per difference, and
    # only the small ranges around them settled record by record.
    assert found.rounds <= 5
    assert found.digests_exchanged <= 1 + 10 * 5 * (found.rounds - 1)
    assert found.records_exchanged <= LEAF_SIZE * 5
    assert found.digests_exchanged + found.records_exchanged < POPULATION / 10
