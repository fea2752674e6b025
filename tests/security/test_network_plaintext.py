"""The hub carries answers it cannot read (M22): after a query is answered end to end,
nothing the hub stores — any row of any table, the database files' raw bytes — and
nothing logged contains a value of the answer. The same values are in the requester's
result, so the search would find them if they were there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from shared.contracts import network as net
from tests.unit.test_intermediate_server_support import (
    HEALTH,
    KOSHIGAYA,
    OP,
    SOKA,
    announce,
    call,
    people,
    symbol_count,
    two_cities,
    vaccination_query,
    wait_for_result,
    wait_until,
)

SECRETS = {"lot_number": "ZQX9Y8W7", "manufacturer": "蔵王ワクチン製薬", "inoculation_place": "草加市蔵王リンゴ診療所", "vaccine_product": "ミヤギノハギ4価"}
RECORD = {"record_type": "influenza_elderly", "inoculation_date": "2024-10-21", **SECRETS}


def _rows(db) -> str:
    metadata = MetaData(schema=None)
    metadata.reflect(db.engine)
    dumped = []
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            dumped += [repr(tuple(row)) for row in conn.execute(select(table))]
    return "\n".join(dumped)


def _raw_files(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.glob("provision_network.sqlite3*")))


@pytest.fixture
def network(tmp_path, database_url):
    with two_cities(tmp_path, database_url) as (files, nats, hub, k, s):
        yield files, nats, hub, k, s


def test_nothing_the_hub_keeps_or_logs_holds_an_answers_values(network, capfd):
    files, nats, hub, koshigaya, soka = network
    person = people(1, seed=71)[0]
    announce(files, nats, SOKA, [person])
    announce(files, nats, KOSHIGAYA, [person])
    wait_until(lambda: symbol_count(soka) == 1 and symbol_count(koshigaya) == 1, what="symbols")
    copy = net.CopyImport(item_code=net.VACCINATION_RECORDS, people=[net.PersonCopy(integrated_address_number=person.numbers[SOKA], records=[RECORD])])
    call(files, nats, HEALTH[SOKA], OP["intermediate_server.register_copies"], SOKA, copy)
    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, vaccination_query(person))
    result = wait_for_result(files, nats, KOSHIGAYA, accepted.query_id)
    assert result.status == "answered"
    answered = json.dumps(result.records, ensure_ascii=False)
    assert all(value in answered for value in SECRETS.values())  # the values did travel

    stored = _rows(hub.context.db)
    assert result.serial_number in stored  # the dump does see what the hub keeps
    logged = capfd.readouterr()
    for value in SECRETS.values():
        assert value not in stored
        assert value not in logged.out and value not in logged.err
    if hub.context.db.is_sqlite:
        raw = _raw_files(Path(hub.context.db.url.removeprefix("sqlite:///")).parent)
        assert raw and not any(value.encode() in raw for value in SECRETS.values())
